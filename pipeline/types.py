"""Value types passed between stages (and, as JSON, between Celery tasks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Point = tuple[float, float]

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in.

    ``right_eye`` is the subject's right eye, which appears on the left of the image.
    """

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: dict[str, Point]
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def eye_mid(self) -> Point:
        (rx, ry), (lx, ly) = self.keypoints["right_eye"], self.keypoints["left_eye"]
        return ((rx + lx) / 2, (ry + ly) / 2)

    @property
    def eye_distance(self) -> float:
        (rx, ry), (lx, ly) = self.keypoints["right_eye"], self.keypoints["left_eye"]
        return math.hypot(lx - rx, ly - ry)

    @property
    def roll_deg(self) -> float:
        """Angle of the eye line against the horizontal; positive = turned clockwise on screen."""
        (rx, ry), (lx, ly) = self.keypoints["right_eye"], self.keypoints["left_eye"]
        return math.degrees(math.atan2(ly - ry, lx - rx))

    def mapped(self, scale: float, dx: float = 0.0, dy: float = 0.0) -> Face:
        """The same face in another frame: p' = p * scale + (dx, dy)."""
        x0, y0, x1, y1 = self.box
        return Face(
            box=(x0 * scale + dx, y0 * scale + dy, x1 * scale + dx, y1 * scale + dy),
            keypoints={k: (x * scale + dx, y * scale + dy) for k, (x, y) in self.keypoints.items()},
            score=self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 3) for v in self.box],
            "keypoints": {k: [round(x, 3), round(y, 3)] for k, (x, y) in self.keypoints.items()},
            "score": round(self.score, 4),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Face:
        return cls(
            box=tuple(d["box"]),
            keypoints={k: (float(v[0]), float(v[1])) for k, v in d["keypoints"].items()},
            score=float(d["score"]),
        )


@dataclass(frozen=True)
class Analysis:
    """What ``analyse`` learned about an upload: enough to redo the region crop exactly.

    ``region`` is the face-centred crop, in the pixel frame of the decoded working image
    (``work_size``, produced by decoding with ``max_side``); the region image is that crop,
    resized by ``region_scale``. ``face`` is in region-image pixels.
    """

    original_size: tuple[int, int]
    work_size: tuple[int, int]
    max_side: int
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 in work pixels (may exceed the frame)
    region_scale: float
    face: Face
    face_count: int = 1
    format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def region_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.region
        return (round((x1 - x0) * self.region_scale), round((y1 - y0) * self.region_scale))

    @property
    def px_per_original(self) -> float:
        """Region-image pixels per pixel of the original upload."""
        # Long sides: the work image may be a quarter turn of the original.
        return self.region_scale * max(self.work_size) / max(self.original_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_size": list(self.original_size),
            "work_size": list(self.work_size),
            "max_side": self.max_side,
            "region": list(self.region),
            "region_scale": self.region_scale,
            "face": self.face.to_dict(),
            "face_count": self.face_count,
            "format": self.format,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Analysis:
        return cls(
            original_size=tuple(d["original_size"]),
            work_size=tuple(d["work_size"]),
            max_side=int(d["max_side"]),
            region=tuple(d["region"]),
            region_scale=float(d["region_scale"]),
            face=Face.from_dict(d["face"]),
            face_count=int(d.get("face_count", 1)),
            format=d.get("format", ""),
            extra=dict(d.get("extra", {})),
        )
