"""Test helpers that see what a job costs its backends: the job store's writes (Redis
``MONITOR``) and every S3 call of a process (a botocore hook, installed in the workers by
`tests.tasks.worker_main`)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.client

#: Redis commands that change data (what a round trip must contain to count as a write).
WRITE_COMMANDS = frozenset(
    "SET SETEX DEL UNLINK HSET HDEL HINCRBY EXPIRE PEXPIRE SADD SREM INCR INCRBY RPUSH LPUSH".split()
)
_S3_LOCK = threading.Lock()


class RedisWrites:
    """Count the write round trips that touch keys containing ``marker``, from every client of
    the server (the workers' too): a ``MULTI ... EXEC`` block or a script is one, like a single
    write command. Use as a context manager around the work."""

    def __init__(self, url: str, marker: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.marker = marker
        self.writes: list[str] = []
        self._stop = f"opslog-stop-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        block: list[str] | None = None
        with self.client.monitor() as monitor:
            self._ready.set()
            for cmd in monitor.listen():
                line = cmd["command"]
                if self._stop in line:
                    return
                if cmd.get("client_type") == "lua":
                    continue  # inside a script: its EVALSHA was counted
                name = line.split(" ", 1)[0].upper()
                if name == "MULTI":
                    block = []
                elif name == "EXEC" and block is not None:
                    if any(c.split(" ", 1)[0].upper() in WRITE_COMMANDS for c in block) and any(
                        self.marker in c for c in block
                    ):
                        self.writes.append("MULTI " + " | ".join(block))
                    block = None
                elif block is not None:
                    block.append(line)
                elif name in ("EVAL", "EVALSHA") or name in WRITE_COMMANDS:
                    if self.marker in line:
                        self.writes.append(line)

    def __enter__(self) -> RedisWrites:
        self._thread.start()
        self._ready.wait(5)
        self.client.ping()  # MONITOR has started once its own reply is in
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.echo(self._stop)
        self._thread.join(10)


def install_s3(path: Path) -> Callable[[], None]:
    """Append ``{"op", "key", "pid"}`` to ``path`` for each S3 call this process makes;
    returns the function that takes the hook out again."""
    original = botocore.client.BaseClient._make_api_call

    def _logged(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        line = json.dumps({"op": operation_name, "key": api_params.get("Key"), "pid": os.getpid()})
        with _S3_LOCK, open(path, "a") as f:
            f.write(line + "\n")
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _logged  # type: ignore[method-assign]

    def uninstall() -> None:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    return uninstall


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
