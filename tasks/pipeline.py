"""The pipeline tasks: segment [gpu] -> matte_refine [cpu] -> composite [cpu] -> store [cpu].

Each task is short: load its inputs by key, call one stage function of `pipeline.stages`, store
the result under a deterministic key, and pass the chain's small JSON context on (never image
bytes). The context (the wire contract, with the task names) is::

    {"v": 1, "job_id", "sha256", "model", "spec", "background", "options", "scope"?,
     "stages": {...},  # the records of the stages that ran, written with a later stage's write
     "outputs": {...}, "report": {...}  # added by composite, committed by store}

Failure handling: any exception ends the job ``failed`` with a machine-readable ``reason``,
through `JobTask.on_failure` (in the pool child, and in the parent for hard time limits) and the
chain's error callback ``idphoto.fail_job`` (also run for a worker lost for good); both are
idempotent and the first reason wins. Only transient storage errors are retried (exponential
backoff with jitter); domain errors (`IdPhotoError`) never are. A stage redelivered more than
``settings.max_redeliveries`` times (its message keeps killing workers) fails the job with
``worker_lost`` instead of running again.

The stage functions (and with them ONNX Runtime, rembg, pymatting and numba) are imported inside
the tasks, never at module level: the worker's parent process imports this module to register
the tasks, and numba's GNU OpenMP pool, once started in a parent (pymatting starts it on import),
kills every forked child that uses it ("fork() called from a process already using GNU
OpenMP").

A task whose job record is gone (deleted or expired) stops (``Ignore``) and removes what it or
an earlier stage wrote for the job, so a job deleted while running leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any, cast

import numpy as np
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded, TimeLimitExceeded
from PIL import Image

from config import routing
from config.catalogue import get_spec
from config.contracts import JobContext
from config.outputs import content_type
from pipeline.declared import Declared
from pipeline.errors import IdPhotoError
from pipeline.types import Analysis
from storage.errors import ObjectNotFound, StorageUnavailable
from tasks import keys
from tasks.jobstore import STAGES, TERMINAL_STATES, done_fields, failed_fields
from tasks.services import Services

logger = logging.getLogger(__name__)

CONTEXT_VERSION = 1
STAGE_OF_TASK = {
    routing.SEGMENT: "segment",
    routing.MATTE_REFINE: "matte_refine",
    routing.COMPOSITE: "composite",
    routing.STORE: "store",
}


# -- failures ------------------------------------------------------------------------------------


def failure_of(exc: BaseException) -> tuple[str, str, dict[str, Any]]:
    """(reason, message, details) for the job record: stable codes, no internals leaked."""
    if isinstance(exc, IdPhotoError):
        details = json.loads(json.dumps(exc.details, default=str))
        return exc.code, exc.message, details
    if isinstance(exc, ObjectNotFound):
        return (
            "input_missing",
            "A stored file of this job is gone (expired or deleted); submit the photo again.",
            {},
        )
    if isinstance(exc, StorageUnavailable):
        return "storage_unavailable", "Storage was unavailable; please try again.", {}
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        return "timeout", "Processing took too long and was stopped.", {}
    if isinstance(exc, WorkerLostError):
        return "worker_lost", "The worker processing this photo stopped unexpectedly.", {}
    return "internal_error", f"Internal error ({type(exc).__name__}).", {}


def _job_id_of(ctx: Any) -> str | None:
    if isinstance(ctx, dict) and keys.is_job_id(ctx.get("job_id")):
        return ctx["job_id"]
    return None


def _finished_stages(ctx: Any) -> dict[str, dict[str, Any]]:
    """The records of the stages that ran before, as the chain carries them (``ctx["stages"]``):
    each stage's own record is written with a later write of the job, not one of its own."""
    stages = ctx.get("stages") if isinstance(ctx, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {k: v for k, v in stages.items() if k in STAGES and isinstance(v, dict)}


def fail_job(svc: Services, ctx: Any, exc: BaseException, stage: str | None) -> None:
    """Mark the job ``failed`` unless it already finished. Never raises (a failure handler)."""
    job_id = _job_id_of(ctx)
    if job_id is None:
        logger.error("cannot mark a job failed: no job id in %r", type(ctx).__name__)
        return
    reason, message, details = failure_of(exc)
    now = time.time()
    fields = failed_fields(now, reason, message)
    if details:
        fields["error_details"] = details
    if stage:
        fields["failed_stage"] = stage
    for name, info in _finished_stages(ctx).items():  # the stages before, carried in the chain
        fields[f"stage.{name}"] = info
    try:
        if stage:
            record = svc.jobstore.get(job_id) or {}
            info = dict(record.get("stages", {}).get(stage) or {})
            if info.get("status") == "running":  # failed outside the task body (time limit)
                info.update(status="failed", error=reason, finished_at=now)
                fields[f"stage.{stage}"] = info
        written = svc.jobstore.update(
            job_id, fields, unless_states=TERMINAL_STATES, tally=f"failed:{reason}"
        )
    except Exception:
        logger.exception("could not mark job %s failed (%s)", job_id, reason)
        return
    if written == 1:
        log = logger.warning if isinstance(exc, IdPhotoError) else logger.error
        log("job %s failed at %s: %s (%s)", job_id, stage, reason, type(exc).__name__)


class JobTask(Task):
    """Base of the pipeline tasks: retries transient storage errors, fails the job otherwise."""

    autoretry_for = (StorageUnavailable,)
    throws = (IdPhotoError,)  # expected outcomes: logged in one line, without a traceback
    dont_autoretry_for = (IdPhotoError, ObjectNotFound)
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 8

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        ctx = args[0] if args else None
        fail_job(_services(self), ctx, exc, STAGE_OF_TASK.get(self.name))


def _services(task: Task) -> Services:
    """The services of the task's app (`tasks.app.make_celery`; a pool child's own)."""
    return task.app.idphoto_services


# -- helpers -------------------------------------------------------------------------------------


def request_fingerprint(
    sha256: str,
    model: str,
    spec: str,
    background: str,
    options: dict[str, Any],
    scope: str = "",
) -> str:
    """One name for identical requests (same input, model, spec, background, options; and
    client, where the cache is scoped to clients)."""
    parts: list[Any] = [sha256, model, spec, background, options]
    if scope:
        parts.append(scope)
    canonical = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _png(image: Image.Image | np.ndarray) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)  # intermediates: fast over small (1.4x of level 3)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _from_npy(data: bytes, channels: int) -> np.ndarray:
    """A uint8 HxWx``channels`` array stored by ``_npy`` (never unpickles anything)."""
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"stored array has {array.dtype} {array.shape}, not HxWx{channels} uint8")
    return array


