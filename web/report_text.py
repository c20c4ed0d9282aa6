"""The compliance report in plain words, in the visitor's language.

The pipeline's report (``pipeline/report.py``) is data: each check has an id (``check``, or ``id``
in newer reports), a value, a limit, ``pass`` and a level, perhaps an English ``message``. Here
each known id gets one sentence with its values (mm where the spec has a print size, else % of
the photo height) and, when it fails, what to do. An id this module does not know is shown with
the report's own English message, so a new examiner check is never hidden. The list of what the
service could not check is the examiner checks that are absent from the report.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext

from config.colours import NAMED_COLOURS
from config.contracts import Check, Report
from web.i18n import COLOUR_NAMES, colour_name

#: A hex value the report gives -> the colour's name, for the colours the form offers.
_HEX_NAMES = {hex_.lower(): name for name, hex_ in NAMED_COLOURS.items() if name in COLOUR_NAMES}

#: Examiner checks the service may run; those missing from a report are listed as "not checked".
EXAMINER_CHECKS = {
    "eyes_open": lazy_gettext("whether your eyes are open and visible"),
    "mouth_closed": lazy_gettext("whether your mouth is closed and the expression neutral"),
    "expression": lazy_gettext("whether your expression is neutral"),
    "glasses": lazy_gettext("glasses (most documents no longer allow them)"),
    "head_covering": lazy_gettext("hats or head coverings"),
    "hair_over_face": lazy_gettext("hair or objects covering the face"),
    "face_shadows": lazy_gettext("shadows on the face or behind you"),
    # Never measured (no model for them): always listed, as the pipeline's report says.
    "headphones": lazy_gettext("headphones and other devices over the ears"),
    "lens_reflections": lazy_gettext("frames over the eyes and reflections on the lenses"),
}

#: Examiner checks (pipeline/examine.py) whose values are cues, not measures a person reads:
#: id -> (sentence when it passes, sentence when it does not, what to do).
_EXAMINER_TEXT = {
    "eyes_open": (
        lazy_gettext("Both eyes are open."),
        lazy_gettext("Your eyes look closed."),
        lazy_gettext("Take the photo again with both eyes open."),
    ),
    "gaze": (
        lazy_gettext("The eyes look at the camera."),
        lazy_gettext("The eyes do not look straight at the camera."),
        lazy_gettext("Look straight into the lens."),
    ),
    "mouth_closed": (
        lazy_gettext("The mouth is closed."),
        lazy_gettext("The mouth looks open."),
        lazy_gettext("Close your mouth and keep a neutral expression."),
    ),
    "expression": (
        lazy_gettext("The expression is neutral."),
        lazy_gettext("The expression does not look neutral (a smile?)."),
        lazy_gettext("Keep a neutral expression with the mouth closed."),
    ),
    "glasses": (
        lazy_gettext("No glasses were seen."),
        lazy_gettext("Glasses were seen."),
        lazy_gettext("Take off your glasses: most documents no longer allow them."),
    ),
    "tinted_lenses": (
        lazy_gettext("No tinted lenses were seen."),
        lazy_gettext("Tinted lenses or sunglasses were seen."),
        lazy_gettext(
            "Take off tinted glasses and sunglasses; without any, light the face from the front "
            "so that no shadow lies around the eyes."
        ),
    ),
    "head_covering": (
        lazy_gettext("No head covering was seen."),
        lazy_gettext("A hat or head covering was seen."),
        lazy_gettext(
            "Take off hats and head coverings (religious ones only where the document allows)."
        ),
    ),
    "face_shadows": (
        lazy_gettext("The face is evenly lit."),
        lazy_gettext("There are shadows on the face."),
        lazy_gettext("Light your face evenly from the front, away from side light."),
    ),
    "red_eye": (
        lazy_gettext("No red-eye."),
        lazy_gettext("Red-eye was seen."),
        lazy_gettext("Take the photo again without flash, or with more room light."),
    ),
    "dynamic_range": (
        lazy_gettext("The face shows a good range of tones."),
        lazy_gettext("The face looks flat or washed out."),
        lazy_gettext("Use brighter, even light and avoid over-processed photos."),
    ),
}


#: Framing checks: an uploaded photo that fails them is best cropped again (our form does it).
_FRAMING = frozenset({"head_height", "eye_line_from_bottom", "top_margin", "horizontal_centring"})
_FRAMING_ADVICE = lazy_gettext(
    "Crop the photo again to these rules, or make your ID photo from this picture with our "
    "form: it crops and sizes it for you."
)


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def _pct(value: Any, digits: int = 0) -> str:
    return _num(float(value) * 100, digits) + "%" if isinstance(value, int | float) else str(value)


def _band_text(value: Any, limit: Any, height_mm: float | None) -> dict[str, str]:
    lo, hi = (limit or [None, None])[:2] if isinstance(limit, list | tuple) else (None, None)
    if height_mm and isinstance(value, int | float) and lo is not None and hi is not None:
        return {
            "value": _num(value * height_mm) + " mm",
            "limit": _num(lo * height_mm) + "–" + _num(hi * height_mm) + " mm",
        }
    if lo is not None and hi is not None:
        return {"value": _pct(value), "limit": _pct(lo) + "–" + _pct(hi)}
    return {"value": _pct(value), "limit": str(limit)}


def _dpi(value: Any) -> str:
    """A file's stored resolution: ``[300, 300]`` reads as 300, ``[300, 72]`` as 300×72."""
    if isinstance(value, list | tuple):
        parts = list(dict.fromkeys(_num(v, 0) for v in value))
        return "×".join(parts)
    return _num(value, 0)


