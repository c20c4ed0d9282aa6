"""Print sheets: true print size at 300 dpi, copy counts, cut marks outside the photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from config.catalogue import get_spec
from pipeline.sheet import CUT_MARK, SHEETS, make_sheet, photo_print_mm

RED = (200, 10, 10)


def _photo(spec_id: str) -> tuple[Image.Image, tuple[float, float]]:
    spec = get_spec(spec_id)
    img = Image.new("RGB", (spec.width_px, spec.height_px), RED)
    return img, photo_print_mm(spec.width_px, spec.height_px, spec.dpi, spec.size_mm)


@pytest.mark.parametrize(
    ("sheet", "size"), [("4x6", (1200, 1800)), ("5x7", (1500, 2100)), ("a4", (2480, 3508))]
)
def test_sheet_pixel_size_is_true_size_at_300dpi(sheet, size):
    img, mm = _photo("us-passport")
    out = make_sheet(img, mm, sheet)
    assert sorted(out.image.size) == sorted(size)
    assert out.dpi == 300


@pytest.mark.parametrize(
    ("spec_id", "sheet", "zero", "copies"),
    [
        ("us-passport", "4x6", True, 6),  # the usual six 2x2 in on a 4x6 sheet, edge to edge
        ("us-passport", "4x6", False, 2),  # with cutting gaps only two fit
        ("icao-35x45", "4x6", True, 8),
        ("cn-1inch", "4x6", True, 16),
        ("cn-2inch", "4x6", True, 8),
        ("cn-large-2inch", "4x6", True, 4),
        ("cn-small-1inch", "4x6", True, 18),
    ],
)
def test_copy_counts_match_the_edge_to_edge_maximum(spec_id, sheet, zero, copies):
    img, mm = _photo(spec_id)
    out = make_sheet(img, mm, sheet, zero_margin=zero)
    assert out.copies == copies
    # Count the photos independently: connected red blocks along one row and one column.
    a = np.asarray(out.image)
    red = np.all(np.abs(a.astype(int) - RED) < 8, axis=2)
    if not zero:
        row = red[red.any(axis=1).nonzero()[0][0]]
        col = red[:, red.any(axis=0).nonzero()[0][0]]
        runs = lambda v: int(np.sum(np.diff(v.astype(int)) == 1) + v[0])  # noqa: E731
        assert runs(row) * runs(col) == copies
    # Every copy keeps the photo's true printed size at 300 dpi.
    assert out.photo_px == (round(mm[0] / 25.4 * 300), round(mm[1] / 25.4 * 300))
    assert red.sum() == copies * out.photo_px[0] * out.photo_px[1]


def test_cut_marks_are_drawn_outside_the_photos():
    img, mm = _photo("icao-35x45")
    out = make_sheet(img, mm, "4x6", cut_marks=True)
    a = np.asarray(out.image)
    marks = np.all(a == CUT_MARK, axis=2)
    assert marks.sum() > 0
    plain = make_sheet(img, mm, "4x6", cut_marks=False)
    assert not np.all(np.asarray(plain.image) == CUT_MARK, axis=2).any()
    # the photos themselves are untouched by the marks
    red_with = np.all(np.abs(a.astype(int) - RED) < 8, axis=2).sum()
    red_without = np.all(np.abs(np.asarray(plain.image).astype(int) - RED) < 8, axis=2).sum()
    assert red_with == red_without


def test_photo_larger_than_sheet_gives_zero_copies():
    img = Image.new("RGB", (100, 100), RED)
    out = make_sheet(img, (300.0, 400.0), "4x6")
    assert out.copies == 0


def test_sheet_catalogue():
    assert set(SHEETS) == {"4x6", "5x7", "a4"}
