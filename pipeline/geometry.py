"""Geometry: where the head goes in the spec's frame, and the warp that puts it there.

Measurements, in the region image levelled by the eye roll:
- chin: the bottom of the BlazeFace box (within a few pixels of the chin on frontal portraits);
- crown: the top of the matte (hair included) over the central columns of the face;
- eye line: the midpoint of the two eye keypoints.

The placement is searched: every head height across the spec's head band (kept a margin
inside it) and, for each, every crown position the other bands allow (eye line, top margin, a
little room above the hair and below the chin); the one that needs the least of the photo below
its bottom edge wins, the one nearest the middle of the bands among equals. Below a bottom edge
that cuts the clothes, the clothes are continued for a bounded distance (``continue_bottom``);
beyond it the photo is refused as too close, with how much is missing. The photo never shows
the head cut off at the top, and no stray hair touches the top edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from config.specs import PhotoSpec
from pipeline.errors import FaceCutOff, FaceTooSmall, HeadCutOff, SpecUnmet, TooClose
from pipeline.types import Face

MAX_UPSCALE = 3.0  # output px per original px beyond which detail is invented, not kept
# How far (share of H) the frame may run below a photo whose bottom edge cuts the clothes: the
# clothes are continued that far (``continue_bottom``). On the development corpus (36 photos
# labelled ok, 8 specs, with the band margins above) the least continuation a placement needs
# is 0 for 27 photos, at most 0.06 H for all but the seven 642x480 webcam frames of one package,
# and up to 0.2004 H for those (US passport 0.04-0.2004, China ID card 0.05-0.18: both want much
# room below the chin). Up to BOTTOM_CONTINUE_QUIET it does not show; beyond it the report asks
# for a look (review), and beyond BOTTOM_CONTINUE_MAX the photo is refused as too close (0.20
# refused one of them for 0.1 mm).
BOTTOM_CONTINUE_MAX = 0.21
BOTTOM_CONTINUE_QUIET = 0.08
MIN_TOP_MARGIN = 0.02  # of H, when the spec sets none: hair never touches the top edge
MIN_BELOW_CHIN = 0.06  # of H: some neck and shoulders below the chin
# The crown sits 1.1-1.6 eye-to-chin distances above the eye line on our portraits (hair or
# hat), a bald skull still about one. Eyes closer than this to a photo's top edge mean the
# head is cut off there, even when the matte, having dropped the cut-off part, says otherwise.
EYES_MIN_BELOW_TOP = 0.75  # eye-to-chin distances
# Matte level that counts as a strand of hair: faint haze shows on a plain background too (the
# corpus evaluation's independent check sees 16 levels on the top rows). At 0.25, 24 of the ok
# and either corpus photos on ICAO/US still had haze on the top edge; at 0.03 one, and no photo
# more was refused for it.
HAIR_ALPHA = 0.03
HAIR_HALF_WIDTH = 1.0  # face widths either side of the eyes searched for strands above the crown
HAIR_CLEAR_PX = 2  # output rows kept clear above the highest strand (plus MIN_TOP_MARGIN / 4)


@dataclass(frozen=True)
class HeadMeasure:
    crown_y: float
    chin_y: float
    eye_mid: tuple[float, float]
    roll_deg: float  # the rotation applied (0 when not levelling)
    # The highest row with any of the person above the shoulders (stray hairs, a ponytail): the
    # crown is measured over the central columns, but nothing may touch the photo's top edge.
    hair_top_y: float | None = None

    @property
    def head(self) -> float:
        return self.chin_y - self.crown_y


@dataclass(frozen=True)
class Placement:
    """Output frame <- region image: p_region = eye_mid + R(roll) (p_out - anchor) / scale."""

    width: int
    height: int
    scale: float  # output px per region px
    anchor: tuple[float, float]  # where the eye midpoint lands in the output
    roll_deg: float
    eye_mid: tuple[float, float]
    crown_y: float  # output px
    chin_y: float  # output px
    eye_y: float  # output px
    continued_px: float = 0.0  # output rows of clothes continued below the photo's bottom edge

    def matrix(self) -> np.ndarray:
        """2x3 affine matrix mapping OUTPUT pixel centres to REGION coordinates."""
        t = math.radians(self.roll_deg)
        c, s = math.cos(t), math.sin(t)
        k = 1.0 / self.scale
        ax, ay = self.anchor
        ex, ey = self.eye_mid
        # p_r = e + k * R (p_o - a), with R rotating the levelled frame back by +roll
        a = np.array([[c * k, -s * k], [s * k, c * k]])
        b = np.array([ex, ey]) - a @ np.array([ax, ay])
        return np.hstack([a, b[:, None]])


def _rotate_points(pts: np.ndarray, centre: tuple[float, float], deg: float) -> np.ndarray:
    """Rotate points by -deg about centre (levels a line that sits at +deg)."""
    t = math.radians(-deg)
    c, s = math.cos(t), math.sin(t)
    d = pts - np.asarray(centre)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], 1) + np.asarray(centre)


def measure_head(alpha: np.ndarray, face: Face, *, level: bool = True) -> HeadMeasure:
    """Crown, chin and eye line in the levelled frame of the region image."""
    roll = face.roll_deg if level else 0.0
    eye_mid = face.eye_mid
    h, w = alpha.shape
    if abs(roll) > 0.05:
        rot = cv2.getRotationMatrix2D(eye_mid, roll, 1.0)  # rotates content by -roll on screen
        lev = cv2.warpAffine(alpha, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    else:
        lev = alpha
    x0, y0, x1, y1 = face.box
    corners = _rotate_points(np.array([[x0, y1], [x1, y1], [(x0 + x1) / 2, y1]]), eye_mid, roll)
    chin_y = float(corners[2, 1])
    # Central columns of the face: hair over the crown, not hats' brims or raised hands.
    cx = eye_mid[0]
    half = 0.3 * face.width
    c0, c1 = max(0, int(cx - half)), min(w, int(cx + half) + 1)
    cols = lev[: int(max(1, chin_y)), c0:c1] >= 0.5 * (255 if lev.dtype == np.uint8 else 1.0)
    frac = cols.mean(axis=1) if cols.size else np.zeros(1)
    rows = np.nonzero(frac >= 0.15)[0]
    crown_y = float(rows[0]) if len(rows) else float(y0 - 0.6 * face.height)
    # Any of the person (alpha >= HAIR_ALPHA) within HAIR_HALF_WIDTH face widths of the eyes.
    h0, h1 = (
        max(0, int(cx - HAIR_HALF_WIDTH * face.width)),
        min(w, int(cx + HAIR_HALF_WIDTH * face.width) + 1),
    )
    strands = lev[: int(max(1, crown_y + 1)), h0:h1] >= HAIR_ALPHA * (
        255 if lev.dtype == np.uint8 else 1.0
    )
    hit = np.nonzero(strands.any(axis=1))[0]
    hair_top = float(hit[0]) if len(hit) else crown_y
    return HeadMeasure(
        crown_y=crown_y, chin_y=chin_y, eye_mid=eye_mid, roll_deg=roll, hair_top_y=hair_top
    )


FACE_VISIBLE_MIN = 0.85  # share of the face's inner box the person's matte must cover
FACE_INNER = 0.15  # the face box shrunk by this share on each side: eyes, nose, mouth, cheeks


def face_visible(alpha: np.ndarray, face: Face) -> float:
    """Share (0-1) of the face's inner box that the matte marks as the person.

    A real face is foreground all over its inner box (~1.0). A face half covered, half erased
    or pasted half onto a background (a profile approximation, an edited photo) leaves part of
    its box background, although BlazeFace still finds it and guesses the hidden keypoints.
    """
    x0, y0, x1, y1 = face.box
    dx, dy = FACE_INNER * (x1 - x0), FACE_INNER * (y1 - y0)
    h, w = alpha.shape
    c0, c1 = max(0, int(round(x0 + dx))), min(w, int(round(x1 - dx)))
    r0, r1 = max(0, int(round(y0 + dy))), min(h, int(round(y1 - dy)))
    if c1 <= c0 or r1 <= r0:
        return 0.0
    full = 255.0 if alpha.dtype == np.uint8 else 1.0
    # area outside the photo counts as not visible
    inner_area = max(1.0, (x1 - x0 - 2 * dx) * (y1 - y0 - 2 * dy))
    covered = float((alpha[r0:r1, c0:c1] >= 0.5 * full).sum())
    return min(1.0, covered / inner_area)


FACE_SIDE_MIN = -0.10  # how far (share of the face box's width) the outline may cut into it


def face_sides(alpha: np.ndarray, face: Face) -> tuple[float, float]:
    """Where the person's outline lies beside the face, in shares of the face box's width:
    the median over the rows from the eyes to the mouth of how far the outline is outside the
    box on the image's left and right (negative: inside the box).

    A whole face's outline runs at or beyond its box at cheek height (cheeks, ears, hair: 0.00
    to 0.08 on our portraits). A face cut along its length (half a face pasted on a background,
    a stand-in for a profile) keeps a box over the whole face, as BlazeFace guesses the hidden
    half, but the outline cuts through it (-0.13 to -0.35).
    """
    h, w = alpha.shape
    x0, _, x1, _ = face.box
    width = max(1.0, x1 - x0)
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    top = int(round((ry + ly) / 2))
    bottom = int(round(face.keypoints["mouth"][1]))
    cx = int(round((rx + lx) / 2))
    if not (0 <= cx < w):
        return (-1.0, -1.0)
    full = 255 if alpha.dtype == np.uint8 else 1.0
    lefts, rights = [], []
    for y in range(max(0, top), min(h, bottom + 1)):
        row = alpha[y] >= 0.5 * full
        if not row[cx]:
            continue
        outside = np.flatnonzero(~row)
        before = outside[outside < cx]
        after = outside[outside > cx]
        left = (before[-1] + 1) if len(before) else 0
        right = (after[0] - 1) if len(after) else w - 1
        lefts.append((x0 - left) / width)
        rights.append((right - x1) / width)
    if not lefts:
        return (-1.0, -1.0)
    return float(np.median(lefts)), float(np.median(rights))


def check_face_visible(alpha: np.ndarray, face: Face) -> float:
    """``face_visible``, or ``FaceCutOff`` when too little of the face is the person or the
    person's outline cuts through the face (``face_sides``)."""
    share = face_visible(alpha, face)
    sides = face_sides(alpha, face)
    if share < FACE_VISIBLE_MIN or min(sides) < FACE_SIDE_MIN:
        raise FaceCutOff(
            "The face is not fully visible (part of it is covered, cut away or blends into the "
            "background); use a photo that shows the whole face.",
            visible=round(share, 2),
            sides=[round(v, 2) for v in sides],
        )
    return share


