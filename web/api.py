"""The JSON API, ``/api/v1``: submit a photo, poll the job, recompose, delete, list the specs.

Views validate what HTTP can see (size, the bytes' real format, the form fields), call
``tasks.jobs`` and shape its answers; everything they raise is turned into JSON by
``web/errors.py``. They never touch the pipeline beyond its errors.
"""

from __future__ import annotations

import json
import re
import secrets
from types import ModuleType
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, session, url_for

from config.catalogue import COUNTRY_NAMES, MAX_SPEC_CHARS, list_specs
from config.colours import NAMED_COLOURS
from pipeline.composite import MAX_BACKGROUND_CHARS
from web.context import services, state
from web.errors import ApiError, file_too_large, unavailable
from web.openapi import MAX_OPTIONS_CHARS, openapi_document
from web.security import check_csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Job ids the API will look up; anything else is an unknown job without asking the job store.
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Fields of a job record a client may see. The record holds more (input hash, storage keys,
#: the id of a job whose outputs were reused: another client's capability) that stay inside.
_PUBLIC_FIELDS = (
    "state",
    "reason",
    "message",
    "error_details",
    "failed_stage",
    "spec",
    "background",
    "options",
    "parent",
    "created_at",
    "updated_at",
    "finished_at",
    "timestamps",
)
#: Per-stage fields a client may see (not which host or process ran it).
_STAGE_FIELDS = ("status", "started_at", "finished_at", "duration_s", "attempt", "error")
SUPPORTED_FORMATS = "JPEG, PNG, WebP or HEIC"


def _jobs() -> ModuleType:
    # Imported on first use: building the app (and serving the form) needs no image stack.
    from tasks import jobs

    return jobs


@bp.before_request
def _csrf() -> None:
    check_csrf(current_app._get_current_object())  # type: ignore[attr-defined]


def _job_url(job_id: str) -> str:
    return url_for("api.get_job", job_id=job_id, _external=True)


def _accepted(job_id: str) -> Response:
    g.job_id = job_id
    response = jsonify({"job_id": job_id, "status_url": _job_url(job_id)})
    response.status_code = 202
    response.headers["Location"] = _job_url(job_id)
    return response


def admit(incoming: int = 1, *, segment: bool = True) -> None:
    """503 with Retry-After while a queue this work joins is too deep.

    New photos (``segment``) join the GPU queue, limited by ``gpu_queue_max_depth``, counting
    the ``incoming`` jobs of this request beyond the first so a batch cannot overshoot it; every
    job, re-compositions included, later joins the CPU queue (``cpu_queue_max_depth``).
    """
    app_state = state()
    if app_state.gauge is None:  # embedded mode: no queue
        return
    depths = app_state.gauge.depths()
    if depths is None:
        raise unavailable("unavailable", "The job queue cannot be reached; try again soon.")
    from tasks.app import CPU_QUEUE, GPU_QUEUE

    extra = max(0, incoming - 1)
    settings = app_state.settings
    if segment and depths.get(GPU_QUEUE, 0) + extra > settings.gpu_queue_max_depth:
        raise unavailable("overloaded", "We are very busy right now; please try again shortly.")
    if depths.get(CPU_QUEUE, 0) + extra > settings.cpu_queue_max_depth:
        raise unavailable("overloaded", "We are very busy right now; please try again shortly.")


def _missing(field: str, message: str) -> ApiError:
    return ApiError(422, f"missing_{field}", message)


def _read_upload(field: str, missing_message: str) -> bytes:
    """The uploaded file in ``field``, read with a cap: 413 past the upload limit."""
    limit = state().settings.max_upload_bytes
    upload = request.files.get(field)
    if upload is None:
        raise _missing(field, missing_message)
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise file_too_large(limit)
    return data


def read_photo(field: str = "photo") -> bytes:
    """The uploaded photo in ``field``: 422 when missing or empty, 413 too large. What the bytes
    are is read once, by the job layer (`tasks.jobs.submit_job`, or the decoder for a check):
    not an image we read is its ``UnsupportedImage``, answered 415."""
    data = _read_upload(field, "No photo was uploaded: send the image in the 'photo' field.")
    if not data:
        raise _missing("photo", "The uploaded photo is empty.")
    return data


def _options(raw: str | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_OPTIONS_CHARS:
        raise ApiError(
            422,
            "bad_parameter",
            f"'options' is {len(raw)} characters long; at most {MAX_OPTIONS_CHARS} are accepted.",
        )
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested 100,000 deep
        raise ApiError(422, "bad_parameter", "'options' must be a JSON object.") from exc
    if not isinstance(value, dict):
        raise ApiError(422, "bad_parameter", "'options' must be a JSON object.")
    return value


#: The longest value each text field takes, as the API document says (checked before trimming).
_MAX_CHARS = {"spec": MAX_SPEC_CHARS, "background": MAX_BACKGROUND_CHARS}


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(422, "bad_parameter", "spec and background must be strings.")
    limit = _MAX_CHARS[field]
    if len(value) > limit:
        raise ApiError(
            422,
            "bad_parameter",
            f"'{field}' is {len(value)} characters long; at most {limit} are accepted.",
        )
    return value.strip() or None


def submit(
    data: bytes, spec: str | None, background: str | None, options: dict[str, Any] | None
) -> str:
    """Submit a new job (admission already passed), count it, return its id."""
    if not spec:
        raise _missing("spec", "Choose a photo specification (the 'spec' field, e.g. us-passport).")
    settings = state().settings
    job_id = _jobs().submit_job(
        services(),
        data,
        spec=spec,
        background=background or None,
        options=options,
        client=_client() if settings.cache_scope == "client" else None,
    )
    metrics = state().metrics
    if metrics is not None:
        metrics.jobs_submitted.labels(kind="new").inc()
    return job_id


def _client() -> str:
    """Who is asking, for ``cache_scope = "client"``: a random id kept in the signed session
    (the form's visitors keep theirs; a call without the cookie is a client of its own)."""
    client = session.get("cache_client")
    if not isinstance(client, str) or not client:
        client = session["cache_client"] = secrets.token_urlsafe(16)
    return client


@bp.post("/jobs")
def create_job() -> Response:
    admit()
    data = read_photo()
    spec = _text(request.form.get("spec"), "spec")
    background = _text(request.form.get("background"), "background")
    options = _options(request.form.get("options"))
    return _accepted(submit(data, spec, background, options))


@bp.post("/checks")
def create_check() -> Response:
    """Check an existing photo against a spec, synchronously (no segmentation: ~0.1 s)."""
    data = read_photo()
    spec = _text(request.form.get("spec"), "spec")
    if not spec:
        raise _missing("spec", "Choose a photo specification (the 'spec' field, e.g. us-passport).")
    options = _options(request.form.get("options"))
    from tasks.checks import check_upload

    report = check_upload(services(), data, spec, options)
    metrics = state().metrics
    if metrics is not None:
        metrics.jobs_submitted.labels(kind="check").inc()
    return jsonify(report)


def _record(job_id: str) -> dict[str, Any]:
    record = _jobs().get_job(services(), job_id) if _JOB_ID.match(job_id) else None
    if record is None:
        raise ApiError(
            404, "unknown_job", "No job with this id: it may have expired or been deleted."
        )
    g.job_id = job_id
    return record


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    record = _record(job_id)
    body: dict[str, Any] = {"job_id": job_id}
    body.update({k: record[k] for k in _PUBLIC_FIELDS if k in record})
    stages = {
        name: {k: info[k] for k in _STAGE_FIELDS if k in info}
        for name, info in (record.get("stages") or {}).items()
        if isinstance(info, dict)
    }
    # A job on a stored matte has its skipped stages recorded as done (`tasks.jobs`): whether
    # this photo was seen before is not the client's to know, so only the status is shown.
    body["stages"] = stages
    job_state = record.get("state")
    body["outputs"] = _jobs().job_links(services(), record) if job_state == "done" else {}
    body["report"] = record.get("report")
    response = jsonify(body)
    # Presigned links expire; a cached copy would hand out dead links.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/jobs/<job_id>/recompose")
def recompose_job(job_id: str) -> Response:
    admit(segment=False)
    _record(job_id)
    payload: Any = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(payload, "get"):
        raise ApiError(422, "bad_parameter", "Send a JSON object or form with spec/background.")
    unknown = sorted(set(payload) - {"spec", "background", "csrf_token"})
    if unknown:
        raise ApiError(
            422,
            "bad_parameter",
            f"Unknown field(s): {', '.join(unknown)[:200]}; give 'spec', 'background' or both.",
        )
    spec = _text(payload.get("spec"), "spec")
    background = _text(payload.get("background"), "background")
    if spec is None and background is None:
        raise ApiError(422, "bad_parameter", "Give a new 'spec', a new 'background', or both.")
    new_id = _jobs().recompose(services(), job_id, spec=spec, background=background)
    metrics = state().metrics
    if metrics is not None:
        metrics.jobs_submitted.labels(kind="recompose").inc()
    return _accepted(new_id)


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    if not (_JOB_ID.match(job_id) and _jobs().delete_job(services(), job_id)):
        raise ApiError(
            404, "unknown_job", "No job with this id: it may have expired or been deleted."
        )
    g.job_id = job_id
    return Response(status=204)


def spec_catalogue() -> dict[str, Any]:
    """The specs as JSON, each with its country's name, plus the named background colours."""
    specs = []
    for spec in list_specs():
        item = spec.to_dict()
        item["country_name"] = COUNTRY_NAMES.get(spec.country, spec.country)
        specs.append(item)
    return {
        "specs": specs,
        "countries": COUNTRY_NAMES,
        "backgrounds": {**NAMED_COLOURS, "transparent": None},
    }


@bp.get("/specs")
def specs() -> Response:
    response = jsonify(spec_catalogue())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(max_upload_bytes=state().settings.max_upload_bytes))


# --- batches ------------------------------------------------------------------------------------


def _batches() -> ModuleType:
    from tasks import batches

    return batches


def _zip_members(data: bytes) -> int:
    import io
    import zipfile

    try:
        return sum(not i.is_dir() for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ApiError(415, "unsupported_archive", "The batch upload is not a valid zip.") from exc


@bp.post("/batches")
def create_batch() -> Response:
    """A zip of photos (field ``archive``) with one spec/background -> 202 with the batch id."""
    admit()  # cheap refusal before reading the body
    data = _read_upload("archive", "Send a zip of photos in the 'archive' field.")
    if not data.startswith(b"PK\x03\x04"):
        raise ApiError(415, "unsupported_archive", "The batch upload must be a zip archive.")
    members = _zip_members(data)
    if members > _batches().MAX_MEMBERS:  # before admission: a 503 here is retried for ever
        limit = _batches().MAX_MEMBERS
        raise ApiError(
            422,
            "bad_parameter",
            f"The zip archive holds {members} files; at most {limit} per batch.",
            max_members=limit,
        )
    admit(incoming=members)
    spec = _text(request.form.get("spec"), "spec")
    if not spec:
        raise _missing("spec", "Choose a photo specification (the 'spec' field, e.g. us-passport).")
    background = _text(request.form.get("background"), "background")
    options = _options(request.form.get("options"))
    batch_id = _batches().submit_batch(
        services(), data, spec=spec, background=background, options=options
    )
    url = url_for("api.get_batch", batch_id=batch_id, _external=True)
    response = jsonify({"batch_id": batch_id, "status_url": url})
    response.status_code = 202
    response.headers["Location"] = url
    return response


@bp.get("/batches/<batch_id>")
def get_batch(batch_id: str) -> Response:
    body = _batches().get_batch(services(), batch_id)
    body["results_url"] = url_for("api.batch_results", batch_id=batch_id, _external=True)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/batches/<batch_id>/results.zip")
def batch_results(batch_id: str) -> Response:
    data = _batches().batch_zip(services(), batch_id)
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="idphoto-batch-{batch_id}.zip"'},
    )
