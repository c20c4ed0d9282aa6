"""Check mode: measure a photo that is already made (by a studio, a phone app, or this service)
against a spec, without changing it.

The same measures and checks as the report of a photo made here (``pipeline.report``), taken on
the file alone: its size, dpi and KB; the face found by the same detector, the chin and eye line
where the pipeline takes them (the bottom of BlazeFace's box, the eye keypoints), so that a
photo made here reads the same when checked; the crown where the picture first departs from the
background colour over the middle of the head (a photo made elsewhere has no matte); the
background's colour and uniformity on the border band around the person; and every examiner
check (``pipeline.examine``) by the spec's rules. Verdict: pass / fail / review, as for ``make``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from config.contracts import Check, Report
from config.specs import PhotoSpec
from pipeline.composite import parse_background
from pipeline.decode import decode
from pipeline.detect import FaceDetector
from pipeline.encode import strip_check
from pipeline.errors import NoFaceError
from pipeline.examine import NOT_CHECKED, Declared, examine
from pipeline.landmarks import Landmarker
from pipeline.report import (
    ADVISORY,
    BACKGROUND_STD_MAX,
    CENTRING_BAND,
    REVIEW,
    ROLL_LIMIT_DEG,
    _band,
    _check,
    file_size_check,
    verdict_of,
)

# Crown: the first row where at least CROWN_SHARE of the columns over the middle of the head
# (the eyes' midpoint +- CROWN_HALF_WIDTH face widths) differ from the background colour by more
# than CROWN_DIFF (max RGB difference, 8-bit). 24 finds white hair on a white background
# (bench/measure.py found 40 missed it) and ignores JPEG noise on a flat background (<= 8).
CROWN_DIFF = 24
CROWN_SHARE = 0.15
CROWN_HALF_WIDTH = 0.3
BORDER = 0.04  # share of the width and height taken as the border band for the background
# A named background matches when every channel is within this of its RGB (8-bit): print and
# JPEG move a white by a few levels; "off-white" and "light grey" lie ~10-20 apart.
BACKGROUND_MATCH = 12


def _background_sample(rgb: np.ndarray, face_box: tuple[float, float, float, float]) -> np.ndarray:
    """Border pixels that are background: the top band, and the side bands above the chin."""
    h, w = rgb.shape[:2]
    b = max(2, int(round(BORDER * min(h, w))))
    chin = int(max(b, min(h, face_box[3])))
    parts = [rgb[:b].reshape(-1, 3), rgb[:chin, :b].reshape(-1, 3), rgb[:chin, -b:].reshape(-1, 3)]
    return np.concatenate(parts).astype(np.float32)


def crown_row(
    rgb: np.ndarray,
    bg: np.ndarray | tuple[int, int, int],
    eye_x: float,
    face_w: float,
    stop_y: float,
) -> float | None:
    """The crown of a made photo: the first row above ``stop_y`` where the columns over the
    middle of the head differ from the background ``bg`` (see CROWN_DIFF); None if none does.
    The check mode and the tests that re-measure made photos both measure it so."""
    h, w = rgb.shape[:2]
    c0 = max(0, int(eye_x - CROWN_HALF_WIDTH * face_w))
    c1 = min(w, int(eye_x + CROWN_HALF_WIDTH * face_w) + 1)
    strip = rgb[: int(max(1, stop_y)), c0:c1].astype(np.int16)
    ref = np.asarray(bg).astype(np.int16)
    differs = (np.abs(strip - ref).max(axis=2) > CROWN_DIFF).mean(axis=1)
    rows = np.nonzero(differs >= CROWN_SHARE)[0]
    return float(rows[0]) if len(rows) else None


def _named(colour: np.ndarray, spec: PhotoSpec) -> str | None:
    """The spec's accepted background this colour is, if any."""
    for name in spec.backgrounds:
        ref = parse_background(name)
        if ref.top is not None and np.abs(colour - np.asarray(ref.top)).max() <= BACKGROUND_MATCH:
            return name
    return None


