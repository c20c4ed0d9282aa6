"""Loading ``config/specs.toml``: the built-in specs and each authority's rules, validated once.

``load_catalogue`` is the one place that turns the data file into ``PhotoSpec`` values: it
converts each band from the units its source writes (mm, in, px, % or fractions; see the file's
header) to fractions of the photo height, resolves the named bands, background sets and
authorities, and runs ``validate_spec`` on every spec. Any authoring error raises
``CatalogueError`` naming the file, the entry and the key, at import of ``config.catalogue``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from config.errors import BadParameter, CatalogueError
from config.specfile import SPEC_FILE, read_spec_file
from config.specs import MM_PER_INCH, PhotoSpec, Rules, mm_to_px
from config.validation import validate_spec

_SPEC_KEYS_REQUIRED = frozenset(
    {
        "id",
        "name",
        "name_zh",
        "country",
        "authority",
        "size",
        "dpi",
        "head",
        "backgrounds",
        "aliases",
        "source",
        "notes",
    }
)
_SPEC_KEYS_OPTIONAL = frozenset(
    {
        "eye",
        "top_margin",
        "default_background",
        "kb",
        "format",
        "height_px_range",
        "min_eye_distance_px",
        "tags",
        "other_ids",
    }
)
_LENGTH_UNITS = ("mm", "in", "px")
_SHARE_UNITS = ("pct", "frac")
_UNITS = _LENGTH_UNITS + _SHARE_UNITS
_TAG = re.compile(r"\[(S\d+)\]")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Catalogue:
    """The loaded data: specs in file order, id aliases, country names and rule sets."""

    specs: tuple[PhotoSpec, ...]
    by_id: MappingProxyType[str, PhotoSpec]
    aliases: MappingProxyType[str, str]
    countries: MappingProxyType[str, str]
    authorities: MappingProxyType[str, Rules]
    sources: MappingProxyType[str, str]


class _Heights:
    """The photo height in each length unit a band may use (the reference of a fraction)."""

    def __init__(self, size_unit: str, height: float, height_px: int) -> None:
        self.by_unit: dict[str, float] = {"px": float(height_px)}
        if size_unit == "in":
            self.by_unit.update({"in": float(height), "mm": height * MM_PER_INCH})
        elif size_unit == "mm":
            self.by_unit.update({"mm": float(height), "in": height / MM_PER_INCH})


def _inward(lo: float, hi: float) -> tuple[float, float]:
    """Round a band inwards to 4 decimals: never looser than the source."""
    return (math.ceil(lo * 10_000) / 10_000, math.floor(hi * 10_000) / 10_000)


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogueError(f"{where}: expected a number, got {value!r}.")
    return float(value)


def _end(where: str, unit: str, value: float, heights: _Heights, of: float | None) -> float:
    """One end of a band as a fraction of H (not yet rounded)."""
    if unit == "pct":
        return value / 100
    if unit == "frac":
        return value
    ref = of if of is not None else heights.by_unit.get(unit)
    if ref is None:
        raise CatalogueError(
            f"{where}: a band in {unit} needs `of` (the height it refers to) on this spec."
        )
    return value / ref


def _band(where: str, raw: object, heights: _Heights, named: dict[str, Any]) -> tuple[float, float]:
    """A band from its TOML form (see the file header) as fractions of H."""
    if isinstance(raw, str):
        if raw not in named:
            raise CatalogueError(f"{where}: unknown named band {raw!r}; known: {sorted(named)}.")
        return _band(f"{where} (band {raw!r})", named[raw], heights, {})
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a band is a table such as {{ mm = [29, 34] }}.")
    table = {k: v for k, v in raw.items() if k not in ("note", "source")}
    of = _number(f"{where}.of", table.pop("of")) if "of" in table else None
    pairs = [u for u in _UNITS if u in table]
    ends = {k: v for k, v in table.items() if k.startswith(("min_", "max_"))}
    unknown = set(table) - set(pairs) - set(ends)
    if unknown:
        raise CatalogueError(f"{where}: unknown band keys {sorted(unknown)}; units are {_UNITS}.")
    if len(pairs) == 1 and not ends:
        unit = pairs[0]
        value = table[unit]
        if not isinstance(value, list) or len(value) != 2:
            raise CatalogueError(f"{where}: {unit} must be [lo, hi], got {value!r}.")
        lo_u = hi_u = unit
        lo_v, hi_v = (_number(f"{where}.{unit}", v) for v in value)
    elif not pairs and len(ends) == 2:
        lo_keys = [k for k in ends if k.startswith("min_")]
        hi_keys = [k for k in ends if k.startswith("max_")]
        if len(lo_keys) != 1 or len(hi_keys) != 1:
            raise CatalogueError(f"{where}: give one min_<unit> and one max_<unit>.")
        lo_u, hi_u = lo_keys[0][4:], hi_keys[0][4:]
        for unit in (lo_u, hi_u):
            if unit not in _UNITS:
                raise CatalogueError(f"{where}: unknown unit {unit!r}; units are {_UNITS}.")
        lo_v = _number(f"{where}.{lo_keys[0]}", ends[lo_keys[0]])
        hi_v = _number(f"{where}.{hi_keys[0]}", ends[hi_keys[0]])
    else:
        raise CatalogueError(
            f"{where}: give exactly one of {', '.join(_UNITS)} = [lo, hi], "
            "or one min_<unit> and one max_<unit>."
        )
    lo = _end(where, lo_u, lo_v, heights, of)
    hi = _end(where, hi_u, hi_v, heights, of)
    r_lo, r_hi = _inward(lo, hi)
    band = (
        lo if lo_u in _SHARE_UNITS else r_lo,
        hi if hi_u in _SHARE_UNITS else r_hi,
    )
    if not 0.0 < band[0] <= band[1] < 1.0:
        raise CatalogueError(
            f"{where}: the band comes to {band} of the photo height; it must lie in (0, 1) "
            "with lo <= hi (check the unit and the numbers)."
        )
    return band


def _strings(where: str, value: object, *, empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogueError(f"{where}: expected a list of non-empty strings, got {value!r}.")
    if not value and not empty:
        raise CatalogueError(f"{where}: the list is empty.")
    return tuple(value)


def _text(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: expected a non-empty string, got {value!r}.")
    return value


def _size(where: str, raw: object, dpi: int) -> tuple[str, Any, Any, int, int]:
    """(unit, width, height, width_px, height_px) from ``size``."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise CatalogueError(f"{where}: size is one of {{ mm|in|px = [w, h] }}, got {raw!r}.")
    ((unit, value),) = raw.items()
    if unit not in _LENGTH_UNITS or not isinstance(value, list) or len(value) != 2:
        raise CatalogueError(f"{where}: size is one of {{ mm|in|px = [w, h] }}, got {raw!r}.")
    for v in value:
        _number(where, v)
    w, h = value  # as written (an int stays an int)
    if unit == "px":
        if not (isinstance(w, int) and isinstance(h, int)):
            raise CatalogueError(f"{where}: pixel sizes must be whole numbers, got {value!r}.")
        return unit, w, h, w, h
    w_mm, h_mm = (w, h) if unit == "mm" else (w * MM_PER_INCH, h * MM_PER_INCH)
    return unit, w, h, mm_to_px(w_mm, dpi), mm_to_px(h_mm, dpi)


