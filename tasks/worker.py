"""Worker entry point: ``idphoto worker --queues gpu|cpu`` (the CLI calls `run_worker`).

A GPU worker (``-Q gpu``) runs segment; its pool children load the face detector and ISNet
once each, at start (``worker_process_init``). A CPU worker (``-Q cpu``) runs matte_refine,
composite and store, loads no model, and has its children replaced above
``settings.worker_max_memory_mb``. One worker may take both queues (the embedded mode's single
worker does). The pool is prefork: ONNX Runtime and OpenCV sessions are not shared across
processes, and a crashed child costs one task, which RabbitMQ redelivers.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path

from config.models import BLAZEFACE_BACK, BLAZEFACE_FRONT, FACE_MESH, IRIS
from config.routing import GPU_QUEUE, QUEUES
from config.settings import Settings
from tasks.app import broker_dir, make_celery
from tasks.services import Services
from tasks.startup import EXIT_MODELS_FAILED, models_failed

logger = logging.getLogger("idphoto.worker")

#: ``idphoto worker`` exits with this (EX_CONFIG) when a GPU worker's models are missing.
EXIT_NO_MODELS = 78

#: Embedded mode: message files this old in ``broker/processed`` are removed at worker start.
PROCESSED_KEEP_S = 24 * 3600


def worker_argv(
    queues: list[str],
    concurrency: int,
    hostname: str | None = None,
    *,
    loglevel: str = "INFO",
) -> list[str]:
    """The ``celery worker`` arguments `run_worker` uses (for tests and for logging)."""
    unknown = [q for q in queues if q not in QUEUES]
    if not queues or unknown:
        raise ValueError(f"queues must be a non-empty subset of {QUEUES}, got {queues!r}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    argv = [
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "-P",
        "prefork",
        "--loglevel",
        loglevel,
        # No gossip/mingle: nothing here uses them, they only add start-up time and broker queues.
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv += ["-n", hostname]
    return argv


def _prune_processed(settings: Settings) -> None:
    folder = Path(broker_dir(settings)) / "processed"
    if not folder.is_dir():
        return
    cutoff = time.time() - PROCESSED_KEEP_S
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink() if path.is_file() else shutil.rmtree(path)
        except OSError:
            pass


def missing_models(settings: Settings) -> list[Path]:
    """The model files a GPU worker's children would load that are absent or empty (checked in
    the parent without loading anything: the house rule keeps ONNX sessions out of the parent
    before fork)."""
    models_dir = Path(settings.models_dir).expanduser()
    names = [BLAZEFACE_FRONT.filename, BLAZEFACE_BACK.filename, FACE_MESH.filename, IRIS.filename]
    segment = Services(settings).segment_choice()  # loads nothing
    if "file" in segment:
        names.append(segment["file"])
    paths = [models_dir / name for name in names]
    return [p for p in paths if not p.is_file() or p.stat().st_size == 0]


def run_worker(
    settings: Settings,
    queues: list[str],
    concurrency: int,
    hostname: str | None = None,
    *,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker for ``queues`` in this process until it is stopped (SIGTERM: warm
    shutdown, running tasks finish; a second signal: cold shutdown, they are redelivered)."""
    argv = worker_argv(queues, concurrency, hostname, loglevel=loglevel)
    if GPU_QUEUE in queues:
        # Before connecting: a worker without its models used to say ready and then fail every
        # job it took in milliseconds, draining the queue. Exit instead, so the supervisor (or
        # compose's restart policy) shows it, and the messages wait for a worker that can work.
        missing = missing_models(settings)
        if missing:
            names = ", ".join(str(p) for p in missing)
            logger.critical("GPU worker cannot start: model files missing: %s", names)
            sys.stderr.write(
                f"idphoto worker: model files missing in {settings.models_dir}: {names}; "
                "run `idphoto models fetch` or set IDPHOTO_MODELS_DIR\n"
            )
            raise SystemExit(EXIT_NO_MODELS)
    if settings.embedded:
        _prune_processed(settings)
    app = make_celery(settings)
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None) or not models_failed():
            raise
    if models_failed():
        sys.stderr.write("idphoto worker: the models failed to load; the worker stopped\n")
        raise SystemExit(EXIT_MODELS_FAILED)