def _colours(limit: Any) -> str:
    names = limit if isinstance(limit, list | tuple) else [limit]
    return _(", ").join(colour_name(str(n)) for n in names if n)


def _checked_file(cid: str, check: Check) -> tuple[str, str] | None:
    """Sentences for a photo checked as it is (check mode): what to change in the file itself,
    not "try again", which is for a photo this service made."""
    value, limit = check.get("value"), check.get("limit")
    if cid in ("width_px", "height_px"):
        text = (
            _("Width: %(value)s pixels (required %(limit)s).", value=value, limit=limit)
            if cid == "width_px"
            else _("Height: %(value)s pixels (required %(limit)s).", value=value, limit=limit)
        )
        return text, _(
            "Make your ID photo from this picture with our form: it crops and sizes it for you."
        )
    if cid == "dpi":
        return (
            _(
                "Resolution stored in the file: %(value)s dpi (required %(limit)s).",
                value=_dpi(value),
                limit=limit,
            ),
            _(
                "Save the file with %(limit)s dpi (most photo editors can), or use our form.",
                limit=limit,
            ),
        )
    return None


def _sentences(
    check: Check,
    height_mm: float | None,
    *,
    checked: bool = False,
    declared: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """(sentence, advice when failed) for a known check id, else None. ``checked``: the report
    is of an uploaded photo checked as it is; ``declared``: what the visitor declared
    (``head_covering``, ``medical_glasses``)."""
    cid = check.get("check") or check.get("id")
    value, limit = check.get("value"), check.get("limit")
    if cid == "head_covering" and "head_covering" in declared and not check.get("pass"):
        return (
            _(
                "You declared a head covering for religious or medical reasons: the whole face, "
                "from the chin to the forehead and both edges, must stay visible."
            ),
            _("Make sure the covering hides no part of the face and casts no shadow on it."),
        )
    if checked and cid in ("width_px", "height_px", "dpi"):
        return _checked_file(str(cid), check)
    if cid == "format":
        return (
            _(
                "File format: %(value)s (required %(limit)s).",
                value=str(value or "?").upper(),
                limit=str(limit or "?").upper(),
            ),
            _("Save the photo as %(limit)s, or make it with our form.", limit=str(limit).upper()),
        )
    if cid in _EXAMINER_TEXT:
        ok, bad, todo = _EXAMINER_TEXT[cid]
        if check.get("pass", check.get("passed")):
            return str(ok), ""
        if check.get("level") == "review":
            return _("Not clear-cut: %(text)s", text=bad), str(todo)
        return str(bad), str(todo)
    if cid in ("head_height", "eye_line_from_bottom", "top_margin"):
        v = _band_text(value, limit, height_mm)
        return {
            "head_height": (
                _("Head height, chin to crown: %(value)s (allowed %(limit)s).", **v),
                _("Use a photo taken a little further away, with your whole head and shoulders."),
            ),
            "eye_line_from_bottom": (
                _("Eye line above the bottom edge: %(value)s (allowed %(limit)s).", **v),
                _("Look straight at the camera with your head level."),
            ),
            "top_margin": (
                _("Space above the head: %(value)s (allowed %(limit)s).", **v),
                _("Leave some room above your hair when you take the photo."),
            ),
        }[cid]
    if cid in ("width_px", "height_px"):
        return (
            _("Size: %(value)s pixels (required %(limit)s).", value=value, limit=limit),
            _("The photo could not be made at the required size; try again."),
        )
    if cid == "dpi":
        return (
            _(
                "Resolution stored in the file: %(value)s dpi (required %(limit)s).",
                value=value,
                limit=limit,
            ),
            _("Try again; if it keeps failing, tell us."),
        )
    if cid == "roll":
        return (
            _(
                "Head tilt to the side: %(value)s° (at most %(limit)s°).",
                value=_num(value),
                limit=_num(limit),
            ),
            _("Keep your head straight, both eyes at the same height."),
        )
    if cid in ("yaw", "pitch"):
        text = (
            _(
                "Head turned left or right: about %(value)s° (at most %(limit)s°).",
                value=_num(value),
                limit=_num(limit),
            )
            if cid == "yaw"
            else _(
                "Head tipped up or down: about %(value)s° (at most %(limit)s°).",
                value=_num(value),
                limit=_num(limit),
            )
        )
        return text, _("Face the camera squarely and look straight into the lens.")
    if cid == "face_count":
        return (
            _("Faces found: %(value)s (exactly one is required).", value=value),
            _("Use a photo of just one person."),
        )
    if cid == "background" and value is None:
        return (
            _(
                "The background is not one plain colour (accepted: %(limit)s).",
                limit=_colours(limit),
            ),
            _(
                "Stand in front of a plain wall, or make the photo with our form: it replaces the background."
            ),
        )
    if cid == "background":
        name = colour_name(_HEX_NAMES.get(str(value).lower(), str(value)))
        return (
            _("Background colour: %(value)s.", value=name),
            _("Choose a background this document accepts."),
        )
    if cid == "shoulders":
        return (
            _(
                "Shoulders in the photo: %(value)s of the bottom rows show you (at least %(limit)s).",
                value=_pct(value),
                limit=_pct(limit),
            ),
            _(
                "Check that your shoulders show: light clothes against a light wall can vanish. "
                "Wear clothes that stand out from the background."
            ),
        )
    if cid == "continued_bottom":
        return (
            _(
                "Clothes continued below the photo's own bottom edge: %(value)s of the height "
                "(a look is advised above %(limit)s).",
                value=_pct(value),
                limit=_pct(limit),
            ),
            _(
                "Look at the bottom of the photo: if the clothes look smeared, use a photo that "
                "shows more of your shoulders (step back from the camera)."
            ),
        )
    if cid == "cutout_uncertain":
        return (
            _(
                "Clothes the cut-out held only part-way: %(value)s (at most %(limit)s).",
                value=_pct(value, 1),
                limit=_pct(limit, 1),
            ),
            _(
                "Look at your clothes and around them: they may look see-through, or keep a piece "
                "of the old background. If so, take the photo again in front of a plain wall, in "
                "clothes that stand out from it."
            ),
        )
    if cid == "metadata_stripped":
        return (
            _("Camera data (location, device) removed from the file."),
            _("Try again; if it keeps failing, tell us."),
        )
    if cid == "eye_distance":
        return (
            _(
                "Distance between the eyes: %(value)s pixels (at least %(limit)s).",
                value=_num(value, 0),
                limit=limit,
            ),
            _("Use a sharper photo taken closer to the camera."),
        )
    if cid == "file_size":
        lo, hi = (limit or [None, None])[:2]
        kb = _num((value or 0) / 1024, 0)
        window = " – ".join(f"{_num(x / 1024, 0)} KB" if x else "…" for x in (lo, hi))
        return (
            _("File size: %(value)s KB (allowed %(limit)s).", value=kb, limit=window),
            _("Save the JPEG again at a quality that brings it inside this window.")
            if checked
            else _("Try a photo with less fine detail in the background."),
        )
    if cid == "horizontal_centring":
        return (
            _(
                "Face centred left to right: at %(value)s of the width (allowed %(limit)s).",
                value=_pct(value),
                limit="–".join(_pct(x) for x in limit or []),
            ),
            _("Stand in the middle of the picture."),
        )
    if cid == "background_uniformity":
        return (
            _(
                "Background evenness: %(value)s levels of variation (at most %(limit)s).",
                value=_num(value),
                limit=_num(limit),
            ),
            _("Stand in front of a plain wall, away from objects and patterns."),
        )
    if cid == "face_sharpness":
        return (
            _(
                "Face sharpness: %(value)s (at least %(limit)s).",
                value=_num(value, 2),
                limit=_num(limit, 2),
            ),
            _("Hold the camera still, in good light, and focus on your face."),
        )
    if cid == "face_exposure":
        return (
            _(
                "Brightness of the face: %(value)s (allowed %(limit)s).",
                value=_pct(value),
                limit="–".join(_pct(x) for x in limit or []),
            ),
            _("Use even, soft light from the front: not too dark, not too bright."),
        )
    if cid == "face_underexposed":
        return (
            _(
                "Very dark parts of the face: %(value)s (at most %(limit)s).",
                value=_pct(value),
                limit=_pct(limit),
            ),
            _("Light your face from the front so no part of it is in deep shadow."),
        )
    if cid == "face_overexposed":
        return (
            _(
                "Burnt-out bright parts of the face: %(value)s (at most %(limit)s).",
                value=_pct(value),
                limit=_pct(limit),
            ),
            _("Avoid direct flash or sunlight on your face."),
        )
    return None


def describe(
    report: Report | None,
    height_mm: float | None = None,
    declared: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The report as plain sentences: ``{"verdict", "headline", "items", "not_checked"}``.

    Each item: ``{"id", "status" (pass | fail | advice | review), "sentence", "advice"}``. A
    check-mode report (``mode: "check"``, an uploaded photo measured as it is) gets advice about
    the file itself; ``declared`` names what the visitor declared (``head_covering``,
    ``medical_glasses``).
    """
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        return {"verdict": None, "headline": "", "items": [], "not_checked": []}
    items = []
    seen = set()
    for check in report["checks"]:
        if not isinstance(check, dict):
            continue
        cid = str(check.get("check") or check.get("id") or "")
        seen.add(cid)
        passed = bool(check.get("pass", check.get("passed")))
        level = check.get("level")
        checked = report.get("mode") == "check"
        known = _sentences(check, height_mm, checked=checked, declared=declared)
        if known is None:
            sentence = str(check.get("message") or cid.replace("_", " "))
            advice = str(check.get("advice") or "")
        else:
            sentence, advice = known
            if checked and cid in _FRAMING:
                advice = str(_FRAMING_ADVICE)
            if check.get("estimate") or (check.get("heuristic") and not passed):
                sentence += " " + _("(an estimate)")
        items.append(
            {
                "id": cid,
                "status": "pass"
                if passed
                else {"advisory": "advice", "review": "review"}.get(str(level), "fail"),
                "sentence": sentence,
                "advice": "" if passed else advice,
            }
        )
    verdict = report.get("verdict")
    headline = {
        "pass": _("Your photo meets the rules of this document that we can measure."),
        "fail": _("Your photo does not meet this document's rules yet: see what to do below."),
        "review": _(
            "Some points need a person's judgement: read the notes below before you use this photo."
        ),
    }.get(str(verdict), "")
    not_checked = [str(text) for cid, text in EXAMINER_CHECKS.items() if cid not in seen]
    return {"verdict": verdict, "headline": headline, "items": items, "not_checked": not_checked}
