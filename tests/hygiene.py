"""What an interrupted test run leaves behind, found and removed by the next run.

A run killed half-way (Ctrl-C twice, a CI timeout, a session that ends) leaves the processes it
started in their own sessions (Celery workers, gunicorn, Flower, radosgw) and the RabbitMQ vhosts
it made. Left alone they hold broker connections (RabbitMQ on this machine kind allows 832
sockets in all) and CPU, and the next run on the same services fails in ways that have nothing
to do with the code. So:

- every process a test run starts inherits ``PYTEST_IDPHOTO_OWNER=<pid>:<start time>`` of the
  pytest process (the name starts with no ``IDPHOTO_`` so that scrubbed environments keep it);
- the vhosts a run makes carry its pid (`vhost_name`);
- at the start of a run, `reap` kills the processes and `stale_vhosts` names the vhosts whose
  owner is no longer running. A run in progress is never touched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

OWNER_VAR = "PYTEST_IDPHOTO_OWNER"
_PROC = Path("/proc")
# idphoto-<kind>-<pid>-<hex>: the kinds the test fixtures make (a bench's own vhosts are left be)
_VHOST = re.compile(r"^idphoto-(?:test|web|web-backlog)-(?:(\d+)-)?[0-9a-f]{8,12}$")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # fields after the command name start at 3


def token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def mark() -> str:
    """Tag this process's environment (inherited by everything it starts) with its token."""
    os.environ.setdefault(OWNER_VAR, token())
    return os.environ[OWNER_VAR]


def _alive(owner: str) -> bool:
    pid, _, started = owner.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started


def _owner_of(pid: int) -> str | None:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(OWNER_VAR.encode() + b"="):
            return item.partition(b"=")[2].decode(errors="replace")
    return None


def orphans() -> list[int]:
    """Processes started by a test run that is no longer running."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        owner = _owner_of(int(entry.name))
        if owner is not None and not _alive(owner):
            found.append(int(entry.name))
    return found


def reap() -> list[int]:
    """SIGKILL every orphan; returns their pids."""
    killed = []
    for pid in orphans():
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def vhost_name(kind: str) -> str:
    """A vhost name that says which process made it."""
    return f"idphoto-{kind}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def _pytest_alive(pid: int) -> bool:
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"pytest" in cmdline


def stale_vhosts(names: list[str]) -> list[str]:
    """The test vhosts among ``names`` whose maker is gone (names without a pid come
    from runs older than this scheme, all long over)."""
    stale = []
    for name in names:
        m = _VHOST.match(name)
        if m is None:
            continue
        if m.group(1) is None or not _pytest_alive(int(m.group(1))):
            stale.append(name)
    return stale


def delete_stale_vhosts(timeout: float = 120) -> list[str]:
    """Delete the stale vhosts on the local RabbitMQ (in parallel); returns their names."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_vhosts", "-q", "name"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    stale = stale_vhosts(listed.stdout.split())
    procs = [
        subprocess.Popen(
            ["rabbitmqctl", "delete_vhost", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in stale
    ]
    for proc in procs:
        proc.wait(timeout=timeout)
    return stale
