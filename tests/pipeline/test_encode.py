"""encode: exact pixels, dpi, no metadata, KB window by quality (and resampling where allowed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from config.specs import PhotoSpec
from idphoto.samples import sample_path
from pipeline.encode import (
    QUALITY_MAX,
    Encoded,
    encode,
    encode_jpeg,
    encode_png,
    strip_check,
)
from pipeline.errors import SpecUnmet

NOTHING = {
    "exif": False,
    "gps": False,
    "xmp": False,
    "icc": False,
    "iptc": False,
    "comments": False,
}


def spec(w: int = 354, h: int = 472, **kw) -> PhotoSpec:
    return PhotoSpec(
        id="test",
        name="Test",
        country="INT",
        width_px=w,
        height_px=h,
        dpi=300,
        head=(0.7, 0.8),
        **kw,
    )


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    try:
        path = sample_path("grace_hopper")
    except FileNotFoundError:
        pytest.fail("matplotlib's grace_hopper sample is not installed (a test dependency)")
    with Image.open(path) as img:
        return img.convert("RGB")


def sized(img: Image.Image, w: int, h: int) -> Image.Image:
    return img.resize((w, h), Image.Resampling.LANCZOS)


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 13.0, 1.5)
    return exif


def with_metadata(img: Image.Image) -> Image.Image:
    tagged = img.copy()
    tagged.info.update(
        {
            "exif": gps_exif().tobytes(),
            "xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>",
            "icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
            "comment": b"shot at home",
            "dpi": (72, 72),
        }
    )
    return tagged


# --- size, dpi, metadata ----------------------------------------------------------------------


def test_jpeg_exact_size_and_dpi(portrait) -> None:
    img = sized(portrait, 354, 472)
    out = encode(img, spec())
    assert isinstance(out, Encoded) and out.format == "jpeg"
    assert (out.width, out.height, out.dpi) == (354, 472, 300)
    with Image.open(io.BytesIO(out.data)) as back:
        assert back.format == "JPEG" and back.size == (354, 472) and back.mode == "RGB"
        assert tuple(round(v) for v in back.info["dpi"]) == (300, 300)
    assert strip_check(out.data) == {"format": "jpeg", "dpi": (300, 300), **NOTHING}


def test_png_exact_size_and_dpi(portrait) -> None:
    out = encode(sized(portrait, 200, 250), spec(200, 250, format="png"))
    assert out.format == "png" and out.quality is None
    with Image.open(io.BytesIO(out.data)) as back:
        assert back.format == "PNG" and back.size == (200, 250) and back.mode == "RGB"
        assert tuple(round(v) for v in back.info["dpi"]) == (300, 300)
    assert strip_check(out.data) == {"format": "png", "dpi": (300, 300), **NOTHING}


def test_rgba_goes_to_png_with_alpha() -> None:
    img = Image.new("RGBA", (64, 80), (10, 20, 30, 0))
    img.paste((200, 100, 50, 255), (10, 10, 50, 70))
    out = encode(img, spec(64, 80))
    assert out.format == "png"
    with Image.open(io.BytesIO(out.data)) as back:
        assert back.mode == "RGBA"
        assert np.array_equal(np.asarray(back), np.asarray(img))


@pytest.mark.parametrize("kb", [None, (20, 80)])
def test_metadata_of_the_input_never_leaks_into_jpeg(portrait, kb) -> None:
    img = with_metadata(sized(portrait, 354, 472))
    assert strip_check(encode_jpeg(img, 300, 90).data)["exif"] is False
    out = encode(img, spec(kb=kb))
    report = strip_check(out.data)
    assert report == {"format": "jpeg", "dpi": (300, 300), **NOTHING}
    with Image.open(io.BytesIO(out.data)) as back:
        assert not back.getexif()
        assert "icc_profile" not in back.info and "comment" not in back.info
        assert "xmp" not in back.info


def test_metadata_of_the_input_never_leaks_into_png(portrait) -> None:
    img = with_metadata(sized(portrait, 100, 120))
    img.info["Software"] = "Editor 1.0"
    out = encode_png(img, 600)
    assert strip_check(out.data) == {"format": "png", "dpi": (600, 600), **NOTHING}


def test_strip_check_sees_metadata() -> None:
    img = Image.new("RGB", (32, 32), (90, 90, 90))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(
        buf,
        "JPEG",
        exif=gps_exif(),
        icc_profile=icc,
        comment=b"hi",
        xmp=b"<x:xmpmeta/>",
        dpi=(72, 72),
    )
    report = strip_check(buf.getvalue())
    assert report == {
        "format": "jpeg",
        "exif": True,
        "gps": True,
        "xmp": True,
        "icc": True,
        "iptc": False,
        "comments": True,
        "dpi": (72, 72),
    }

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "hello")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=text, exif=gps_exif(), icc_profile=icc)
    report = strip_check(buf.getvalue())
    assert report["exif"] and report["gps"] and report["xmp"] and report["icc"]
    assert report["comments"] and report["dpi"] is None


# --- KB window --------------------------------------------------------------------------------


def assert_highest_quality(img: Image.Image, out: Encoded, hi: int) -> None:
    if out.quality is not None and out.quality < QUALITY_MAX:
        assert len(encode_jpeg(img, 300, out.quality + 1).data) > hi


def test_kb_window_20_80(portrait) -> None:
    img = sized(portrait, 354, 472)
    s = spec(kb=(20, 80))
    lo, hi = s.kb_bytes
    out = encode(img, s)
    assert lo <= len(out.data) <= hi
    assert (out.width, out.height) == (354, 472)
    assert 30 <= out.quality <= 100
    assert_highest_quality(img, out, hi)


def test_kb_window_narrow(portrait) -> None:
    img = sized(portrait, 354, 472)
    s = spec(kb=(20, 40))
    out = encode(img, s)
    assert 20 * 1024 <= len(out.data) <= 40_000
    assert out.quality < QUALITY_MAX
    assert_highest_quality(img, out, 40_000)


def test_kb_window_needs_444(portrait) -> None:
    # 4:2:0 tops out around 75 kB at quality 95; 4:4:4 up to quality 100 gets there.
    img = sized(portrait, 354, 472)
    out = encode(img, spec(kb=(120, 200)))
    assert 120 * 1024 <= len(out.data) <= 200_000


def test_kb_only_minimum_or_only_maximum(portrait) -> None:
    img = sized(portrait, 354, 472)
    assert len(encode(img, spec(kb=(None, 30))).data) <= 30_000
    assert len(encode(img, spec(kb=(10, None))).data) >= 10 * 1024


def test_impossible_maximum_raises(portrait) -> None:
    with pytest.raises(SpecUnmet) as info:
        encode(sized(portrait, 354, 472), spec(kb=(1, 5)))
    err = info.value
    assert err.code == "spec_unmet" and err.details["check"] == "file_size"
    assert err.details["max_bytes"] == 5000 and err.details["size_bytes"] > 5000


def test_impossible_minimum_raises_and_never_pads() -> None:
    flat = Image.new("RGB", (354, 472), (240, 240, 240))
    with pytest.raises(SpecUnmet) as info:
        encode(flat, spec(kb=(20, 80)))
    assert info.value.details["check"] == "file_size"
    assert info.value.details["size_bytes"] < 20 * 1024
    assert "pad" in info.value.message


def test_resampling_inside_height_range(portrait) -> None:
    img = sized(portrait, 1200, 1200)
    with pytest.raises(SpecUnmet):
        encode(img, spec(1200, 1200, kb=(None, 60)))
    out = encode(img, spec(1200, 1200, kb=(None, 60), height_px_range=(600, 1200)))
    assert len(out.data) <= 60_000
    assert 600 <= out.height < 1200 and out.width == out.height
    with Image.open(io.BytesIO(out.data)) as back:
        assert back.size == (out.width, out.height)


def test_resampling_range_exhausted(portrait) -> None:
    img = sized(portrait, 1200, 1200)
    with pytest.raises(SpecUnmet, match="600 px"):
        encode(img, spec(1200, 1200, kb=(None, 10), height_px_range=(600, 1200)))


def test_png_window_checked() -> None:
    with pytest.raises(SpecUnmet):
        encode(Image.new("RGB", (100, 100)), spec(100, 100, format="png", kb=(50, 100)))
