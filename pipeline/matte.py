"""Matte refinement: from the segmenter's coarse mask to an edge-accurate alpha and the
foreground colour.

1. The coarse mask (ISNet predicts at 1024x1024, so at region scale its edges are soft and
   slightly misplaced) is refined with a colour guided filter (He, Sun, Tang 2013) using the photo
   as the guide: the alpha then follows the photo's own edges (hair strands, collars) within a
   band around the mask contour. Far inside and far outside the band the coarse decision stands.
2. The foreground colour F is estimated (pymatting's multi-level ``estimate_foreground_ml``,
   Germer et al. 2020) so that F*a + B*(1-a) on a new background carries no fringe of the old one.

The result is one RGBA image (F in RGB, a in A): cached per input and model, reused by every spec
and background, and it is the transparent cut-out users download.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter. guide HxWx3 float32 in [0,1], src HxW float32; returns HxW."""
    r = radius
    mean_i = _box(guide, r)
    mean_p = _box(src, r)
    mean_ip = _box(guide * src[..., None], r)
    cov_ip = mean_ip - mean_i * mean_p[..., None]
    # 3x3 covariance of the guide in each window (symmetric: 6 unique terms)
    ii = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    var = {}
    for a, b in ii:
        var[a, b] = _box(guide[..., a] * guide[..., b], r) - mean_i[..., a] * mean_i[..., b]
        var[b, a] = var[a, b]
    sigma = np.empty(src.shape + (3, 3), np.float32)
    for a in range(3):
        for b in range(3):
            sigma[..., a, b] = var[a, b] + (eps if a == b else 0.0)
    inv = np.linalg.inv(sigma)
    coef = np.einsum("...ij,...j->...i", inv, cov_ip)
    bias = mean_p - np.einsum("...i,...i->...", coef, mean_i)
    mean_a = _box(coef, r)
    mean_b = _box(bias, r)
    return np.einsum("...i,...i->...", mean_a, guide) + mean_b


def _band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the 0.5 contour of ``mask``."""
    hard = (mask >= 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(hard, k) != cv2.erode(hard, k)


def fast_guided_filter(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float, max_side: int = 640
) -> np.ndarray:
    """Guided filter with its linear coefficients solved at reduced size (He & Sun 2015).

    The per-window coefficients vary slowly, so they are computed on a copy whose long side is
    at most ``max_side``, upsampled bilinearly, and applied to the full-resolution guide: the
    output keeps full-resolution edges at a fraction of the cost.
    """
    h, w = src.shape
    k = min(1.0, max_side / max(h, w))
    if k >= 1.0:
        return guided_filter(guide, src, radius, eps)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    g = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
    p = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    r = max(1, round(radius * k))
    mean_i = _box(g, r)
    mean_p = _box(p, r)
    cov_ip = _box(g * p[..., None], r) - mean_i * mean_p[..., None]
    sigma = np.empty(p.shape + (3, 3), np.float32)
    for a in range(3):
        for b in range(a, 3):
            v = _box(g[..., a] * g[..., b], r) - mean_i[..., a] * mean_i[..., b]
            sigma[..., a, b] = sigma[..., b, a] = v
        sigma[..., a, a] += eps
    coef = np.einsum("...ij,...j->...i", np.linalg.inv(sigma), cov_ip)
    bias = mean_p - np.einsum("...i,...i->...", coef, mean_i)
    mean_a = cv2.resize(_box(coef, r), (w, h), interpolation=cv2.INTER_LINEAR)
    mean_b = cv2.resize(_box(bias, r), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.einsum("...i,...i->...", mean_a, guide) + mean_b


def refine_alpha(rgb: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Alpha (float32 HxW in [0,1]) that follows the photo's edges near the mask contour."""
    h, w = coarse.shape
    scale = max(h, w) / 1024.0
    radius = max(2, int(round(6 * scale)))
    band_width = max(3, int(round(12 * scale)))
    guide = rgb.astype(np.float32) / 255.0
    refined = fast_guided_filter(guide, coarse.astype(np.float32), radius, eps=1e-3)
    refined = np.clip(refined, 0.0, 1.0)
    band = _band(coarse, band_width)
    alpha = np.where(band, refined, (coarse >= 0.5).astype(np.float32))
    # Feather the band's inner and outer borders so the switch between refined and hard
    # alpha never shows as a step.
    soft = cv2.GaussianBlur(band.astype(np.float32), (0, 0), sigmaX=max(1.0, band_width / 4))
    alpha = soft * refined + (1 - soft) * alpha
    return np.clip(alpha, 0.0, 1.0)


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colour (uint8 HxWx3) under ``alpha``, free of the old background."""
    from pymatting import estimate_foreground_ml

    img = rgb.astype(np.float64) / 255.0
    fg = estimate_foreground_ml(
        img, alpha.astype(np.float64), n_big_iterations=2, n_small_iterations=1
    )
    fg = np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # Where the photo is certainly foreground, keep its exact pixels.
    sure = alpha >= 0.999
    fg[sure] = rgb[sure]
    return fg


def refine(rgb: np.ndarray, coarse: np.ndarray) -> Image.Image:
    """The matte as RGBA: estimated foreground colour and refined alpha at the region's size."""
    alpha = refine_alpha(rgb, coarse)
    fg = estimate_foreground(rgb, alpha)
    a8 = (alpha * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.dstack([fg, a8]), mode="RGBA")
