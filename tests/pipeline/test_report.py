"""The compliance report, checked against measurements this test takes itself on the OUTPUT.

Real portraits go through the in-process pipeline (analyse, segment, refine once per input;
compose for a few specs). The test then re-runs BlazeFace on the delivered file for the eye
midpoint, roll and keypoints, computes background and face luminance with its own code, and
compares. Degraded inputs (Gaussian blur, darkening) must trip the matching checks; the pose
estimators are tested on keypoint sets built from the generic face and by hand; the verdict
logic (required vs advisory) on reports rebuilt from a real composition with doctored pixels.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from config.catalogue import get_spec
from idphoto.samples import sample_path
from pipeline import geometry, report, stages
from pipeline.composite import parse_background
from pipeline.types import KEYPOINT_NAMES, Analysis, Face

SPECS = ("icao-35x45", "us-passport", "jp-passport")
PORTRAITS = ("grace_hopper", "astronaut")
# What "frontal" must satisfy, and how closely the report must agree with the re-measurement.
CENTRING_TOL = 0.01  # of W: BlazeFace keypoints move a few px between source and output
ROLL_TOL_DEG = 2.0
YAW_TOL_DEG = 4.0  # ~0.04 IED of nose jitter
PITCH_TOL_DEG = 8.0  # the ratio of two short distances: the noisiest estimate
LUMA_TOL = 0.03


# --- fixtures: models once per module, each input segmented once ------------------------------


def _variant(name: str, variant: str) -> Image.Image:
    try:
        path = sample_path(name)
    except FileNotFoundError:
        pytest.fail(f"sample {name} is not installed (a test dependency)")
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    if variant == "blur4":
        return rgb.filter(ImageFilter.GaussianBlur(4))
    if variant == "dark":
        return Image.fromarray((np.asarray(rgb, np.float32) * 0.2).astype(np.uint8))
    assert variant == "", variant
    return rgb


@pytest.fixture(scope="module")
def prepared(detector, segmenter) -> Callable[..., tuple[Analysis, Image.Image]]:
    """(name, variant) -> (analysis, matte), once per module."""

    @functools.cache
    def prepare(name: str, variant: str = "") -> tuple[Analysis, Image.Image]:
        buf = io.BytesIO()
        _variant(name, variant).save(buf, "PNG")
        analysis, region = stages.analyse(buf.getvalue(), detector)
        return analysis, stages.refine(
            region, stages.segment(region, segmenter, face=analysis.face)
        )

    return prepare


def compose(prep: tuple[Analysis, Image.Image], spec_id: str, bg: str | None = None):
    """stages.compose for a prepared input, on the spec's default background unless told."""
    analysis, matte = prep
    spec = get_spec(spec_id)
    return stages.compose(matte, analysis, spec, bg or spec.default_background, sheet=None)