def _spec(
    raw: dict[str, Any],
    data: dict[str, Any],
    authorities: dict[str, Rules],
    sources: dict[str, str],
) -> tuple[PhotoSpec, tuple[str, ...]]:
    spec_id = raw.get("id")
    where = f"spec {spec_id!r}"
    if not isinstance(spec_id, str) or not _ID.match(spec_id):
        raise CatalogueError(f"{where}: id must be lower-case words joined by '-'.")
    missing = sorted(_SPEC_KEYS_REQUIRED - set(raw))
    unknown = sorted(set(raw) - _SPEC_KEYS_REQUIRED - _SPEC_KEYS_OPTIONAL)
    if missing or unknown:
        raise CatalogueError(f"{where}: missing keys {missing}, unknown keys {unknown}.")
    if raw["country"] not in data["countries"]:
        raise CatalogueError(f"{where}: country {raw['country']!r} is not in [countries].")
    if raw["authority"] not in authorities:
        raise CatalogueError(
            f"{where}: authority {raw['authority']!r} is not one of {sorted(authorities)}."
        )
    dpi = raw["dpi"]
    if isinstance(dpi, bool) or not isinstance(dpi, int):
        raise CatalogueError(f"{where}: dpi must be a whole number, got {dpi!r}.")
    unit, w, h, w_px, h_px = _size(f"{where}.size", raw["size"], dpi)
    heights = _Heights(unit, h, h_px)
    named = data.get("bands", {})
    head = _band(f"{where}.head", raw["head"], heights, named)
    bands = {
        key: _band(f"{where}.{key}", raw[key], heights, named) if key in raw else None
        for key in ("eye", "top_margin")
    }
    backgrounds = raw["backgrounds"]
    if isinstance(backgrounds, str):
        sets = data.get("background_sets", {})
        if backgrounds not in sets:
            raise CatalogueError(f"{where}: unknown background set {backgrounds!r}.")
        backgrounds = sets[backgrounds]
    bgs = _strings(f"{where}.backgrounds", backgrounds)
    kb = None
    if "kb" in raw:
        table = raw["kb"]
        if not isinstance(table, dict) or not table or set(table) - {"min", "max"}:
            raise CatalogueError(f"{where}.kb: expected {{ min = N, max = N }}, got {table!r}.")
        kb = (table.get("min"), table.get("max"))
    source = _text(f"{where}.source", raw["source"])
    tags = _TAG.findall(source)
    if not tags or not re.search(r"\b[VU]\b", source):
        raise CatalogueError(f"{where}.source must name [S#] tags and a status V or U.")
    for tag in tags:
        if tag not in sources:
            raise CatalogueError(f"{where}.source cites {tag}, which is not in [sources].")
    height_px_range = raw.get("height_px_range")
    if height_px_range is not None and (
        not isinstance(height_px_range, list)
        or len(height_px_range) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in height_px_range)
    ):
        raise CatalogueError(f"{where}.height_px_range must be [lo, hi] in whole pixels.")
    min_ied = raw.get("min_eye_distance_px")
    if min_ied is not None and (isinstance(min_ied, bool) or not isinstance(min_ied, int)):
        raise CatalogueError(f"{where}.min_eye_distance_px must be a whole number of pixels.")
    if min_ied is not None and min_ied < 1:
        raise CatalogueError(f"{where}.min_eye_distance_px must be positive.")
    spec = PhotoSpec(
        id=spec_id,
        name=_text(f"{where}.name", raw["name"]),
        name_zh=_text(f"{where}.name_zh", raw["name_zh"]),
        country=raw["country"],
        width_px=w_px,
        height_px=h_px,
        dpi=dpi,
        width_mm=None if unit == "px" else (w if unit == "mm" else w * MM_PER_INCH),
        height_mm=None if unit == "px" else (h if unit == "mm" else h * MM_PER_INCH),
        head=head,
        eye=bands["eye"],
        top_margin=bands["top_margin"],
        backgrounds=bgs,
        default_background=raw.get("default_background", bgs[0]),
        kb=kb,
        format=raw.get("format", "jpeg"),
        height_px_range=(height_px_range[0], height_px_range[1]) if height_px_range else None,
        min_eye_distance_px=min_ied,
        notes=_text(f"{where}.notes", raw["notes"]),
        source=source,
        tags=_strings(f"{where}.tags", raw.get("tags", ["digital" if unit == "px" else "print"])),
        aliases=_strings(f"{where}.aliases", raw["aliases"]),
        rules=authorities[raw["authority"]],
    )
    try:
        validate_spec(spec)
    except BadParameter as exc:
        raise CatalogueError(f"{where}: {exc.message}") from None
    return spec, _strings(f"{where}.other_ids", raw.get("other_ids", []), empty=True)