def check_photo(
    data: bytes,
    spec: PhotoSpec,
    detector: FaceDetector,
    landmarker: Landmarker,
    *,
    max_pixels: int = 50_000_000,
    declared: Declared | None = None,
) -> Report:
    """The report of an existing photo against ``spec`` (same shape as a made photo's)."""
    decoded = decode(data, max_pixels=max_pixels)
    rgb = np.asarray(decoded.image.convert("RGB"))
    h, w = rgb.shape[:2]
    try:
        face, count = detector.detect(rgb)
    except NoFaceError:
        detector.raise_if_close_up(rgb)
        raise
    lm = landmarker.measure(rgb, face)
    meta = strip_check(data)
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    eye_x, eye_y = (rx + lx) / 2, (ry + ly) / 2
    chin = float(face.box[3])
    sample = _background_sample(rgb, face.box)
    bg = np.median(sample, axis=0)
    crown = crown_row(rgb, bg, eye_x, face.width, chin) or 0.0
    head = chin - crown
    mm = spec.height_mm / h if spec.height_mm else None
    roll = math.degrees(math.atan2(ly - ry, lx - rx))
    luma = sample @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    bg_std = float(luma.std())
    named = _named(bg, spec)
    dpi = meta.get("dpi")
    measures: dict[str, Any] = {
        "width_px": w,
        "height_px": h,
        "dpi": dpi,
        "bytes": len(data),
        "format": decoded.format,
        "crown_y_px": round(crown, 1),
        "chin_y_px": round(chin, 1),
        "eye_y_px": round(eye_y, 1),
        "head_height_px": round(head, 1),
        "head_height_fraction": round(head / h, 4),
        "head_height_mm": round(head * mm, 2) if mm else None,
        "eye_line_from_bottom_fraction": round((h - eye_y) / h, 4),
        "eye_line_from_bottom_mm": round((h - eye_y) * mm, 2) if mm else None,
        "top_margin_fraction": round(crown / h, 4),
        "eye_mid_x_fraction": round(eye_x / w, 4),
        "eye_distance_px": round(face.eye_distance, 1),
        "roll_deg": round(roll, 2),
        "face_count": count,
        "background_rgb": [round(float(v)) for v in bg],
        "background": named,
        "background_luma_std": round(bg_std, 3),
    }
    want_h = spec.height_px_range
    checks: list[Check | None] = [
        _check("width_px", w, spec.width_px, w == spec.width_px, "px")
        if want_h is None
        else _check("height_px", h, list(want_h), want_h[0] <= h <= want_h[1], "px"),
        _check("height_px", h, spec.height_px, h == spec.height_px, "px")
        if want_h is None
        else None,
        _check("dpi", dpi, spec.dpi, dpi in (spec.dpi, (spec.dpi, spec.dpi)), level=ADVISORY),
        _band("head_height", head / h, spec.head),
        _band("eye_line_from_bottom", (h - eye_y) / h, spec.eye),
        _band("top_margin", crown / h, spec.top_margin),
        _band("horizontal_centring", eye_x / w, CENTRING_BAND),
        _check("roll", round(abs(roll), 2), ROLL_LIMIT_DEG, abs(roll) <= ROLL_LIMIT_DEG, "deg"),
        _check("face_count", count, 1, count == 1),
        _check("background", named, list(spec.backgrounds), named is not None),
        _check(
            "background_uniformity",
            round(bg_std, 3),
            BACKGROUND_STD_MAX * 2,  # a real backdrop and JPEG: twice our own composite's limit
            bg_std <= BACKGROUND_STD_MAX * 2,
            "levels",
            REVIEW,
        ),
    ]
    checks.append(file_size_check(spec, len(data)))
    if spec.format == "jpeg":
        fmt = (decoded.format or "").lower()
        checks.append(_check("format", fmt, "jpeg", fmt in ("jpeg", "jpg")))
    found, more = examine(rgb, lm, spec.rules, crown_y=crown, declared=declared)
    measures.update(more)
    done = [c for c in [*checks, *found] if c is not None]
    return {
        "spec": spec.id,
        "spec_name": spec.name,
        "mode": "check",
        "measures": measures,
        "checks": done,
        **verdict_of(done),
        "rules": spec.rules.name,
        "not_checked": list(NOT_CHECKED),
        "notes": [
            "measured on the file as it is: the crown where the picture departs from the "
            "background colour, the chin and eyes from the face detector, as for a photo made here",
        ],
    }
