"""Prometheus metrics: requests by endpoint and status, latency, jobs submitted, job outcomes.

Each app gets its own registry, so several apps can live in one process (tests). Under gunicorn
with several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` (``idphoto serve`` does): the
values then go through prometheus-client's shared files and ``/metrics`` sums every process.

Job outcomes are observed when a client polls a finished job. Each job is counted once across
all processes and polls: a Redis ``SET NX`` marker decides who counts it (a per-process memory
stands in when Redis cannot be reached).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from config.settings import Settings

logger = logging.getLogger("idphoto.web")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SEEN_TTL_S = 7 * 24 * 3600
#: Label values come from fixed sets: a client's made-up method ("FOO123") must not become a
#: series of its own (2,000 random methods made 30,000 series and a 3 MB /metrics). Endpoints
#: are Flask's registered names or "unmatched", statuses the app's own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, redis_url: str | None = None, key_prefix: str = "idphoto") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "idphoto_http_requests",
            "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "idphoto_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint and method.",
            ["endpoint", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "idphoto_jobs_submitted",
            "Jobs accepted by the API (kind: new upload or recompose).",
            ["kind"],
            registry=self.registry,
        )
        self.job_outcomes = Counter(
            "idphoto_job_outcomes",
            "Finished jobs seen by polling, by final state and failure reason.",
            ["state", "reason"],
            registry=self.registry,
        )
        self._redis_url = redis_url
        self._key_prefix = key_prefix
        self._redis = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def observe_outcome(self, job_id: str, state: str, reason: str | None) -> None:
        """Count a finished job once, however many times (and by however many processes) it is
        polled."""
        if state not in ("done", "failed") or not self._first_sighting(job_id):
            return
        label = (reason or "unknown") if state == "failed" else ""
        self.job_outcomes.labels(state=state, reason=label).inc()

    def _first_sighting(self, job_id: str) -> bool:
        try:
            client = self._client()
            if client is not None:
                key = f"{self._key_prefix}:web:outcome:{job_id}"
                return bool(client.set(key, 1, nx=True, ex=_SEEN_TTL_S))
        except Exception as exc:  # Redis down: fall back to this process's memory
            logger.warning("outcome marker unavailable: %s", type(exc).__name__)
        with self._lock:
            if job_id in self._seen:
                return False
            self._seen[job_id] = None
            if len(self._seen) > 10_000:
                self._seen.popitem(last=False)
            return True

    def _client(self):  # noqa: ANN202 - redis.Redis, imported lazily
        if self._redis is None and self._redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                self._redis_url, socket_timeout=1, socket_connect_timeout=1
            )
        return self._redis

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def init_app(app: Flask, settings: Settings) -> Metrics:
    metrics = Metrics(settings.redis_url, settings.job_key_prefix)

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.endpoint or "unmatched"
        if endpoint == "static":
            return response
        started = g.get("metrics_started")
        method = request.method if request.method in _METHODS else "other"
        metrics.requests.labels(endpoint, method, str(response.status_code)).inc()
        if started is not None:
            metrics.latency.labels(endpoint, method).observe(time.perf_counter() - started)
        return response

    return metrics


def metrics_response(metrics: Metrics) -> Response:
    return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
