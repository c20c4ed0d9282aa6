"""Admission control: refuse new uploads while the GPU queue is too deep.

The depth is read from the broker with pika (a passive ``queue_declare``: it changes nothing and
works for classic and quorum queues alike), at most once a second per process; between reads the
cached value answers. In embedded mode (no broker) there is no queue and everything is admitted.
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


def queue_depth(broker_url: str, queue: str, timeout_s: float = 2.0) -> int:
    """Messages ready in ``queue`` now (0 when the queue does not exist yet).

    Raises ``pika.exceptions.AMQPError`` (or OSError) when the broker cannot be reached.
    """
    connection = pika.BlockingConnection(pika_parameters(broker_url, timeout_s))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            raise
        return int(ok.method.message_count)
    finally:
        try:
            connection.close()
        except pika.exceptions.AMQPError:
            pass


def ping_broker(broker_url: str, timeout_s: float = 2.0) -> None:
    """Open and close one connection; raises when the broker cannot be reached."""
    connection = pika.BlockingConnection(pika_parameters(broker_url, timeout_s))
    connection.close()


class QueueGauge:
    """The depth of one queue, read at most every ``ttl_s`` seconds (thread-safe)."""

    def __init__(self, broker_url: str, queue: str, ttl_s: float = CACHE_S) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: int | None = None
        self._read_at = float("-inf")

    def depth(self) -> int | None:
        """The queue's depth, or None when the broker cannot be reached."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.ttl_s:
                try:
                    self._value = queue_depth(self.broker_url, self.queue)
                except (pika.exceptions.AMQPError, OSError) as exc:
                    logger.warning("queue depth unavailable: %s", type(exc).__name__)
                    self._value = None
                self._read_at = time.monotonic()
            return self._value