def load_catalogue(path: Path = SPEC_FILE) -> Catalogue:
    """Load and validate the spec data file; raise ``CatalogueError`` on any authoring error.

    The shipped file is parsed once per process (``read_spec_file``); callers keep the result
    (``config.catalogue`` builds it once at import: the data is immutable).
    """
    try:
        data = read_spec_file(path)
        return _load(data)
    except CatalogueError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise CatalogueError(f"{path}: {exc}") from None


def _load(data: dict[str, Any]) -> Catalogue:
    for section in ("countries", "sources", "authorities", "spec"):
        if section not in data:
            raise CatalogueError(f"missing section [{section}].")
    sources = {k: _text(f"sources.{k}", v) for k, v in data["sources"].items()}
    authorities: dict[str, Rules] = {}
    for name, table in data["authorities"].items():
        rules = Rules.from_table(name, table)
        for tag in rules.sources:
            if tag not in sources:
                raise CatalogueError(f"authority {name!r}: source {tag!r} is not in [sources].")
        authorities[name] = rules
    if "icao" not in authorities:
        raise CatalogueError("[authorities.icao] is required: it is the default rule set.")
    specs: list[PhotoSpec] = []
    by_id: dict[str, PhotoSpec] = {}
    aliases: dict[str, str] = {}
    for raw in data["spec"]:
        spec, other_ids = _spec(raw, data, authorities, sources)
        if spec.id in by_id:
            raise CatalogueError(f"spec {spec.id!r}: duplicate id.")
        specs.append(spec)
        by_id[spec.id] = spec
        for other in other_ids:
            if other in aliases or not _ID.match(other):
                raise CatalogueError(f"spec {spec.id!r}: other id {other!r} is taken or malformed.")
            aliases[other] = spec.id
    clash = sorted(set(aliases) & set(by_id))
    if clash:
        raise CatalogueError(f"other_ids {clash} are also spec ids.")
    return Catalogue(
        specs=tuple(specs),
        by_id=MappingProxyType(by_id),
        aliases=MappingProxyType(aliases),
        countries=MappingProxyType(dict(data["countries"])),
        authorities=MappingProxyType(authorities),
        sources=MappingProxyType(sources),
    )
