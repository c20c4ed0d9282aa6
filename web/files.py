"""``/files/<key>``: the local storage backend's presigned links, served by the web app.

A link is ``/files/{key}?expires=..&signature=..[&filename=..]`` as made by
`storage.LocalBlobStore.presign_get`; a forged or expired one is 403, a missing object 404. With
the S3 backend the links point at S3 and this route answers 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, send_file

from storage import LocalBlobStore, content_disposition, guess_content_type, verify_local_signature
from web.context import state
from web.errors import ApiError

bp = Blueprint("files", __name__)


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "This file does not exist (it may have expired).")


@bp.get("/files/<path:key>")
def serve(key: str) -> Response:
    app_state = state()
    store = app_state.store
    if not isinstance(store, LocalBlobStore):
        raise _not_found()
    filename = request.args.get("filename")
    if not verify_local_signature(
        app_state.settings.secret_key,
        key,
        request.args.get("expires", ""),
        filename,
        request.args.get("signature", ""),
    ):
        raise ApiError(403, "bad_signature", "This download link is invalid or has expired.")
    path = store.path(key)
    if not path.is_file():
        raise _not_found()
    response = send_file(path, mimetype=guess_content_type(key), conditional=True, max_age=0)
    if filename:
        response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response
