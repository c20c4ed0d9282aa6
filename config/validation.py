"""The one validation of a ``PhotoSpec``: value ranges, backgrounds, file limits and geometry.

Built-in specs (checked when ``config/specs.toml`` loads) and user-defined specs
(``custom_spec``) go through the same ``validate_spec``, so a custom spec can never be looser
than what the catalogue admits. Geometry is checked against a head model: the eye line sits
``EYE_FROM_CROWN`` +/- ``EYE_FROM_CROWN_TOL`` of the head height below the crown, with some
air above the hair and some neck below the chin (``feasible_layout``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from config.errors import BadParameter
from config.specs import PhotoSpec

# Background names a spec may list (hyphenated, lower case). The RGB values live with the
# colour table of the renderer; specs.md section 2 gives the sourced values.
BACKGROUND_NAMES: tuple[str, ...] = (
    "white",
    "off-white",
    "cream",
    "light-grey",
    "light-blue",
    "blue",
    "dark-blue",
    "red",
)

_HEX_COLOUR = re.compile(r"^#[0-9a-f]{6}$")

# Head model used by the satisfiability check: the eye line sits this fraction of the head
# height (chin to crown, hair included) below the crown, give or take the tolerance.
EYE_FROM_CROWN = 0.47
EYE_FROM_CROWN_TOL = 0.05
# A layout needs some air above the hair and some neck/shoulders below the chin.
MIN_TOP_MARGIN = 0.01
MIN_CHIN_MARGIN = 0.05

PX_RANGE = (64, 4000)
DPI_RANGE = (72, 1200)


class Layout(NamedTuple):
    """A concrete placement satisfying a spec's bands (fractions of H)."""

    head: float  # chin to crown
    top_margin: float  # crown to top edge
    eye: float  # eye line from the bottom edge
    chin_margin: float  # chin to bottom edge


def feasible_layout(spec: PhotoSpec, eye_from_crown: float = EYE_FROM_CROWN) -> Layout | None:
    """A layout meeting ``spec``'s head, eye and top-margin bands, or None if there is none.

    Head model: the eye line sits ``eye_from_crown`` x head height below the crown. A spec
    without a top-margin band still needs ``MIN_TOP_MARGIN`` of air above the hair, and every
    layout keeps ``MIN_CHIN_MARGIN`` below the chin. Among feasible layouts the one with the head
    nearest the middle of its band is returned, with the top margin centred in what remains.
    """
    h_lo, h_hi = spec.head
    t_lo, t_hi = spec.top_margin if spec.top_margin else (0.0, 1.0)
    t_lo = max(t_lo, MIN_TOP_MARGIN)
    best: tuple[float, Layout] | None = None
    steps = 200
    h_mid = (h_lo + h_hi) / 2
    for i in range(steps + 1):
        h = h_lo + (h_hi - h_lo) * i / steps
        lo, hi = t_lo, min(t_hi, 1.0 - h - MIN_CHIN_MARGIN)
        if spec.eye:
            # eye from bottom e = 1 - t - k*h must lie in [e_lo, e_hi]
            lo = max(lo, 1.0 - eye_from_crown * h - spec.eye[1])
            hi = min(hi, 1.0 - eye_from_crown * h - spec.eye[0])
        if lo > hi + 1e-12:
            continue
        t = (lo + hi) / 2
        cost = abs(h - h_mid)
        if best is None or cost < best[0]:
            best = (cost, Layout(h, t, 1.0 - t - eye_from_crown * h, 1.0 - t - h))
    return best[1] if best else None


def is_satisfiable(spec: PhotoSpec) -> bool:
    """True if a layout exists for every head proportion in EYE_FROM_CROWN +/- the tolerance."""
    ks = [EYE_FROM_CROWN + EYE_FROM_CROWN_TOL * (j / 5 - 1) for j in range(11)]
    return all(feasible_layout(spec, k) is not None for k in ks)


def check_band(label: str, band: object) -> None:
    """Raise ``BadParameter`` unless ``band`` is None or two fractions 0 < lo <= hi < 1."""
    if band is None:
        return
    ok = False
    if isinstance(band, tuple | list) and len(band) == 2:
        lo, hi = band
        ok = _is_number(lo) and _is_number(hi) and 0.0 < lo <= hi < 1.0
    if not ok:
        raise BadParameter(
            f"{label} band must be two fractions of the photo height with 0 < lo <= hi < 1, "
            f"got {band!r}.",
            param=label,
        )


