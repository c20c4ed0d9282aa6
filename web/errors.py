"""Every error the web app answers, mapped to an HTTP status and a JSON body in this one place.

The body is always ``{"error": <stable code>, "message": <plain words>}`` (domain errors add their
details, e.g. ``face_count``). Nothing else ever reaches the client: an unexpected exception is
logged with its traceback and answered ``500 {"error": "internal_error"}``.

Status codes:
    400 bad_request          a malformed request (e.g. broken multipart)
    403 csrf_failed          the form's token is missing or wrong, or a foreign Origin
    403 bad_signature        a /files link that is forged or expired
    404 not_found/unknown_job
    410 input_expired        the job's photo is no longer stored: it cannot be recomposed
    405 method_not_allowed
    413 file_too_large       the upload is above ``settings.max_upload_bytes``
    413 field_too_large      a text field is above werkzeug's per-field limit (500 KB)
    413 image_too_large      the image has more pixels than ``settings.max_pixels``
    413 archive_too_large    a batch zip unpacks to more than a batch may hold
    415 unsupported_image    the bytes are not an image format we read (sniffed, not the name)
    422 bad_parameter/unknown_spec/missing_photo/no_face/...   a request we understood but refuse
    429 rate_limited         the client's request budget is spent (Retry-After)
    503 overloaded/unavailable  the GPU queue is too deep or a backend is down (Retry-After)
    503 storage_failed       the store refused a write for another reason (Retry-After)
    507 insufficient_storage the store has no space left (a full disk)
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from pipeline.errors import (
    BadParameter,
    FaceError,
    IdPhotoError,
    ImageTooLarge,
    ImageTooSmall,
    SpecUnmet,
    UnsupportedImage,
)
from storage.errors import (
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from tasks.jobstore import JobStoreUnavailable
from web.messages import error_text

logger = logging.getLogger("idphoto.web")

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_S = 5


class ApiError(Exception):
    """An HTTP-level refusal raised by the views (not a domain error)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def file_too_large(limit_bytes: int) -> ApiError:
    return ApiError(
        413,
        "file_too_large",
        f"The file is too large: the limit is {_human_bytes(limit_bytes)}.",
        limit_bytes=limit_bytes,
    )


def unavailable(code: str, message: str, retry_after_s: int = RETRY_AFTER_S) -> ApiError:
    return ApiError(503, code, message, headers={"Retry-After": str(retry_after_s)})


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} bytes"


# Domain error class -> HTTP status; the first matching entry wins (subclasses before bases).
_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnsupportedImage, 415),
    (ImageTooLarge, 413),
    (ImageTooSmall, 422),
    (BadParameter, 422),
    (FaceError, 422),
    (SpecUnmet, 422),
    (IdPhotoError, 422),
)


def status_of(exc: Exception) -> int:
    """The HTTP status for a domain error (or an `ApiError`'s own), for every page and answer."""
    if isinstance(exc, ApiError):
        return exc.status
    return next((status for cls, status in _DOMAIN_STATUS if isinstance(exc, cls)), 500)


_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    429: ("rate_limited", "Too many requests: please wait a little and try again."),
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> Response:
    if _wants_html():
        response = _html_error(status, code)
    else:
        response = jsonify({"error": code, "message": message, **details})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _wants_html() -> bool:
    """A person's browser opened a page address (not the API): answer a page, not JSON."""
    if request.path.startswith("/api/"):
        return False
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


def _html_error(status: int, code: str) -> Response:
    try:
        body = render_template("gone.html", message=error_text(code), status=status, code=code)
    except Exception:  # the error page must never fail the error answer
        logger.exception("error page failed")
        return jsonify({"error": code})
    return Response(body, mimetype="text/html")


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.details)


#: Domain errors defined outside the pipeline (tasks.jobs), matched by their stable code so
#: that this module imports no Celery.
_CODE_STATUS = {
    "unknown_job": 404,
    "unknown_batch": 404,
    "input_expired": 410,
    "archive_too_large": 413,
}


def _handle_domain_error(exc: IdPhotoError) -> Response:
    status = _CODE_STATUS.get(exc.code) or next(
        code for cls, code in _DOMAIN_STATUS if isinstance(exc, cls)
    )
    body = exc.to_dict()
    code, message = body.pop("error"), body.pop("message")
    return error_response(status, code, message, **_jsonable(body))


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if isinstance(v, str | int | float | bool | None)}


def _handle_http_error(exc: HTTPException) -> BaseResponse:
    status = exc.code or 500
    if status < 400:  # a redirect raised as an exception is not an error
        return exc.get_response()
    if status == 413:
        from web.context import settings

        field_limit = request.max_form_memory_size
        body_limit = request.max_content_length
        length = request.content_length
        if field_limit and length is not None and (body_limit is None or length <= body_limit):
            # The body is within the upload limit, so a text field was over werkzeug's
            # per-field limit: saying "file too large (25 MB)" for a 600 KB field misled.
            return error_response(
                413,
                "field_too_large",
                f"A form field is too large: the limit is {_human_bytes(field_limit)} per "
                "field (send the photo as a file).",
                limit_bytes=field_limit,
            )
        return _handle_api_error(file_too_large(settings().max_upload_bytes))
    code, message = _HTTP_CODES.get(status, ("http_error", exc.name or "Request refused."))
    if status == 429 and exc.description:
        message = f"Too many requests (limit {exc.description}): please wait and try again."
    response = error_response(status, code, message)
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


def _handle_not_found(exc: Exception) -> Response:
    return error_response(404, "not_found", "There is nothing at this address.")


def _handle_storage_unavailable(exc: StorageUnavailable) -> Response:
    logger.error("storage unavailable: %s", type(exc).__name__)
    if isinstance(exc, JobStoreUnavailable):  # Redis, not the photo store: say which
        message = "Job records cannot be reached right now; try again soon."
    else:
        message = "Storage is unavailable; try again soon."
    return _handle_api_error(unavailable("unavailable", message))


def _handle_storage_full(exc: StorageFull) -> Response:
    logger.error("storage full: %s", exc)
    return error_response(
        507,
        "insufficient_storage",
        "The server has no space left to store photos; please try again later.",
        {"Retry-After": str(RETRY_AFTER_S * 12)},
    )


def _handle_storage_error(exc: StorageError) -> Response:
    logger.error("storage failed: %s", exc)
    return _handle_api_error(
        unavailable("storage_failed", "The server could not store the photo; try again soon.")
    )


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # A full disk under the file job store (embedded mode) is the store's 507 too.
        return _handle_storage_full(StorageFull(str(exc)))
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def init_app(app: Flask) -> None:
    """Register the one mapping from exceptions to JSON answers."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(IdPhotoError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(ObjectNotFound, _handle_not_found)
    app.register_error_handler(InvalidKey, _handle_not_found)
    app.register_error_handler(StorageUnavailable, _handle_storage_unavailable)
    app.register_error_handler(StorageFull, _handle_storage_full)
    app.register_error_handler(StorageError, _handle_storage_error)
    app.register_error_handler(Exception, _handle_unexpected)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["TRAP_HTTP_EXCEPTIONS"] = False

    @app.before_request
    def _refuse_oversized_body() -> None:
        # Refuse on the declared length before anything reads the body; a chunked body is cut
        # off by MAX_CONTENT_LENGTH while the form is parsed (werkzeug's LimitedStream).
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and (request.content_length or 0) > limit:
            from web.context import settings

            raise file_too_large(settings().max_upload_bytes)
