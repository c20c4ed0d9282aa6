"""Dense face landmarks and head pose: MediaPipe's face mesh and iris models, on ONNX Runtime.

BlazeFace (pipeline/detect.py) finds the face; its six keypoints are too coarse to tell an open
eye from a closed one, a closed mouth from a smile with teeth, or a frontal head from one turned
by ten degrees. This stage runs on the CPU, one thread, in 11-28 ms of process CPU a face
(median 17.6 ms over the corpus, measured by ``bench/landmarks.py`` on the shared 2-core machine
under load; two mesh runs of ~3 ms and two iris runs of ~3.5 ms are most of it):

1. the face mesh (468 points, 192x192) on a square crop of 1.5 face-box sizes around the box
   centre, turned by the eye line's roll so that the face is upright in the crop (MediaPipe's own
   ROI rule), then once more on the crop the first pass's points give (the model is trained on
   crops made that way, and a detection box can sit off the face);
2. the iris model (71 eye-contour and 5 iris points, 64x64) on a crop of 2.3 eye widths around
   each eye, the subject's left eye mirrored (the model knows one eye only): the iris centres,
   and eyelids at about four times the mesh's resolution, which replace the mesh's 16 eyelid
   points (as MediaPipe's "refined" landmarks do);
3. the ratios the checks need (eyelid gap and inner-lip gap over eye and mouth width), and the
   head pose from ``cv2.solvePnP`` of rigid mesh points (eye corners, nose, forehead, cheeks;
   not the mouth or jaw, which move with expression) on MediaPipe's canonical face model.

Pose convention (degrees, 0 for a face looking straight into the lens): ``yaw`` > 0 when the
face turns towards the image's right (the subject's left), ``pitch`` > 0 when the chin goes up,
``roll`` > 0 when the face is turned clockwise on screen (as ``Face.roll_deg``). The pose is
taken against the line of sight to the face (principal point at the face), for a camera about
1 m away (focal length five face-box heights): what "looking at the camera" means for a
portrait, whatever the face's place in the frame.

``score`` is the mesh model's own face-presence probability (~1.0 on every real face of the
corpus, near 0 for an animal, a toy, a covered face): below ~0.5 the other measures mean nothing.

``points`` has 478 rows: the 468 mesh points in MediaPipe's topology, then the subject's right
iris (centre first, then four on its rim), then the left, in the pixels of the image given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from pipeline.runtime import providers_for, session_options
from pipeline.types import Face, Point

FACE_MESH_FILE = "face_landmark_192.onnx"
IRIS_FILE = "iris_landmark_64.onnx"
MESH_SIZE = 192
IRIS_SIZE = 64
FACE_CROP_SCALE = 1.5  # MediaPipe's face ROI: 1.5 x the longer side of the box / landmark box
EYE_CROP_SCALE = 2.3  # MediaPipe's eye ROI: 2.3 x the eye-corner distance

# Mesh indices (MediaPipe topology; "right" is the subject's right, the left side of the image).
CHIN = 152
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (362, 263)  # inner, outer (left to right in the image, as for the right eye)
MOUTH_CORNERS = (61, 291)
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317))  # upper, lower
# The iris model's first 16 contour points are the eyelids, from the first corner along the lower
# lid to the second (0-8), then the upper lid between them (9-15); here are the mesh points they
# stand for, for each eye in the order its crop is read (right eye as is, left eye mirrored).
RIGHT_EYELID_MESH = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYELID_MESH = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
EYELID_PAIRS = ((11, 3), (12, 4), (13, 5))  # upper, lower: the middle of the lids

# MediaPipe's canonical face model (face_geometry/data/canonical_face_model, Apache-2.0; cm, x to
# the image's right, y up, z towards the camera) at the mesh points used for the pose: points that
# do not move with the mouth, the eyelids or the brows.
CANONICAL_3D: dict[int, tuple[float, float, float]] = {
    1: (0.000, -1.127, 7.476),
    4: (0.000, -0.463, 7.587),
    5: (0.000, 0.366, 7.243),
    6: (0.000, 2.473, 5.789),
    168: (0.000, 3.271, 5.236),
    197: (0.000, 1.728, 6.317),
    195: (0.000, 1.059, 6.775),
    2: (0.000, -2.089, 6.058),
    98: (-1.406, -1.714, 5.241),
    327: (1.406, -1.714, 5.241),
    10: (0.000, 8.262, 4.482),
    151: (0.000, 6.545, 5.027),
    9: (0.000, 4.886, 5.385),
    33: (-4.446, 2.664, 3.173),
    133: (-1.856, 2.585, 3.758),
    362: (1.856, 2.585, 3.758),
    263: (4.446, 2.664, 3.173),
    234: (-7.664, 0.673, -2.436),
    454: (7.664, 0.673, -2.436),
    93: (-7.542, -1.049, -2.431),
    323: (7.542, -1.049, -2.431),
    127: (-7.743, 2.365, -2.005),
    356: (7.743, 2.365, -2.005),
}
_POSE_IDS = np.array(list(CANONICAL_3D), dtype=np.int64)
# To OpenCV's camera frame (x right, y down, z away from the camera): a frontal face has R = I.
_POSE_MODEL = np.array(list(CANONICAL_3D.values()), dtype=np.float64) * (1.0, -1.0, -1.0)
FOCAL_FACE_HEIGHTS = 5.0


@dataclass(frozen=True)
class FaceLandmarks:
    """What the landmark stage measured on one face, in the pixels of the image it was given."""

    points: np.ndarray  # (478, 2) float32; see the module docstring for the layout
    chin: Point
    right_iris: Point  # subject's right eye = left side of the image
    left_iris: Point
    right_eye_open: float  # eyelid gap / eye width: open ~0.25-0.35, closed < ~0.1
    left_eye_open: float
    mouth_open: float  # inner-lip gap / mouth width: closed ~0
    mouth_width: float  # px
    mouth_corners: tuple[Point, Point]  # subject's right (image left), then left
    yaw_deg: float  # > 0: face turned towards the image's right
    pitch_deg: float  # > 0: chin up
    roll_deg: float  # > 0: clockwise on screen
    score: float  # the mesh model's face-presence probability

    def to_dict(self, points: bool = True) -> dict[str, Any]:
        """JSON-safe; ``points`` rounded to 0.1 px (or left out)."""
        d: dict[str, Any] = {
            "chin": _rpt(self.chin),
            "right_iris": _rpt(self.right_iris),
            "left_iris": _rpt(self.left_iris),
            "right_eye_open": round(self.right_eye_open, 4),
            "left_eye_open": round(self.left_eye_open, 4),
            "mouth_open": round(self.mouth_open, 4),
            "mouth_width": round(self.mouth_width, 2),
            "mouth_corners": [_rpt(self.mouth_corners[0]), _rpt(self.mouth_corners[1])],
            "yaw_deg": round(self.yaw_deg, 2),
            "pitch_deg": round(self.pitch_deg, 2),
            "roll_deg": round(self.roll_deg, 2),
            "score": round(self.score, 4),
        }
        if points:
            d["points"] = np.round(self.points.astype(np.float64), 1).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceLandmarks:
        pts = np.asarray(d.get("points", []), dtype=np.float32).reshape(-1, 2)
        corners = d["mouth_corners"]
        return cls(
            points=pts,
            chin=_pt(d["chin"]),
            right_iris=_pt(d["right_iris"]),
            left_iris=_pt(d["left_iris"]),
            right_eye_open=float(d["right_eye_open"]),
            left_eye_open=float(d["left_eye_open"]),
            mouth_open=float(d["mouth_open"]),
            mouth_width=float(d["mouth_width"]),
            mouth_corners=(_pt(corners[0]), _pt(corners[1])),
            yaw_deg=float(d["yaw_deg"]),
            pitch_deg=float(d["pitch_deg"]),
            roll_deg=float(d["roll_deg"]),
            score=float(d["score"]),
        )

    @property
    def eye_open(self) -> float:
        """The less open eye's ratio (a check wants both open)."""
        return min(self.right_eye_open, self.left_eye_open)


