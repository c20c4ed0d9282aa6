"""Per-client rate limit on the API's writes (submit, recompose, delete), kept in Redis.

One budget of ``settings.rate_limit`` (e.g. ``"60/minute"``; empty = off) per client address,
shared by all unsafe requests under ``/api/`` and the pages' own posts (the form, a job
page's background and delete buttons); reads (polling a job, the spec list) are free. A batch
costs one request per photo in its zip.
Counters live under ``settings.rate_limit_key_prefix`` in ``settings.redis_url`` so that every
web process shares them (tests pick a fresh prefix to start from zero). When Redis cannot be
reached the limit is skipped and logged rather than failing every request. A refusal is
``429 {"error": "rate_limited"}`` with ``Retry-After``.
"""

from __future__ import annotations

import zipfile

from flask import Flask, request
from flask_limiter import Limiter
from werkzeug.exceptions import HTTPException

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_address() -> str:
    """The client's address (``ProxyFix`` has applied ``trusted_proxy_hops`` already)."""
    return request.remote_addr or "unknown"


def _exempt() -> bool:
    return request.method not in _UNSAFE or request.blueprint not in ("api", "ui")


def _cost() -> int:
    """What a request costs against the budget: one, or one per photo for a batch (a batch of
    50 queues 50 GPU jobs and used to count as a single request). Counted from the zip's
    central directory, without inflating anything; a body that is no zip costs one and is
    refused by the view."""
    if request.method != "POST" or request.endpoint != "api.create_batch":
        return 1
    try:
        upload = request.files.get("archive")
        if upload is None:
            return 1
        with zipfile.ZipFile(upload.stream) as archive:
            count = sum(not info.is_dir() for info in archive.infolist())
        upload.stream.seek(0)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return 1
    except HTTPException:  # an oversized body: the view's own 413 answers it
        return 1
    return max(1, count)


def init_app(app: Flask) -> Limiter | None:
    from web.context import state

    settings = state(app).settings
    limit = settings.rate_limit.strip()
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=settings.redis_url,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        strategy="fixed-window",
        key_prefix=settings.rate_limit_key_prefix,
        application_limits=[limit] if limit else [],
        application_limits_exempt_when=_exempt,
        application_limits_cost=_cost,
        swallow_errors=True,
        enabled=bool(limit),
    )
    return limiter