def check_background(name: str, label: str = "background") -> None:
    """Raise ``BadParameter`` unless ``name`` is a known background name or ``#rrggbb``."""
    if name not in BACKGROUND_NAMES and not _HEX_COLOUR.match(name):
        raise BadParameter(
            f"Unknown {label} {name!r}: use one of {', '.join(BACKGROUND_NAMES)} or #rrggbb.",
            param=label,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_spec(spec: PhotoSpec) -> PhotoSpec:
    """Check a spec's values and geometry; return it unchanged or raise ``BadParameter``.

    ``details["param"]`` names what is wrong: dpi, width_mm/height_mm, width_px/height_px (or
    size, when the pixels follow from a print size), head, eye, top_margin, background, kb,
    height_px_range, format, or geometry when the bands admit no portrait.
    """
    if not _is_int(spec.dpi) or not DPI_RANGE[0] <= spec.dpi <= DPI_RANGE[1]:
        raise BadParameter(
            f"dpi must be an integer in {DPI_RANGE[0]}..{DPI_RANGE[1]}, got {spec.dpi!r}.",
            param="dpi",
        )
    for label, mm in (("width_mm", spec.width_mm), ("height_mm", spec.height_mm)):
        if mm is not None and not (_is_number(mm) and 0 < mm < 1000):
            raise BadParameter(
                f"{label} must be a positive size in mm below 1000, got {mm!r}.", param=label
            )
    for label, px, mm in (
        ("width", spec.width_px, spec.width_mm),
        ("height", spec.height_px, spec.height_mm),
    ):
        if _is_int(px) and PX_RANGE[0] <= px <= PX_RANGE[1]:
            continue
        if mm is not None:
            raise BadParameter(
                f"The {label} comes to {px} px at {spec.dpi} dpi; it must be "
                f"{PX_RANGE[0]}..{PX_RANGE[1]} px.",
                param="size",
            )
        raise BadParameter(
            f"{label}_px must be an integer in {PX_RANGE[0]}..{PX_RANGE[1]}, got {px!r}.",
            param=f"{label}_px",
        )
    check_band("head", spec.head)
    check_band("eye", spec.eye)
    check_band("top_margin", spec.top_margin)
    if not spec.backgrounds:
        raise BadParameter("A spec needs at least one background.", param="background")
    for bg in spec.backgrounds:
        check_background(bg)
    if spec.default_background not in spec.backgrounds:
        raise BadParameter(
            f"Default background {spec.default_background!r} is not among {spec.backgrounds}.",
            param="background",
        )
    if spec.kb is not None:
        lo, hi = spec.kb
        if (
            (lo is not None and (not _is_int(lo) or lo < 1))
            or (hi is not None and (not _is_int(hi) or hi < 1))
            or (lo is None and hi is None)
        ):
            raise BadParameter(
                f"kb window must hold positive whole sizes, got {spec.kb!r}.", param="kb"
            )
        if lo is not None and hi is not None and lo * 1.024 > hi:
            raise BadParameter(f"kb window is empty: min {lo} > max {hi}.", param="kb")
    if spec.height_px_range is not None:
        r_lo, r_hi = spec.height_px_range
        if not PX_RANGE[0] <= r_lo <= spec.height_px <= r_hi <= PX_RANGE[1]:
            raise BadParameter(
                f"height_px_range {spec.height_px_range!r} must contain height_px "
                f"{spec.height_px} and lie in {PX_RANGE[0]}..{PX_RANGE[1]}.",
                param="height_px_range",
            )
    if spec.format not in ("jpeg", "png"):
        raise BadParameter(f"format must be jpeg or png, got {spec.format!r}.", param="format")
    if not is_satisfiable(spec):
        raise BadParameter(
            f"No portrait fits head {spec.head}, eye {spec.eye}, top margin {spec.top_margin} "
            "(fractions of the height; eye measured from the bottom edge) with the hair below "
            "the top edge and the chin above the bottom edge; the eye line sits about 47 % of "
            "the head height below the crown.",
            param="geometry",
        )
    return spec
