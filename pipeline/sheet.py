"""Print sheets: as many copies of a photo as fit on a 4x6 in, 5x7 in or A4 sheet.

The photo is resampled to the sheet's dpi so that it prints at its true size, and laid out in a
grid with cutting gaps and a printer margin, or edge to edge (``zero_margin``: six US 2x2 in
photos exactly fill a 4x6 in sheet). Both sheet orientations are tried and the one holding more
copies wins; photos are never rotated, so every copy reads the same way up.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from config.specs import MM_PER_INCH, mm_to_px


@dataclass(frozen=True)
class SheetSize:
    id: str
    name: str
    width_mm: float
    height_mm: float


SHEETS: dict[str, SheetSize] = {
    s.id: s
    for s in (
        SheetSize("4x6", "4x6 in (10x15 cm)", 4 * MM_PER_INCH, 6 * MM_PER_INCH),
        SheetSize("5x7", "5x7 in (13x18 cm)", 5 * MM_PER_INCH, 7 * MM_PER_INCH),
        SheetSize("a4", "A4 (210x297 mm)", 210.0, 297.0),
    )
}

CUT_MARK = (160, 160, 160)


@dataclass(frozen=True)
class Sheet:
    image: Image.Image
    copies: int
    columns: int
    rows: int
    sheet: str
    dpi: int
    photo_px: tuple[int, int]


def _fit(length: int, item: int, margin: int, gap: int) -> int:
    usable = length - 2 * margin
    if usable < item:
        return 0
    return 1 + (usable - item) // (item + gap)


def make_sheet(
    photo: Image.Image,
    photo_mm: tuple[float, float],
    sheet: str = "4x6",
    *,
    dpi: int = 300,
    gap_mm: float = 2.0,
    margin_mm: float = 3.0,
    zero_margin: bool = False,
    cut_marks: bool = True,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Sheet:
    """Lay out copies of ``photo`` (printed ``photo_mm`` wide x high) on ``sheet``."""
    size = SHEETS[sheet]
    pw, ph = mm_to_px(photo_mm[0], dpi), mm_to_px(photo_mm[1], dpi)
    gap = 0 if zero_margin else mm_to_px(gap_mm, dpi)
    margin = 0 if zero_margin else mm_to_px(margin_mm, dpi)
    best = None
    for sw_mm, sh_mm in ((size.width_mm, size.height_mm), (size.height_mm, size.width_mm)):
        sw, sh = mm_to_px(sw_mm, dpi), mm_to_px(sh_mm, dpi)
        cols, rows = _fit(sw, pw, margin, gap), _fit(sh, ph, margin, gap)
        if best is None or cols * rows > best[2] * best[3]:
            best = (sw, sh, cols, rows)
    assert best is not None
    sw, sh, cols, rows = best
    canvas = Image.new("RGB", (sw, sh), background)
    if cols * rows == 0:
        return Sheet(canvas, 0, 0, 0, sheet, dpi, (pw, ph))
    copy = photo.convert("RGB").resize((pw, ph), Image.Resampling.LANCZOS)
    grid_w, grid_h = cols * pw + (cols - 1) * gap, rows * ph + (rows - 1) * gap
    x0, y0 = (sw - grid_w) // 2, (sh - grid_h) // 2
    draw = ImageDraw.Draw(canvas)
    for r in range(rows):
        for c in range(cols):
            x, y = x0 + c * (pw + gap), y0 + r * (ph + gap)
            canvas.paste(copy, (x, y))
    if cut_marks and not zero_margin:
        # Marks live outside the photos, in the margins, along every cutting line (edge to edge
        # there is no room outside the photos, and the photo borders are the cutting lines).
        xs = sorted(
            {x0 + c * (pw + gap) for c in range(cols)}
            | {x0 + c * (pw + gap) + pw for c in range(cols)}
        )
        ys = sorted(
            {y0 + r * (ph + gap) for r in range(rows)}
            | {y0 + r * (ph + gap) + ph for r in range(rows)}
        )
        tick = max(4, mm_to_px(2.0, dpi))
        for x in xs:
            xx = min(max(x, 0), sw - 1)
            draw.line([(xx, max(0, y0 - tick)), (xx, max(0, y0 - 1))], fill=CUT_MARK)
            draw.line(
                [(xx, min(sh - 1, y0 + grid_h)), (xx, min(sh - 1, y0 + grid_h + tick))],
                fill=CUT_MARK,
            )
        for y in ys:
            yy = min(max(y, 0), sh - 1)
            draw.line([(max(0, x0 - tick), yy), (max(0, x0 - 1), yy)], fill=CUT_MARK)
            draw.line(
                [(min(sw - 1, x0 + grid_w), yy), (min(sw - 1, x0 + grid_w + tick), yy)],
                fill=CUT_MARK,
            )
    return Sheet(canvas, cols * rows, cols, rows, sheet, dpi, (pw, ph))


def photo_print_mm(width_px: int, height_px: int, dpi: int, size_mm: tuple[float, float] | None):
    """The printed size of a photo: the spec's mm, or its pixels at its dpi for digital specs."""
    if size_mm:
        return size_mm
    return (width_px / dpi * MM_PER_INCH, height_px / dpi * MM_PER_INCH)