# The placement search: head heights across the spec's band, and for each the crown positions
# the bands allow, in STEPS steps each. The search keeps inside each band by a margin: the chin
# (the bottom of BlazeFace's box) and the crown are measured to about 2 % of H (an examiner's
# landmark chin on the written file reads the head 1-2 % of H taller on open-jawed smiles), so
# a photo placed at a band's very end may measure outside it.
HEAD_MARGIN = 0.02  # of H, at most a quarter of the band
EYE_MARGIN = 0.01
HEAD_STEPS = 12
OFFSET_STEPS = 12


@dataclass(frozen=True)
class _Candidate:
    frac: float  # head height / H
    t: float  # crown row in the output
    bottom_missing: float  # output rows the frame runs below the person's cut-off bottom edge
    offcentre: float  # distance from the preferred layout (0 = middle of every band)


def place(
    head: HeadMeasure,
    spec: PhotoSpec,
    *,
    region_size: tuple[int, int],
    region_touches: dict[str, bool],
    px_per_original: float,
    alpha: np.ndarray | None = None,
) -> Placement:
    """Choose scale and offset so the head meets every band of ``spec``.

    ``region_touches`` says which region edges are the photo's own edges (top/bottom/left/right):
    beyond those there is no photo. Above the head and beside the person the background simply
    continues; below, where the photo's bottom edge cuts through the clothes, the clothes can be
    continued for at most ``BOTTOM_CONTINUE_MAX`` of H (``warp``). Every head height and crown
    position the bands allow is searched: a placement that needs nothing beyond the photo wins,
    the one nearest the middle of the bands among those; else the one that needs the least
    room below the chin, if that is within the limit; else ``TooClose`` says how much is missing.
    """
    W, H = spec.width_px, spec.height_px
    if head.head <= 1:
        raise SpecUnmet("The head could not be measured.", reason="head_not_measured")
    eyes_below_top = head.eye_mid[1] / max(1.0, head.chin_y - head.eye_mid[1])
    if region_touches.get("top") and (head.crown_y <= 1.0 or eyes_below_top < EYES_MIN_BELOW_TOP):
        raise HeadCutOff(
            "The top of the head is cut off by the top edge of the photo; "
            "leave some space above the hair."
        )
    eye_below_crown = head.eye_mid[1] - head.crown_y
    lo, hi = _inner(spec.head, HEAD_MARGIN)
    upscale_at_lo = lo * H / head.head / px_per_original
    if upscale_at_lo > MAX_UPSCALE:
        raise FaceTooSmall(
            f"The face is too small in this photo: it would have to be enlarged "
            f"{upscale_at_lo:.1f}x (at most {MAX_UPSCALE:.0f}x keeps it sharp). "
            "Use a closer or higher-resolution photo.",
            upscale=round(upscale_at_lo, 2),
        )
    cut = _bottom_cut(alpha, region_touches)
    best: _Candidate | None = None
    for i in range(HEAD_STEPS + 1):
        frac = lo + (hi - lo) * i / HEAD_STEPS
        s = frac * H / head.head
        if s / px_per_original > MAX_UPSCALE:
            continue
        band = _vertical_band(spec, s, head, eye_below_crown)
        if band is None:
            continue
        lo_t, hi_t, prefer = band
        for j in range(OFFSET_STEPS + 1):
            t = lo_t + (hi_t - lo_t) * j / OFFSET_STEPS
            cand = _candidate(head, spec, frac, s, t, prefer, region_size, cut, eye_below_crown)
            if best is None or _better(cand, best):
                best = cand
        # the preferred offset itself, exactly
        cand = _candidate(head, spec, frac, s, prefer, prefer, region_size, cut, eye_below_crown)
        if best is None or _better(cand, best):
            best = cand
    if best is None:
        bare = replace(head, hair_top_y=head.crown_y)
        if any(
            _vertical_band(
                spec, (lo + (hi - lo) * i / HEAD_STEPS) * H / head.head, bare, eye_below_crown
            )
            for i in range(HEAD_STEPS + 1)
        ):
            raise SpecUnmet(
                "The hair stands out too far above the head to fit this document's frame "
                "without touching its top edge: smooth or tie the hair back, or choose a "
                "document with a smaller head size.",
                reason="hair_above_frame",
            )
        raise SpecUnmet(
            f"The spec {spec.id} cannot be met by this photo (its bands leave no room for "
            "this head's proportions).",
            reason="geometry",
        )
    if best.bottom_missing > BOTTOM_CONTINUE_MAX * H:
        short = best.bottom_missing - BOTTOM_CONTINUE_MAX * H
        raise TooClose(
            "The photo is cropped too tightly below the chin for this spec: "
            f"{_missing_words(short, spec)} more of the neck and shoulders is needed below "
            "the chin. Step back or hold the camera a little lower, so that the photo shows "
            "the shoulders.",
            missing_px=round(short),
            missing_mm=round(short * 25.4 / spec.dpi, 1) if spec.size_mm else None,
        )
    s = best.frac * H / head.head
    return Placement(
        width=W,
        height=H,
        scale=s,
        anchor=(W / 2.0, best.t + s * eye_below_crown),
        roll_deg=head.roll_deg,
        eye_mid=head.eye_mid,
        crown_y=best.t,
        chin_y=best.t + s * head.head,
        eye_y=best.t + s * eye_below_crown,
        continued_px=best.bottom_missing,
    )


