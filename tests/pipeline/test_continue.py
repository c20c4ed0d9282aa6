"""The clothes continued below a photo's bottom edge: no seam at the join, no streaks below.

Measured on a real photo's bottom rows (grace_hopper's uniform, cut by the photo's edge):
- seam: the vertical step across the join is no larger than the photo's own row-to-row steps
  just above it;
- streaks: far down the continuation, the horizontal detail (what carried-down columns show as
  vertical streaks) is well below the clothes' own; replicated rows keep all of it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from idphoto.samples import sample_path
from pipeline.geometry import continue_bottom


def _rgba() -> np.ndarray:
    rgb = np.asarray(Image.open(sample_path("grace_hopper")).convert("RGB"))
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def _dy(img: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(img.astype(np.float32), axis=0)).mean(axis=(1, 2))


def _dx(img: np.ndarray) -> float:
    return float(np.abs(np.diff(img.astype(np.float32), axis=1)).mean())


def test_continuation_has_no_seam_and_no_streaks() -> None:
    rgba = _rgba()
    h = rgba.shape[0]
    rows = 80
    out = continue_bottom(rgba, rows)
    assert out.shape == (h + rows, *rgba.shape[1:])
    assert np.array_equal(out[:h], rgba)  # the photo itself is untouched
    rgb = out[..., :3]
    steps = _dy(rgb[h - 12 : h + 2])  # 10 row steps above the join, then the join itself
    join = steps[-2]
    assert join <= 1.5 * np.median(steps[:-3]) + 1.0, (join, steps)
    own = _dx(rgb[h - 20 : h])
    far = _dx(rgb[h + rows // 2 :])
    replicated = _dx(np.repeat(rgb[h - 1 : h], rows // 2, axis=0))
    assert far < 0.35 * own, (far, own)
    assert replicated > 0.8 * own  # what the old replicated rows did: streaks
    assert np.all(out[h:, :, 3] == rgba[-1:, :, 3])  # the outline runs straight on
