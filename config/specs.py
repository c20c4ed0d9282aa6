"""Photo specifications: the ``PhotoSpec`` value type and the catalogue lookup.

All geometry is stored as fractions of the photo height so that it scales with any pixel size:

- ``head``: chin-to-crown height (top of hair) / H, as a closed band (lo, hi);
- ``eye``: eye line (line between the eye centres) measured from the *bottom* edge / H;
- ``top_margin``: crown to the top edge / H.

Each spec also carries the examiner's rules of its authority (``Rules``: glasses, head
covering, expression, pose limits ...). The data (specs and rules, with their ``[S#]`` sources
from ``../shared/specs.md``) lives in ``config/specs.toml``; ``config/specdata.py`` loads and
validates it and ``config/catalogue.py`` is the lookup API.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from typing import Any

from config.errors import CatalogueError
from config.specfile import read_spec_file

MM_PER_INCH = 25.4


def mm_to_px(mm: float, dpi: int) -> int:
    """Pixels for a print length, rounded as the tools in specs.md do (35 mm @300 -> 413)."""
    return int(round(mm / MM_PER_INCH * dpi))


#: Allowed values of the enumerated ``Rules`` fields.
GLASSES = (
    "forbidden",  # no glasses at all (US since Nov 2016; medical exception by signed statement)
    "clear_only",  # clear lenses only: no tint, no glare, frames off the eyes
    "usually_worn",  # worn if usually worn (China ID card), clear lenses, no glare
)
HEAD_COVERING = ("forbidden",)
HEAD_COVERING_EXCEPTIONS = ("religious", "medical", "ethnic_custom")
EXPRESSION = ("neutral", "neutral_or_smile")


@dataclass(frozen=True)
class Rules:
    """What an examiner of one authority checks beyond the geometry: glasses, head covering,
    expression, eyes, pose and light. One set per authority, shared by its specs.

    ``head_covering`` is "forbidden" everywhere; ``head_covering_exceptions`` names the reasons
    a user may declare (religious, medical, ethnic custom) that turn the check into a review
    item. Pose limits are absolute degrees; where no national number is known they are the
    ISO/IEC 19794-5 ones (yaw and pitch 5, roll 8) and ``notes`` says so.
    """

    authority: str
    name: str
    glasses: str
    head_covering: str
    head_covering_exceptions: tuple[str, ...]
    expression: str
    mouth_closed: bool
    eyes_open: bool
    hair_over_eyes_forbidden: bool
    ears_visible: bool
    max_yaw_deg: float
    max_pitch_deg: float
    max_roll_deg: float
    face_shadows_forbidden: bool
    background_shadows_forbidden: bool
    red_eye_forbidden: bool
    headphones_forbidden: bool
    sources: tuple[str, ...]
    notes: str

    @classmethod
    def from_table(cls, authority: str, table: dict[str, Any]) -> Rules:
        """Rules from one ``[authorities.X]`` table: every field present, no unknown key, enum
        values from ``GLASSES``/``HEAD_COVERING``/``EXPRESSION``; raises ``CatalogueError``."""
        where = f"authority {authority!r}"
        names = [f.name for f in fields(cls) if f.name != "authority"]
        unknown = sorted(set(table) - set(names))
        missing = [n for n in names if n not in table]
        if unknown or missing:
            raise CatalogueError(f"{where}: unknown keys {unknown}, missing keys {missing}.")
        for key, allowed in (
            ("glasses", GLASSES),
            ("head_covering", HEAD_COVERING),
            ("expression", EXPRESSION),
        ):
            if table[key] not in allowed:
                raise CatalogueError(
                    f"{where}: {key} = {table[key]!r} is not one of {', '.join(allowed)}."
                )
        exceptions = table["head_covering_exceptions"]
        if not isinstance(exceptions, list) or not set(exceptions) <= set(HEAD_COVERING_EXCEPTIONS):
            raise CatalogueError(
                f"{where}: head_covering_exceptions = {exceptions!r} must be a list of "
                f"{', '.join(HEAD_COVERING_EXCEPTIONS)}."
            )
        for key in (
            "mouth_closed",
            "eyes_open",
            "hair_over_eyes_forbidden",
            "ears_visible",
            "face_shadows_forbidden",
            "background_shadows_forbidden",
            "red_eye_forbidden",
            "headphones_forbidden",
        ):
            if not isinstance(table[key], bool):
                raise CatalogueError(f"{where}: {key} must be true or false, got {table[key]!r}.")
        for key in ("max_yaw_deg", "max_pitch_deg", "max_roll_deg"):
            deg = table[key]
            if isinstance(deg, bool) or not isinstance(deg, int | float) or not 0 < deg <= 45:
                raise CatalogueError(f"{where}: {key} must be degrees in (0, 45], got {deg!r}.")
        sources = table["sources"]
        if not isinstance(sources, list) or not sources:
            raise CatalogueError(f"{where}: sources must be a non-empty list of [S#] tags.")
        for key in ("name", "notes"):
            if not isinstance(table[key], str) or not table[key].strip():
                raise CatalogueError(f"{where}: {key} must be a non-empty string.")
        return cls(
            authority=authority,
            **{
                **table,
                "head_covering_exceptions": tuple(exceptions),
                "sources": tuple(sources),
                "max_yaw_deg": float(table["max_yaw_deg"]),
                "max_pitch_deg": float(table["max_pitch_deg"]),
                "max_roll_deg": float(table["max_roll_deg"]),
            },
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["head_covering_exceptions"] = list(self.head_covering_exceptions)
        out["sources"] = list(self.sources)
        return out


@functools.cache
def default_rules() -> Rules:
    """The ICAO rule set of ``config/specs.toml``: the rules of a spec that names none (custom
    specs, specs built in code)."""
    return Rules.from_table("icao", read_spec_file()["authorities"]["icao"])


@dataclass(frozen=True)
class PhotoSpec:
    id: str
    name: str
    country: str  # ISO 3166 alpha-2, or "INT" for international conventions
    width_px: int
    height_px: int
    dpi: int
    head: tuple[float, float]
    width_mm: float | None = None
    height_mm: float | None = None
    eye: tuple[float, float] | None = None
    top_margin: tuple[float, float] | None = None
    backgrounds: tuple[str, ...] = ("white",)
    default_background: str = "white"
    # File size window in KB: the minimum is read as KiB (x1024) and the maximum as kB (x1000),
    # so that a file meets the window under either reading.
    kb: tuple[int | None, int | None] | None = None
    format: str = "jpeg"  # "jpeg" or "png"
    # For digital specs that accept a pixel range (e.g. DS-160: 600..1200 square), the allowed
    # range of the height in px; the encoder may resample inside it to meet the KB window.
    height_px_range: tuple[int, int] | None = None
    min_eye_distance_px: int | None = None
    notes: str = ""
    source: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    # The Chinese name shown by the web UI in Chinese, and search terms (English and Chinese:
    # document names, sizes such as "35x45", everyday words such as 身份证) a finder matches.
    name_zh: str = ""
    aliases: tuple[str, ...] = ()
    rules: Rules = field(default_factory=default_rules)

    @property
    def size_mm(self) -> tuple[float, float] | None:
        if self.width_mm is None or self.height_mm is None:
            return None
        return (self.width_mm, self.height_mm)

    @property
    def kb_bytes(self) -> tuple[int | None, int | None]:
        if self.kb is None:
            return (None, None)
        lo, hi = self.kb
        return (lo * 1024 if lo else None, hi * 1000 if hi else None)

    def with_size(self, width_px: int, height_px: int) -> PhotoSpec:
        return replace(self, width_px=width_px, height_px=height_px)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "country": self.country,
            "width_px": self.width_px,
            "height_px": self.height_px,
            "dpi": self.dpi,
            "width_mm": self.width_mm,
            "height_mm": self.height_mm,
            "head": list(self.head),
            "eye": list(self.eye) if self.eye else None,
            "top_margin": list(self.top_margin) if self.top_margin else None,
            "backgrounds": list(self.backgrounds),
            "default_background": self.default_background,
            "kb": list(self.kb) if self.kb else None,
            "format": self.format,
            "height_px_range": list(self.height_px_range) if self.height_px_range else None,
            "min_eye_distance_px": self.min_eye_distance_px,
            "notes": self.notes,
            "source": self.source,
            "name_zh": self.name_zh,
            "aliases": list(self.aliases),
            "rules": self.rules.to_dict(),
        }