def _missing_words(rows: float, spec: PhotoSpec) -> str:
    if spec.size_mm:
        return f"{max(0.1, rows * 25.4 / spec.dpi):.1f} mm of the printed photo"
    return f"{max(1.0, 100 * rows / spec.height_px):.0f} % of the photo's height"


def _better(a: _Candidate, b: _Candidate) -> bool:
    """Least room beyond the photo below the chin (to the output pixel), then nearest the
    middle of the bands. Room missing at the sides is not a reason to move the head (the
    background continues there): ranking by it made two readings of one photo (EXIF-turned
    copies) land at different head sizes."""
    return (round(a.bottom_missing), a.offcentre) < (round(b.bottom_missing), b.offcentre)


def _bottom_cut(alpha: np.ndarray | None, touches: dict[str, bool]) -> bool:
    """Whether the photo's own bottom edge cuts through the person (else the background just
    continues below)."""
    if not touches.get("bottom"):
        return False
    if alpha is None:
        return True
    full = 128 if alpha.dtype == np.uint8 else 0.5
    return bool((alpha[-1] >= full).mean() >= 0.02)


def _candidate(
    head: HeadMeasure,
    spec: PhotoSpec,
    frac: float,
    s: float,
    t: float,
    prefer: float,
    region_size: tuple[int, int],
    cut: bool,
    eye_below_crown: float,
) -> _Candidate:
    W, H = spec.width_px, spec.height_px
    p = Placement(
        width=W,
        height=H,
        scale=s,
        anchor=(W / 2.0, t + s * eye_below_crown),
        roll_deg=head.roll_deg,
        eye_mid=head.eye_mid,
        crown_y=t,
        chin_y=t + s * head.head,
        eye_y=t + s * eye_below_crown,
    )
    m = p.matrix()
    below = max((m @ np.array([x, float(H), 1.0]))[1] for x in (0.0, float(W)))
    bottom = max(0.0, float(below) - region_size[1]) * s if cut else 0.0
    lo, hi = spec.head
    mid = (lo + hi) / 2
    offcentre = abs(frac - mid) / max(1e-6, hi - lo) + abs(t - prefer) / H * 4
    return _Candidate(frac, t, bottom, offcentre)


