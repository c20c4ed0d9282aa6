"""The stage functions every front end runs: the CLI in process, and the Celery tasks one each.

analyse(data)              decode + detect, choose the face-centred region  (cheap, fails fast)
load_region(data, a)       the region image again, exactly (for a worker that only has keys)
segment(region, model)     coarse person mask                                 (the GPU stage)
refine(region, coarse)     matte: foreground colour + refined alpha, RGBA     (cached per input)
compose(matte, a, spec, bg) the photo, the cut-out and the compliance report  (per request)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from config.contracts import Report
from config.outputs import OUTPUTS
from config.outputs import check as outputs_check
from config.specs import PhotoSpec
from pipeline import geometry, matte
from pipeline.composite import Background, composite, parse_background
from pipeline.decode import decode
from pipeline.detect import FaceDetector
from pipeline.encode import SUBSAMPLING_444, Encoded, encode, encode_jpeg, encode_png
from pipeline.errors import FaceTooSmall, NoFaceError, NotFrontal
from pipeline.examine import Declared, map_landmarks
from pipeline.landmarks import FaceLandmarks, Landmarker
from pipeline.report import build_report
from pipeline.segment import Segmenter
from pipeline.sheet import make_sheet, photo_print_mm
from pipeline.types import Analysis, Face

# Decode size for detection and cropping: JPEG DCT scaling (or an integer box reduce) to a long
# side in [WORK_SIDE, 2 * WORK_SIDE), never resampled further (see decode's ``exact``).
WORK_SIDE = 1280
SEARCH_SIDE = 768  # size of the copy the upside-down and sideways readings are scored on
REGION_MIN_SHARE = 0.9  # a region below this share of its wanted size is decoded again, finer
REGION_MAX_SIDE = 1400  # the region is resized to at most this: the matte's resolution
LEVEL_FOR_MODEL_DEG = 5.0  # a head tilted more than this is levelled for the model (``segment``)
# Region around the face, in face-box heights: wide enough for every spec's frame (head down to
# ~45 % of the height), so one matte serves every spec and background.
REGION_SIDE = 2.0
REGION_ABOVE = 1.6
REGION_BELOW = 2.6
# Refused before segmentation (development corpus, eye distance in the ORIGINAL photo's pixels
# and the landmarks' fitted yaw): every photo with fewer than 40 px between the eyes is one a
# careful service refuses (128 px avatars, a masked face far away, a 200 px crop); the smallest
# acceptable face has 45.7. No acceptable face is turned more than 24 degrees; profiles and
# three-quarter views read 43-56.
MIN_EYE_DISTANCE_PX = 40
NOT_FRONTAL_YAW_DEG = 35.0
# The smallest photo that can hold a usable face whole: 40 px between the eyes is a head of
# about 135-150 px from crown to chin, which with the forehead's hair and the chin inside the
# frame needs 160 px or more. Smaller photos (the corpus's 130x97 crops) are refused as
# image_too_small, which is what is wrong with them, before a detector that cannot find a face
# in 97 rows says "no face".
MIN_PHOTO_SIDE_PX = 160
UPRIGHT_MARGIN = 0.1  # score lead an upside-down reading needs over the upright one
# Score a face found only after turning the photo needs: real faces in turned portraits score
# 0.83-0.95 here, false ones in turned still lifes (skimage's coffee) 0.60-0.80.
TURNED_MIN_SCORE = 0.85


@dataclass(frozen=True)
class Composition:
    photo: Encoded
    cutout: Encoded
    report: Report
    image: Image.Image  # the photo before encoding (RGB, or RGBA when transparent)
    sheet: Encoded | None = None  # print sheet (JPEG at 300 dpi), when asked for
    sheet_info: dict[str, Any] | None = None

    def files(self) -> list[tuple[str, str, bytes]]:
        """Every output made, as (name, file type, bytes), in `config.outputs` order: what the
        chain stores and the CLI writes."""
        made = {
            "photo": ("png" if self.photo.format == "png" else "jpg", self.photo.data),
            "sheet": None if self.sheet is None else ("jpg", self.sheet.data),
            "cutout": ("png", self.cutout.data),
            "report": ("json", json.dumps(self.report, indent=1).encode()),
        }
        files = []
        for output in OUTPUTS:
            item = made.pop(output.name, None)
            if item is not None:
                outputs_check(output.name, item[0])
                files.append((output.name, item[0], item[1]))
        if made:
            raise ValueError(f"outputs not in config.outputs: {sorted(made)}")
        return files


def analyse(
    data: bytes,
    detector: FaceDetector,
    *,
    max_pixels: int = 50_000_000,
    landmarker: Landmarker | None = None,
    min_eye_distance_px: float = MIN_EYE_DISTANCE_PX,
) -> tuple[Analysis, np.ndarray]:
    """Decode and find the one face; return the analysis and the region image (RGB uint8).

    The photo is decoded coarsely (``WORK_SIDE``): enough to find a face and place the region.
    When the face is small in a large photo, the region at that scale falls short of the
    matte's resolution (``REGION_MAX_SIDE``, or all the photo has): the photo is decoded once
    more, just fine enough, and the face mapped onto it. With a ``landmarker``, the dense face
    landmarks measured on the region image ride along in ``extra["landmarks"]`` (region pixels)
    for the examiner's checks. ``min_eye_distance_px`` is the product's smallest usable face
    (the set-up step that prepares calibration photos for the int8 model passes 0: its input
    must not move when the product's policy does).
    """
    decoded = decode(
        data, max_pixels=max_pixels, max_side=WORK_SIDE, exact=False, min_side=MIN_PHOTO_SIDE_PX
    )
    try:
        rotation, rgb, face, count = _upright(detector, np.asarray(decoded.image))
    except NoFaceError:
        detector.raise_if_close_up(np.asarray(decoded.image))
        raise
    max_side = WORK_SIDE
    x0, y0, x1, y1 = _region_box(face, rgb.shape)
    long_work = max(rgb.shape[:2])
    long_orig = max(decoded.original_size)
    if long_work < long_orig:
        have = max(x1 - x0, y1 - y0)
        want = min(REGION_MAX_SIDE, have * long_orig / long_work)
        if have < REGION_MIN_SHARE * want:
            max_side = min(long_orig, math.ceil(long_work * want / have))
            decoded = decode(data, max_pixels=max_pixels, max_side=max_side, exact=False)
            finer = np.asarray(decoded.image)
            if rotation:
                finer = np.ascontiguousarray(np.rot90(finer, rotation))
            face = face.mapped(max(finer.shape[:2]) / long_work)
            rgb = finer
            x0, y0, x1, y1 = _region_box(face, rgb.shape)
    h, w = rgb.shape[:2]
    scale = min(1.0, REGION_MAX_SIDE / max(x1 - x0, y1 - y0))
    analysis = Analysis(
        original_size=decoded.original_size,
        work_size=(w, h),
        max_side=max_side,
        region=(x0, y0, x1, y1),
        region_scale=scale,
        face=face.mapped(1.0, -x0, -y0).mapped(scale),
        face_count=count,
        format=decoded.format,
        extra={
            "touches": {"top": y0 == 0, "bottom": y1 == h, "left": x0 == 0, "right": x1 == w},
            "rotation": rotation,
            "exact": False,
        },
    )
    eyes = face.eye_distance * max(decoded.original_size) / max(rgb.shape[:2])  # original px
    if eyes < min_eye_distance_px:
        raise FaceTooSmall(
            f"The face is too small in this photo ({eyes:.0f} px between the eyes; at least "
            f"{min_eye_distance_px:.0f} are needed): use a closer or higher-resolution photo.",
            eye_distance_px=round(eyes, 1),
        )
    region = _crop(rgb, analysis, rotated=True)
    if landmarker is not None:
        lm = landmarker.measure(region, analysis.face)
        if abs(lm.yaw_deg) > NOT_FRONTAL_YAW_DEG:
            raise NotFrontal(
                f"The face is turned away from the camera (about {abs(lm.yaw_deg):.0f} degrees): "
                "use a photo taken from the front, looking straight into the camera.",
                yaw_deg=round(lm.yaw_deg, 1),
            )
        analysis.extra["landmarks"] = lm.to_dict()
    return analysis, region


def _region_box(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The face-centred region (work pixels, clipped to the photo)."""
    h, w = shape[:2]
    fh = face.height
    cx = face.eye_mid[0]
    x0 = max(0, int(math.floor(cx - REGION_SIDE * fh)))
    x1 = min(w, int(math.ceil(cx + REGION_SIDE * fh)))
    y0 = max(0, int(math.floor(face.box[1] - REGION_ABOVE * fh)))
    y1 = min(h, int(math.ceil(face.box[3] + REGION_BELOW * fh)))
    return x0, y0, x1, y1


def _upright(detector: FaceDetector, rgb: np.ndarray) -> tuple[int, np.ndarray, Face, int]:
    """The photo turned so the face is upright: (quarter turns counter-clockwise, image, face,
    face count).

    Photos whose orientation EXIF was lost (a scan, an edited or messaged photo) arrive sideways
    or upside down, and BlazeFace only finds upright faces, sometimes a weak false one in an
    inverted face. An upright face is searched first; the half turn is also tried and wins only
    with a clearly better score; quarter turns are tried when nothing upright is found.
    """
    upright_error: NoFaceError | None = None
    try:
        face, count = detector.detect(rgb)
    except NoFaceError as exc:
        face, count, upright_error = None, 0, exc
    if face is not None and abs(face.roll_deg) > 45:
        # A sideways face that BlazeFace still found: the crop region and the chin are only
        # right once the photo is turned the nearest quarter turn upright.
        turns = round(face.roll_deg / 90) % 4
        turned = np.ascontiguousarray(np.rot90(rgb, turns))
        try:
            turned_face, turned_count = detector.detect(turned)
            return turns, turned, turned_face, turned_count
        except NoFaceError:
            pass
    candidates = (2,) if face is not None else (1, 3, 2)
    # The turned readings are only scored: on a copy of at most SEARCH_SIDE px (the detector
    # looks at 128 and 256 px anyway); the winner, if any, is detected again at full size.
    h, w = rgb.shape[:2]
    k = min(1.0, SEARCH_SIDE / max(h, w))
    small = (
        cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        if k < 1.0
        else rgb
    )
    for turns in candidates:
        found = detector.detect_all(np.ascontiguousarray(np.rot90(small, turns)))
        if not found:
            continue
        best = found[0]
        if face is not None and best.score < face.score + UPRIGHT_MARGIN:
            continue
        if face is None and (best.score < TURNED_MIN_SCORE or abs(best.roll_deg) > 30):
            continue  # a turned photo of a cup or a landscape must not grow a face
        turned = np.ascontiguousarray(np.rot90(rgb, turns))
        other_face, other_count = detector.detect(turned)
        return turns, turned, other_face, other_count
    if face is None:
        raise upright_error or NoFaceError()  # the upright reading's reason
    return 0, rgb, face, count


def _crop(rgb: np.ndarray, a: Analysis, *, rotated: bool = False) -> np.ndarray:
    """The region of ``a`` from the decoded image (``rotated``: already turned upright)."""
    turns = int(a.extra.get("rotation", 0))
    if turns and not rotated:
        rgb = np.rot90(rgb, turns)
    x0, y0, x1, y1 = a.region
    crop = rgb[y0:y1, x0:x1]
    if a.region_scale < 1.0:
        crop = cv2.resize(crop, a.region_size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def load_region(data: bytes, analysis: Analysis, *, max_pixels: int = 50_000_000) -> np.ndarray:
    """The region image of ``analysis`` from the original bytes (deterministic)."""
    exact = bool(analysis.extra.get("exact", True))  # analyses stored before were exact
    decoded = decode(data, max_pixels=max_pixels, max_side=analysis.max_side, exact=exact)
    return _crop(np.asarray(decoded.image), analysis)


def segment(region: np.ndarray, segmenter: Segmenter, *, face: Face | None = None) -> np.ndarray:
    """Coarse person mask, uint8 at the region's size.

    With the ``face`` (region pixels) of a sitter whose head is tilted more than
    ``LEVEL_FOR_MODEL_DEG``, the model sees the region turned so the eye line is level and the
    mask is turned back: ISNet, like most salient-object models, learnt on upright people, and
    on a photo tilted 25-40 degrees it took a flag behind the sitter for her, or lost her
    shoulders.
    """
    if face is None or abs(face.roll_deg) <= LEVEL_FOR_MODEL_DEG:
        mask = segmenter.mask(region)
    else:
        mask = _mask_levelled(region, segmenter, face)
    return (np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8)


def _mask_levelled(region: np.ndarray, segmenter: Segmenter, face: Face) -> np.ndarray:
    """The mask of ``region`` turned about the eyes until they are level (canvas enlarged so
    nothing is cut, edges mirrored), turned back onto the region's pixels."""
    h, w = region.shape[:2]
    turn = cv2.getRotationMatrix2D(face.eye_mid, face.roll_deg, 1.0)  # content by -roll
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ turn.T
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    turn[:, 2] -= (x0, y0)
    size = (int(math.ceil(x1 - x0)), int(math.ceil(y1 - y0)))
    level = cv2.warpAffine(
        region, turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    mask = segmenter.mask(level).astype(np.float32)
    return cv2.warpAffine(
        mask,
        turn,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def refine(region: np.ndarray, coarse: np.ndarray) -> Image.Image:
    """The matte (RGBA: foreground colour + alpha) at the region's size."""
    return matte.refine(region, coarse.astype(np.float32) / 255.0)


def place_and_warp(
    matte_rgba: Image.Image | np.ndarray, analysis: Analysis, spec: PhotoSpec, *, level: bool = True
) -> tuple[geometry.Placement, np.ndarray, np.ndarray]:
    """Geometry for one spec: the placement, and the foreground and alpha in the spec's frame."""
    rgba = np.asarray(
        matte_rgba.convert("RGBA") if isinstance(matte_rgba, Image.Image) else matte_rgba
    )
    alpha = rgba[..., 3]
    touches = analysis.extra.get("touches", {})
    head = geometry.measure_head(alpha, analysis.face, level=level)
    place = geometry.place(
        head,
        spec,
        region_size=(rgba.shape[1], rgba.shape[0]),
        region_touches=touches,
        px_per_original=analysis.px_per_original,
        alpha=alpha,
    )
    # After the placement: a face too small to use says so first (its matte is rough anyway).
    geometry.check_face_visible(alpha, analysis.face)
    pad = 0
    if touches.get("bottom"):
        # The clothes continued below a photo that ends at the shoulders (see geometry.place).
        pad = int(math.ceil(geometry.BOTTOM_CONTINUE_MAX * spec.height_px / place.scale)) + 2
    fg, a = geometry.warp(rgba, place, pad_bottom=pad)
    return place, fg, a


def compose(
    matte_rgba: Image.Image | np.ndarray,
    analysis: Analysis,
    spec: PhotoSpec,
    background: str | Background,
    *,
    level: bool = True,
    sheet: str | None = "4x6",
    zero_margin: bool = False,
    declared: Declared | None = None,
) -> Composition:
    """Place, warp, composite and encode for one spec and background (and a print sheet)."""
    bg = parse_background(background) if isinstance(background, str) else background
    place, fg, a = place_and_warp(matte_rgba, analysis, spec, level=level)
    image = composite(fg, a, bg)
    photo = encode(image, spec)
    cutout = encode_png(composite(fg, a, Background.transparent()), spec.dpi, optimize=False)
    residual = (analysis.face.roll_deg - place.roll_deg) if level else analysis.face.roll_deg
    report = build_report(
        spec,
        place,
        photo,
        bg,
        face_count=analysis.face_count,
        residual_roll_deg=residual,
        eye_distance_px=analysis.face.eye_distance * place.scale,
        upscale=place.scale / analysis.px_per_original,
        face=analysis.face,
        image=image,
        alpha=a,
        landmarks=_output_landmarks(analysis, place),
        declared=declared,
    )
    sheet_enc, sheet_info = None, None
    if sheet:
        flat = image if image.mode == "RGB" else composite(fg, a, parse_background("white"))
        size_mm = photo_print_mm(spec.width_px, spec.height_px, spec.dpi, spec.size_mm)
        laid = make_sheet(flat, size_mm, sheet, zero_margin=zero_margin)
        sheet_enc = encode_jpeg(laid.image, laid.dpi, 92, subsampling=SUBSAMPLING_444)
        sheet_info = {
            "sheet": laid.sheet,
            "copies": laid.copies,
            "columns": laid.columns,
            "rows": laid.rows,
            "width_px": laid.image.width,
            "height_px": laid.image.height,
            "dpi": laid.dpi,
            "zero_margin": zero_margin,
        }
        report["sheet"] = sheet_info
    return Composition(
        photo=photo,
        cutout=cutout,
        report=report,
        image=image,
        sheet=sheet_enc,
        sheet_info=sheet_info,
    )


def _output_landmarks(analysis: Analysis, place: geometry.Placement) -> FaceLandmarks | None:
    """The analysis' landmarks (region pixels) in the output frame of ``place``."""
    stored = analysis.extra.get("landmarks")
    if not stored:
        return None
    return map_landmarks(FaceLandmarks.from_dict(stored), lambda p: geometry.to_output(place, p))


def make_photo(
    data: bytes,
    spec: PhotoSpec,
    background: str | Background,
    detector: FaceDetector,
    segmenter: Segmenter,
    *,
    level: bool = True,
    max_pixels: int = 50_000_000,
    landmarker: Landmarker | None = None,
) -> tuple[Composition, Image.Image, Analysis]:
    """The whole pipeline in process: returns the composition, the matte and the analysis."""
    analysis, region = analyse(data, detector, max_pixels=max_pixels, landmarker=landmarker)
    coarse = segment(region, segmenter, face=analysis.face)
    matte_rgba = refine(region, coarse)
    return compose(matte_rgba, analysis, spec, background, level=level), matte_rgba, analysis
