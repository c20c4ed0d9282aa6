"""composite: background parsing and linear-light blending."""

from __future__ import annotations

import numpy as np
import pytest

from config.colours import NAMED_COLOURS, lookup_colour, normalise_colour_name
from pipeline.composite import Background, composite, parse_background, parse_colour
from pipeline.errors import BadParameter

# --- colours and parsing ----------------------------------------------------------------------


def test_named_colours_are_canonical() -> None:
    for name, value in NAMED_COLOURS.items():
        assert name == normalise_colour_name(name)
        assert value == value.lower() and len(value) == 7 and value.startswith("#")
    assert NAMED_COLOURS["light-blue"] == "#64c5ff"
    assert NAMED_COLOURS["blue"] == "#438edb"
    assert NAMED_COLOURS["red-hivision"] == "#d74532"
    assert min(int(NAMED_COLOURS["light-grey"][i : i + 2], 16) for i in (1, 3, 5)) >= 210


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("white", (255, 255, 255)),
        ("  White ", (255, 255, 255)),
        ("light_grey", (220, 220, 220)),
        ("Light Gray", (220, 220, 220)),
        ("gray", (220, 220, 220)),
        ("sky blue", (0, 191, 243)),
        ("BLUE-HIVISION", (98, 139, 206)),
        ("蓝底", (67, 142, 219)),
        ("#FFF", (255, 255, 255)),
        ("#1a2B3c", (26, 43, 60)),
        ("1a2b3c", (26, 43, 60)),
        ("f00", (255, 0, 0)),
    ],
)
def test_parse_colour(text: str, rgb: tuple[int, int, int]) -> None:
    assert parse_colour(text) == rgb
    bg = parse_background(text)
    assert bg.kind == "solid" and bg.top == rgb and bg.bottom is None


def test_lookup_colour() -> None:
    assert lookup_colour("Dark_Blue") == "#4b6190"
    assert lookup_colour("chartreuse") is None


@pytest.mark.parametrize("text", ["transparent", "NONE", " Transparent "])
def test_parse_transparent(text: str) -> None:
    bg = parse_background(text)
    assert bg == Background("transparent", None, None)
    assert str(bg) == "transparent"


def test_parse_gradient_and_canonical_name() -> None:
    bg = parse_background("gradient:white, #438EDB")
    assert bg.kind == "gradient" and bg.top == (255, 255, 255) and bg.bottom == (67, 142, 219)
    assert bg.name == str(bg) == "gradient:#ffffff,#438edb"
    assert parse_background(bg.name) == bg
    for text in ("white", "#FFF", "ffffff", "WHITE"):
        assert parse_background(text).name == "#ffffff"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "chartreuse",
        "#12345",
        "#GGGGGG",
        "rgb(1,2,3)",
        "gradient:",
        "gradient:white",
        "gradient:white,blue,red",
        "gradient:white,nope",
        "gradient:,blue",
    ],
)
def test_bad_background_raises(text: str) -> None:
    with pytest.raises(BadParameter) as info:
        parse_background(text)
    assert info.value.code == "bad_parameter"
    assert info.value.message


# --- blending ---------------------------------------------------------------------------------


def random_fg(h: int = 40, w: int = 30, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_exact_colours_at_alpha_0_and_1(dtype) -> None:
    fg = random_fg()
    a = np.zeros(fg.shape[:2], dtype)
    a[:, 15:] = 255 if dtype == np.uint8 else 1.0
    out = np.asarray(composite(fg, a, parse_background("#438EDB")))
    assert out.dtype == np.uint8 and out.shape == fg.shape
    assert np.all(out[:, :15] == (67, 142, 219))
    assert np.array_equal(out[:, 15:], fg[:, 15:])


def test_every_code_survives_alpha_1() -> None:
    values = np.arange(256, dtype=np.uint8)
    fg = np.stack([values, values[::-1], values], axis=-1)[None, :, :]
    out = np.asarray(composite(fg, np.ones((1, 256), np.float32), parse_background("red")))
    assert np.array_equal(out, fg)


def test_linear_light_midpoint() -> None:
    fg = np.zeros((4, 4, 3), np.uint8)  # black over white, half covered
    out = np.asarray(composite(fg, np.full((4, 4), 0.5, np.float32), parse_background("white")))
    # Linear 0.5 is sRGB 187.5; a naive sRGB blend would give 127.5.
    assert np.all(np.abs(out.astype(int) - 188) <= 1)


def test_linear_light_midpoint_colour() -> None:
    fg = np.zeros((2, 2, 3), np.uint8)
    fg[...] = (255, 0, 0)
    out = np.asarray(composite(fg, np.full((2, 2), 0.5), parse_background("#0000ff")))
    assert np.all(np.abs(out[0, 0].astype(int) - (188, 0, 188)) <= 1)


def test_gradient_ends_and_direction() -> None:
    h, w = 101, 7
    fg = np.zeros((h, w, 3), np.uint8)
    out = np.asarray(
        composite(fg, np.zeros((h, w), np.uint8), parse_background("gradient:#ffffff,#000000"))
    )
    assert np.all(out[0] == 255) and np.all(out[-1] == 0)
    assert np.all(np.abs(out[50].astype(int) - 128) <= 1)
    column = out[:, 3, 0].astype(int)
    assert np.all(np.diff(column) <= 0)


def test_transparent_returns_rgba() -> None:
    fg = random_fg()
    a = np.linspace(0, 1, fg.shape[0] * fg.shape[1], dtype=np.float32).reshape(fg.shape[:2])
    img = composite(fg, a, parse_background("transparent"))
    assert img.mode == "RGBA" and img.size == (fg.shape[1], fg.shape[0])
    arr = np.asarray(img)
    assert np.array_equal(arr[..., :3], fg)
    assert arr[0, 0, 3] == 0 and arr[-1, -1, 3] == 255


def test_solid_returns_rgb_and_clips_float_alpha() -> None:
    fg = random_fg()
    a = np.full(fg.shape[:2], 1.5, np.float32)
    a[0, 0] = -0.2
    a[0, 1] = np.nan
    img = composite(fg, a, parse_background("white"))
    assert img.mode == "RGB"
    arr = np.asarray(img)
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[0, 1]) == (255, 255, 255)
    assert np.array_equal(arr[1:], fg[1:])


def test_bad_shapes_raise() -> None:
    fg = random_fg()
    with pytest.raises(BadParameter):
        composite(fg, np.zeros((3, 3), np.uint8), parse_background("white"))
    with pytest.raises(BadParameter):
        composite(fg.astype(np.float32), np.zeros(fg.shape[:2]), parse_background("white"))
