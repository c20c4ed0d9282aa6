"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (its backends answer),
``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from web.admission import ping_broker
from web.context import state
from web.metrics import metrics_response

bp = Blueprint("ops", __name__)
logger = logging.getLogger("idphoto.web")


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the broker, Redis (the job store) and storage all answer; else 503 naming the
    ones that failed (by name only: error texts may carry hosts and user names)."""
    app_state = state()
    settings = app_state.settings
    checks: dict[str, Callable[[], None]] = {}
    if settings.broker_url:
        broker_url = settings.broker_url
        checks["broker"] = lambda: ping_broker(broker_url)
    if settings.job_store == "redis" or (settings.job_store == "auto" and not settings.embedded):
        # Job records live there (the embedded mode keeps them in files; the rate limiter's use
        # of Redis fails open and does not make the app unready).
        checks["redis"] = lambda: _ping_redis(settings.redis_url)
    checks["storage"] = app_state.store.ping
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "failed"
    failed = sorted(name for name, result in results.items() if result != "ok")
    response = jsonify(
        {
            "status": "not_ready" if failed else "ready",
            "checks": results,
            "failed": failed,
            # What a segment worker with this deployment's settings runs on this host's kind
            # of machine (the choice of pipeline.runtime.choose_isnet; informational).
            "segment": app_state.services.segment_choice(),
        }
    )
    response.status_code = 503 if failed else 200
    if failed:
        response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics() -> Response:
    app_metrics = state().metrics
    if app_metrics is None:
        return Response(status=404)
    return metrics_response(app_metrics)
