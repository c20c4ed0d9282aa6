"""Large phone photos decoded only as finely as the region needs, and faces the matte does not
cover.

Real portraits (matplotlib's grace_hopper) and the real models; the photos are built here.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from config.catalogue import get_spec
from idphoto.samples import sample_path
from pipeline import decode as decode_mod
from pipeline import geometry, stages
from pipeline.decode import decode
from pipeline.errors import FaceCutOff, HeadCutOff, NoFaceError
from pipeline.types import Face


def _portrait() -> Image.Image:
    with Image.open(sample_path("grace_hopper")) as im:
        return im.convert("RGB")


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _framed(size: tuple[int, int], portrait_height: int) -> bytes:
    """The portrait, ``portrait_height`` px tall, at the bottom centre of a grey ``size`` frame."""
    p = _portrait()
    p = p.resize((round(p.width * portrait_height / p.height), portrait_height), Image.BICUBIC)
    canvas = Image.new("RGB", size, (196, 198, 200))
    canvas.paste(p, ((size[0] - p.width) // 2, size[1] - p.height))
    return _jpeg(canvas)


# -- decode(exact=False) ---------------------------------------------------------------------


def test_inexact_decode_stops_at_the_dct_scale(monkeypatch) -> None:
    data = _jpeg(Image.new("RGB", (6000, 4000), (90, 120, 150)))
    called = []
    monkeypatch.setattr(decode_mod, "_downscale", lambda *a: called.append(a))
    d = decode(data, max_side=1280, exact=False)
    assert d.image.size == (1500, 1000)  # 1/4: the smallest DCT scale >= 1280, not resampled
    assert d.original_size == (6000, 4000) and d.scale == 0.25
    assert called == []


def test_inexact_decode_of_a_png_reduces_by_an_integer_factor() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (3100, 2000), (10, 20, 30)).save(buf, "PNG")
    d = decode(buf.getvalue(), max_side=1000, exact=False)
    assert 1000 <= max(d.image.size) < 2000
    assert d.image.size == (1034, 667)  # reduce(3)
    small = decode(buf.getvalue(), max_side=2000, exact=False)
    assert small.image.size == (3100, 2000)  # under 2 x max_side: left as it is


# -- analyse: coarse decode, finer only when the region needs it ----------------------------


def test_large_photo_with_a_large_face_is_analysed_at_quarter_scale(detector) -> None:
    data = _framed((4000, 6000), 4200)  # a 24 MP portrait: face ~1000 px tall
    analysis, region = stages.analyse(data, detector)
    assert analysis.original_size == (4000, 6000)
    assert analysis.work_size == (1000, 1500)  # one 1/4-scale decode was enough
    # That scale already gave the region (nearly) the matte's full resolution.
    x0, y0, x1, y1 = analysis.region
    have = max(x1 - x0, y1 - y0)
    assert max(region.shape[:2]) == min(stages.REGION_MAX_SIDE, have)
    assert have >= stages.REGION_MIN_SHARE * stages.REGION_MAX_SIDE
    again = stages.load_region(data, analysis)  # what a refine worker decodes: the same pixels
    assert np.array_equal(again, region)


def test_small_face_in_a_large_photo_is_decoded_again_finer(detector) -> None:
    data = _framed((6000, 4000), 1100)  # a 24 MP landscape, the face ~260 px tall
    coarse = decode(data, max_side=stages.WORK_SIDE, exact=False)
    assert coarse.image.size == (1500, 1000)
    analysis, region = stages.analyse(data, detector)
    assert analysis.max_side > stages.WORK_SIDE
    assert max(analysis.work_size) > 1500  # decoded again at a finer DCT scale
    # The region has (nearly) the resolution the full photo offers, not a quarter of it.
    x0, y0, x1, y1 = analysis.region
    full = max(x1 - x0, y1 - y0) * max(analysis.original_size) / max(analysis.work_size)
    assert max(region.shape[:2]) >= stages.REGION_MIN_SHARE * min(stages.REGION_MAX_SIDE, full)
    # The face was mapped onto the finer image: its box lies where the eyes are.
    face = analysis.face
    assert face.box[0] < face.eye_mid[0] < face.box[2]
    assert face.box[1] < face.eye_mid[1] < face.box[3]
    again = stages.load_region(data, analysis)
    assert np.array_equal(again, region)


# -- faces that are not fully visible ---------------------------------------------------------


def _face(box: tuple[float, float, float, float]) -> Face:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    kp = {
        "right_eye": (x0 + 0.3 * w, y0 + 0.35 * h),
        "left_eye": (x0 + 0.7 * w, y0 + 0.35 * h),
        "nose": (x0 + 0.5 * w, y0 + 0.55 * h),
        "mouth": (x0 + 0.5 * w, y0 + 0.75 * h),
        "right_ear": (x0, y0 + 0.4 * h),
        "left_ear": (x1, y0 + 0.4 * h),
    }
    return Face(box=box, keypoints=kp, score=0.9)


def test_face_visible_share() -> None:
    alpha = np.zeros((400, 400), np.uint8)
    face = _face((100.0, 100.0, 300.0, 300.0))
    alpha[50:400, 60:340] = 255
    assert geometry.face_visible(alpha, face) == pytest.approx(1.0)
    assert geometry.check_face_visible(alpha, face) == pytest.approx(1.0)
    alpha[:, 200:] = 0  # the right half of the face is background
    share = geometry.face_visible(alpha, face)
    assert share == pytest.approx(0.5, abs=0.02)
    with pytest.raises(FaceCutOff) as info:
        geometry.check_face_visible(alpha, face)
    assert info.value.code == "face_cut_off"
    assert info.value.details["visible"] == pytest.approx(0.5, abs=0.02)
    # A face box reaching past the region's edge: the part outside counts as not visible.
    outside = _face((300.0, 100.0, 500.0, 300.0))  # inner box 330-470: 70 of 140 px inside
    assert geometry.face_visible(np.full((400, 400), 255, np.uint8), outside) == pytest.approx(0.5)


def test_face_sides_find_an_outline_cutting_through_the_face() -> None:
    face = _face((100.0, 100.0, 300.0, 300.0))
    alpha = np.zeros((400, 400), np.uint8)
    alpha[50:400, 90:320] = 255  # the outline just outside the box on both sides
    left, right = geometry.face_sides(alpha, face)
    assert left == pytest.approx(0.05) and right == pytest.approx(0.095)
    geometry.check_face_visible(alpha, face)
    alpha[:, 260:] = 0  # cut along the face, 40 px (0.2 of its width) inside the box
    left, right = geometry.face_sides(alpha, face)
    assert right == pytest.approx(-0.205)
    with pytest.raises(FaceCutOff) as info:
        geometry.check_face_visible(alpha, face)
    assert info.value.details["sides"][1] == pytest.approx(-0.2, abs=0.01)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("share", [0.48, 0.55])
def test_half_a_face_fails(detector, segmenter, side: str, share: float) -> None:
    """Part of a portrait on white (a stand-in for a profile). Under half of it: BlazeFace's
    first pass still sees a face but the second (on a crop around it) does not confirm it. A
    little over half: confirmed, but the person's outline cuts through the face box."""
    p = _portrait()
    keep = int(p.width * share)
    half = Image.new("RGB", p.size, (255, 255, 255))
    box = (0, 0, keep, p.height) if side == "left" else (p.width - keep, 0, p.width, p.height)
    half.paste(p.crop(box), box[:2])
    data = _jpeg(half, 92)
    if share < 0.5:
        with pytest.raises(NoFaceError) as no_face:
            stages.make_photo(data, get_spec("us-passport"), "white", detector, segmenter)
        assert no_face.value.details["unconfirmed"] >= 1
        assert "whole face" in str(no_face.value)
        return
    with pytest.raises(FaceCutOff) as info:
        stages.make_photo(data, get_spec("us-passport"), "white", detector, segmenter)
    assert min(info.value.details["sides"]) < geometry.FACE_SIDE_MIN