def _rpt(p: Point) -> list[float]:
    return [round(float(p[0]), 2), round(float(p[1]), 2)]


def _pt(v: Any) -> Point:
    return (float(v[0]), float(v[1]))


@dataclass(frozen=True)
class _Crop:
    """A square, rotated crop: crop pixel (u, v) (continuous, 0..size) is image point
    ``centre + scale * R(angle) @ ((u, v) - size / 2)``; ``mirror`` flips u first."""

    centre: tuple[float, float]
    side: float  # in image pixels
    angle: float  # radians, the crop's x axis in the image (y down)
    size: int
    mirror: bool = False

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        s = self.side / self.size
        u = uv[:, 0] - self.size / 2
        if self.mirror:
            u = -u
        v = uv[:, 1] - self.size / 2
        c, n = math.cos(self.angle), math.sin(self.angle)
        x = self.centre[0] + s * (c * u - n * v)
        y = self.centre[1] + s * (n * u + c * v)
        return np.stack([x, y], axis=1)

    def sample(self, rgb: np.ndarray) -> np.ndarray:
        """The crop as size x size RGB uint8 (edge pixels repeated outside the image)."""
        s = self.side / self.size
        c, n = math.cos(self.angle), math.sin(self.angle)
        mu = -1.0 if self.mirror else 1.0
        d = 0.5 - self.size / 2
        # Crop pixel index (i, j) has its centre at u = i + 0.5; image point p (continuous) is
        # at source index p - 0.5. warpAffine with WARP_INVERSE_MAP wants index -> index.
        a = np.array(
            [
                [s * c * mu, -s * n, self.centre[0] - 0.5 + s * (c * mu * d - n * d)],
                [s * n * mu, s * c, self.centre[1] - 0.5 + s * (n * mu * d + c * d)],
            ]
        )
        return cv2.warpAffine(
            rgb,
            a,
            (self.size, self.size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,  # as MediaPipe: no black edge at the border
        )


def _reduced(image: np.ndarray, face: Face) -> tuple[np.ndarray, float, float, float]:
    """The face's neighbourhood, halved (``cv2.pyrDown``: blur, then every second pixel) until
    the face crop has fewer than two image pixels per model pixel, since bilinear sampling of a
    larger face aliases; with the way back: image point = work point * k + (ox, oy). A face
    that is small enough comes back as it is (k = 1)."""
    side = FACE_CROP_SCALE * max(face.width, face.height)
    levels = 0
    while side / (MESH_SIZE * 2**levels) >= 2.0:
        levels += 1
    if levels == 0:
        return image, 1.0, 0.0, 0.0
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    r = side  # covers a turned crop and a second pass that moves the centre a little
    h, w = image.shape[:2]
    x0, y0 = max(0, int(cx - r)), max(0, int(cy - r))
    x1, y1 = min(w, int(math.ceil(cx + r))), min(h, int(math.ceil(cy + r)))
    work = image[y0:y1, x0:x1]
    for _ in range(levels):
        work = cv2.pyrDown(work)
    k = float(2**levels)
    # pyrDown's pixel i is the source's pixel 2i: continuous x = 2x' - 0.5 per level.
    return work, k, x0 - (k - 1) / 2, y0 - (k - 1) / 2


def _face_crop_from_box(face: Face) -> _Crop:
    x0, y0, x1, y1 = face.box
    side = FACE_CROP_SCALE * max(x1 - x0, y1 - y0)
    return _Crop(((x0 + x1) / 2, (y0 + y1) / 2), side, math.radians(face.roll_deg), MESH_SIZE)


def _face_crop_from_points(pts: np.ndarray) -> _Crop:
    """MediaPipe's ROI from landmarks: upright by the outer eye corners, 1.5 x the box."""
    (rx, ry), (lx, ly) = pts[RIGHT_EYE_CORNERS[0]], pts[LEFT_EYE_CORNERS[1]]
    angle = math.atan2(ly - ry, lx - rx)
    c, n = math.cos(angle), math.sin(angle)
    local = pts @ np.array([[c, -n], [n, c]])  # into the face's upright frame
    lo, hi = local.min(0), local.max(0)
    mid = (lo + hi) / 2
    centre = mid @ np.array([[c, n], [-n, c]])
    side = FACE_CROP_SCALE * float(max(hi - lo))
    return _Crop((float(centre[0]), float(centre[1])), side, angle, MESH_SIZE)


def _eye_crop(pts: np.ndarray, corners: tuple[int, int], mirror: bool) -> _Crop:
    a, b = pts[corners[0]], pts[corners[1]]
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    side = EYE_CROP_SCALE * float(np.hypot(*(b - a)))
    centre = (a + b) / 2
    return _Crop((float(centre[0]), float(centre[1])), side, angle, IRIS_SIZE, mirror)


def _gap_ratio(pts: np.ndarray, corners: tuple[int, int], pairs) -> tuple[float, float]:
    """Mean gap of the (upper, lower) pairs across the line between the corners, over the
    corner distance; and that distance."""
    a, b = pts[corners[0]], pts[corners[1]]
    d = b - a
    width = float(np.hypot(*d))
    if width <= 1e-6:
        return 0.0, 0.0
    normal = np.array([-d[1], d[0]]) / width  # points "down" in the face's frame
    gaps = [float((pts[lo] - pts[up]) @ normal) for up, lo in pairs]
    return max(0.0, float(np.mean(gaps)) / width), width


class Landmarker:
    """The face-mesh and iris sessions, loaded once per process; ``measure`` is thread-safe."""

    def __init__(
        self, mesh_path: Path, iris_path: Path, *, providers: list | None = None, threads: int = 1
    ) -> None:
        opts = session_options(threads)
        providers = providers or providers_for("cpu")
        self.mesh = ort.InferenceSession(str(mesh_path), opts, providers=providers)
        self.iris = ort.InferenceSession(str(iris_path), opts, providers=providers)
        self._mesh_in = self.mesh.get_inputs()[0].name
        self._iris_in = self.iris.get_inputs()[0].name
        self.refine_passes = 1

    def _run_mesh(self, rgb: np.ndarray, crop: _Crop) -> tuple[np.ndarray, float]:
        x = crop.sample(rgb).astype(np.float32)[None] * (1.0 / 255.0)
        coords, flag = self.mesh.run(None, {self._mesh_in: x})
        uv = coords.reshape(-1, 3)[:, :2].astype(np.float64)
        score = 1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[0], -80, 80))))
        return crop.to_image(uv), score

    def _run_eyes(
        self, rgb: np.ndarray, pts: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, _Crop]]:
        """Per eye (subject's right, then left): 71 contour points and 5 iris points, in the
        eye crop's own pixels (for the ratios), with the crop that maps them to the image."""
        crops = [
            _eye_crop(pts, RIGHT_EYE_CORNERS, mirror=False),
            _eye_crop(pts, LEFT_EYE_CORNERS, mirror=True),
        ]
        out = []
        for crop in crops:
            x = crop.sample(rgb).astype(np.float32)[None] * (1.0 / 255.0)
            contour, iris = self.iris.run(None, {self._iris_in: x})
            cont = contour.reshape(-1, 3)[:, :2].astype(np.float64)
            out.append((cont, iris.reshape(-1, 3)[:, :2].astype(np.float64), crop))
        return out

    def measure(self, image: np.ndarray, face: Face) -> FaceLandmarks:
        """Landmarks, ratios and pose of ``face`` (a BlazeFace detection in ``image``, HxWx3
        uint8 RGB), in ``image``'s pixels."""
        work, k, x0, y0 = _reduced(image, face)
        wface = face.mapped(1.0 / k, -x0 / k, -y0 / k)
        pts, score = self._run_mesh(work, _face_crop_from_box(wface))
        for _ in range(self.refine_passes):
            pts, score = self._run_mesh(work, _face_crop_from_points(pts))

        eyes = self._run_eyes(work, pts)
        ratios, irises = [], []
        for (cont, iris, crop), lid_ids in zip(
            eyes, (RIGHT_EYELID_MESH, LEFT_EYELID_MESH), strict=True
        ):
            # The lids in the crop's own frame (upright, the eye's corners level): 0 and 8.
            ratio, _ = _gap_ratio(cont, (0, 8), EYELID_PAIRS)
            ratios.append(ratio)
            pts[list(lid_ids)] = crop.to_image(cont[:16])
            irises.append(crop.to_image(iris))
        all_pts = np.concatenate([pts, irises[0], irises[1]]) * k + (x0, y0)
        pts = all_pts[:468]
        mouth_open, mouth_width = _gap_ratio(pts, MOUTH_CORNERS, INNER_LIP_PAIRS)
        yaw, pitch, roll = head_pose(pts, face.height)
        return FaceLandmarks(
            points=all_pts.astype(np.float32),
            chin=_pt(pts[CHIN]),
            right_iris=_pt(all_pts[468]),
            left_iris=_pt(all_pts[473]),
            right_eye_open=ratios[0],
            left_eye_open=ratios[1],
            mouth_open=mouth_open,
            mouth_width=mouth_width,
            mouth_corners=(_pt(pts[MOUTH_CORNERS[0]]), _pt(pts[MOUTH_CORNERS[1]])),
            yaw_deg=yaw,
            pitch_deg=pitch,
            roll_deg=roll,
            score=score,
        )


