"""The job API the web layer and the CLI call: submit, poll, recompose, delete, links.

``submit_job`` validates everything it can synchronously (spec, background, options, the bytes'
real format and size) *before* anything is stored or queued, so a bad request raises
``UnknownSpec`` / ``BadParameter`` / ``UnsupportedImage`` / ``ImageTooLarge`` and leaves no trace.
Then the input is stored once per content hash (``inputs/{sha256}``), the job record is created
(``queued``) and the chain is sent:

- new photo: ``segment -> matte_refine -> composite -> store``;
- photo whose matte and analysis are stored (an earlier job, or ``recompose``): only
  ``composite -> store`` (the record says ``matte_cached: true``, and its segment and refine
  stages ``{"status": "ok", "cached": true}``);
- identical request to a finished job still on record (same input, model, spec, background,
  options): the outputs are copied, the new job is ``done`` at once (``reused_from``).

Job ids are ``secrets.token_urlsafe(16)`` (128 random bits): knowing one is the capability to
read, recompose and delete that job. Every call takes the caller's `tasks.services.Services`
(built once per entry point: `tasks.app.connect`): its blob store, job store and the Celery
app that sends the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import Any

from celery import chain

from config import routing
from config.catalogue import parse_spec_arg
from config.contracts import JobRecord
from config.outputs import content_type
from config.settings import Settings
from pipeline.composite import parse_background
from pipeline.declared import Declared
from pipeline.decode import sniff
from pipeline.errors import BadParameter, IdPhotoError, ImageTooLarge, UnsupportedImage
from storage.errors import ObjectNotFound, StorageUnavailable
from tasks import keys
from tasks.jobstore import RUNNING_STATES, TERMINAL_STATES, done_fields, failed_fields
from tasks.pipeline import CONTEXT_VERSION, purge_intermediates, request_fingerprint
from tasks.services import Services

logger = logging.getLogger(__name__)

#: Options a job accepts, with their defaults (``sheet``: 4x6 | 5x7 | a4 | None).
DEFAULT_OPTIONS: dict[str, Any] = {"level": True, "sheet": "4x6", "zero_margin": False}


class JobNotFound(IdPhotoError):
    """No job with this id (never existed, expired, or deleted)."""

    code = "unknown_job"


class InputExpired(IdPhotoError):
    """The job's photo and matte are no longer stored: it cannot be recomposed."""

    code = "input_expired"


class QueueUnavailable(StorageUnavailable):
    """The broker refused or could not take the job: transient, answered like a store
    outage (503 + Retry-After)."""


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return dict(DEFAULT_OPTIONS)
    if not isinstance(options, dict):
        raise BadParameter("Options must be an object.", param="options")
    known = (*DEFAULT_OPTIONS, *Declared.OPTION_KEYS)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise BadParameter(
            f"Unknown option(s): {', '.join(unknown)}; known: {', '.join(known)}.",
            param="options",
        )
    Declared.from_options(options)  # head covering / medical glasses, when given
    merged = {**DEFAULT_OPTIONS, **options}
    for name in ("level", "zero_margin"):
        if not isinstance(merged[name], bool):
            raise BadParameter(f"Option {name!r} must be true or false.", param=name)
    sheet = merged["sheet"]
    if isinstance(sheet, str) and sheet.strip().lower() in ("", "none", "no", "off"):
        sheet = None
    if sheet is not None:
        from pipeline.sheet import SHEETS

        if not isinstance(sheet, str) or sheet.strip().lower() not in SHEETS:
            raise BadParameter(
                f"Unknown sheet {sheet!r}; choose one of {', '.join(SHEETS)} or none.",
                param="sheet",
            )
        sheet = sheet.strip().lower()
    merged["sheet"] = sheet
    return merged


def validate_request(
    spec: str, background: str | None, options: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any]]:
    """Validated and canonical (spec id, background name, options)."""
    spec_obj = parse_spec_arg(spec)
    bg = parse_background(background if background is not None else spec_obj.default_background)
    return spec_obj.id, bg.name, _options(options)