class _Clock:
    """Split a stage's time into named laps, recorded in the stage's info (job record)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.last = perf_counter()

    def lap(self, name: str) -> None:
        now = perf_counter()
        self.info[name] = round(now - self.last, 4)
        self.last = now


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def purge_intermediates(svc: Services, sha256: str) -> None:
    """Delete the input and every mask and matte made from it."""
    svc.store.delete(keys.input_key(sha256))
    svc.store.delete_prefix(keys.mask_prefix(sha256))
    svc.store.delete_prefix(keys.matte_prefix(sha256))


def _cleanup_deleted(svc: Services, ctx: JobContext) -> None:
    """The job's record is gone: remove its outputs, and its input if no other job uses it."""
    job_id = ctx["job_id"]
    logger.info("job %s no longer exists: stopping and cleaning up", job_id)
    svc.store.delete_prefix(keys.job_prefix(job_id))
    if svc.jobstore.remove_ref(ctx["sha256"], job_id) == 0:
        purge_intermediates(svc, ctx["sha256"])


def _check_context(svc: Services, ctx: Any) -> JobContext:
    if not isinstance(ctx, dict) or ctx.get("v") != CONTEXT_VERSION or _job_id_of(ctx) is None:
        raise ValueError("malformed task context")
    keys.input_key(ctx["sha256"])  # validates the hash
    if ctx["model"] != svc.settings.segment_model:
        raise ValueError(
            f"job wants model {ctx['model']!r}, this worker has {svc.settings.segment_model!r}"
        )
    return cast(JobContext, ctx)  # checked above: its version, job id, hash and model


