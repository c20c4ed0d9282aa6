"""Prometheus metrics: requests by endpoint and status, latency, jobs submitted, job outcomes.

Each app gets its own registry, so several apps can live in one process (tests). Under gunicorn
with several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` (``idphoto serve`` does): the
values then go through prometheus-client's shared files and ``/metrics`` sums every process.

Job outcomes are counted where a job ends, once, in the same job store write that ends it
(`tasks.jobstore` ``tally``), and read from the job store when ``/metrics`` is scraped: polling
costs no write, and a job nobody polls is counted too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily

from tasks.jobstore import JobStore

logger = logging.getLogger("idphoto.web")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Label values come from fixed sets: a client's made-up method ("FOO123") must not become a
#: series of its own (2,000 random methods made 30,000 series and a 3 MB /metrics). Endpoints
#: are Flask's registered names or "unmatched", statuses the app's own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, outcomes: Callable[[], dict[str, int]] | None = None) -> None:
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
        self.outcomes = _Outcomes(outcomes or dict)
        self.registry.register(self.outcomes)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(self.outcomes)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Outcomes:
    """``idphoto_job_outcomes_total{state, reason}``: jobs ended done or failed (by reason), as
    the job store counted them."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(
            "idphoto_job_outcomes",
            "Jobs that ended, by final state and failure reason (counted once, where they end).",
            labels=["state", "reason"],
        )

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        try:
            counts = self.read()
        except Exception as exc:  # the job store is down: the other metrics still answer
            logger.warning("job outcomes unavailable: %s", type(exc).__name__)
            counts = {}
        for key, n in sorted(counts.items()):
            state, _, reason = key.partition(":")
            if state in ("done", "failed"):
                family.add_metric([state, reason], n)
        yield family


def init_app(app: Flask, jobstore: JobStore) -> Metrics:
    # The app's one job store (its `tasks.services.Services`), not a second one of its own.
    metrics = Metrics(jobstore.outcomes)

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
