"""Decode an uploaded file into an upright 8-bit sRGB ``RGB`` image.

Untrusted bytes come in; either a clean ``Decoded`` value or one of the input errors of
``pipeline.errors`` comes out. The order of the steps matters:

1. ``sniff`` the magic bytes and open only that one Pillow plugin (never trust file names, never
   let Pillow probe e.g. EPS, which would start Ghostscript);
2. check the size *declared in the header* against ``max_pixels`` / ``min_side`` before any
   pixel is decoded; Pillow's own decompression-bomb warning is turned into an error;
3. for JPEG, ask libjpeg for a DCT-scaled decode (``draft``) when only ``max_side`` pixels are
   wanted: a 24 MP phone photo then decodes at 1/2..1/8 of the work and memory;
4. force a full load, so a truncated file fails here instead of turning grey half-way down;
   a JPEG cut and closed with an end marker decodes without an error, so its scans and its
   last block are checked too (``_check_jpeg_complete``);
5. normalise the colour mode (palette, 16-bit, CMYK, alpha) and convert an embedded ICC profile
   to sRGB; a broken profile is ignored, never fatal;
6. downscale to ``max_side`` and apply the EXIF orientation last (both cheaper on fewer pixels).
   ``exact=False`` skips the resampling to exactly ``max_side``: the long side then lies in
   ``[max_side, 2 * max_side)`` (the DCT scale, or an integer box ``reduce``), which is all the
   face detector and the region crop need, and the resample of a 24 MP photo's half-scale
   decode would cost twice the decode itself.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageFile

from pipeline.errors import (
    BadParameter,
    IdPhotoError,
    ImageTooLarge,
    ImageTooSmall,
    UnsupportedImage,
)

# Pillow plugin name for each sniffed format.
_PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heif": "HEIF",
}
# Formats whose multi-frame files are animations (TIFF pages and HEIF collections are not:
# there the primary image is used).
_ANIMATED_FORMATS = {"gif", "webp", "png"}
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
# Real profiles are a few KB (matrix/TRC) to ~3 MB (CMYK LUTs); anything larger is not worth
# parsing for an ID photo.
_MAX_ICC_BYTES = 8 * 1024 * 1024
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Decoded:
    """An upright ``RGB`` image and how it relates to the uploaded original.

    ``original_size`` is the (w, h) of the upright full-resolution original; ``scale`` is decoded
    pixels per original pixel (``image.width / original_size[0]``, at most 1), so geometry found
    on ``image`` maps back to the original by dividing by ``scale``.
    """

    image: Image.Image
    original_size: tuple[int, int]
    scale: float
    format: str


def sniff(data: bytes) -> str | None:
    """The image format from the magic bytes, or None when it is not one we accept."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if len(head) >= 18 and head[:2] == b"BM":
        dib_size = struct.unpack_from("<I", head, 14)[0]
        if dib_size in _BMP_HEADER_SIZES:
            return "bmp"
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