@contextmanager
def _stage(
    task: Task, ctx: JobContext, stage: str, state: str, *, announce: bool
) -> Iterator[dict[str, Any]]:
    """Run the stage's body and keep its record (worker, timestamps, duration, CPU, status).

    The job store is written at most once per stage, and not at all for most (a job costs four
    writes: created, segmenting, refining, done). With ``announce`` the stage's start is written
    (``state``, the stage ``running``, and the records of the stages before it, carried in the
    chain); a finished stage's record goes into ``ctx["stages"]`` for a later write, and
    `run_store` writes the rest with ``done``. A failed stage is written at once, with the job's
    failure (`fail_job`).

    Stops with ``Ignore`` (message acknowledged, chain ended) when the job is gone or finished.
    """
    svc = _services(task)
    jobs = svc.jobstore
    job_id = ctx["job_id"]
    if task.request.delivery_info and task.request.delivery_info.get("redelivered"):
        count = jobs.incr(job_id, f"redeliveries.{stage}")
        if count > svc.settings.max_redeliveries:
            fail_job(svc, ctx, WorkerLostError(f"{stage} redelivered {count} times"), stage)
            raise Ignore()
    now = time.time()
    hostname = task.request.hostname or f"local@{os.uname().nodename}"
    info: dict[str, Any] = {
        "worker": hostname,
        "hostname": hostname.partition("@")[2] or hostname,
        "pid": os.getpid(),
        "started_at": now,
        "attempt": task.request.retries + 1,
        "status": "running",
    }
    if announce:
        fields: dict[str, Any] = {f"stage.{k}": v for k, v in _finished_stages(ctx).items()}
        fields.update(
            {"state": state, f"ts.{state}": now, "updated_at": now, f"stage.{stage}": info}
        )
        written = jobs.update(job_id, fields, unless_states=TERMINAL_STATES)
    else:
        current = jobs.state(job_id)
        written = 0 if current is None else -1 if current in TERMINAL_STATES else 1
    if written == 0:
        _cleanup_deleted(svc, ctx)
        raise Ignore()
    if written == -1:
        logger.info("job %s already finished: %s skipped", job_id, stage)
        raise Ignore()
    began, cpu_began = perf_counter(), time.process_time()
    try:
        yield info
    except (Ignore, Reject):
        raise
    except BaseException as exc:
        info.update(
            status="failed",
            error=failure_of(exc)[0],
            duration_s=round(perf_counter() - began, 4),
            cpu_s=round(time.process_time() - cpu_began, 4),
            finished_at=time.time(),
        )
        try:
            jobs.update(job_id, {f"stage.{stage}": info})
        except Exception:
            logger.warning("could not record the failure of %s for %s", stage, job_id)
        raise
    info.update(
        status="ok",
        duration_s=round(perf_counter() - began, 4),
        # CPU time of the whole worker process (all its threads: the model's too) during the
        # stage: exact in a prefork child, which runs one task at a time.
        cpu_s=round(time.process_time() - cpu_began, 4),
        finished_at=time.time(),
    )
    ctx["stages"] = {**_finished_stages(ctx), stage: info}


# -- the stages ----------------------------------------------------------------------------------


def run_segment(task: Task, ctx: JobContext) -> JobContext:
    """Detect the face (fails fast: no face, several faces...), then the coarse mask."""
    from pipeline import stages

    svc = _services(task)
    ctx = _check_context(svc, ctx)
    sha, model = ctx["sha256"], keys.cache_name(ctx["model"], ctx.get("scope", ""))
    with _stage(task, ctx, "segment", "segmenting", announce=True) as info:
        data = svc.store.get(keys.input_key(sha))
        began = perf_counter()
        try:
            analysis, region = stages.analyse(
                data,
                svc.detector,
                max_pixels=svc.settings.max_pixels,
                landmarker=svc.landmarker,
            )
        finally:
            info["detect_s"] = round(perf_counter() - began, 4)
        info["face_count"] = analysis.face_count
        began, cpu_began = perf_counter(), time.process_time()
        reruns = svc.segmenter.reruns
        coarse = stages.segment(region, svc.segmenter, face=analysis.face)
        info["inference_s"] = round(perf_counter() - began, 4)
        info["inference_cpu_s"] = round(time.process_time() - cpu_began, 4)
        info["provider"] = svc.segmenter.provider
        info["precision"] = svc.segmenter.precision
        if svc.segmenter.reruns > reruns:  # int8+fp32: the int8 mask was unsure
            info["fp32_again"] = True
        info["region_px"] = [int(region.shape[1]), int(region.shape[0])]
        svc.store.put(
            keys.analysis_key(sha, model),
            json.dumps(analysis.to_dict()).encode(),
            content_type="application/json",
        )
        svc.store.put(keys.coarse_key(sha, model), _png(coarse), content_type="image/png")
        svc.store.put(
            keys.region_key(sha, model), _npy(region), content_type="application/octet-stream"
        )
    return ctx


