"""Test helper: log the size of every task message a process publishes, one JSON line each.

Installed in the test process and, through `tests.tasks.worker_main`, in the worker processes
(the chain's later messages are published by the workers). The size is the JSON body exactly as
kombu serialises it plus the headers as JSON (AMQP's field-table encoding is about as long).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import signals
from kombu.serialization import dumps

LIMIT_BYTES = 16 * 1024
_LOCK = threading.Lock()


def message_bytes(body: Any, headers: dict[str, Any] | None) -> int:
    """Bytes a task message occupies on the wire (body + headers, as serialised JSON)."""
    _, _, payload = dumps(body, serializer="json")
    raw = payload.encode() if isinstance(payload, str) else payload
    return len(raw) + len(json.dumps(headers or {}, default=str).encode())


def install(path: Path) -> Callable[..., None]:
    """Append ``{"task", "bytes", "pid"}`` to ``path`` for each message this process publishes;
    returns the handler, for `uninstall`."""

    def _record(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        line = json.dumps(
            {
                "task": (headers or {}).get("task", sender),
                "bytes": message_bytes(body, headers),
                "pid": os.getpid(),
            }
        )
        with _LOCK, open(path, "a") as f:
            f.write(line + "\n")

    signals.before_task_publish.connect(_record, weak=False)
    return _record


def uninstall(handler: Callable[..., None]) -> None:
    signals.before_task_publish.disconnect(handler)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