def test_whole_faces_are_visible(detector, segmenter) -> None:
    for name in ("grace_hopper", "astronaut"):
        with open(sample_path(name), "rb") as f:
            data = f.read()
        analysis, region = stages.analyse(data, detector)
        matte = stages.refine(region, stages.segment(region, segmenter))
        alpha = np.asarray(matte)[..., 3]
        assert geometry.face_visible(alpha, analysis.face) >= 0.97, name
        assert min(geometry.face_sides(alpha, analysis.face)) >= -0.05, name


@pytest.mark.parametrize("top", [0.16, 0.20])
def test_close_up_cut_through_the_hat_is_a_cut_off_head(detector, segmenter, top: float) -> None:
    """A close-up whose top edge runs through the hat: the matte drops the cut-off part (its top
    rows are empty), so only the eyes' distance from the edge shows the head is cut off."""
    p = _portrait()
    w, h = p.size
    close = p.crop((int(w * 0.25), int(h * top), int(w * 0.75), int(h * (top + 0.5))))
    data = _jpeg(close, 92)
    analysis, region = stages.analyse(data, detector)
    alpha = np.asarray(stages.refine(region, stages.segment(region, segmenter)))[..., 3]
    assert analysis.extra["touches"]["top"]
    assert geometry.measure_head(alpha, analysis.face).crown_y > 1.0  # the matte alone: "fine"
    with pytest.raises(HeadCutOff):
        stages.make_photo(data, get_spec("us-passport"), "white", detector, segmenter)


@pytest.mark.parametrize("member", ["coffee.png", "rocket.jpg", "chelsea.png", "horse.png"])
def test_photos_of_things_still_have_no_face(detector, member: str) -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.submodule_search_locations
    data = (Path(list(spec.submodule_search_locations)[0]) / "data" / member).read_bytes()
    with pytest.raises(NoFaceError):
        stages.analyse(data, detector)
