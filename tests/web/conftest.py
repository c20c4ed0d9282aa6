"""Fixtures for the web tests: live servers on real RabbitMQ, Redis and S3.

Every broker resource lives in a RabbitMQ vhost made for this session (``rabbitmqctl``), so the
web tests neither see nor feed other tests' workers; Redis keys carry a per-session prefix.

- ``stack``: the whole topology as ``python -m idphoto.serve`` runs it (gunicorn web app, GPU
  worker, CPU worker, Flower), stopped at the end with SIGINT like a Ctrl-C;
- ``live_app(settings)``: one more gunicorn web app with other settings (no workers), for the
  rate-limit and admission tests.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from config.settings import Settings
from idphoto.samples import sample_path
from idphoto.serve import settings_environ
from storage import make_store
from tests.conftest import S3Server, free_ports
from tests.hygiene import vhost_name

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
STACK_START_TIMEOUT_S = 120


def _rabbitmqctl(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["rabbitmqctl", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_all(procs: list[subprocess.Popen[bytes]], what: str) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            pytest.fail(f"rabbitmqctl {what} failed: {err.decode(errors='replace')}")


@dataclass(frozen=True)
class Vhosts:
    stack: str
    backlog: str

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


@pytest.fixture(scope="session")
def vhosts() -> Iterator[Vhosts]:
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed (the web tests make their own vhosts)")
    names = Vhosts(stack=vhost_name("web"), backlog=vhost_name("web-backlog"))
    _wait_all([_rabbitmqctl("add_vhost", n) for n in (names.stack, names.backlog)], "add_vhost")
    _wait_all(
        [
            _rabbitmqctl("set_permissions", "-p", n, "guest", ".*", ".*", ".*")
            for n in (names.stack, names.backlog)
        ],
        "set_permissions",
    )
    yield names
    _wait_all([_rabbitmqctl("delete_vhost", n) for n in (names.stack, names.backlog)], "delete")


@pytest.fixture(scope="session")
def base_settings(s3_server: S3Server, vhosts: Vhosts) -> Settings:
    """Settings shared by every live server of this session (one bucket, one Redis prefix)."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env(
        broker_url=vhosts.url(vhosts.stack),
        redis_url="redis://127.0.0.1:6379/0",
        storage="s3",
        s3_endpoint_url=s3_server.endpoint,
        s3_public_endpoint_url=s3_server.public_endpoint,
        s3_bucket=f"web-{tag}",
        s3_region=s3_server.region,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        secret_key="web-test-" + uuid.uuid4().hex,
        max_upload_bytes=512 * 1024,
        rate_limit="1000/minute",
        rate_limit_key_prefix=f"webtest-{tag}",
        job_key_prefix=f"webtest-{tag}",
        flower_user="flower",
        flower_password="pw-" + tag,
        flower_url_prefix="flower",
        worker_max_memory_mb=0,
    )
    make_store(settings).ensure_ready()  # the bucket, as `idphoto serve` makes it at start
    return settings


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDPHOTO_")}
    env.update(settings_environ(settings))
    env["PYTHONPATH"] = str(REPO)
    return env


def _wait_http(
    url: str,
    ok: Callable[[requests.Response], bool],
    timeout_s: float,
    proc: subprocess.Popen[bytes],
    log: Path,
    **kwargs: object,
) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited ({proc.returncode}):\n{_tail(log)}", pytrace=False)
        try:
            response = requests.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
            if ok(response):
                return
            last = f"{response.status_code} {response.text[:300]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    pytest.fail(f"{url} not ready in {timeout_s} s ({last}):\n{_tail(log)}", pytrace=False)


def _tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Stack:
    url: str
    flower_url: str
    settings: Settings
    log: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1{path}"


def flower_workers(stack: Stack, timeout: float = 5) -> dict:
    auth = (stack.settings.flower_user, stack.settings.flower_password)
    response = requests.get(
        f"{stack.flower_url}/api/workers", params={"refresh": "1"}, auth=auth, timeout=timeout
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="session")
def stack(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The topology of ``idphoto serve``: web, GPU worker, CPU worker and Flower."""
    port, flower_port = free_ports(2)
    settings = replace(
        base_settings, public_url=f"http://127.0.0.1:{port}", flower_port=flower_port
    )
    log = tmp_path_factory.mktemp("stack") / "serve.log"
    began = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "idphoto.serve", "--port", str(port)],
            cwd=REPO,
            env=_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(
        url=f"http://127.0.0.1:{port}",
        flower_url=f"http://127.0.0.1:{flower_port}/flower",
        settings=settings,
        log=log,
        process=proc,
    )
    try:
        _wait_http(
            f"{stack.url}/readyz", lambda r: r.status_code == 200, STACK_START_TIMEOUT_S, proc, log
        )

        def both_workers(response: requests.Response) -> bool:
            return response.status_code == 200 and len(response.json()) >= 2

        _wait_http(
            f"{stack.flower_url}/api/workers?refresh=1",
            both_workers,
            STACK_START_TIMEOUT_S - (time.monotonic() - began),
            proc,
            log,
            auth=(settings.flower_user, settings.flower_password),
        )
        print(f"\nstack ready in {time.monotonic() - began:.1f} s")
        yield stack
    finally:
        _stop_stack(proc, log)


def _stop_stack(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Ctrl-C, as a person would; everything must be gone afterwards."""
    children = _descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    leftovers = [pid for pid in children if _alive(pid)]
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leftovers or proc.returncode != 0:
        pytest.fail(
            f"serve did not stop cleanly on SIGINT (status {proc.returncode}, "
            f"left running: {leftovers}):\n{_tail(log)}",
            pytrace=False,
        )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def live_app(settings: Settings, tmp_dir: Path) -> Iterator[str]:
    """A gunicorn web app (no workers) for ``settings``; yields its base URL."""
    (port,) = free_ports(1)
    settings = replace(settings, public_url=f"http://127.0.0.1:{port}")
    log = tmp_dir / f"gunicorn-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "web:create_app()",
            ],
            cwd=REPO,
            env=_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(
            f"http://127.0.0.1:{port}/healthz", lambda r: r.status_code == 200, 30, proc, log
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unique_portrait() -> bytes:
    """The sample portrait re-encoded with a random JPEG comment: new bytes, so no earlier job's
    matte or outputs are reused for it (the job store recognises identical uploads)."""
    buffer = io.BytesIO()
    Image.open(sample_path("grace_hopper")).save(
        buffer, "JPEG", quality=95, comment=f"web-test {uuid.uuid4().hex}"
    )
    return buffer.getvalue()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def wait_true(page: Any, expression: str, timeout_ms: float = 30_000) -> None:
    """Poll ``expression`` in the page until it is true. Playwright's ``wait_for_function``
    evaluates a string predicate with ``eval`` inside the page whenever the first check is
    false, which the app's Content-Security-Policy (no 'unsafe-eval') rightly refuses; a plain
    ``evaluate`` goes through the DevTools protocol and is not subject to it."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_ms / 1000:.0f} s: {expression}")
        time.sleep(0.1)
