"""Worker start-up: the Celery signal handlers a worker process runs (`tasks.worker` imports
this module before it starts a worker, which connects them).

``celeryd_init`` (in the worker's parent, before the pool forks) only notes the worker's queues
and concurrency; ``worker_process_init`` (in each pool child) then loads the face detector and
the segmenter when the worker consumes ``gpu``, with ONNX Runtime threads =
``settings.ort_threads`` or cores / concurrency. CPU workers load no model.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from typing import Any

from celery import signals

from config.routing import GPU_QUEUE, QUEUES
from config.settings import Settings
from tasks.app import attach, declare_topology
from tasks.services import Services

logger = logging.getLogger(__name__)

# -- worker start-up -----------------------------------------------------------------------------

#: A pool child whose models fail to load exits with this (EX_SOFTWARE) after stopping its parent.
EXIT_MODELS_FAILED = 70

#: Set in the worker's parent by ``celeryd_init``, inherited by the pool children.
_WORKER: dict[str, Any] = {}


def _queue_names(value: Any) -> list[str]:
    if not value:
        return list(QUEUES)
    if isinstance(value, str):
        value = value.split(",")
    return [str(q).strip() for q in value if str(q).strip()]


@signals.celeryd_init.connect
def _on_worker_init(
    sender: Any = None,
    instance: Any = None,
    conf: Any = None,
    options: dict | None = None,
    **_: Any,
) -> None:
    """Note the worker's role; cap CPU-only workers' child memory. Loads nothing."""
    settings = getattr(getattr(instance, "app", None), "idphoto_settings", None)
    if settings is None or conf is None:
        return
    options = options or {}
    queues = _queue_names(options.get("queues"))
    concurrency = int(options.get("concurrency") or conf.worker_concurrency or os.cpu_count() or 1)
    # Shared with the pool children (forked later): set by one whose models fail to load.
    _WORKER.update(
        app=instance.app,
        settings=settings,
        queues=queues,
        concurrency=concurrency,
        models_failed=multiprocessing.RawValue("b", 0),
    )
    if GPU_QUEUE not in queues and settings.worker_max_memory_mb > 0:
        conf.worker_max_memory_per_child = settings.worker_max_memory_mb * 1024  # KiB
    if GPU_QUEUE in queues:
        # Which model file and provider the children will load (chosen from the settings and
        # this CPU, nothing loaded here): in the start log, and in `celery inspect conf`,
        # which Flower shows as the worker's Config.

        choice = instance.app.idphoto_services.segment_choice()
        conf.idphoto_segment = choice
        logger.info("segment worker runs %s", " ".join(f"{k}={v}" for k, v in choice.items()))
    if not settings.embedded:
        try:
            declare_topology(instance.app)
        except Exception:
            logger.exception("could not declare the queues at worker start")
    if "numba" in sys.modules:
        logger.error(
            "numba was imported in the worker's parent process: pool children that run "
            "pymatting will be killed by numba's OpenMP fork guard; import the pipeline stages "
            "lazily (inside tasks), or set NUMBA_THREADING_LAYER=workqueue"
        )


def models_failed() -> bool:
    """In the worker's parent after the pool stopped: whether a child's models failed to load
    (``run_worker`` then exits non-zero instead of a warm shutdown's 0)."""
    flag = _WORKER.get("models_failed")
    return bool(flag is not None and flag.value)


@signals.worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    """In each pool child: build its own services (none of its parent's clients or sockets)
    for the worker's app and, on a GPU worker, load the models."""
    settings: Settings | None = _WORKER.get("settings")
    if settings is None:
        return

    svc = Services(settings)
    attach(_WORKER["app"], svc)
    cores = os.cpu_count() or 1
    threads = settings.ort_threads or max(1, cores // max(1, _WORKER.get("concurrency", 1)))
    try:
        svc.ready_store()
    except Exception:  # the tasks retry storage errors; a down store must not kill the pool
        logger.warning("blob store not ready at worker start", exc_info=True)
    if GPU_QUEUE in _WORKER.get("queues", QUEUES):
        try:
            svc.load_models(threads=threads)
        except Exception:
            # Celery only logs a failing init handler and the child then fails every job in
            # milliseconds, draining the queue: stop the whole worker instead (run_worker has
            # already checked that the files exist; this is a model that will not load).
            logger.critical(
                "models failed to load in a pool child: stopping the worker", exc_info=True
            )
            flag = _WORKER.get("models_failed")
            if flag is not None:
                flag.value = 1
            os.kill(os.getppid(), signal.SIGTERM)
            os._exit(EXIT_MODELS_FAILED)
    else:
        try:
            import cv2

            cv2.setNumThreads(settings.cpu_threads or threads)
        except ImportError:  # pragma: no cover - cv2 is a pipeline dependency
            pass