def run_matte_refine(task: Task, ctx: JobContext) -> JobContext:
    """Coarse mask -> matte (RGBA: foreground colour + refined alpha) at region resolution.

    The matte is what stays (`keys.matte_key`, compact); the coarse mask and the region, which
    only this stage reads, are deleted once it is stored."""
    from pipeline import encode, stages

    svc = _services(task)
    ctx = _check_context(svc, ctx)
    sha, model = ctx["sha256"], keys.cache_name(ctx["model"], ctx.get("scope", ""))
    with _stage(task, ctx, "matte_refine", "refining", announce=True) as info:
        clock = _Clock(info)
        try:
            coarse_png = svc.store.get(keys.coarse_key(sha, model))
        except ObjectNotFound:
            if svc.store.exists(keys.matte_key(sha, model)):  # redelivered after it was done
                info["reused"] = True
                return ctx
            raise
        try:
            region_npy: bytes | None = svc.store.get(keys.region_key(sha, model))
        except ObjectNotFound:  # segmented by an older worker: decode the region again
            region_npy = None
            data = svc.store.get(keys.input_key(sha))
            analysis = Analysis.from_dict(json.loads(svc.store.get(keys.analysis_key(sha, model))))
        clock.lap("fetch_s")
        coarse = np.asarray(_open(coarse_png).convert("L"))
        if region_npy is not None:
            region = _from_npy(region_npy, 3)
        else:
            region = stages.load_region(data, analysis, max_pixels=svc.settings.max_pixels)
        if coarse.shape != region.shape[:2]:
            raise ValueError(f"coarse mask {coarse.shape} does not fit region {region.shape}")
        clock.lap("decode_s")
        matte = stages.refine(region, coarse)
        clock.lap("refine_s")
        packed = encode.pack_matte(np.asarray(matte))
        info["matte_bytes"] = len(packed)
        clock.lap("encode_s")
        svc.store.put(keys.matte_key(sha, model), packed, content_type="application/octet-stream")
        svc.store.delete(keys.coarse_key(sha, model))
        svc.store.delete(keys.region_key(sha, model))
        clock.lap("put_s")
    return ctx


def run_composite(task: Task, ctx: JobContext) -> JobContext:
    """Matte + analysis -> the photo, print sheet, cut-out and report, for one spec and
    background (the only work a recomposition does)."""
    from pipeline import encode, stages

    svc = _services(task)
    ctx = _check_context(svc, ctx)
    sha, job_id = ctx["sha256"], ctx["job_id"]
    model = keys.cache_name(ctx["model"], ctx.get("scope", ""))
    options = dict(ctx.get("options") or {})
    # A recomposition (no segment before it) says it is compositing; after a refine the job
    # reads ``refining`` until it is done (composite and store take a fraction of a second).
    announce = not _finished_stages(ctx)
    with _stage(task, ctx, "composite", "compositing", announce=announce) as info:
        clock = _Clock(info)
        matte_npy = svc.store.get(keys.matte_key(sha, model))  # written by an earlier job too
        analysis = Analysis.from_dict(json.loads(svc.store.get(keys.analysis_key(sha, model))))
        clock.lap("fetch_s")
        matte = encode.unpack_matte(matte_npy)
        clock.lap("decode_s")
        spec = get_spec(ctx["spec"])
        comp = stages.compose(
            matte,
            analysis,
            spec,
            ctx["background"],
            level=bool(options.get("level", True)),
            sheet=options.get("sheet"),
            zero_margin=bool(options.get("zero_margin", False)),
            declared=Declared.from_options(options),
        )
        clock.lap("compose_s")
        outputs: dict[str, str] = {}
        kept = 0
        for name, file_ext, data in comp.files():
            key = keys.output_key(job_id, name, file_ext)
            # Written once: a second attempt (redelivered while the first was cut off, or after
            # it died half-way) keeps what the first stored. The content is the same function
            # of the same matte and request.
            if not svc.store.put(key, data, content_type=content_type(file_ext), if_absent=True):
                kept += 1
                if kept == 1 and svc.jobstore.state(job_id) in TERMINAL_STATES:  # asked once
                    logger.info("job %s finished by another attempt: composite stops", job_id)
                    raise Ignore()
            outputs[name] = key
        if kept:
            info["outputs_kept"] = kept
        clock.lap("put_s")
        info["photo"] = {
            "format": comp.photo.format,
            "width": comp.photo.width,
            "height": comp.photo.height,
            "bytes": len(comp.photo.data),
            "quality": comp.photo.quality,
            "dpi": comp.photo.dpi,
        }
        info["verdict"] = comp.report.get("verdict")
    if svc.jobstore.state(job_id) is None:  # deleted while we composed: leave nothing behind
        _cleanup_deleted(svc, ctx)
        raise Ignore()
    # What store commits travels in the message (a few KB): nothing is read back.
    return {**ctx, "outputs": outputs, "report": comp.report}


