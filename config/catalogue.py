"""The spec catalogue: lookup of the built-in ID/passport/visa photo specs, and custom specs.

The specs and each authority's examiner rules are data, in ``config/specs.toml`` (numbers, units
and ``[S#]`` sources from ``shared/specs.md``); ``config/specdata.py`` loads and validates them
once, here at import. All geometry is a fraction of the photo height H (see ``config/specs.py``).
Custom specs go through the same ``validate_spec`` (``config/validation.py``) as the built-ins.

Public API: ``get_spec``, ``list_specs``, ``spec_ids``, ``custom_spec``, ``parse_spec_arg``,
``feasible_layout``, ``is_satisfiable``, ``validate_spec``, ``COUNTRY_NAMES``, ``ALIASES``,
``BACKGROUND_NAMES``, ``AUTHORITIES``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace

from config.errors import BadParameter, UnknownSpec
from config.specdata import load_catalogue
from config.specs import PhotoSpec, Rules, mm_to_px
from config.validation import (
    BACKGROUND_NAMES,
    EYE_FROM_CROWN,
    EYE_FROM_CROWN_TOL,
    MIN_CHIN_MARGIN,
    MIN_TOP_MARGIN,
    Layout,
    feasible_layout,
    is_satisfiable,
    validate_spec,
)

__all__ = [
    "ALIASES",
    "AUTHORITIES",
    "BACKGROUND_NAMES",
    "COUNTRY_NAMES",
    "EYE_FROM_CROWN",
    "EYE_FROM_CROWN_TOL",
    "MIN_CHIN_MARGIN",
    "MIN_TOP_MARGIN",
    "Layout",
    "custom_spec",
    "feasible_layout",
    "get_spec",
    "is_satisfiable",
    "list_specs",
    "parse_spec_arg",
    "spec_ids",
    "validate_spec",
]

# Built once: the data is immutable (frozen specs, read-only mappings).
_CATALOGUE = load_catalogue()
_SPECS: tuple[PhotoSpec, ...] = _CATALOGUE.specs
_BY_ID = _CATALOGUE.by_id

#: Country code -> English name, for every country a spec names.
COUNTRY_NAMES: dict[str, str] = dict(_CATALOGUE.countries)
#: Other ids ``get_spec`` accepts (besides case and '_' for '-'): the specs.md row ids and a few
#: common spellings (``other_ids`` in specs.toml).
ALIASES: dict[str, str] = dict(_CATALOGUE.aliases)
#: Authority key -> its examiner rules (``[authorities.X]`` in specs.toml).
AUTHORITIES: dict[str, Rules] = dict(_CATALOGUE.authorities)


def _normalise(spec_id: str) -> str:
    return spec_id.strip().lower().replace("_", "-").replace(" ", "-")


def spec_ids() -> list[str]:
    """All built-in spec ids, in ``list_specs`` order."""
    return [s.id for s in list_specs()]


def get_spec(spec_id: str) -> PhotoSpec:
    """The built-in spec with this id or alias (case-insensitive, '_' accepted for '-').

    A ``custom:...`` text (the id of a spec made by ``custom_spec``) is parsed with
    ``parse_spec_arg``, so a job that stored ``spec.id`` can rebuild its spec. Raises
    ``UnknownSpec`` whose message and ``details["suggestions"]`` list close matches.
    """
    if not isinstance(spec_id, str):
        raise UnknownSpec(f"Spec id must be a string, got {spec_id!r}.", spec=repr(spec_id))
    key = _normalise(spec_id)
    if key.startswith("custom:"):
        return parse_spec_arg(spec_id)
    key = ALIASES.get(key, key)
    spec = _BY_ID.get(key)
    if spec is not None:
        return spec
    names = list(_BY_ID) + list(ALIASES)
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.5)
    suggestions: list[str] = []
    for name in close:
        target = ALIASES.get(name, name)
        if target not in suggestions:
            suggestions.append(target)
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise UnknownSpec(
        f"Unknown spec {spec_id!r}.{hint}",
        spec=spec_id,
        suggestions=suggestions,
    )


def list_specs() -> list[PhotoSpec]:
    """All built-in specs, grouped by country (international first, then by code), then by id."""
    return sorted(_SPECS, key=lambda s: (s.country != "INT", s.country, s.id))


def _fmt(x: float) -> str:
    return f"{x:g}"


def _custom_id(
    width: float,
    height: float,
    unit: str,
    dpi: int,
    head: tuple[float, float],
    eye: tuple[float, float] | None,
    top_margin: tuple[float, float] | None,
    background: str,
    kb: tuple[int | None, int | None] | None,
) -> str:
    text = f"custom:{_fmt(width)}x{_fmt(height)}{unit}@{dpi}"
    opts = []
    if head != (0.70, 0.80):
        opts.append(f"head={_fmt(head[0])}-{_fmt(head[1])}")
    if eye:
        opts.append(f"eye={_fmt(eye[0])}-{_fmt(eye[1])}")
    if top_margin:
        opts.append(f"top={_fmt(top_margin[0])}-{_fmt(top_margin[1])}")
    if background != "white":
        opts.append(f"bg={background}")
    if kb:
        opts.append(f"kb={kb[0] or ''}-{kb[1] or ''}")
    return ",".join([text, *opts])


def _as_band(label: str, band: object) -> tuple[float, float] | None:
    """A (lo, hi) pair of floats from user input; ``validate_spec`` checks the values."""
    if band is None:
        return None
    if not isinstance(band, tuple | list) or len(band) != 2:
        raise BadParameter(f"{label} must be a (lo, hi) pair, got {band!r}.", param=label)
    try:
        return (float(band[0]), float(band[1]))
    except (TypeError, ValueError):
        raise BadParameter(f"{label} must hold two numbers, got {band!r}.", param=label) from None


def _pixels(mm: object, dpi: object) -> int:
    """Pixels for a print length, or 0 (rejected by ``validate_spec``, which then names the
    bad dpi or mm first) when the inputs are not numbers."""
    if isinstance(mm, bool) or not isinstance(mm, int | float):
        return 0
    if isinstance(dpi, bool) or not isinstance(dpi, int):
        return 0
    return mm_to_px(float(mm), dpi)


def custom_spec(
    *,
    width_mm: float | None = None,
    height_mm: float | None = None,
    dpi: int = 300,
    width_px: int | None = None,
    height_px: int | None = None,
    head: tuple[float, float] = (0.70, 0.80),
    eye: tuple[float, float] | None = None,
    top_margin: tuple[float, float] | None = None,
    background: str = "white",
    kb: tuple[int | None, int | None] | None = None,
    name: str = "custom",
) -> PhotoSpec:
    """A user-defined spec, validated; raises ``BadParameter`` with a clear message.

    Give the size either in mm (``width_mm`` and ``height_mm``; pixels follow from ``dpi``) or
    in pixels (``width_px`` and ``height_px``); if both are given the pixels win and the mm are
    kept as the print size. Pixels must be 64..4000, dpi 72..1200, bands fractions of H with
    0 < lo <= hi < 1, and the bands together must admit a real portrait (``is_satisfiable``).
    ``kb`` is (min, max) with either end None. The id is the ``parse_spec_arg`` text that
    rebuilds the spec (e.g. ``custom:35x45mm@300,bg=blue``). The examiner rules are the ICAO
    ones. Only the shape of the input is checked here; the values go through ``validate_spec``,
    the same check as the built-in specs.
    """
    mm_given = [v is not None for v in (width_mm, height_mm)]
    px_given = [v is not None for v in (width_px, height_px)]
    if any(mm_given) and not all(mm_given):
        raise BadParameter("Give both width_mm and height_mm.", param="size")
    if any(px_given) and not all(px_given):
        raise BadParameter("Give both width_px and height_px.", param="size")
    if not any(mm_given) and not any(px_given):
        raise BadParameter(
            "Give a size: width_mm and height_mm, or width_px and height_px.", param="size"
        )
    # Pixels win when given; otherwise they follow from the print size.
    w_px = width_px if width_px is not None else _pixels(width_mm, dpi)
    h_px = height_px if height_px is not None else _pixels(height_mm, dpi)
    head_band = _as_band("head", head)
    if head_band is None:
        raise BadParameter("head band is required.", param="head")
    eye_band = _as_band("eye", eye)
    top_band = _as_band("top_margin", top_margin)
    if not isinstance(background, str) or not background.strip():
        raise BadParameter("background must be a colour name.", param="background")
    bg = background.strip().lower().replace("_", "-").replace(" ", "-")
    kb_window: tuple[int | None, int | None] | None = None
    if kb is not None:
        if not isinstance(kb, tuple | list) or len(kb) != 2:
            raise BadParameter(f"kb must be a (min, max) pair, got {kb!r}.", param="kb")
        kb_window = None if kb[0] is None and kb[1] is None else (kb[0], kb[1])
    spec = PhotoSpec(
        id="custom",
        name=name or "custom",
        country="INT",
        width_px=w_px,
        height_px=h_px,
        dpi=dpi,
        width_mm=width_mm if all(mm_given) else None,
        height_mm=height_mm if all(mm_given) else None,
        head=head_band,
        eye=eye_band,
        top_margin=top_band,
        backgrounds=(bg,),
        default_background=bg,
        kb=kb_window,
        notes="User-defined spec.",
        source="custom",
        tags=("custom", "print" if all(mm_given) else "digital"),
    )
    validate_spec(spec)
    if spec.width_mm is not None and spec.height_mm is not None:
        spec = replace(spec, width_mm=float(spec.width_mm), height_mm=float(spec.height_mm))
    if all(px_given) or spec.width_mm is None or spec.height_mm is None:
        size = (float(spec.width_px), float(spec.height_px), "px")
    else:
        size = (spec.width_mm, spec.height_mm, "mm")
    return replace(spec, id=_custom_id(*size, dpi, head_band, eye_band, top_band, bg, kb_window))


_NUM = r"\d+(?:\.\d+)?"
_CUSTOM_RE = re.compile(
    rf"^custom:(?P<w>{_NUM})x(?P<h>{_NUM})(?P<unit>mm|in|px)(?:@(?P<dpi>\d+)(?:dpi)?)?"
    r"(?P<opts>(?:,[^,]+)*)$"
)
_GRAMMAR = (
    "custom:<W>x<H>(mm|in|px)[@<dpi>][,head=<lo>-<hi>][,eye=<lo>-<hi>][,top=<lo>-<hi>]"
    "[,bg=<colour>][,kb=[<min>]-[<max>]]"
)


def _parse_band(key: str, value: str) -> tuple[float, float]:
    m = re.fullmatch(rf"({_NUM})%?-({_NUM})%?", value)
    if not m:
        raise BadParameter(f"{key}={value!r}: expected <lo>-<hi>, e.g. {key}=0.6-0.7.", param=key)
    lo, hi = float(m.group(1)), float(m.group(2))
    if lo > 1 or hi > 1 or "%" in value:  # percentages
        lo, hi = lo / 100, hi / 100
    return (lo, hi)


# The longest real custom form is about 100 characters; anything far longer is not a spec.
MAX_SPEC_CHARS = 256


def _spec_too_long(length: int) -> BadParameter:
    return BadParameter(
        f"The spec is {length} characters long; at most {MAX_SPEC_CHARS} are accepted.",
        param="spec",
    )


def parse_spec_arg(text: str) -> PhotoSpec:
    """A spec from a command-line/API argument: a built-in id (or alias) or a custom form.

    Grammar (case-insensitive, spaces ignored)::

        spec    := ID | "custom:" SIZE ["@" DPI ["dpi"]] ("," OPTION)*
        SIZE    := NUM "x" NUM UNIT          UNIT := "mm" | "in" | "px"
        OPTION  := "head=" BAND | "eye=" BAND | "top=" BAND
                 | "bg=" COLOUR | "kb=" [INT] "-" [INT] | "kb=" INT
        BAND    := NUM "-" NUM               fractions of H (0.6-0.7) or percents (60-70)

    DPI defaults to 300. ``in`` sizes are converted to mm. ``eye`` is measured from the bottom
    edge, ``top`` is crown to top edge. ``kb=240`` means at most 240 KB. Head defaults to
    0.70-0.80 and the background to white. Examples: ``custom:35x45mm@300``,
    ``custom:600x600px``, ``custom:2x2in@300,head=50-69,eye=56-69``,
    ``custom:354x472px,kb=20-80,bg=light-blue``.

    Raises ``UnknownSpec`` for an unknown id and ``BadParameter`` for a malformed custom form.
    """
    if not isinstance(text, str):
        raise BadParameter(f"Spec must be a string, got {text!r}.", param="spec")
    if len(text) > MAX_SPEC_CHARS:  # as the API document says; before any regex
        raise _spec_too_long(len(text))
    compact = re.sub(r"\s+", "", text).lower()
    if len(compact) > MAX_SPEC_CHARS:
        # Also keeps every number short: int() refuses more than 4,300 digits with ValueError.
        raise _spec_too_long(len(compact))
    if not compact.startswith("custom:"):
        return get_spec(text)
    m = _CUSTOM_RE.match(compact)
    if not m:
        raise BadParameter(f"Cannot parse {text!r}; expected {_GRAMMAR}.", param="spec")
    w, h, unit = float(m.group("w")), float(m.group("h")), m.group("unit")
    kwargs: dict = {"dpi": int(m.group("dpi")) if m.group("dpi") else 300}
    if unit == "px":
        if not (w.is_integer() and h.is_integer()):
            raise BadParameter(f"Pixel sizes must be whole numbers in {text!r}.", param="size")
        kwargs.update(width_px=int(w), height_px=int(h))
    elif unit == "in":
        kwargs.update(width_mm=round(w * 25.4, 3), height_mm=round(h * 25.4, 3))
    else:
        kwargs.update(width_mm=w, height_mm=h)
    for opt in filter(None, m.group("opts").split(",")):
        key, sep, value = opt.partition("=")
        if not sep or not value:
            raise BadParameter(
                f"Option {opt!r} needs key=value; expected {_GRAMMAR}.", param="spec"
            )
        if key in ("head", "eye", "top"):
            kwargs["top_margin" if key == "top" else key] = _parse_band(key, value)
        elif key in ("bg", "background"):
            kwargs["background"] = value
        elif key == "kb":
            km = re.fullmatch(r"(\d*)-(\d*)|(\d+)", value)
            if not km:
                raise BadParameter(
                    f"kb={value!r}: expected <min>-<max>, -<max> or <max>.", param="kb"
                )
            if km.group(3):
                kwargs["kb"] = (None, int(km.group(3)))
            else:
                lo, hi = km.group(1), km.group(2)
                kwargs["kb"] = (int(lo) if lo else None, int(hi) if hi else None)
        else:
            raise BadParameter(f"Unknown option {key!r}; expected {_GRAMMAR}.", param="spec")
    return custom_spec(**kwargs)
