"""The compliance report: each measure beside the spec's limit, and a verdict.

Measures come from the placement (where the pipeline put crown, chin and eyes) and from the
encoded file itself (size, dimensions, dpi, metadata). Thresholds come from the spec and, for
pose, from ISO/IEC 19794-5 as quoted in specs.md section 4 (roll within 8 degrees).
"""

from __future__ import annotations

from typing import Any

from config.specs import PhotoSpec
from pipeline.composite import Background, parse_background
from pipeline.encode import Encoded, strip_check
from pipeline.geometry import Placement

ROLL_LIMIT_DEG = 8.0  # ISO/IEC 19794-5:2011 7.2.2


def _check(name: str, value: Any, limit: Any, ok: bool, unit: str = "") -> dict[str, Any]:
    return {"check": name, "value": value, "limit": limit, "unit": unit, "pass": bool(ok)}


def _band(name: str, value: float, band: tuple[float, float] | None, unit: str = "fraction"):
    if band is None:
        return None
    lo, hi = band
    return _check(name, round(value, 4), [lo, hi], lo - 1e-3 <= value <= hi + 1e-3, unit)


def allowed_backgrounds(spec: PhotoSpec) -> set[str]:
    return {parse_background(n).name for n in spec.backgrounds}


def build_report(
    spec: PhotoSpec,
    placement: Placement,
    encoded: Encoded,
    background: Background,
    *,
    face_count: int,
    residual_roll_deg: float,
    eye_distance_px: float,
    upscale: float,
) -> dict[str, Any]:
    k = encoded.height / placement.height  # the encoder may resample inside a px range
    H = encoded.height
    crown, chin, eye = placement.crown_y * k, placement.chin_y * k, placement.eye_y * k
    head_px = chin - crown
    mm_per_px = spec.height_mm / H if spec.height_mm else None
    measures = {
        "width_px": encoded.width,
        "height_px": encoded.height,
        "dpi": encoded.dpi,
        "bytes": len(encoded.data),
        "format": encoded.format,
        "quality": encoded.quality,
        "crown_y_px": round(crown, 1),
        "chin_y_px": round(chin, 1),
        "eye_y_px": round(eye, 1),
        "head_height_px": round(head_px, 1),
        "head_height_fraction": round(head_px / H, 4),
        "head_height_mm": round(head_px * mm_per_px, 2) if mm_per_px else None,
        "eye_line_from_bottom_px": round(H - eye, 1),
        "eye_line_from_bottom_fraction": round((H - eye) / H, 4),
        "eye_line_from_bottom_mm": round((H - eye) * mm_per_px, 2) if mm_per_px else None,
        "top_margin_px": round(crown, 1),
        "top_margin_fraction": round(crown / H, 4),
        "eye_distance_px": round(eye_distance_px * k, 1),
        "roll_deg": round(residual_roll_deg, 2),
        "face_count": face_count,
        "upscale": round(upscale, 3),
        "background": background.name,
    }
    meta = strip_check(encoded.data)
    checks = [
        _check("width_px", encoded.width, spec.width_px, encoded.width == spec.width_px, "px")
        if spec.height_px_range is None
        else _check(
            "height_px",
            encoded.height,
            list(spec.height_px_range),
            spec.height_px_range[0] <= encoded.height <= spec.height_px_range[1],
            "px",
        ),
        _check("dpi", encoded.dpi, spec.dpi, meta.get("dpi") in (spec.dpi, (spec.dpi, spec.dpi))),
        _band("head_height", head_px / H, spec.head),
        _band("eye_line_from_bottom", (H - eye) / H, spec.eye),
        _band("top_margin", crown / H, spec.top_margin),
        _check(
            "roll",
            round(abs(residual_roll_deg), 2),
            ROLL_LIMIT_DEG,
            abs(residual_roll_deg) <= ROLL_LIMIT_DEG,
            "deg",
        ),
        _check("face_count", face_count, 1, face_count == 1),
        _check(
            "background",
            background.name,
            sorted(allowed_backgrounds(spec)),
            background.name in allowed_backgrounds(spec),
        ),
        _check(
            "metadata_stripped",
            [k for k in ("exif", "gps", "xmp", "iptc", "comments") if meta.get(k)],
            [],
            not any(meta.get(k) for k in ("exif", "gps", "xmp", "iptc", "comments")),
        ),
    ]
    if spec.min_eye_distance_px:
        checks.append(
            _check(
                "eye_distance",
                measures["eye_distance_px"],
                spec.min_eye_distance_px,
                measures["eye_distance_px"] >= spec.min_eye_distance_px,
                "px",
            )
        )
    lo, hi = spec.kb_bytes
    if lo or hi:
        n = len(encoded.data)
        checks.append(
            _check(
                "file_size",
                n,
                [lo, hi],
                (lo is None or n >= lo) and (hi is None or n <= hi),
                "bytes",
            )
        )
    checks = [c for c in checks if c is not None]
    return {
        "spec": spec.id,
        "spec_name": spec.name,
        "measures": measures,
        "checks": checks,
        "failed": [c["check"] for c in checks if not c["pass"]],
        "verdict": "pass" if all(c["pass"] for c in checks) else "fail",
    }