def _send(services: Services, ctx: dict[str, Any], *, cached: bool) -> None:
    app = services.celery
    if app is None:
        raise RuntimeError("these services send no chains: build them with tasks.app.connect")
    first = (
        [app.signature(routing.COMPOSITE, args=(ctx,))]
        if cached
        else [
            app.signature(routing.SEGMENT, args=(ctx,)),
            app.signature(routing.MATTE_REFINE),
            app.signature(routing.COMPOSITE),
        ]
    )
    sig = chain(*first, app.signature(routing.STORE))
    if app.conf.task_always_eager:
        # In process: a failing stage re-raises here, after its failure handler has already
        # written the reason to the record, which is where callers look for it.
        try:
            sig.apply_async(link_error=app.signature(routing.FAIL_JOB))
        except Exception as exc:
            logger.info("eager job %s failed: %s", ctx["job_id"], type(exc).__name__)
        return
    try:
        sig.apply_async(link_error=app.signature(routing.FAIL_JOB))
    except Exception as exc:  # kombu/amqp errors: the broker is down or refused the message
        if isinstance(exc, IdPhotoError):
            raise
        now = time.time()
        services.jobstore.update(
            ctx["job_id"],
            failed_fields(
                now, "queue_unavailable", "The job could not be queued; please try again."
            ),
            tally="failed:queue_unavailable",
        )
        raise QueueUnavailable(f"could not queue job {ctx['job_id']}: {exc}") from exc


#: The stages a job on a stored matte skips, as its record shows them (done, made before): the
#: API, the job page and the script then show the same progress; whether the photo was seen
#: before is not the client's to know (the API gives only the status).
_CACHED_STAGES: dict[str, Any] = {
    "stage.segment": {"status": "ok", "cached": True},
    "stage.matte_refine": {"status": "ok", "cached": True},
}


def _reuse(services: Services, job_id: str, fingerprint: str, fields: dict[str, Any]) -> bool:
    """Copy the outputs of a finished identical request into ``job_id``; False if there is
    none (or its outputs are gone)."""
    previous_id = services.jobstore.recall(fingerprint)
    if not previous_id:
        return False
    previous = services.jobstore.get(previous_id)
    if not previous or previous.get("state") != "done" or not previous.get("outputs"):
        return False
    report = previous.get("report")
    if report is None:
        return False
    outputs: dict[str, str] = {}
    try:
        for name, key in previous["outputs"].items():
            new_key = keys.job_prefix(job_id) + key.rsplit("/", 1)[1]
            ext = key.rsplit(".", 1)[-1]
            services.store.put(new_key, services.store.get(key), content_type=content_type(ext))
            outputs[name] = new_key
    except ObjectNotFound:
        services.store.delete_prefix(keys.job_prefix(job_id))
        return False
    now = time.time()
    services.jobstore.create(
        job_id,
        {
            **fields,
            **done_fields(now, outputs, report),
            "reused_from": previous_id,
        },
        ref=fields["sha256"],
        tally="done",
    )
    return True


def _start(
    services: Services,
    job_id: str,
    *,
    sha256: str,
    spec: str,
    background: str,
    options: dict[str, Any],
    extra: dict[str, Any],
    scope: str = "",
    data: bytes | None = None,
) -> str:
    """Create the record and send the chain (or reuse outputs) for an input; ``scope``
    (`cache_scope`) keeps the matte and identical requests' outputs to one client.

    ``data`` is the photo of a new upload (stored here, once per content hash); without it the
    input must be stored already (a recomposition). The record is created together with the
    job's reference on the input, before the input is stored: a concurrent delete of the last
    other job on this photo then keeps the input. One job store write on every path."""
    settings = services.settings
    model = settings.segment_model
    fingerprint = request_fingerprint(sha256, model, spec, background, options, scope)
    now = time.time()
    fields: dict[str, Any] = {
        **extra,
        "state": "queued",
        "ts.queued": now,
        "created_at": now,
        "updated_at": now,
        "sha256": sha256,
        "input_key": keys.input_key(sha256),
        "model": model,
        "spec": spec,
        "background": background,
        "options": options,
    }
    if scope:
        fields["cache_scope"] = scope
    store = services.store

    def store_input() -> None:  # a new upload, once per content hash
        if data is not None and not store.exists(keys.input_key(sha256)):
            store.put(keys.input_key(sha256), data, content_type=f"image/{extra['input_format']}")

    if _reuse(services, job_id, fingerprint, {**fields, "matte_cached": True, **_CACHED_STAGES}):
        store_input()  # kept for recompositions of the copy
        return job_id
    cache = keys.cache_name(model, scope)

    def matte_stored() -> bool:
        return store.exists(keys.matte_key(sha256, cache)) and store.exists(
            keys.analysis_key(sha256, cache)
        )

    cached = matte_stored()
    if not cached and data is None and not store.exists(keys.input_key(sha256)):
        raise InputExpired("The photo is no longer stored: upload it again.")
    fields["matte_cached"] = cached
    if cached:
        fields.update(_CACHED_STAGES)
    services.jobstore.create(job_id, fields, ref=sha256)
    try:
        if cached and not matte_stored():  # purged by a delete just before our reference
            cached = False
            services.jobstore.update(
                job_id, {"matte_cached": False, **{k: None for k in _CACHED_STAGES}}
            )
            if data is None and not store.exists(keys.input_key(sha256)):
                raise InputExpired("The photo is no longer stored: upload it again.")
        if not cached:
            store_input()
    except Exception as exc:  # storage down or refusing (no bucket), or the photo is gone
        _abandon(services, job_id, sha256, exc)
        raise
    ctx = {
        "v": CONTEXT_VERSION,
        "job_id": job_id,
        "sha256": sha256,
        "model": model,
        "spec": spec,
        "background": background,
        "options": options,
    }
    if scope:
        ctx["scope"] = scope
    _send(services, ctx, cached=cached)
    return job_id


