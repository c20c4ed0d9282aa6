"""Admission control: refuse new work while the queue it would join is too deep.

New photos join the GPU queue (segment) and later the CPU queue; re-compositions join only the
CPU queue. Both depths are read from the broker with pika over one connection (a passive
``queue_declare``: it changes nothing and works for classic and quorum queues alike), at most
once a second per process; between reads the cached values answer. In embedded mode (no broker)
there is no queue and everything is admitted.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

logger = logging.getLogger("idphoto.web")

#: How long one reading of the queue depth is trusted.
CACHE_S = 1.0


def pika_parameters(broker_url: str, timeout_s: float = 2.0) -> pika.ConnectionParameters:
    """pika parameters for a Celery/kombu AMQP URL (``amqp://user:pw@host:port/vhost``).

    kombu reads the path after the first '/' as the vhost, with ``//`` meaning ``/``; pika's own
    URL parser disagrees on that case, hence this translation.
    """
    parts = urlsplit(broker_url)
    if parts.scheme not in ("amqp", "pyamqp", "amqps", "librabbitmq"):
        raise ValueError(f"not an AMQP broker URL (scheme {parts.scheme!r})")
    secure = parts.scheme == "amqps"
    vhost = unquote(parts.path[1:]) if parts.path else ""
    return pika.ConnectionParameters(
        host=parts.hostname or "localhost",
        port=parts.port or (5671 if secure else 5672),
        virtual_host=vhost or "/",
        credentials=pika.PlainCredentials(
            unquote(parts.username or "guest"), unquote(parts.password or "guest")
        ),
        ssl_options=pika.SSLOptions(ssl.create_default_context()) if secure else None,
        connection_attempts=1,
        socket_timeout=timeout_s,
        stack_timeout=timeout_s * 2,
        blocked_connection_timeout=timeout_s,
    )


def queue_depths(
    broker_url: str, queues: tuple[str, ...], timeout_s: float = 2.0
) -> dict[str, int]:
    """Messages ready in each of ``queues`` now (0 for a queue that does not exist yet).

    Raises ``pika.exceptions.AMQPError`` (or OSError) when the broker cannot be reached.
    """
    connection = pika.BlockingConnection(pika_parameters(broker_url, timeout_s))
    out: dict[str, int] = {}
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                ok = channel.queue_declare(queue=queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                out[queue] = 0
                channel = connection.channel()  # a 404 closes the channel
                continue
            out[queue] = int(ok.method.message_count)
        return out
    finally:
        try:
            connection.close()
        except pika.exceptions.AMQPError:
            pass


def queue_depth(broker_url: str, queue: str, timeout_s: float = 2.0) -> int:
    """Messages ready in ``queue`` now (0 when the queue does not exist yet)."""
    return queue_depths(broker_url, (queue,), timeout_s)[queue]


def ping_broker(broker_url: str, timeout_s: float = 2.0) -> None:
    """Open and close one connection; raises when the broker cannot be reached."""
    connection = pika.BlockingConnection(pika_parameters(broker_url, timeout_s))
    connection.close()


class QueueGauge:
    """The depths of some queues, read at most every ``ttl_s`` seconds (thread-safe)."""

    def __init__(self, broker_url: str, queues: str | tuple[str, ...], ttl_s: float = CACHE_S):
        self.broker_url = broker_url
        self.queues = (queues,) if isinstance(queues, str) else tuple(queues)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._values: dict[str, int] | None = None
        self._read_at = float("-inf")

    def depths(self) -> dict[str, int] | None:
        """Each queue's depth, or None when the broker cannot be reached."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.ttl_s:
                try:
                    self._values = queue_depths(self.broker_url, self.queues)
                except (pika.exceptions.AMQPError, OSError) as exc:
                    logger.warning("queue depth unavailable: %s", type(exc).__name__)
                    self._values = None
                self._read_at = time.monotonic()
            return None if self._values is None else dict(self._values)
