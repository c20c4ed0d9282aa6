"""Worker entry point: ``idphoto worker --queues gpu|cpu`` (the CLI calls `run_worker`).

A GPU worker (``-Q gpu``) runs segment; its pool children load the face detector and ISNet
once each, at start (``worker_process_init``). A CPU worker (``-Q cpu``) runs matte_refine,
composite and store, loads no model, and has its children replaced above
``settings.worker_max_memory_mb``. One worker may take both queues (the embedded mode's single
worker does). The pool is prefork: ONNX Runtime and OpenCV sessions are not shared across
processes, and a crashed child costs one task, which RabbitMQ redelivers.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from config.settings import Settings
from tasks.app import QUEUES, broker_dir, make_celery

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
    if settings.embedded:
        _prune_processed(settings)
    app = make_celery(settings)
    app.worker_main(argv)
