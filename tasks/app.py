"""The Celery app factory: queues, routing, reliability settings and worker start-up.

``make_celery(settings)`` builds a new app from the settings object and connects to nothing. The
module attribute ``app`` (for ``celery -A tasks.app worker``) is built on first access from
``Settings.from_env()``.

Broker topology (RabbitMQ): one durable topic exchange ``idphoto`` and two durable queues bound
to it, ``gpu`` (routing key ``gpu``: segment) and ``cpu`` (``cpu``: matte_refine, composite,
store), declared explicitly; quorum queues (``x-queue-type: quorum``) when
``settings.quorum_queues``. Nothing goes to an implicit ``celery`` queue.

Reliability: publisher confirms (``confirm_publish``), persistent messages, ``acks_late`` with
``reject_on_worker_lost`` (a task whose worker dies is redelivered, not lost), prefetch 1 (a
worker never sits on a second photo while the first takes seconds), soft and hard time limits,
``worker_max_memory_per_child`` on CPU-only workers. Valid on RabbitMQ 3.10 and 4.x: Celery
detects quorum queues and then uses per-consumer QoS (4.x has no global QoS on quorum queues)
and native delayed delivery for retry countdowns (which needs the topic exchange); no classic
mirrored-queue policies are used (removed in 4.0).

Embedded mode (``settings.broker_url`` unset): the same app, tasks and chain on kombu's
``filesystem://`` transport, with message files under ``storage_dir/../broker`` (``queue/``,
``control/`` for exchange bindings, ``processed/``), served by real worker processes
(``idphoto worker``, `tasks.worker.run_worker`). It has no publisher confirms and a message
being processed lives only in the worker's memory (a killed worker loses it); job records go to
the file job store (`tasks.jobstore.FileJobStore`). ``settings.task_always_eager`` runs the
chain in the calling process instead, for the CLI's single-process path only.

Models: ``celeryd_init`` (in the worker's parent, before the pool forks) only notes the worker's
queues and concurrency; ``worker_process_init`` (in each pool child) then loads the face
detector and the segmenter when the worker consumes ``gpu``, with ONNX Runtime threads =
``settings.ort_threads`` or cores / concurrency. CPU workers load no model.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from config.settings import Settings

logger = logging.getLogger(__name__)

EXCHANGE = "idphoto"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, CPU_QUEUE)

# Task names: a wire contract between the web layer and every deployed worker.
SEGMENT = "idphoto.segment"
MATTE_REFINE = "idphoto.matte_refine"
COMPOSITE = "idphoto.composite"
STORE = "idphoto.store"
FAIL_JOB = "idphoto.fail_job"  # the chain's error callback (runs where the failure is seen)

TASK_QUEUES = {
    SEGMENT: GPU_QUEUE,
    MATTE_REFINE: CPU_QUEUE,
    COMPOSITE: CPU_QUEUE,
    STORE: CPU_QUEUE,
    FAIL_JOB: CPU_QUEUE,
}

#: Filesystem-transport polling interval (s): the embedded mode's hop latency.
EMBEDDED_POLL_S = 0.1


def broker_dir(settings: Settings) -> Any:
    """Where the embedded broker keeps its message files."""
    from tasks.jobstore import state_dir

    return state_dir(settings) / "broker"


def _queues(settings: Settings) -> list[Queue]:
    exchange = Exchange(EXCHANGE, type="topic", durable=True)
    args = {"x-queue-type": "quorum"} if settings.quorum_queues and not settings.embedded else None
    return [
        Queue(name, exchange, routing_key=name, durable=True, queue_arguments=args)
        for name in QUEUES
    ]


def _broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    if not settings.embedded:
        return str(settings.broker_url), {"confirm_publish": True}
    root = broker_dir(settings)
    folders = {name: root / name for name in ("queue", "control", "processed")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "control_folder": str(folders["control"]),
        # Consumers claim a message by renaming it into processed/ (atomic on one filesystem;
        # the default, the system temp dir, may be another filesystem, where two consumers
        # could both copy the same message).
        "store_processed": True,
        "processed_folder": str(folders["processed"]),
        "polling_interval": EMBEDDED_POLL_S,
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings``, with the pipeline tasks registered. Connects to nothing."""
    broker_url, transport_options = _broker(settings)
    app = Celery("idphoto", set_as_current=False)
    app.idphoto_settings = settings  # type: ignore[attr-defined]  # read by tasks and signals
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        # Job state lives in the job store, not in a result backend.
        result_backend=None,
        task_ignore_result=True,
        task_queues=_queues(settings),
        task_default_queue=CPU_QUEUE,
        task_default_exchange=EXCHANGE,
        task_default_exchange_type="topic",
        task_default_routing_key=CPU_QUEUE,
        task_routes={name: {"queue": q, "routing_key": q} for name, q in TASK_QUEUES.items()},
        task_create_missing_queues=False,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        # A lost broker connection makes RabbitMQ redeliver unacked messages: stop the running
        # ones rather than finish them twice.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        worker_proc_alive_timeout=settings.worker_proc_alive_timeout_s,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2,
        },
        task_always_eager=settings.task_always_eager,
        # Flower shows tasks from these events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        enable_utc=True,
        timezone="UTC",
    )
    from tasks.pipeline import register_tasks

    register_tasks(app)
    return app


def declare_topology(app: Celery) -> None:
    """Declare the exchange and both queues on the broker (idempotent).

    Every worker does this at start, whatever queues it consumes: Celery declares only the
    queues a worker consumes, but native delayed delivery (retries on quorum queues) binds all
    of the app's queues and fails when one does not exist yet; and the web layer's queue-depth
    check needs the ``gpu`` queue before the first job. Raises on broker errors (e.g. a queue
    already declared with another type: delete it or keep ``quorum_queues`` as it was).
    """
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        channel = conn.default_channel
        for queue in app.conf.task_queues:
            queue.bind(channel).declare()


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
        from tasks.services import services_for

        choice = services_for(settings).segment_choice()
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
    """In each pool child: build the services and, on a GPU worker, load the models."""
    settings: Settings | None = _WORKER.get("settings")
    if settings is None:
        return
    from tasks.services import services_for

    svc = services_for(settings)
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


def __getattr__(name: str) -> Any:
    """``tasks.app.app``: the app from the environment, built on first access (celery -A)."""
    if name in ("app", "celery"):
        global _LAZY_APP
        if _LAZY_APP is None:
            _LAZY_APP = make_celery(Settings.from_env())
        return _LAZY_APP
    raise AttributeError(name)


_LAZY_APP: Celery | None = None
