"""Put the cut-out person on a new background.

Blending happens in linear light: ``out = F * a + B * (1 - a)`` on linear values, then back to
sRGB. Blending the sRGB codes directly would darken every half-transparent hair pixel against
a light background (a grey halo); linear light is what a camera would have seen. ``F`` is the
estimated foreground colour (not premultiplied), so edges carry no old-background fringe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from config.colours import lookup_colour
from pipeline.errors import BadParameter

RGB = tuple[int, int, int]

_HEX = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{6})")
_LUT_SIZE = 4096


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


# sRGB code -> linear [0, 1]; linear (quantised to 4096 steps) -> sRGB code.
_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_TO_SRGB = np.clip(
    np.rint(_linear_to_srgb(np.arange(_LUT_SIZE, dtype=np.float64) / (_LUT_SIZE - 1)) * 255.0),
    0,
    255,
).astype(np.uint8)


@dataclass(frozen=True)
class Background:
    """A solid colour (``top`` only), a vertical gradient (``top`` to ``bottom``), or none."""

    kind: str  # "solid" | "gradient" | "transparent"
    top: RGB | None = None
    bottom: RGB | None = None

    def __post_init__(self) -> None:
        if self.kind == "solid":
            ok = self.top is not None and self.bottom is None
        elif self.kind == "gradient":
            ok = self.top is not None and self.bottom is not None
        elif self.kind == "transparent":
            ok = self.top is None and self.bottom is None
        else:
            ok = False
        if not ok:
            raise BadParameter(f"Inconsistent background {self.kind!r} {self.top} {self.bottom}.")

    @classmethod
    def solid(cls, rgb: RGB) -> Background:
        return cls("solid", _check_rgb(rgb), None)

    @classmethod
    def gradient(cls, top: RGB, bottom: RGB) -> Background:
        return cls("gradient", _check_rgb(top), _check_rgb(bottom))

    @classmethod
    def transparent(cls) -> Background:
        return cls("transparent")

    @property
    def name(self) -> str:
        """Canonical text: ``#rrggbb``, ``gradient:#rrggbb,#rrggbb`` or ``transparent``.

        One spelling per background (``white``, ``#FFF`` and ``ffffff`` all give ``#ffffff``),
        so it can key caches and job records; ``parse_background(bg.name) == bg``.
        """
        if self.kind == "transparent":
            return "transparent"
        assert self.top is not None
        if self.kind == "gradient":
            assert self.bottom is not None
            return f"gradient:{_hex(self.top)},{_hex(self.bottom)}"
        return _hex(self.top)

    def __str__(self) -> str:
        return self.name


def parse_colour(text: str) -> RGB:
    """A colour name or alias (see ``config.colours``), ``#RGB`` or ``#RRGGBB`` (``#`` optional)."""
    named = lookup_colour(text)
    value = named if named is not None else text.strip().lower()
    m = _HEX.fullmatch(value)
    if m is None:
        raise BadParameter(
            f"Unknown colour {text!r}: use a colour name (white, blue, red, light-grey, ...) "
            "or a hex value #RGB / #RRGGBB.",
            param="background",
            value=text,
        )
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


#: The longest background a request may name (a gradient of two hex colours is 25 characters).
MAX_BACKGROUND_CHARS = 64


def parse_background(text: str) -> Background:
    """Parse a background: a colour (name or hex), ``transparent``/``none``, or
    ``gradient:<top>,<bottom>`` (top to bottom, each a name or hex)."""
    if not isinstance(text, str) or not text.strip():
        raise BadParameter("The background is empty.", param="background", value=text)
    if len(text) > MAX_BACKGROUND_CHARS:
        raise BadParameter(
            f"The background is {len(text)} characters long; at most {MAX_BACKGROUND_CHARS} "
            "are accepted.",
            param="background",
        )
    value = text.strip()
    lowered = value.lower()
    if lowered in ("transparent", "none"):
        return Background.transparent()
    if lowered.startswith("gradient:"):
        parts = [p.strip() for p in value[len("gradient:") :].split(",")]
        if len(parts) != 2 or not all(parts):
            raise BadParameter(
                f"Bad gradient {text!r}: write gradient:<top colour>,<bottom colour>, "
                "e.g. gradient:white,#438edb.",
                param="background",
                value=text,
            )
        return Background.gradient(parse_colour(parts[0]), parse_colour(parts[1]))
    return Background.solid(parse_colour(value))


def composite(foreground: np.ndarray, alpha: np.ndarray, background: Background) -> Image.Image:
    """Blend ``foreground`` (HxWx3 uint8, not premultiplied) over ``background`` by ``alpha``.

    ``alpha`` is HxW, uint8 (0..255) or float (0..1). Returns an ``RGB`` image, or for a
    transparent background an ``RGBA`` image of the foreground with ``alpha``. Where alpha is 0
    the result is exactly the background colour; where it is 1, exactly the foreground.
    """
    fg = np.asarray(foreground)
    a = np.asarray(alpha)
    if fg.ndim != 3 or fg.shape[2] != 3 or fg.dtype != np.uint8:
        raise BadParameter(f"foreground must be HxWx3 uint8, got {fg.shape} {fg.dtype}.")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.shape != fg.shape[:2]:
        raise BadParameter(f"alpha must be {fg.shape[:2]}, got {a.shape}.")
    a8, af = _alpha_forms(a)

    if background.kind == "transparent":
        return Image.fromarray(np.dstack([fg, a8]), "RGBA")

    h, w = a.shape
    bg = _background_rows(background, h)  # H x 1 x 3 uint8, broadcast over the width
    af3 = af[:, :, None]
    lin = _TO_LINEAR[fg] * af3 + _TO_LINEAR[bg] * (1.0 - af3)
    idx = np.rint(lin * (_LUT_SIZE - 1)).astype(np.int32)
    np.clip(idx, 0, _LUT_SIZE - 1, out=idx)
    out = _TO_SRGB[idx]
    # The LUT round trip can be off by one code; the pure regions must be exact.
    opaque = (a8 == 255)[:, :, None]
    clear = (a8 == 0)[:, :, None]
    out = np.where(opaque, fg, np.where(clear, np.broadcast_to(bg, out.shape), out))
    return Image.fromarray(np.ascontiguousarray(out, dtype=np.uint8), "RGB")


def _alpha_forms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 0..255, float32 0..1) views of alpha; float alpha is clipped, NaN counts as 0."""
    if a.dtype == np.uint8:
        return a, a.astype(np.float32) * (1.0 / 255.0)
    if np.issubdtype(a.dtype, np.floating):
        af = np.clip(np.nan_to_num(a.astype(np.float32), nan=0.0), 0.0, 1.0)
        a8 = np.rint(af * 255.0).astype(np.uint8)
        # Exactness is decided on the float value, not on its 8-bit rounding.
        a8[(af > 0.0) & (a8 == 0)] = 1
        a8[(af < 1.0) & (a8 == 255)] = 254
        return a8, af
    if a.dtype == np.bool_:
        a8 = a.astype(np.uint8) * 255
        return a8, a.astype(np.float32)
    raise BadParameter(f"alpha must be uint8 or float, got {a.dtype}.")


def _background_rows(background: Background, height: int) -> np.ndarray:
    assert background.top is not None
    top = np.array(background.top, dtype=np.float64)
    if background.kind == "solid":
        return np.broadcast_to(top.astype(np.uint8), (height, 1, 3))
    assert background.bottom is not None
    bottom = np.array(background.bottom, dtype=np.float64)
    # Interpolated on the sRGB codes, as CSS gradients are: row 0 is top, the last row bottom.
    t = np.linspace(0.0, 1.0, height)[:, None] if height > 1 else np.zeros((1, 1))
    rows = np.rint(top + (bottom - top) * t).astype(np.uint8)
    return rows[:, None, :]


def _check_rgb(rgb: RGB) -> RGB:
    if len(rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
        raise BadParameter(f"A colour must be three integers 0..255, got {rgb!r}.")
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
