"""What the pages say about errors and progress, by machine code, as gettext messages.

The API answers codes (``no_face``, ``segmenting``); people read these sentences. The same
texts go to the page's script as JSON (``strings()``), so the server-rendered pages and the
script never disagree and both come from the catalogue.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext

#: Failure reasons and API error codes -> what to tell the visitor.
ERRORS = {
    "no_face": lazy_gettext(
        "We couldn't find a face in this photo. Use a photo where your face is clearly visible "
        "and you look at the camera."
    ),
    "multiple_faces": lazy_gettext(
        "There is more than one face in this photo. Use a photo of just one person."
    ),
    "face_too_small": lazy_gettext(
        "Your face is too small in this photo. Move closer to the camera or use a sharper, "
        "larger photo."
    ),
    "face_cut_off": lazy_gettext(
        "Your face is cut off at the edge of the photo. Use a photo that shows your whole head."
    ),
    "not_frontal": lazy_gettext(
        "Your face is turned away from the camera. Use a photo taken from the front, looking "
        "straight into the camera."
    ),
    "head_cut_off": lazy_gettext(
        "The top of your head is cut off. Use a photo with some space above your hair."
    ),
    "too_close": lazy_gettext(
        "You are too close to the camera: the photo needs to show your neck and shoulders too."
    ),
    "unsupported_image": lazy_gettext(
        "This file isn't a photo we can read. Please upload a JPEG, PNG, WebP or HEIC image."
    ),
    "image_too_large": lazy_gettext(
        "This image has too many pixels for us to handle. Please use a smaller image."
    ),
    "image_too_small": lazy_gettext(
        "This photo is too small (too few pixels). Please use a larger, sharper photo."
    ),
    "missing_photo": lazy_gettext("Please choose a photo first."),
    "missing_spec": lazy_gettext("Please choose a document."),
    "bad_parameter": lazy_gettext("One of the settings is not valid: please check the form."),
    "unknown_spec": lazy_gettext("We don't know this document: please choose one from the list."),
    "rate_limited": lazy_gettext(
        "You have sent many requests in a short time. Please wait a minute and try again."
    ),
    "overloaded": lazy_gettext("We are very busy right now. Please try again in a minute."),
    "unavailable": lazy_gettext(
        "The service is temporarily unavailable. Please try again in a minute."
    ),
    "csrf_failed": lazy_gettext("Your session has expired. Please reload the page and try again."),
    "unknown_job": lazy_gettext(
        "This photo is no longer here: it was deleted, or it expired. Please start again."
    ),
    "not_found": lazy_gettext("There is nothing at this address."),
    "bad_signature": lazy_gettext(
        "This download link has expired. Open your photo's page again to get fresh links."
    ),
    "upload_failed": lazy_gettext(
        "The upload failed. Check your connection; if the photo is very large, try a smaller one."
    ),
    "field_too_large": lazy_gettext(
        "One of the form's fields is too large. Send the photo as a file, not as text."
    ),
    "archive_too_large": lazy_gettext(
        "This zip file unpacks to more than one batch may hold. Please send fewer photos at a time."
    ),
    "unsupported_archive": lazy_gettext("This file is not a zip archive we can read."),
    "unknown_batch": lazy_gettext(
        "This batch is no longer here: it was deleted, or it expired. Please start again."
    ),
    "input_expired": lazy_gettext(
        "Your original photo is no longer stored, so this photo can't be changed. Please upload "
        "it again."
    ),
    "expired": lazy_gettext(
        "This photo is no longer here: it was deleted, or it expired. Please start again."
    ),
    "spec_unmet": lazy_gettext(
        "This photo can't be made to meet the document's rules. Please try another photo."
    ),
    "bad_request": lazy_gettext("The request could not be understood. Please reload the page."),
    "method_not_allowed": lazy_gettext("This address can't be used that way."),
    "storage_failed": lazy_gettext(
        "We couldn't save your photo just now. Please try again in a minute."
    ),
    "insufficient_storage": lazy_gettext(
        "We have no space left to store photos right now. Nothing was lost: please try again later."
    ),
    "queue_unavailable": lazy_gettext(
        "We couldn't start working on your photo just now. Please try again in a minute."
    ),
    "lost": lazy_gettext(
        "Your photo was held up on our side and didn't finish. Please send it again."
    ),
    "input_missing": lazy_gettext(
        "Your photo is no longer stored on our side. Please upload it again."
    ),
    "storage_unavailable": lazy_gettext(
        "The service is temporarily unavailable. Please try again in a minute."
    ),
    "timeout": lazy_gettext(
        "Your photo took too long to process. Please try again, or use a smaller photo."
    ),
    "internal_error": lazy_gettext("Something went wrong on our side. Please try again."),
    "worker_lost": lazy_gettext("Something went wrong on our side. Please try again."),
    "generic": lazy_gettext("Something went wrong. Please try again."),
}

#: Job states -> (share of the work done when the state begins, what is happening).
STATES = {
    "uploading": (3, lazy_gettext("Uploading your photo…")),
    "queued": (8, lazy_gettext("Waiting for a free worker…")),
    "segmenting": (25, lazy_gettext("Finding you in the photo…")),
    "refining": (55, lazy_gettext("Refining the edges of your hair…")),
    "compositing": (75, lazy_gettext("Placing you on the new background…")),
    "storing": (90, lazy_gettext("Saving your files…")),
    "done": (100, lazy_gettext("Done.")),
    "failed": (100, lazy_gettext("Stopped.")),
}

#: Pipeline stages (job record ``stages``) in order, with the state each runs in and a typical
#: duration on a small CPU machine (seconds), for the estimate of the time left.
STAGES = (
    ("segment", "segmenting", 4.0, lazy_gettext("Find you in the photo")),
    ("matte_refine", "refining", 3.0, lazy_gettext("Refine the edges of your hair")),
    ("composite", "compositing", 1.0, lazy_gettext("Place you on the background")),
    ("store", "storing", 0.5, lazy_gettext("Save your files")),
)

DOWNLOADS = {
    "photo": lazy_gettext("Download photo"),
    "sheet": lazy_gettext("Download print sheet"),
    "cutout": lazy_gettext("Download cut-out (PNG)"),
    "report": lazy_gettext("Download report (JSON)"),
}


def error_text(code: str | None, limit_mb: str = "") -> str:
    if code == "file_too_large":
        return _("This file is too large. The limit is %(mb)s MB.", mb=limit_mb)
    return str(ERRORS.get(code or "", ERRORS["generic"]))


def strings(limit_mb: str) -> dict[str, Any]:
    """Everything the page's script shows, in the current language."""
    return {
        "errors": {k: str(v) for k, v in ERRORS.items()}
        | {"file_too_large": error_text("file_too_large", limit_mb)},
        "states": {k: [pct, str(text)] for k, (pct, text) in STATES.items()},
        "stages": [[name, st, est, str(label)] for name, st, est, label in STAGES],
        "left": _("about %(s)s s left"),
        "stage_done": _("done"),
        "stage_running": _("in progress"),
        "stage_waiting": _("waiting"),
        "matches": _("%(n)s documents match"),
        "no_match": _("No document matches: try a country, a size such as 35x45, or 一寸."),
        "camera_error": _("The camera could not be opened. Choose a photo instead."),
        "recomposing": _("Changing the background…"),
        "checking": _("Checking your photo…"),
        "deleted": _("Your photo and its files have been deleted."),
    }
