"""The Celery app factory: queues, routing and reliability settings.

``make_celery(settings)`` builds a new app from the settings object and connects to nothing.

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

Wiring: ``make_celery(settings, services)`` builds the app around one `tasks.services.Services`
(``app.idphoto_services``, which the tasks use) and sets ``services.celery`` to the app (which
sends the chains); ``connect(settings)`` is the two for an entry point (the web app, a bench,
a test). There is no module-level app: the ``celery`` command (Flower) loads
`idphoto.celery_app`, the entry point built from the environment.

Embedded mode (``settings.broker_url`` unset): the same app, tasks and chain on kombu's
``filesystem://`` transport, with message files under ``storage_dir/../broker`` (``queue/``,
``control/`` for exchange bindings, ``processed/``), served by real worker processes
(``idphoto worker``, `tasks.worker.run_worker`). It has no publisher confirms and a message
being processed lives only in the worker's memory (a killed worker loses it); job records go to
the file job store (`tasks.jobstore.FileJobStore`). ``settings.task_always_eager`` runs the
chain in the calling process instead, for the CLI's single-process path only.

Worker start-up (the signal handlers that load the models in a GPU worker's pool children) is
in `tasks.startup`; queue and task names are in `config.routing`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from config.routing import (  # noqa: F401 - re-exported: the app's routing, one place
    COMPOSITE,
    CPU_QUEUE,
    EXCHANGE,
    FAIL_JOB,
    GPU_QUEUE,
    MATTE_REFINE,
    QUEUES,
    SEGMENT,
    STORE,
    TASK_QUEUES,
)
from config.settings import Settings
from tasks.services import Services

logger = logging.getLogger(__name__)


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


def attach(app: Celery, services: Services) -> None:
    """Make ``services`` the ones ``app``'s tasks use, and ``app`` the one they send through."""
    app.idphoto_services = services  # read by the tasks
    services.celery = app


def make_celery(settings: Settings, services: Services | None = None) -> Celery:
    """A Celery app for ``settings``, with the pipeline tasks registered, wired to ``services``
    (new ones for ``settings`` when none are given). Connects to nothing."""
    broker_url, transport_options = _broker(settings)
    app = Celery("idphoto", set_as_current=False)
    app.idphoto_settings = settings  # read by tasks and signals
    attach(app, services or Services(settings))
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_heartbeat=settings.broker_heartbeat_s,
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


def connect(settings: Settings) -> Services:
    """An entry point's services for ``settings``, with the Celery app that sends its chains
    (``services.celery``). Build them once per process and pass them down."""
    services: Services = make_celery(settings).idphoto_services
    return services


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