def run_store(task: Task, ctx: JobContext) -> dict[str, str]:
    """Commit: publish the outputs and the report composite handed on in the record, mark the
    job done and remember the request (one write; nothing is read back from the store)."""
    svc = _services(task)
    ctx = _check_context(svc, ctx)
    job_id = ctx["job_id"]
    outputs: dict[str, str] = dict(ctx.get("outputs") or {})
    report = ctx.get("report")
    with _stage(task, ctx, "store", "storing", announce=False) as info:
        prefix = keys.job_prefix(job_id)
        if not outputs or any(not k.startswith(prefix) for k in outputs.values()):
            raise ValueError("store got no outputs of this job")
        if not isinstance(report, dict):
            raise ValueError("store got no report")
        info["outputs"] = len(outputs)
    now = time.time()
    fields = {f"stage.{k}": v for k, v in _finished_stages(ctx).items()}
    fields.update(done_fields(now, outputs, report))
    fingerprint = request_fingerprint(
        ctx["sha256"],
        ctx["model"],
        ctx["spec"],
        ctx["background"],
        ctx.get("options") or {},
        ctx.get("scope", ""),
    )
    written = svc.jobstore.update(
        job_id,
        fields,
        unless_states=TERMINAL_STATES,
        remember=(fingerprint, job_id),
        tally="done",
    )
    if written == 0:
        _cleanup_deleted(svc, ctx)
        raise Ignore()
    return {"job_id": job_id, "state": "done"}


# -- registration --------------------------------------------------------------------------------


def register_tasks(app: Celery) -> None:
    """Register the pipeline tasks, under their wire names, on ``app``."""
    settings = app.idphoto_settings
    opts: dict[str, Any] = {
        "bind": True,
        "shared": False,  # never registered on other apps (the closures hold this app's settings)
        "base": JobTask,
        "soft_time_limit": settings.task_soft_time_limit_s,
        "time_limit": settings.task_time_limit_s,
        "max_retries": settings.task_max_retries,
        "retry_backoff": settings.task_retry_backoff_s,
        "retry_backoff_max": settings.task_retry_backoff_max_s,
    }

    @app.task(name=routing.SEGMENT, **opts)
    def segment(self: Task, ctx: JobContext) -> JobContext:
        return run_segment(self, ctx)

    @app.task(name=routing.MATTE_REFINE, **opts)
    def matte_refine(self: Task, ctx: JobContext) -> JobContext:
        return run_matte_refine(self, ctx)

    @app.task(name=routing.COMPOSITE, **opts)
    def composite(self: Task, ctx: JobContext) -> JobContext:
        return run_composite(self, ctx)

    @app.task(name=routing.STORE, **opts)
    def store(self: Task, ctx: JobContext) -> dict[str, str]:
        return run_store(self, ctx)

    @app.task(name=routing.FAIL_JOB, shared=False)
    def fail_job_errback(request: Any, exc: BaseException, traceback: Any) -> None:
        """The chain's error callback, called in the process that saw the failure (the pool
        child, or the worker's parent for a lost child or a hard time limit)."""
        args = getattr(request, "args", None) or ()
        stage = STAGE_OF_TASK.get(getattr(request, "task", None) or "")
        fail_job(app.idphoto_services, args[0] if args else None, exc, stage)