def _inner(band: tuple[float, float], margin: float) -> tuple[float, float]:
    lo, hi = band
    m = min(margin, (hi - lo) / 4)
    return lo + m, hi - m


def _vertical_band(
    spec: PhotoSpec, s: float, head: HeadMeasure, eye_below_crown: float
) -> tuple[float, float, float] | None:
    """Crown rows in the output (lo_t, hi_t) meeting every vertical band at scale ``s``, and
    the preferred one; None when the bands exclude each other."""
    H = spec.height_px
    head_out = s * head.head
    eye_off = s * eye_below_crown
    lo_t = MIN_TOP_MARGIN * H
    hi_t = H - head_out - MIN_BELOW_CHIN * H
    # Stray hairs above the crown stay clear of the top edge too.
    strands = s * max(
        0.0, head.crown_y - (head.hair_top_y if head.hair_top_y is not None else head.crown_y)
    )
    lo_t = max(lo_t, strands + HAIR_CLEAR_PX + MIN_TOP_MARGIN * H / 4)
    prefer = None
    if spec.top_margin:
        m_lo, m_hi = spec.top_margin
        lo_t, hi_t = max(lo_t, m_lo * H), min(hi_t, m_hi * H)
        prefer = (m_lo + m_hi) / 2 * H
    if spec.eye:
        e_lo, e_hi = _inner(spec.eye, EYE_MARGIN)
        lo_t = max(lo_t, H - e_hi * H - eye_off)
        hi_t = min(hi_t, H - e_lo * H - eye_off)
        prefer = H - (e_lo + e_hi) / 2 * H - eye_off
    if prefer is None:
        prefer = 0.4 * (H - head_out)
    if lo_t > hi_t + 1e-6:
        return None
    hi_t = max(lo_t, hi_t)
    return lo_t, hi_t, float(min(max(prefer, lo_t), hi_t))


