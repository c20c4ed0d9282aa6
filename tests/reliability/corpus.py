"""A corpus of bad, odd and borderline uploads, generated (nothing is checked in).

Each `Case` says which outcomes are acceptable, as ``"<status>:<code>"`` for an immediate HTTP
refusal, ``"failed:<reason>"`` for a job that fails, or ``"done"``. Exact outcomes are given
where the input leaves no doubt (a truncated PNG is ``unsupported_image``); the face edge cases
(cut off, profile, rotated, upside down) accept ``done`` or any face-related failure, since
which one the detector sees is the model's business, not the service's.

Only a third of the cases reach segmentation (ISNet, seconds each on a CPU): the valid colour
and orientation variants of one portrait, and the face edge cases. Everything else is refused at
upload or fails in decoding or detection, in milliseconds.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms

from idphoto.samples import sample_path

FACE_OUTCOMES = frozenset(
    {
        "done",
        "failed:no_face",
        "failed:multiple_faces",
        "failed:face_too_small",
        "failed:face_cut_off",
        "failed:not_frontal",
        "failed:head_cut_off",
        "failed:too_close",
        "failed:spec_unmet",
    }
)
UNSUPPORTED = frozenset({"415:unsupported_image", "failed:unsupported_image"})


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: frozenset[str]
    filename: str = "photo.jpg"
    content_type: str = "image/jpeg"
    segments: bool = False  # reaches ISNet (costs seconds)


# --- helpers ------------------------------------------------------------------------------------


@functools.cache
def portrait() -> Image.Image:
    with Image.open(sample_path("grace_hopper")) as img:
        return img.convert("RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_file(width: int, height: int, depth: int, colour: int, idat: bytes, *extra: bytes) -> bytes:
    """A PNG from its parts: IHDR, extra chunks, one IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(extra)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def zeros_deflated(total: int, block: int = 1 << 22) -> bytes:
    """zlib stream of ``total`` zero bytes, compressed without holding them in memory."""
    comp = zlib.compressobj(9)
    out = []
    zero = bytes(block)
    left = total
    while left:
        n = min(block, left)
        out.append(comp.compress(zero if n == block else bytes(n)))
        left -= n
    out.append(comp.flush())
    return b"".join(out)


def bomb_png(width: int, height: int, depth: int = 1) -> bytes:
    """A greyscale PNG of ``width`` x ``height`` zeros: real pixel data, a tiny file."""
    row = 1 + (width * depth + 7) // 8  # filter byte + packed samples
    return png_file(width, height, depth, 0, zeros_deflated(row * height))


def landscape(width: int = 900, height: int = 600) -> Image.Image:
    """A sky-to-ground picture with noise, no face."""
    rng = np.random.default_rng(7)
    y = np.linspace(0, 1, height)[:, None, None]
    sky = np.array([110, 160, 230]) * (1 - y) + np.array([60, 120, 50]) * y
    img = np.broadcast_to(sky, (height, width, 3)) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def padded_icc(size: int) -> bytes:
    """A real sRGB profile grown to ``size`` bytes (header size field and zero padding)."""
    icc = srgb_icc()
    return struct.pack(">I", size) + icc[4:] + bytes(size - len(icc))