def head_pose(mesh: np.ndarray, face_height: float) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of the 468-point mesh, by ``cv2.solvePnP`` on the canonical
    face model; conventions in the module docstring."""
    img = mesh[_POSE_IDS].astype(np.float64)
    centre = img.mean(0)
    f = FOCAL_FACE_HEIGHTS * max(face_height, 1.0)
    cam = np.array([[f, 0, centre[0]], [0, f, centre[1]], [0, 0, 1]], dtype=np.float64)
    try:  # SQPnP: the global minimum, no initial guess needed; then Levenberg-Marquardt
        ok, rvec, tvec = cv2.solvePnP(_POSE_MODEL, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
        ok, rvec, tvec = cv2.solvePnP(
            _POSE_MODEL, img, cam, None, rvec, tvec, True, flags=cv2.SOLVEPNP_ITERATIVE
        )
    except cv2.error:  # degenerate points (a collapsed mesh): no pose
        ok = False
    if not ok:
        return float("nan"), float("nan"), float("nan")
    rot, _ = cv2.Rodrigues(rvec)
    return _euler(rot)


def _euler(rot: np.ndarray) -> tuple[float, float, float]:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in the camera frame (x right, y down, z forward),
    with the signs turned to the module's convention."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rot[2, 0]))))
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return -yaw, -pitch, roll


def load_landmarker(
    models_dir: Path, providers: list[str] | None = None, threads: int = 1
) -> Landmarker:
    """The landmark models from ``models_dir`` (``idphoto models fetch`` puts them there)."""
    return Landmarker(
        models_dir / FACE_MESH_FILE, models_dir / IRIS_FILE, providers=providers, threads=threads
    )