def decode(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    max_side: int | None = None,
    min_side: int = 64,
    exact: bool = True,
) -> Decoded:
    """Decode ``data`` into an upright ``RGB`` image, at most ``max_side`` px on its long side
    (``exact=False``: under ``2 * max_side``, without resampling; see the module notes).

    Raises ``UnsupportedImage`` (not an image, truncated, animated, undecodable),
    ``ImageTooLarge`` (declared width x height > ``max_pixels``) or ``ImageTooSmall`` (smaller
    side < ``min_side``).
    """
    if max_side is not None and max_side < 1:
        raise BadParameter(f"max_side must be positive, got {max_side}.", max_side=max_side)
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedImage(
            "The file is not a supported image (JPEG, PNG, WebP, HEIC, GIF, BMP or TIFF)."
        )
    if fmt == "heif" and not _heif_available():
        raise UnsupportedImage("HEIC/HEIF images are not supported on this server.", format=fmt)

    with warnings.catch_warnings():
        # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; make it fail instead.
        # (catch_warnings is process-wide: fine for prefork workers and the CLI.)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, fmt, max_pixels)
        raw_w, raw_h = img.size
        if raw_w * raw_h > max_pixels:
            raise _too_large(raw_w, raw_h, max_pixels)
        if min(raw_w, raw_h) < min_side:
            raise ImageTooSmall(
                f"The image is {raw_w}x{raw_h} px; its smaller side must be at least "
                f"{min_side} px.",
                width=raw_w,
                height=raw_h,
                min_side=min_side,
            )
        if fmt in _ANIMATED_FORMATS and _is_animated(img):
            raise UnsupportedImage("Animated images are not supported.", format=fmt)
        if fmt == "jpeg" and max_side is not None and max(raw_w, raw_h) > max_side:
            # Request only the long side; draft picks the largest DCT scale 1/2, 1/4, 1/8 that
            # keeps it >= max_side. Must run before load() and before any transpose.
            want = (max_side, 1) if raw_w >= raw_h else (1, max_side)
            img.draft("RGB", want)
        _load(img, fmt)
        if fmt == "jpeg":
            _check_jpeg_complete(data, img, raw_w)
    # Read only after load(): a PNG may carry eXIf after IDAT, and Pillow would load to find it.
    orientation = _orientation(img)
    up_w, up_h = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)

    icc = img.info.get("icc_profile")
    rgb = _to_rgb(img, icc if isinstance(icc, bytes) else None)

    if max_side is not None and max(rgb.size) > max_side:
        if exact:
            rgb = _downscale(rgb, (raw_w, raw_h), max_side)
        elif max(rgb.size) >= 2 * max_side:
            rgb = rgb.reduce(max(rgb.size) // max_side)  # integer box filter: long side in
            # [max_side, 2 * max_side)
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        rgb = rgb.transpose(method)
    if isinstance(rgb, ImageFile.ImageFile):
        # Nothing was resampled or converted: detach from the file object (and the upload's
        # bytes it still references) by copying the decoded pixels.
        rgb = rgb.copy()
    rgb.info = {}
    return Decoded(
        image=rgb,
        original_size=(up_w, up_h),
        scale=rgb.width / up_w,
        format=fmt,
    )


# --- opening and loading ----------------------------------------------------------------------


@functools.cache
def _heif_available() -> bool:
    """Register pillow-heif's opener once, on first use; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    try:
        pillow_heif.register_heif_opener()
    except Exception:  # a broken native build is the same as a missing one
        return False
    return True


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width, height = _probe_size(data, fmt) or (None, None)
        raise _too_large(width, height, max_pixels) from None
    except MemoryError:
        raise
    except ValueError as exc:
        # Pillow refuses a PNG whose compressed metadata (iCCP, zTXt, iTXt) inflates past its
        # limits. The pixels are fine: drop those ancillary chunks and try once more.
        text = str(exc).lower()
        if fmt == "png" and ("too large" in text or "memory" in text):
            stripped = _strip_png_chunks(data, {b"iCCP", b"tEXt", b"zTXt", b"iTXt"})
            if stripped is not None and stripped != data:
                return _open(stripped, fmt, max_pixels)
        raise _unsupported(fmt, exc) from None
    except Exception as exc:
        raise _unsupported(fmt, exc) from None


def _load(img: Image.Image, fmt: str) -> None:
    """Decode every pixel now; truncated or corrupt data raises here, never later."""
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(img.width, img.height, None) from None
    except MemoryError:
        raise
    except IdPhotoError:
        raise
    except Exception as exc:
        raise _unsupported(fmt, exc) from None


# A marker in entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a restart marker
# or another fill 0xFF.
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _check_jpeg_complete(data: bytes, img: Image.Image, raw_w: int) -> None:
    """Refuse a JPEG whose scan data stops early, e.g. a cut upload closed with an end marker.

    libjpeg only *warns* when the entropy-coded data runs into a marker too soon ("premature
    end of data segment") and Pillow drops that warning: the missing blocks decode with all
    coefficients zero, i.e. exact mid-grey, and a photo cut at 60 % came out ``done`` with the
    body missing. Two checks without a second decoder: the scans present must cover every
    component (and, progressive, every coefficient down to the last bit), and the last block
    of a sequential file must not be that exact grey fill on an otherwise non-grey image.
    """
    scans = _jpeg_scans(data)
    if scans is None:
        return  # not parseable here; libjpeg decoded it, nothing more to say
    progressive, components, sos = scans
    if not sos:
        raise _truncated("it has no scan data")
    if progressive:
        done: dict[int, set[int]] = {c: set() for c in components}
        for ids, ss, se, _ah, al in sos:
            if al == 0:
                for c in ids:
                    done.setdefault(c, set()).update(range(ss, se + 1))
        if any(len(done[c]) < 64 for c in components):
            raise _truncated("its progressive scans stop before the image is complete")
        return
    seen = {c for ids, *_ in sos for c in ids}
    if not set(components) <= seen:
        raise _truncated("a colour component has no scan")
    if _ends_in_grey_fill(img, raw_w):
        raise _truncated("its scan data stops before the last block")


def _jpeg_scans(
    data: bytes,
) -> tuple[bool, list[int], list[tuple[list[int], int, int, int, int]]] | None:
    """(progressive, component ids, scans as (ids, Ss, Se, Ah, Al)) from the marker structure."""
    progressive = False
    components: list[int] = []
    sos: list[tuple[list[int], int, int, int, int]] = []
    i, n = 2, len(data)
    try:
        while i + 4 <= n:
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:
                i += 1
                continue
            if marker == 0xD9:
                break
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:
                i += 2
                continue
            length = struct.unpack_from(">H", data, i + 2)[0]
            seg = data[i + 4 : i + 2 + length]
            if marker in _JPEG_SOF and not components:
                progressive = marker in _JPEG_PROGRESSIVE
                components = [seg[6 + 3 * k] for k in range(seg[5])]
            elif marker == 0xDA:
                count = seg[0]
                ids = [seg[1 + 2 * k] for k in range(count)]
                ss, se, a = seg[1 + 2 * count], seg[2 + 2 * count], seg[3 + 2 * count]
                sos.append((ids, ss, min(se, 63), a >> 4, a & 0x0F))
                found = _JPEG_MARKER.search(data, i + 2 + length)
                if found is None:
                    break
                i = found.start()
                continue
            i += 2 + length
    except (struct.error, IndexError):
        return None
    return progressive, components, sos


def _ends_in_grey_fill(img: Image.Image, raw_w: int) -> bool:
    """True when the bottom-right block is libjpeg's zero-coefficient fill (exactly 128 in every
    channel) and the image is not flat grey throughout (a flat grey file is legitimate).

    Only the block's bottom rows are looked at: chroma upsampling blends its top rows with the
    (decoded) row of blocks above."""
    if img.mode not in ("RGB", "L", "CMYK"):
        return False
    block = max(1, (8 * img.width) // max(raw_w, 1))
    arr = np.asarray(img)
    corner = arr[-max(1, block // 4) :, -block:]
    fill = 127 if img.mode == "CMYK" and corner.size and int(corner.flat[0]) == 127 else 128
    if not np.all(corner == fill):
        return False
    return not np.all(arr == fill)


def _truncated(why: str) -> UnsupportedImage:
    return UnsupportedImage(
        f"The JPEG file is truncated: {why}. Upload the whole file again.", format="jpeg"
    )


def _unsupported(fmt: str, exc: BaseException) -> UnsupportedImage:
    return UnsupportedImage(
        f"The {fmt.upper()} file is truncated or corrupt and cannot be decoded ({exc}).",
        format=fmt,
    )


def _too_large(width: int | None, height: int | None, max_pixels: int | None) -> ImageTooLarge:
    if width and height:
        what = f"{width}x{height} px ({width * height / 1e6:.1f} MP)"
    else:
        what = "too many pixels"
    limit = f"; the limit is {max_pixels / 1e6:g} MP" if max_pixels else ""
    return ImageTooLarge(
        f"The image is {what}{limit}.", width=width, height=height, max_pixels=max_pixels
    )


def _is_animated(img: Image.Image) -> bool:
    """True for more than one frame; ``is_animated`` looks at frame 2 only, unlike n_frames."""
    try:
        return bool(getattr(img, "is_animated", False))
    except Exception as exc:
        raise _unsupported(img.format or "image", exc) from None


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF must not reject the photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _probe_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height from the header, for the error details when Pillow refuses to open."""
    try:
        if fmt == "png":
            return struct.unpack_from(">II", data, 16)
        if fmt == "gif":
            return struct.unpack_from("<HH", data, 6)
        if fmt == "bmp":
            if struct.unpack_from("<I", data, 14)[0] == 12:
                return struct.unpack_from("<HH", data, 18)
            w, h = struct.unpack_from("<ii", data, 18)
            return (abs(w), abs(h))
        if fmt == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return (w, h)
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            if chunk == b"VP8 ":
                w, h = struct.unpack_from("<HH", data, 26)
                return (w & 0x3FFF, h & 0x3FFF)
        if fmt == "jpeg":
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    sof = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in sof:
            h, w = struct.unpack_from(">HH", data, i + 5)
            return (w, h)
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            i += 2
            continue
        i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    return None


def _strip_png_chunks(data: bytes, drop: set[bytes]) -> bytes | None:
    out = [data[:8]]
    i = 8
    while i + 12 <= len(data):
        length = struct.unpack_from(">I", data, i)[0]
        ctype = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            return None
        if ctype not in drop:
            out.append(data[i:end])
        i = end
        if ctype == b"IEND":
            break
    return b"".join(out)


# --- colour -----------------------------------------------------------------------------------


def _to_rgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Any Pillow mode -> ``RGB`` in sRGB; alpha is flattened onto white."""
    mode = img.mode
    if mode == "1":
        img = img.convert("L")
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in ("RGBa", "RGBX"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode.startswith("I") or mode == "F":
        img = _high_bit_depth_to_l(img)
    elif mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise UnsupportedImage(f"Unsupported colour mode {mode!r} ({exc}).") from None

    if icc:
        img = _apply_icc(img, icc)

    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, _WHITE)
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    if img.mode != "RGB":
        # Pillow's CMYK -> RGB is the naive complement; used only without a usable profile.
        return img.convert("RGB")
    return img


def _high_bit_depth_to_l(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer and float greyscale -> 8-bit ``L``, rescaled rather than clipped."""
    arr = np.asarray(img).astype(np.float32)
    if img.mode == "F":
        finite = arr[np.isfinite(arr)]
        hi = float(finite.max()) if finite.size else 1.0
        lo = float(finite.min()) if finite.size else 0.0
        if lo >= 0.0 and hi <= 1.0:
            arr = arr * 255.0
        elif lo < 0.0 or hi > 65535.0:
            arr = (arr - lo) * (255.0 / max(hi - lo, 1e-12))
        elif hi > 255.0:
            arr = arr / 257.0
        arr = np.nan_to_num(arr, nan=0.0)
    elif img.mode == "I":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            arr = (arr - lo) * (255.0 / max(hi - lo, 1))
        else:
            arr = arr / 257.0  # 16-bit samples held in a 32-bit mode (e.g. older 16-bit PNGs)
    else:  # I;16, I;16B, I;16L, I;16N
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


_COLOUR_SPACE_MODES = {"RGB": ("RGB", "RGBA"), "CMYK": ("CMYK",), "GRAY": ("L", "LA")}


def _apply_icc(img: Image.Image, icc: bytes) -> Image.Image:
    """Convert to sRGB through the embedded profile; on any problem return ``img`` unchanged."""
    if len(icc) > _MAX_ICC_BYTES:
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = src.profile.xcolor_space.strip().upper()
        if img.mode not in _COLOUR_SPACE_MODES.get(space, ()):
            return img  # profile does not describe these samples
        if space == "RGB" and "srgb" in (src.profile.profile_description or "").lower():
            return img  # already sRGB: skip a near-identity transform
        alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
        colour = img.convert(img.mode[:-1]) if alpha is not None else img
        out = ImageCms.profileToProfile(colour, src, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError, zlib.error):
        return img
    if out is None:
        return img
    if alpha is not None:
        out = out.convert("RGBA")
        out.putalpha(alpha)
    return out


def _downscale(img: Image.Image, raw_size: tuple[int, int], max_side: int) -> Image.Image:
    """Resize so the long side is exactly ``max_side``, keeping the *original* aspect ratio.

    The target is computed from the original size (DCT-scaled sizes are rounded up per axis).
    ``reducing_gap`` makes Pillow first ``reduce()`` by an integer factor, then resample with
    Lanczos, which is both fast and alias-free.
    """
    raw_w, raw_h = raw_size
    if raw_w >= raw_h:
        size = (max_side, max(1, round(raw_h * max_side / raw_w)))
    else:
        size = (max(1, round(raw_w * max_side / raw_h)), max_side)
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