def sixteen_bit_rgb_png(img: Image.Image) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): samples scaled x257, big-endian."""
    arr = np.asarray(img, dtype=np.uint16) * 257
    rows = arr.astype(">u2").reshape(img.height, -1).tobytes()
    stride = img.width * 6
    raw = b"".join(b"\0" + rows[i * stride : (i + 1) * stride] for i in range(img.height))
    return png_file(img.width, img.height, 16, 2, zlib.compress(raw, 6))


# EXIF orientation n: the stored pixels are the upright picture transformed by the inverse of
# what a viewer applies for n, so every one of them shows the same upright portrait.
_STORED_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented(n: int) -> bytes:
    method = _STORED_FOR_ORIENTATION[n]
    stored = portrait() if method is None else portrait().transpose(method)
    exif = Image.Exif()
    exif[0x0112] = n
    return encode(stored, quality=92, exif=exif)


def animated(fmt: str, **params: object) -> bytes:
    frames = [portrait(), portrait().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=200, **params)


# --- the corpus ---------------------------------------------------------------------------------


def build(tag: str = "") -> list[Case]:
    """The cases; ``tag`` makes the valid images' bytes unique to a run (no reuse of earlier
    work from a shared bucket)."""
    p = portrait()
    jpeg = encode(p, quality=92, comment=f"corpus {tag}".encode())
    png = encode(p, "PNG")
    land = landscape()
    face_w, face_h = p.size
    cases = [
        # Refused at upload: empty, or not an image whatever the file name says.
        Case("zero bytes", b"", frozenset({"422:missing_photo"})),
        Case("text named .jpg", b"Dear diary, today I uploaded a text file.\n" * 40, UNSUPPORTED),
        Case(
            "HTML named .jpg",
            b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
            UNSUPPORTED,
        ),
        Case(
            "SVG named .jpg",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="600" '
            b'height="600"><script>alert(1)</script><circle r="50"/></svg>',
            UNSUPPORTED,
        ),
        Case(
            "SVG as image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            UNSUPPORTED,
            filename="photo.svg",
            content_type="image/svg+xml",
        ),
        Case("PDF named .jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", UNSUPPORTED),
        Case("ZIP named .jpg", b"PK\x03\x04" + bytes(200), UNSUPPORTED),
        Case(
            "random bytes",
            bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8)),
            UNSUPPORTED,
        ),
        Case(
            "BMP with a bogus header size",
            b"BM" + bytes(12) + struct.pack("<I", 99) + bytes(64),
            UNSUPPORTED,
        ),
        # Looks like an image; fails to decode in the worker.
        Case("JPEG magic only", b"\xff\xd8\xff", UNSUPPORTED),
        Case("PNG signature only", b"\x89PNG\r\n\x1a\n", UNSUPPORTED),
        Case("truncated JPEG", jpeg[: len(jpeg) // 2], UNSUPPORTED),
        # libjpeg fills the rest grey and only warns: this came out done, verdict pass.
        Case(
            "JPEG cut at 60 % + end marker", jpeg[: len(jpeg) * 6 // 10] + b"\xff\xd9", UNSUPPORTED
        ),
        Case("truncated PNG", png[: len(png) // 2], UNSUPPORTED, "photo.png", "image/png"),
        Case(
            "PNG with a corrupt IDAT",
            png_file(  # big enough for a photo: its data, not its size, is what is wrong
                200,
                200,
                8,
                2,
                b"x\x9c" + bytes(np.random.default_rng(2).integers(0, 256, 400, np.uint8)),
            ),
            UNSUPPORTED,
            "photo.png",
            "image/png",
        ),
        Case(
            "PNG with a bad IHDR CRC",
            png[:29] + b"\0\0\0\0" + png[33:],
            UNSUPPORTED,
            "photo.png",
            "image/png",
        ),
        Case("truncated TIFF", encode(p, "TIFF")[:20000], UNSUPPORTED, "photo.tif", "image/tiff"),
        Case("truncated WebP", encode(p, "WEBP")[:3000], UNSUPPORTED, "photo.webp", "image/webp"),
        Case(
            "HEIC header, garbage body",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(300),
            UNSUPPORTED,
            "photo.heic",
            "image/heic",
        ),
        # Sizes.
        Case(
            "PNG declaring 30000x30000",
            png_file(30000, 30000, 8, 2, zlib.compress(bytes(64))),
            frozenset({"failed:image_too_large", "413:image_too_large"}),
            "big.png",
            "image/png",
        ),
        Case(
            "PNG bomb 40000x40000 (1-bit zeros, ~200 KB)",
            bomb_png(40000, 40000),
            frozenset({"failed:image_too_large", "413:image_too_large"}),
            "bomb.png",
            "image/png",
        ),
        Case(
            "PNG 8000x8000 zeros (64 MP > 50 MP)",
            bomb_png(8000, 8000, 8),
            frozenset({"failed:image_too_large", "413:image_too_large"}),
            "bomb.png",
            "image/png",
        ),
        Case(
            "PNG 7000x7000 zeros (49 MP, decodes)",
            bomb_png(7000, 7000, 8),
            frozenset({"failed:no_face"}),
            "flat.png",
            "image/png",
        ),
        Case(
            "1x1 PNG",
            encode(Image.new("RGB", (1, 1), "white"), "PNG"),
            frozenset({"failed:image_too_small"}),
            "dot.png",
            "image/png",
        ),
        Case(
            "1x1 GIF",
            encode(Image.new("P", (1, 1)), "GIF"),
            frozenset({"failed:image_too_small"}),
            "dot.gif",
            "image/gif",
        ),
        Case("63x63 JPEG", encode(p.resize((63, 63))), frozenset({"failed:image_too_small"})),
        # Under 160 px on the short side no usable face fits (pipeline.stages.MIN_PHOTO_SIDE_PX).
        Case(
            "159x4000 JPEG strip",
            encode(p.resize((159, 4000))),
            frozenset({"failed:image_too_small"}),
        ),
        Case("160x4000 JPEG strip", encode(p.resize((160, 4000))), frozenset({"failed:no_face"})),
        # Animations.
        Case(
            "animated GIF",
            animated("GIF", loop=0),
            frozenset({"failed:unsupported_image"}),
            "anim.gif",
            "image/gif",
        ),
        Case(
            "animated PNG",
            animated("PNG"),
            frozenset({"failed:unsupported_image"}),
            "anim.png",
            "image/png",
        ),
        Case(
            "animated WebP",
            animated("WEBP"),
            frozenset({"failed:unsupported_image"}),
            "anim.webp",
            "image/webp",
        ),
        # Metadata bombs on a picture without a face: decoding must get past them.
        Case(
            "PNG with a 16 MB iCCP bomb",
            png_file(
                land.width,
                land.height,
                8,
                2,
                zlib.compress(_raw_rgb(land), 6),
                png_chunk(b"iCCP", b"bomb\0\0" + zeros_deflated(16 << 20)),
            ),
            frozenset({"failed:no_face"}),
            "land.png",
            "image/png",
        ),
        Case(
            "PNG with a 16 MB zTXt bomb",
            png_file(
                land.width,
                land.height,
                8,
                2,
                zlib.compress(_raw_rgb(land), 6),
                png_chunk(b"zTXt", b"Comment\0\0" + zeros_deflated(16 << 20)),
            ),
            frozenset({"failed:no_face"}),
            "land.png",
            "image/png",
        ),
        # Faces: none, two, tiny.
        Case("landscape, no face", encode(land), frozenset({"failed:no_face"})),
        Case("two faces", encode(_side_by_side(p)), frozenset({"failed:multiple_faces"})),
        Case(
            "tiny face in a big canvas",
            encode(_tiny(p)),
            frozenset({"failed:no_face", "failed:face_too_small"}),
        ),
    ]
    # Valid images of one real portrait: every EXIF orientation, every awkward colour format.
    for n in range(1, 9):
        cases.append(
            Case(
                f"EXIF orientation {n}",
                _tagged(oriented(n), tag, n),
                frozenset({"done"}),
                segments=True,
            )
        )
    valid = [
        ("CMYK JPEG", encode(p.convert("CMYK"), quality=92, comment=tag.encode()), "photo.jpg"),
        ("greyscale JPEG", encode(p.convert("L"), quality=92, comment=tag.encode()), "photo.jpg"),
        ("16-bit RGB PNG", sixteen_bit_rgb_png(p) + tag.encode(), "photo.png"),
        ("palette PNG with transparency", _palette_transparent(p, tag), "photo.png"),
        (
            "JPEG with a 4 MB ICC profile",
            encode(p, quality=92, icc_profile=padded_icc(4 << 20), comment=tag.encode()),
            "photo.jpg",
        ),
    ]
    for name, data, filename in valid:
        kind = "image/png" if filename.endswith(".png") else "image/jpeg"
        cases.append(Case(name, data, frozenset({"done"}), filename, kind, segments=True))
    # Faces that are there but not usable as they are (outcome: the model's call).
    white = (255, 255, 255)
    edge = [
        ("face cut off at the edge", p.crop((int(face_w * 0.42), 0, face_w, face_h))),
        ("profile (half a face)", _half_face(p)),
        ("a little over half a face", _half_face(p, 0.55)),
        ("face rotated 60 degrees", p.rotate(60, expand=True, fillcolor=white)),
        ("face upside down", p.rotate(180)),
    ]
    refused = {
        # BlazeFace's first pass sees a face, the confirming pass on a crop around it does not.
        "profile (half a face)": {"failed:no_face"},
        # Confirmed, but the person's outline cuts through the face box, or the landmarks read
        # it as a face turned away (which a half face stands in for).
        "a little over half a face": {"failed:face_cut_off", "failed:not_frontal"},
    }
    for name, img in edge:
        expect = frozenset(refused[name]) if name in refused else FACE_OUTCOMES
        cases.append(
            Case(name, encode(img, quality=92, comment=tag.encode()), expect, segments=True)
        )
    return cases


def _raw_rgb(img: Image.Image) -> bytes:
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    rows = arr.reshape(img.height, -1)
    return b"".join(b"\0" + row.tobytes() for row in rows)


def _tagged(data: bytes, tag: str, n: int) -> bytes:
    """Unique bytes per run: a JPEG comment segment after SOI."""
    text = f"corpus {tag} orientation {n}".encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def _side_by_side(p: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (p.width * 2 + 40, p.height), (240, 240, 240))
    canvas.paste(p, (0, 0))
    canvas.paste(p.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (p.width + 40, 0))
    return canvas


def _tiny(p: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (1600, 1600), (200, 200, 200))
    canvas.paste(p.resize((48, 56)), (800, 700))
    return canvas


def _half_face(p: Image.Image, share: float = 0.48) -> Image.Image:
    """The portrait's left part, the rest white: an approximation of a face in profile."""
    out = Image.new("RGB", p.size, (255, 255, 255))
    out.paste(p.crop((0, 0, int(p.width * share), p.height)), (0, 0))
    return out


def _palette_transparent(p: Image.Image, tag: str) -> bytes:
    rgba = p.convert("RGBA")
    alpha = Image.new("L", p.size, 255)
    alpha.paste(0, (0, 0, p.width, 12))  # a transparent band along the top
    rgba.putalpha(alpha)
    pal = rgba.quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    return encode(pal, "PNG") + tag.encode()
