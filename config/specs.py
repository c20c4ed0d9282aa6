"""Photo specifications: the ``PhotoSpec`` value type and the catalogue lookup.

All geometry is stored as fractions of the photo height so that it scales with any pixel size:

- ``head``: chin-to-crown height (top of hair) / H, as a closed band (lo, hi);
- ``eye``: eye line (line between the eye centres) measured from the *bottom* edge / H;
- ``top_margin``: crown to the top edge / H.

The catalogue itself lives in ``config/catalogue.py``; sources are in ``../shared/specs.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MM_PER_INCH = 25.4


def mm_to_px(mm: float, dpi: int) -> int:
    """Pixels for a print length, rounded as the tools in specs.md do (35 mm @300 -> 413)."""
    return int(round(mm / MM_PER_INCH * dpi))


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
        }