def _abandon(services: Services, job_id: str, sha256: str, exc: BaseException) -> None:
    """The job could not start (its input could not be stored, or is gone): drop its record
    and reference, so that nothing half-made is left (the caller answers with the error)."""
    logger.warning("job %s not started: %s", job_id, type(exc).__name__)
    try:
        services.jobstore.delete(job_id)
        services.jobstore.remove_ref(sha256, job_id)
    except StorageUnavailable:
        logger.warning("could not drop the record of job %s", job_id)


def cache_scope(settings: Settings, client: str | None) -> str:
    """The cache scope of a request from ``client``: "" (shared) unless ``settings.cache_scope``
    is ``"client"``; then a keyed hash of the client (16 hex digits), or a random one where the
    client is unknown (nothing is shared with it)."""
    if settings.cache_scope != "client":
        return ""
    if not client:
        return secrets.token_hex(8)
    mac = hmac.new(settings.secret_key.encode(), b"cache-scope\0" + client.encode(), "sha256")
    return mac.hexdigest()[:16]


def submit_job(
    services: Services,
    data: bytes,
    *,
    spec: str,
    background: str | None = None,
    options: dict[str, Any] | None = None,
    client: str | None = None,
) -> str:
    """Validate, store the photo, queue its job; return the job id (poll with `get_job`).

    ``client`` names who sends it (the web app: its session) for ``settings.cache_scope =
    "client"``: the photo's matte and identical requests' outputs are then reused only for
    the same client (no client: for no one else); with ``"global"`` (the default) for anyone
    who sends the same bytes.

    Raises, before storing or queueing anything: ``UnknownSpec`` / ``BadParameter`` (spec,
    background, options), ``UnsupportedImage`` (not an image format we read),
    ``ImageTooLarge`` (over ``settings.max_upload_bytes``). ``StorageUnavailable`` (incl.
    `QueueUnavailable`) when a backend is down.
    """
    settings = services.settings
    spec_id, bg, opts = validate_request(spec, background, options)
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        raise UnsupportedImage("The upload is empty.")
    data = bytes(data)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLarge(
            f"The file is larger than {settings.max_upload_bytes} bytes.",
            limit_bytes=settings.max_upload_bytes,
        )
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedImage(
            "This file is not a photo we can read: upload a JPEG, PNG, WebP or HEIC image."
        )
    # The bucket was set up before (``idphoto storage init``, run by compose and `serve`; a
    # worker at its start): nothing is configured from inside a request.
    sha256 = hashlib.sha256(data).hexdigest()
    job_id = secrets.token_urlsafe(16)
    return _start(
        services,
        job_id,
        sha256=sha256,
        spec=spec_id,
        background=bg,
        options=opts,
        extra={"input_format": fmt, "input_bytes": len(data)},
        scope=cache_scope(settings, client),
        data=data,
    )


def get_job(services: Services, job_id: str) -> JobRecord | None:
    """The job record (see `tasks.jobstore`), or None for an unknown/expired/deleted job.

    A job that has made no progress past its state's deadline is failed here with reason
    ``lost`` (see `reap_if_lost`)."""
    if not keys.is_job_id(job_id):
        return None
    jobstore = services.jobstore
    record = jobstore.get(job_id)
    if record is not None and reap_if_lost(services.settings, jobstore, record, time.time()):
        record = jobstore.get(job_id)
    return record