CONTINUE_FAR_BLUR = 25  # row smoothing at a continuation's end: sigma = width / this
CONTINUE_TEXTURE_ROWS = 0.3  # share of a continuation over which the fine texture fades out


def continue_bottom(rgba: np.ndarray, rows: int) -> np.ndarray:
    """``rgba`` (RGBA uint8) with ``rows`` more rows below that continue the clothes.

    The colour carried down is the bottom rows' colour smoothed along the row (no per-pixel
    streaks, as replicated rows drew) and averaged over a few rows; the fine texture of the
    clothes (what a 3 px blur removes) is mirrored about the edge and fades out over the first
    ``CONTINUE_TEXTURE_ROWS`` of the continuation, so the join shows no seam. Mirroring whole
    rows brought the chin's outline back upside down below it. The outline (alpha) runs
    straight on, as a torso does.
    """
    h, w = rgba.shape[:2]
    rgb = rgba[..., :3].astype(np.float32)
    k = max(3, min(h, max(6, rows // 8)))
    mean = rgb[h - k :].mean(axis=0, keepdims=True)
    # Smoothed along the row, more the further down: a column's own colour carried straight
    # down draws streaks; far from the edge only the broad shading of the clothes is left.
    near = cv2.GaussianBlur(mean, (0, 0), sigmaX=max(2.0, w / 150), sigmaY=0.1)
    far = cv2.GaussianBlur(mean, (0, 0), sigmaX=max(4.0, w / CONTINUE_FAR_BLUR), sigmaY=0.1)
    depth = (np.arange(1, rows + 1, dtype=np.float32) / rows)[:, None, None]
    base = near * (1 - depth) + far * depth
    low = cv2.GaussianBlur(rgb, (0, 0), 3.0)
    detail = cv2.copyMakeBorder(rgb - low, 0, rows, 0, 0, cv2.BORDER_REFLECT)[h:]
    fade_len = max(1.0, CONTINUE_TEXTURE_ROWS * rows)
    fade = np.clip(1.0 - np.arange(1, rows + 1, dtype=np.float32) / fade_len, 0, 1)
    # the join: start from the last row's own low-pass colour, reach ``base`` within fade_len
    last_low = low[-1:]
    colour = base + (last_low - base) * fade[:, None, None] + detail * fade[:, None, None]
    alpha = np.repeat(rgba[-1:, :, 3:4], rows, axis=0)
    tail = np.concatenate([np.clip(colour + 0.5, 0, 255).astype(np.uint8), alpha], axis=2)
    return np.concatenate([rgba, tail], axis=0)


def warp(matte: np.ndarray, p: Placement, *, pad_bottom: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Warp an RGBA uint8 matte into the output frame.

    Returns (foreground RGB uint8, alpha float32 in [0,1]) at (H, W). Colour is warped
    premultiplied so that transparent pixels do not bleed their colour into the edges.
    Large reductions are done by area averaging first, then a cubic warp of the remainder.
    """
    rgba = matte
    m = p.matrix()
    if pad_bottom > 0:
        rgba = continue_bottom(rgba, pad_bottom)
    pre_scale = 1.0
    if p.scale < 0.66:
        pre_scale = min(1.0, p.scale * 1.25)
        small = (max(1, round(rgba.shape[1] * pre_scale)), max(1, round(rgba.shape[0] * pre_scale)))
        pre_scale = small[0] / rgba.shape[1]
        rgba = cv2.resize(rgba, small, interpolation=cv2.INTER_AREA)
        # the region coordinates shrink by pre_scale as well: fold it into the matrix
        m = m * pre_scale
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    pre = np.concatenate([rgba[..., :3].astype(np.float32) * a, a * 255.0], axis=2)
    out = cv2.warpAffine(
        pre,
        m,
        (p.width, p.height),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    alpha = np.clip(out[..., 3] / 255.0, 0.0, 1.0)
    safe = np.maximum(alpha, 1e-4)[..., None]
    fg = np.clip(out[..., :3] / safe, 0, 255)
    fg = np.where(alpha[..., None] > 1e-4, fg, 0).astype(np.uint8)
    return fg, alpha.astype(np.float32)


def to_output(p: Placement, pts: np.ndarray | list | tuple) -> np.ndarray:
    """Region-image points -> output pixels (the inverse of ``Placement.matrix``).

    ``p_out = anchor + scale * R(-roll) (p_region - eye_mid)``, with R(a) rotating by ``a``
    degrees in image axes (y down). ``pts`` is one (x, y) point or an (N, 2) array; the result
    has the same shape, as float64.
    """
    arr = np.asarray(pts, dtype=np.float64)
    flat = arr.reshape(-1, 2)
    t = math.radians(p.roll_deg)
    c, s = math.cos(t), math.sin(t)
    inv = np.array([[c, s], [-s, c]]) * p.scale  # R(-roll) scaled
    out = (flat - np.asarray(p.eye_mid)) @ inv.T + np.asarray(p.anchor)
    return out.reshape(arr.shape)