# --- the test's own measurements --------------------------------------------------------------


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 weights on the codes, 0..1."""
    return (rgb[..., :3].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])) / 255.0


def the_face(detector, rgb: np.ndarray) -> Face:
    faces = detector.detect_all(rgb)
    assert len(faces) == 1, f"{len(faces)} faces in the output"
    return faces[0]


def own_face_luma(rgb: np.ndarray, face: Face) -> float:
    """Mean luma over a box of the test's own: 0.7 eye distances either side of the eye
    midpoint, from 0.2 above the eyes to 0.1 below the mouth."""
    (mx, my), ied = face.eye_mid, face.eye_distance
    mouth_y = face.keypoints["mouth"][1]
    box = rgb[
        int(my - 0.2 * ied) : int(mouth_y + 0.1 * ied), int(mx - 0.7 * ied) : int(mx + 0.7 * ied)
    ]
    return float(luma(box).mean())


def cutout_alpha(comp: Any) -> np.ndarray:
    with Image.open(io.BytesIO(comp.cutout.data)) as im:
        return np.asarray(im.convert("RGBA"))[..., 3]


def by_name(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in rep["checks"]}


# --- the report against the re-measured output ------------------------------------------------


@pytest.mark.parametrize(("portrait", "spec_id"), [(p, s) for p in PORTRAITS for s in SPECS])
def test_report_agrees_with_output(portrait: str, spec_id: str, prepared, detector) -> None:
    analysis, matte = prepared(portrait)
    comp = compose((analysis, matte), spec_id)
    rep, m, checks = comp.report, comp.report["measures"], by_name(comp.report)
    rgb = decoded(comp.photo.data)
    H, W = rgb.shape[:2]
    face = the_face(detector, rgb)

    # Every check has the documented shape; the verdict follows the required checks, then the
    # review-level ones.
    for c in rep["checks"]:
        assert {"check", "value", "limit", "unit", "pass", "level"} <= set(c), c
        assert c["level"] in ("required", "review", "advisory")
    assert rep["failed"] == [
        c["check"] for c in rep["checks"] if not c["pass"] and c["level"] == "required"
    ]
    assert rep["review"] == [
        c["check"] for c in rep["checks"] if not c["pass"] and c["level"] == "review"
    ]
    assert rep["verdict"] == ("fail" if rep["failed"] else "review" if rep["review"] else "pass")
    assert rep["warnings"] == [
        c["check"] for c in rep["checks"] if not c["pass"] and c["level"] == "advisory"
    ]

    # Centring, roll, eye distance and keypoints agree with BlazeFace run on the file.
    assert abs(m["eye_mid_x_fraction"] - face.eye_mid[0] / W) <= CENTRING_TOL
    assert abs(m["roll_deg"] - face.roll_deg) <= ROLL_TOL_DEG
    assert abs(m["eye_distance_px"] - face.eye_distance) <= 0.05 * face.eye_distance
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        dx, dy = np.subtract(m["keypoints_px"][name], face.keypoints[name])
        assert math.hypot(dx, dy) <= 0.08 * face.eye_distance, (name, dx, dy)
    assert abs(m["yaw_deg"] - report.estimate_yaw(face.keypoints)) <= YAW_TOL_DEG
    assert abs(m["pitch_deg"] - report.estimate_pitch(face.keypoints)) <= PITCH_TOL_DEG

    # Background: the test's own std over the cut-out's transparent pixels, and over the corners.
    photo = np.asarray(comp.image.convert("RGB"))
    clear = cutout_alpha(comp) == 0
    assert clear.mean() > 0.1
    own_std = float(luma(photo)[clear].std() * 255)
    assert abs(m["background_luma_std"] - own_std) < 0.05 and own_std < 0.05
    s = W // 12
    corners = np.concatenate([rgb[:s, :s].reshape(-1, 3), rgb[:s, -s:].reshape(-1, 3)])
    assert luma(corners).std() * 255 < 1.5  # JPEG keeps a flat field flat
    assert m["background_mean_gradient"] == 0.0
    assert checks["background_uniformity"]["level"] == "required"

    # Face exposure against the test's own box on the decoded file.
    assert abs(m["face_luminance"] - own_face_luma(rgb, face)) <= LUMA_TOL

    # A frontal, well-lit, sharp portrait passes everything that is about the photo.
    for name in (
        "horizontal_centring",
        "roll",
        "yaw",
        "pitch",
        "face_exposure",
        "face_underexposed",
        "face_overexposed",
        "face_sharpness",
        "background_uniformity",
        "eye_distance",
    ):
        assert checks[name]["pass"], checks[name]
    assert checks["yaw"]["estimate"] and checks["pitch"]["estimate"]
    assert checks["yaw"]["iso_limit"] == 5.0
    assert checks["face_sharpness"]["level"] == "advisory"
    assert checks["face_exposure"]["level"] == "required"
    assert any("estimate" in n for n in rep["notes"])
    assert rep["verdict"] == "pass" and rep["warnings"] == [], (rep["failed"], rep["warnings"])
    assert (m["width_px"], m["height_px"]) == (W, H)


def test_blurred_input_warns_on_sharpness(prepared) -> None:
    """grace_hopper blurred (Gaussian, radius 4) before the pipeline: an advisory failure."""
    sharp = compose(prepared("grace_hopper"), "icao-35x45").report
    blurred = compose(prepared("grace_hopper", "blur4"), "icao-35x45").report
    check = by_name(blurred)["face_sharpness"]
    assert not check["pass"] and check["level"] == "advisory"
    assert "face_sharpness" in blurred["warnings"] and "face_sharpness" not in blurred["failed"]
    assert blurred["verdict"] == "pass", blurred["failed"]  # advisory only
    assert by_name(sharp)["face_sharpness"]["pass"]
    assert blurred["measures"]["face_sharpness"] < 0.1 * sharp["measures"]["face_sharpness"]


def test_darkened_input_fails_exposure(prepared, detector) -> None:
    """grace_hopper at 20 % brightness: the face is too dark, a required failure."""
    comp = compose(prepared("grace_hopper", "dark"), "us-passport")
    rep = comp.report
    rgb = decoded(comp.photo.data)
    own = own_face_luma(rgb, the_face(detector, rgb))
    assert own < report.LUMINANCE_BAND[0]
    assert abs(rep["measures"]["face_luminance"] - own) <= LUMA_TOL
    check = by_name(rep)["face_exposure"]
    assert not check["pass"] and check["level"] == "required"
    assert rep["verdict"] == "fail" and "face_exposure" in rep["failed"]
    assert "face_underexposed" in rep["warnings"]
    # Darkness is not blur: the contrast-normalised sharpness still passes.
    assert by_name(rep)["face_sharpness"]["pass"]


def test_gradient_background_is_reported_not_required(prepared) -> None:
    """A requested gradient is measured as non-uniform, but only as a warning."""
    analysis, matte = prepared("grace_hopper")
    comp = compose((analysis, matte), "jp-passport", "gradient:white,#438edb")
    rep = comp.report
    check = by_name(rep)["background_uniformity"]
    photo = np.asarray(comp.image.convert("RGB"))
    own_std = float(luma(photo)[cutout_alpha(comp) == 0].std() * 255)
    assert own_std > 10 and abs(check["value"] - own_std) < 0.05
    assert not check["pass"] and check["level"] == "advisory"
    assert "background_uniformity" in rep["warnings"]
    assert rep["measures"]["background_mean_gradient"] > 0
    # The colour itself is not one jp-passport allows: that is the required failure.
    assert rep["failed"] == ["background"]


def test_transparent_background_has_no_uniformity_check(prepared) -> None:
    analysis, matte = prepared("astronaut")
    rep = compose((analysis, matte), "icao-35x45", "transparent").report
    names = by_name(rep)
    assert "background_uniformity" not in names
    assert names["face_exposure"]["pass"] and names["yaw"]["pass"]


# --- the verdict: required vs advisory, on doctored pixels ------------------------------------


def _rebuild(comp: Any, analysis: Analysis, matte: Image.Image, spec_id: str, image: np.ndarray):
    """build_report again for the same placement, on other pixels."""
    spec = get_spec(spec_id)
    alpha = np.asarray(matte)[..., 3]
    head = geometry.measure_head(alpha, analysis.face)
    place = geometry.place(
        head,
        spec,
        region_size=(alpha.shape[1], alpha.shape[0]),
        region_touches=analysis.extra.get("touches", {}),
        px_per_original=analysis.px_per_original,
        alpha=alpha,
    )
    return report.build_report(
        spec,
        place,
        comp.photo,
        parse_background(spec.default_background),
        face_count=1,
        residual_roll_deg=0.0,
        eye_distance_px=analysis.face.eye_distance * place.scale,
        upscale=1.0,
        face=analysis.face,
        image=image,
        alpha=cutout_alpha(comp),
    )


def test_verdict_required_vs_advisory(prepared) -> None:
    analysis, matte = prepared("grace_hopper")
    comp = compose((analysis, matte), "jp-passport")
    photo = np.asarray(comp.image.convert("RGB"))
    clear = cutout_alpha(comp) == 0

    same = _rebuild(comp, analysis, matte, "jp-passport", photo)
    assert same["verdict"] == "pass" and same["warnings"] == []
    assert {c["check"] for c in same["checks"]} == {c["check"] for c in comp.report["checks"]}

    # A blotchy background (jp-passport: "uniform, no gradient") fails a REQUIRED check.
    rng = np.random.default_rng(0)
    noisy = photo.copy()
    noise = rng.integers(-20, 21, size=photo.shape)
    noisy[clear] = np.clip(photo.astype(int) + noise, 0, 255).astype(np.uint8)[clear]
    rep = _rebuild(comp, analysis, matte, "jp-passport", noisy)
    assert rep["failed"] == ["background_uniformity"] and rep["verdict"] == "fail"

    # Blurring only the face fails an ADVISORY check: a warning, and the verdict still passes.
    soft = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(5)))
    blurred = np.where(clear[..., None], photo, soft).astype(np.uint8)
    rep = _rebuild(comp, analysis, matte, "jp-passport", blurred)
    assert rep["warnings"] == ["face_sharpness"] and rep["failed"] == []
    assert rep["verdict"] == "pass"


def test_build_report_without_the_output_image(prepared) -> None:
    """The old call (no face, image or alpha) still works: the output-image checks are left out."""
    analysis, matte = prepared("grace_hopper")
    comp = compose((analysis, matte), "us-passport")
    spec = get_spec("us-passport")
    alpha = np.asarray(matte)[..., 3]
    place = geometry.place(
        geometry.measure_head(alpha, analysis.face),
        spec,
        region_size=(alpha.shape[1], alpha.shape[0]),
        region_touches=analysis.extra.get("touches", {}),
        px_per_original=analysis.px_per_original,
        alpha=alpha,
    )
    rep = report.build_report(
        spec,
        place,
        comp.photo,
        parse_background("white"),
        face_count=1,
        residual_roll_deg=9.0,
        eye_distance_px=100.0,
        upscale=1.0,
    )
    names = by_name(rep)
    assert "yaw" not in names and "face_sharpness" not in names
    assert names["roll"]["value"] == 9.0 and rep["failed"] == ["roll"]
    assert rep["verdict"] == "fail" and rep["warnings"] == []


# --- the keypoint mapping ---------------------------------------------------------------------


def test_to_output_inverts_the_warp_matrix(prepared) -> None:
    analysis, matte = prepared("astronaut")
    spec = get_spec("icao-35x45")
    alpha = np.asarray(matte)[..., 3]
    place = geometry.place(
        geometry.measure_head(alpha, analysis.face),
        spec,
        region_size=(alpha.shape[1], alpha.shape[0]),
        region_touches=analysis.extra.get("touches", {}),
        px_per_original=analysis.px_per_original,
        alpha=alpha,
    )
    assert abs(place.roll_deg) > 1.0  # astronaut is tilted: the rotation is exercised
    out = np.random.default_rng(1).uniform(0, 400, size=(20, 2))
    region = (place.matrix() @ np.c_[out, np.ones(len(out))].T).T
    assert np.allclose(geometry.to_output(place, region), out, atol=1e-9)
    eye = geometry.to_output(place, place.eye_mid)
    assert eye.shape == (2,) and np.allclose(eye, place.anchor)
    kp = geometry.to_output(place, [analysis.face.keypoints[n] for n in ("right_eye", "left_eye")])
    assert abs(kp[0, 1] - kp[1, 1]) < 1e-6  # levelled: the eyes on one row


# --- the pose estimators on constructed keypoints ---------------------------------------------


def test_estimators_on_the_generic_face() -> None:
    frontal = report.project_model()
    assert abs(report.estimate_yaw(frontal)) < 1e-9
    assert abs(report.estimate_pitch(frontal)) < 1e-9
    assert abs(report.estimate_yaw_ears(frontal)) < 1e-9
    for deg in (-30.0, -15.0, -5.0, 5.0, 15.0, 30.0):
        turned = report.project_model(yaw_deg=deg)
        assert report.estimate_yaw(turned) == pytest.approx(deg, abs=1e-6)
        assert report.estimate_yaw_ears(turned) == pytest.approx(deg, abs=1e-6)
        assert abs(report.estimate_pitch(turned)) < 1e-6
        nodded = report.project_model(pitch_deg=deg)
        assert report.estimate_pitch(nodded) == pytest.approx(deg, abs=1e-6)
        assert abs(report.estimate_yaw(nodded)) < 1e-6
    # Roll, scale and position change nothing.
    moved = report.project_model(12.0, -7.0, 20.0, ied_px=63.0, centre=(300.0, 410.0))
    assert report.estimate_yaw(moved) == pytest.approx(
        report.estimate_yaw(report.project_model(12.0, -7.0)), abs=1e-9
    )
    assert report.estimate_pitch(moved) == pytest.approx(
        report.estimate_pitch(report.project_model(12.0, -7.0)), abs=1e-9
    )
    # Both at once (the model nods, then turns): both recovered.
    for yaw, pitch in ((10.0, 10.0), (-15.0, 8.0), (20.0, -12.0)):
        both = report.project_model(yaw_deg=yaw, pitch_deg=pitch, roll_deg=5.0)
        assert report.estimate_yaw(both) == pytest.approx(yaw, abs=1e-6)
        assert report.estimate_pitch(both) == pytest.approx(pitch, abs=1e-6)


def test_estimators_with_keypoint_noise() -> None:
    """Keypoint jitter (sd 1.5 px per coordinate, 100 px between the eyes) keeps a frontal face well inside the yaw limit,
    and a face turned 20 degrees well outside it."""
    rng = np.random.default_rng(7)
    for truth, should_pass in ((0.0, True), (20.0, False), (-20.0, False)):
        for _ in range(50):
            kp = {
                k: (x + rng.normal(0, 1.5), y + rng.normal(0, 1.5))
                for k, (x, y) in report.project_model(yaw_deg=truth).items()
            }
            yaw = report.estimate_yaw(kp)
            assert abs(yaw - truth) < (6.0 if truth == 0 else 8.0)
            assert (abs(yaw) <= report.YAW_LIMIT_DEG) is should_pass


def test_hand_built_keypoints() -> None:
    """Keypoint sets written by hand (image px, y down): frontal, a strong turn, a nod."""
    frontal = {
        "right_eye": (200.0, 300.0),
        "left_eye": (300.0, 300.0),
        "nose": (250.0, 354.0),
        "mouth": (250.0, 409.0),
        "right_ear": (130.0, 331.0),
        "left_ear": (370.0, 331.0),
    }
    assert abs(report.estimate_yaw(frontal)) < 0.5
    assert abs(report.estimate_pitch(frontal)) < 0.5
    # Nose 35 px to the image right of the eye midpoint, near ear further out on the left:
    # the subject looks to their left.
    turned = dict(frontal, nose=(285.0, 354.0), right_ear=(110.0, 331.0), left_ear=(330.0, 331.0))
    assert report.estimate_yaw(turned) > 25.0 and report.estimate_yaw_ears(turned) > 15.0
    mirrored = {
        "right_eye": (500 - frontal["left_eye"][0], 300.0),
        "left_eye": (500 - frontal["right_eye"][0], 300.0),
        "nose": (500 - turned["nose"][0], 354.0),
        "mouth": (250.0, 409.0),
        "right_ear": (500 - turned["left_ear"][0], 331.0),
        "left_ear": (500 - turned["right_ear"][0], 331.0),
    }
    assert report.estimate_yaw(mirrored) == pytest.approx(-report.estimate_yaw(turned))
    # Nose low (near the mouth): chin down. Nose high: chin up.
    down = dict(frontal, nose=(250.0, 375.0))
    up = dict(frontal, nose=(250.0, 330.0))
    assert report.estimate_pitch(down) > report.PITCH_LIMIT_DEG
    assert report.estimate_pitch(up) < -report.PITCH_LIMIT_DEG


def test_estimators_on_the_real_portraits(detector) -> None:
    """BlazeFace on the two frontal sample portraits, as delivered: both read as frontal."""
    for name in PORTRAITS:
        face = the_face(detector, np.asarray(_variant(name, "")))
        kp = {k: face.keypoints[k] for k in KEYPOINT_NAMES}
        assert abs(report.estimate_yaw(kp)) <= report.YAW_LIMIT_DEG / 2, name
        assert abs(report.estimate_pitch(kp)) <= report.PITCH_LIMIT_DEG, name