#: The stage a job in each running state waits for. A job reads ``refining`` from the start of
#: matte_refine until store writes ``done`` (composite and store write nothing of their own, so
#: a job lost there is named by its last written state; the timeout covers all three).
_WAITING_FOR = {
    "segmenting": "segment",
    "refining": "matte_refine",
    "compositing": "composite",
    "storing": "store",
}


def reap_if_lost(settings: Settings, jobstore: Any, record: JobRecord, now: float) -> bool:
    """Fail a job whose message is gone: no progress for ``settings.job_lost_queued_s`` while
    queued, or ``job_lost_running_s`` inside a stage. Nothing else notices a purged queue or a
    lost broker, and the job would read ``queued`` until its record expired (7 days).

    Runs when the job is polled (the client is waiting for it then). A worker that was only
    slow finds the job failed and writes nothing more (its updates skip terminal states).
    Returns whether the record was changed."""
    state = record.get("state")
    if state not in RUNNING_STATES:
        return False
    stamps = record.get("timestamps") or {}
    last = max(
        float(v)
        for v in (record.get("updated_at"), stamps.get(state), record.get("created_at"), 0.0)
        if isinstance(v, int | float)
    )
    deadline = settings.job_lost_queued_s if state == "queued" else settings.job_lost_running_s
    if now - last <= deadline:
        return False
    if state == "queued":
        waiting_for = "composite" if record.get("matte_cached") else "segment"
    else:
        waiting_for = _WAITING_FOR.get(state, state)
    idle = int(now - last)
    written = jobstore.update(
        record["job_id"],
        {
            **failed_fields(
                now,
                "lost",
                f"The job was lost: nothing happened for {idle} s while it waited for the "
                f"{waiting_for} stage. Please submit the photo again.",
            ),
            "lost_in": state,
            "waiting_for": waiting_for,
        },
        unless_states=TERMINAL_STATES,
        tally="failed:lost",
    )
    if written == 1:
        logger.warning("job %s lost in %s (waiting for %s)", record["job_id"], state, waiting_for)
    return written == 1


def recompose(
    services: Services,
    job_id: str,
    *,
    spec: str | None = None,
    background: str | None = None,
) -> str:
    """A new job on the same photo with another spec and/or background (same options).

    Runs only composite and store while the matte is stored; raises `JobNotFound`,
    ``UnknownSpec``/``BadParameter``, or `InputExpired` when neither the matte nor the photo is
    stored any more.
    """
    record = get_job(services, job_id)
    if record is None:
        raise JobNotFound("No job with this id: it may have expired or been deleted.")
    spec_id, bg, opts = validate_request(
        spec if spec is not None else record["spec"],
        background if background is not None else record["background"],
        record.get("options"),
    )
    extra: dict[str, Any] = {k: record[k] for k in ("input_format", "input_bytes") if k in record}
    return _start(
        services,
        secrets.token_urlsafe(16),
        sha256=record["sha256"],
        spec=spec_id,
        background=bg,
        options=opts,
        extra={**extra, "parent": job_id},
        scope=str(record.get("cache_scope") or ""),  # the parent's client's
    )


def delete_job(services: Services, job_id: str) -> bool:
    """Delete the job's outputs and record, and its photo, masks and matte when no other job
    uses them. False if there was no such job. A task still running for it stops and cleans
    up after itself (`tasks.pipeline`)."""
    if not keys.is_job_id(job_id):
        return False
    record = services.jobstore.get(job_id)
    removed = services.store.delete_prefix(keys.job_prefix(job_id))
    existed = services.jobstore.delete(job_id)
    sha256 = (record or {}).get("sha256")
    if isinstance(sha256, str) and services.jobstore.remove_ref(sha256, job_id) == 0:
        purge_intermediates(services, sha256)
    return existed or removed > 0


_SLUG = re.compile(r"[^a-z0-9]+")


def job_links(
    services: Services, record: dict[str, Any], expires_s: int | None = None
) -> dict[str, str]:
    """Presigned download links for a finished job's outputs, ``{name: url}`` (empty until
    ``done``). Each link names its download, e.g. ``us-passport-photo.jpg``."""
    outputs = record.get("outputs") or {}
    if record.get("state") != "done" or not outputs:
        return {}
    store = services.store
    spec = _SLUG.sub("-", str(record.get("spec", "photo")).lower()).strip("-")[:40] or "photo"
    links: dict[str, str] = {}
    for name, key in outputs.items():
        filename = f"{spec}-{name}.{key.rsplit('.', 1)[-1]}"
        links[name] = store.presign_get(key, expires_s=expires_s, filename=filename)
    return links
