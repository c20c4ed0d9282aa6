"""Structured logs: one JSON object per line, carrying the request id and the job id.

Every request gets an id (the client's ``X-Request-ID`` when it is a sane token, else a new one),
echoed in the response's ``X-Request-ID``. Views that know a job id put it in ``g.job_id``; every
record logged while the request runs carries both. One access record per request names the path
only, never the query string: presigned links carry their signature there, and ``/files`` links
are the local backend's presigned links. The development server's own request log (which would
print query strings) is silenced.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HANDLER_MARK = "_idphoto_json_handler"
_STD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

access_logger = logging.getLogger("idphoto.web.access")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, request/job ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` of the request being served to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            if not hasattr(record, "request_id"):
                record.request_id = g.get("request_id")
            if not hasattr(record, "job_id") and g.get("job_id"):
                record.job_id = g.get("job_id")
        return True


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the root logger (idempotent: one handler however often called)."""
    root = logging.getLogger()
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestContextFilter())
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level.upper())
    # werkzeug's development-server log prints full request lines, query strings included;
    # pika logs every connection (the admission check opens one a second) at INFO.
    for name in ("werkzeug", "pika"):
        logging.getLogger(name).setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    from web.context import state

    configure_logging(state(app).settings.log_level)

    @app.before_request
    def _start_request() -> None:
        g.started = time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _log_request(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        started = g.get("started")
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "endpoint": request.endpoint,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
