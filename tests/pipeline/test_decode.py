"""decode: sniffing, guards, colour modes, ICC, EXIF orientation and JPEG draft decoding."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from idphoto.samples import sample_path
from pipeline import decode as decode_mod
from pipeline.decode import Decoded, decode, sniff
from pipeline.errors import BadParameter, ImageTooLarge, ImageTooSmall, UnsupportedImage

# --- helpers ----------------------------------------------------------------------------------


def save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def pixel(d: Decoded, xy: tuple[int, int]) -> tuple[int, ...]:
    return d.image.getpixel(xy)


def close(a, b, tol: int) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def asymmetric(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """Four differently coloured quadrants and a black dot near the top-left corner."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, : w // 2] = (255, 0, 0)
    arr[: h // 2, w // 2 :] = (0, 255, 0)
    arr[h // 2 :, : w // 2] = (0, 0, 255)
    arr[h // 2 :, w // 2 :] = (255, 255, 0)
    arr[4:10, 4:10] = (0, 0, 0)
    return Image.fromarray(arr, "RGB")


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def crafted_png(width: int, height: int) -> bytes:
    """A PNG header declaring width x height RGB with a tiny (wrong) IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def rgb_icc(description: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (colorants are D50 XYZ)."""

    def xyz(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0" + b"\0" * 68
    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curv),
        (b"gTRC", curv),
        (b"bTRC", curv),
        (b"cprt", b"text\0\0\0\0no copyright\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = b"", b""
    for sig, body in tags:
        while (offset + len(blobs)) % 4:
            blobs += b"\0"
        table += sig + struct.pack(">II", offset + len(blobs), len(body))
        blobs += body
    body = struct.pack(">I", len(tags)) + table + blobs
    header = (
        struct.pack(">I", 128 + len(body))
        + b"\0\0\0\0"
        + b"\x02\x10\0\0"
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0\0\0\0"
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + body


SRGB_D50 = {
    "red": (0.4361, 0.2225, 0.0139),
    "green": (0.3851, 0.7169, 0.0971),
    "blue": (0.1431, 0.0606, 0.7141),
}


# --- sniff and rejection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pil"),
    [
        ("jpeg", "JPEG"),
        ("png", "PNG"),
        ("gif", "GIF"),
        ("webp", "WEBP"),
        ("bmp", "BMP"),
        ("tiff", "TIFF"),
    ],
)
def test_sniff_formats(fmt: str, pil: str) -> None:
    assert sniff(save(Image.new("RGB", (8, 8)), pil)) == fmt


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a text file named photo.jpg\n",
        b"<!DOCTYPE html><html><body><img src=x></body></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10"/></svg>',
        b"BM but not really a bitmap file",
        b"\x00" * 100,
    ],
    ids=["empty", "text", "html", "svg", "bm-text", "zeros"],
)
def test_not_an_image(data: bytes) -> None:
    assert sniff(data) is None
    with pytest.raises(UnsupportedImage) as info:
        decode(data)
    assert info.value.code == "unsupported_image"


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_is_rejected(fmt: str) -> None:
    data = save(noise((256, 256)), fmt)
    for cut in (len(data) // 2, len(data) - 64):
        with pytest.raises(UnsupportedImage):
            decode(data[:cut])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("sample", ["grace_hopper", "astronaut"])
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("max_side", [None, 128], ids=["full", "draft"])
def test_jpeg_cut_and_closed_with_end_marker_is_rejected(
    sample: str, progressive: bool, max_side: int | None
) -> None:
    # libjpeg fills the missing blocks with grey and only warns; Pillow drops the warning.
    photo = Image.open(sample_path(sample)).convert("RGB")
    data = save(photo, "JPEG", quality=90, progressive=progressive)
    assert decode(data, max_side=max_side).image.width > 0  # the whole file is fine
    cut = data[: int(len(data) * 0.6)] + b"\xff\xd9"
    with pytest.raises(UnsupportedImage) as info:
        decode(cut, max_side=max_side)
    assert info.value.code == "unsupported_image"
    assert "truncated" in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_flat_mid_grey_jpeg_is_not_taken_for_a_truncated_one() -> None:
    data = save(Image.new("RGB", (256, 256), (128, 128, 128)), "JPEG")
    assert decode(data).image.getpixel((255, 255)) == (128, 128, 128)


def test_one_pixel_is_too_small() -> None:
    with pytest.raises(ImageTooSmall) as info:
        decode(save(Image.new("RGB", (1, 1)), "PNG"))
    assert info.value.details["width"] == 1 and info.value.details["min_side"] == 64


def test_too_small_uses_smaller_side() -> None:
    with pytest.raises(ImageTooSmall):
        decode(save(Image.new("RGB", (1000, 63)), "PNG"))
    assert decode(save(Image.new("RGB", (1000, 64)), "PNG")).image.size == (1000, 64)


def test_real_60_megapixel_jpeg_is_too_large() -> None:
    data = save(Image.new("L", (8000, 7500), 128), "JPEG", quality=50)
    with pytest.raises(ImageTooLarge) as info:
        decode(data)
    assert info.value.details == {"width": 8000, "height": 7500, "max_pixels": 50_000_000}


def test_declared_huge_png_is_rejected_before_decoding() -> None:
    with pytest.raises(ImageTooLarge) as info:
        decode(crafted_png(30000, 30000))
    assert info.value.details["width"] == 30000
    assert info.value.details["height"] == 30000
    assert info.value.details["max_pixels"] == 50_000_000


def test_pillow_bomb_warning_becomes_an_error() -> None:
    # 100 MP is above Pillow's warning threshold (~89 MP) but under our raised limit.
    with pytest.raises(ImageTooLarge):
        decode(crafted_png(10000, 10000), max_pixels=200_000_000)


def test_max_pixels_parameter() -> None:
    data = save(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).image.size == (100, 100)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_is_rejected(fmt: str) -> None:
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(UnsupportedImage, match="[Aa]nimated"):
        decode(data)


def test_single_frame_gif_decodes() -> None:
    d = decode(save(Image.new("RGB", (80, 80), (255, 0, 0)), "GIF"))
    assert d.format == "gif" and pixel(d, (5, 5)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_other_formats_round_trip(fmt: str) -> None:
    img = asymmetric()
    d = decode(save(img, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert d.image.mode == "RGB" and d.image.size == img.size
    assert np.array_equal(np.asarray(d.image), np.asarray(img))


# --- colour modes -----------------------------------------------------------------------------


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (128, 64), (0, 0, 0, 0))
    img.paste((0, 255, 255, 0), (64, 0, 128, 64))
    d = decode(save(img, "JPEG", quality=95))
    assert d.image.mode == "RGB"
    assert close(pixel(d, (20, 30)), (255, 255, 255), 3)
    assert close(pixel(d, (100, 30)), (255, 0, 0), 3)


def test_16_bit_png_gradient_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (64, 1))
    data = save(Image.fromarray(ramp), "PNG")
    d = decode(data)
    row = np.asarray(d.image)[10, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) > 250
    assert np.abs(row - np.rint(ramp[0] / 257.0)).max() <= 1


def test_palette_with_transparency_is_flattened_on_white() -> None:
    img = Image.new("P", (80, 80), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (40, 0, 80, 80))
    d = decode(save(img, "PNG", transparency=0))
    assert pixel(d, (10, 10)) == (255, 255, 255)
    assert pixel(d, (60, 10)) == (0, 0, 255)


def test_greyscale_and_la_and_rgba() -> None:
    grey = decode(save(Image.new("L", (80, 80), 77), "PNG"))
    assert pixel(grey, (1, 1)) == (77, 77, 77)
    la = decode(save(Image.new("LA", (80, 80), (0, 0)), "PNG"))
    assert pixel(la, (1, 1)) == (255, 255, 255)
    rgba = decode(save(Image.new("RGBA", (80, 80), (255, 0, 0, 128)), "PNG"))
    assert close(pixel(rgba, (1, 1)), (255, 127, 127), 1)


def test_one_bit_image() -> None:
    d = decode(save(Image.new("1", (80, 80), 1), "PNG"))
    assert pixel(d, (0, 0)) == (255, 255, 255)


# --- ICC --------------------------------------------------------------------------------------


def test_icc_profile_is_converted_to_srgb() -> None:
    # A profile whose "red" channel is really sRGB's blue primary and vice versa.
    swapped = rgb_icc("Swapped primaries", SRGB_D50["blue"], SRGB_D50["green"], SRGB_D50["red"])
    img = Image.new("RGB", (80, 80), (255, 0, 0))
    for fmt in ("PNG", "JPEG"):
        d = decode(
            save(img, fmt, icc_profile=swapped, **({"quality": 95} if fmt == "JPEG" else {}))
        )
        assert close(pixel(d, (40, 40)), (0, 0, 255), 4), fmt
        assert "icc_profile" not in d.image.info


def test_srgb_profile_leaves_pixels_alone() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = asymmetric()
    d = decode(save(img, "PNG", icc_profile=srgb))
    assert np.array_equal(np.asarray(d.image), np.asarray(img))


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00" * 300,
        b"garbage icc profile" * 20,
        rgb_icc("x", (0, 0, 0), (0, 0, 0), (0, 0, 0))[:90],
    ],
    ids=["zeros", "text", "cut"],
)
def test_broken_icc_profile_is_ignored(blob: bytes) -> None:
    img = asymmetric()
    for fmt in ("PNG", "JPEG"):
        d = decode(save(img, fmt, icc_profile=blob, **({"quality": 100} if fmt == "JPEG" else {})))
        assert close(pixel(d, (70, 10)), (0, 255, 0), 4)


def test_huge_icc_profile_in_png_is_ignored() -> None:
    # Inflates past Pillow's 1 MB metadata limit, which would otherwise refuse the file.
    img = asymmetric()
    d = decode(save(img, "PNG", icc_profile=b"\x00" * 3_000_000))
    assert np.array_equal(np.asarray(d.image), np.asarray(img))


def test_wrong_colour_space_profile_is_ignored() -> None:
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    img = asymmetric()
    d = decode(save(img, "PNG", icc_profile=lab))
    assert np.array_equal(np.asarray(d.image), np.asarray(img))


# --- EXIF orientation -------------------------------------------------------------------------

# The transpose that turns the upright image into what a camera stores for each orientation
# (the inverse of what the viewer applies).
T = Image.Transpose
STORE = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def stored_with_orientation(upright: Image.Image, orientation: int, fmt: str, **kw) -> bytes:
    method = STORE[orientation]
    raw = upright.transpose(method) if method is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(raw, fmt, exif=exif, **kw)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png(orientation: int) -> None:
    upright = asymmetric()
    d = decode(stored_with_orientation(upright, orientation, "PNG"))
    assert d.original_size == upright.size
    assert d.scale == 1.0
    assert np.array_equal(np.asarray(d.image), np.asarray(upright))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg(orientation: int) -> None:
    upright = asymmetric((192, 128))
    d = decode(stored_with_orientation(upright, orientation, "JPEG", quality=95))
    assert d.image.size == upright.size
    diff = np.abs(np.asarray(d.image).astype(int) - np.asarray(upright).astype(int))
    assert np.median(diff) <= 2


def test_bad_orientation_value_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 42
    d = decode(save(asymmetric(), "PNG", exif=exif))
    assert np.array_equal(np.asarray(d.image), np.asarray(asymmetric()))


# --- JPEG draft and max_side ------------------------------------------------------------------


def gradient_photo(w: int, h: int) -> Image.Image:
    arr = np.empty((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr[..., 2] = 128
    arr[:200, :300] = (0, 0, 0)  # a dark block at the top left
    return Image.fromarray(arr, "RGB")


@pytest.fixture(scope="module")
def photo_24mp() -> tuple[Image.Image, bytes]:
    img = gradient_photo(6000, 4000)
    return img, save(img, "JPEG", quality=85)


def test_jpeg_draft_decodes_at_reduced_scale(photo_24mp, monkeypatch) -> None:
    _, data = photo_24mp
    seen: list[tuple[int, int]] = []
    real = decode_mod._downscale

    def spy(img, raw_size, max_side):
        seen.append(img.size)
        return real(img, raw_size, max_side)

    monkeypatch.setattr(decode_mod, "_downscale", spy)
    d = decode(data, max_side=1600)
    assert d.image.size == (1600, 1067)
    assert d.original_size == (6000, 4000)
    assert d.scale == pytest.approx(1600 / 6000)
    assert d.scale == d.image.width / d.original_size[0]
    # libjpeg decoded at 1/2 (3000x2000: 1/4 would be 1500 < 1600), a quarter of the pixels.
    assert seen == [(3000, 2000)]
    assert pixel(d, (20, 20)) == pytest.approx((0, 0, 0), abs=3)


def test_jpeg_draft_exact_power_of_two(photo_24mp) -> None:
    _, data = photo_24mp
    d = decode(data, max_side=750)  # 6000 / 8 == 750 exactly: no resampling needed
    assert d.image.size == (750, 500) and d.scale == 0.125


def test_jpeg_draft_with_rotation() -> None:
    upright = gradient_photo(1200, 1800)  # portrait as seen
    data = stored_with_orientation(upright, 6, "JPEG", quality=90)  # stored landscape
    d = decode(data, max_side=400)
    assert d.original_size == (1200, 1800)
    assert d.image.size == (267, 400)
    assert d.scale == pytest.approx(267 / 1200)
    ref = np.asarray(upright.resize(d.image.size, Image.Resampling.BOX)).astype(int)
    assert np.median(np.abs(np.asarray(d.image).astype(int) - ref)) <= 3


def test_max_side_for_png_and_small_images() -> None:
    d = decode(save(asymmetric((400, 300)), "PNG"), max_side=100)
    assert d.image.size == (100, 75) and d.scale == 0.25
    small = decode(save(asymmetric((96, 64)), "PNG"), max_side=1000)
    assert small.image.size == (96, 64) and small.scale == 1.0


# --- HEIF -------------------------------------------------------------------------------------


def test_heic_round_trip() -> None:
    import pillow_heif  # a dependency (setup.cfg): HEIC uploads must decode

    pillow_heif.register_heif_opener()
    img = asymmetric((128, 96))
    data = save(img, "HEIF", quality=95)
    assert sniff(data) == "heif"
    d = decode(data)
    assert d.format == "heif" and d.image.size == (128, 96) and d.image.mode == "RGB"
    assert close(pixel(d, (100, 20)), (0, 255, 0), 12)
    assert close(pixel(d, (20, 80)), (0, 0, 255), 12)


def test_result_is_detached_and_clean() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    d = decode(save(asymmetric(), "JPEG", exif=exif, comment=b"x", quality=90))
    assert type(d.image) is Image.Image
    assert d.image.info == {}
    assert d.scale == 1.0 and d.original_size == (96, 64)


def test_bad_max_side() -> None:
    with pytest.raises(BadParameter):
        decode(save(asymmetric(), "PNG"), max_side=0)
