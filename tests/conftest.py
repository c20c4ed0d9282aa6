"""Shared pytest fixtures. Each section belongs to the package named in its header."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import hygiene

_REPO = Path(__file__).resolve().parents[1]
hygiene.mark()  # everything this run starts carries its token


def pytest_sessionstart(session: pytest.Session) -> None:
    """Clear what an interrupted earlier run left: its processes and its RabbitMQ vhosts."""
    killed = hygiene.reap()
    stale = (
        hygiene.delete_stale_vhosts() if _reachable(5672) and shutil.which("rabbitmqctl") else []
    )
    if killed or stale:
        print(f"\nleft by an interrupted run: killed {len(killed)} processes, {len(stale)} vhosts")


# --- storage: a real S3 server (Ceph radosgw) and one store per backend ------------------------

_RADOSGW = _REPO / "tools" / "radosgw-local.sh"


@dataclass(frozen=True)
class S3Server:
    """A running radosgw. ``public_endpoint`` reaches the same server under another host name,
    so tests can tell links signed for the public host from links signed for the internal one."""

    endpoint: str
    public_endpoint: str
    access_key: str
    secret_key: str
    region: str
    port: int
    directory: Path
    startup_s: float

    def client(self, **config: Any) -> Any:
        """A raw boto3 client for assertions the `BlobStore` interface does not offer."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **config,
            ),
        )


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together, then freed)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One radosgw for the whole session, on free ports, stopped at the end.

    A missing radosgw (``make system-deps`` installs it) or any failure to start is a test error,
    with the daemon's log in the message: no S3 test is ever skipped.
    """
    if shutil.which("radosgw") is None:
        pytest.fail(
            "Ceph radosgw is not installed: run `make system-deps` "
            "(apt-get install radosgw ceph-mon ceph-osd)"
        )
    directory = tmp_path_factory.mktemp("radosgw")
    if len(str(directory)) > 70:  # ceph's admin socket paths must fit in 107 bytes
        directory = Path(tempfile.mkdtemp(prefix="idphoto-rgw-"))
    port, mon_port, mon_v1_port = free_ports(3)
    access_key, secret_key = "IDPHOTOTESTACCESS", "idphoto-test-secret-" + uuid.uuid4().hex[:8]
    env = {**os.environ, "S3_ACCESS_KEY": access_key, "S3_SECRET_KEY": secret_key}
    start = ["bash", str(_RADOSGW), "start", str(directory), str(port), str(mon_port)]
    start.append(str(mon_v1_port))
    log = directory.parent / f"{directory.name}-start.log"
    began = time.monotonic()
    try:
        # Output to a file, not a pipe: the daemons outlive the script.
        with log.open("w") as out:
            result = subprocess.run(
                start, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300, check=False
            )
        if result.returncode != 0:
            pytest.fail(f"radosgw failed to start:\n{log.read_text()}", pytrace=False)
        yield S3Server(
            endpoint=f"http://127.0.0.1:{port}",
            public_endpoint=f"http://localhost:{port}",
            access_key=access_key,
            secret_key=secret_key,
            region="us-east-1",
            port=port,
            directory=directory,
            startup_s=time.monotonic() - began,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"radosgw did not start within 300 s:\n{log.read_text()}", pytrace=False)
    finally:
        with (directory.parent / f"{directory.name}-stop.log").open("w") as out:
            subprocess.run(
                ["bash", str(_RADOSGW), "stop", str(directory)],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )


@pytest.fixture
def s3_store(s3_server: S3Server) -> Iterator[Any]:
    """An `S3BlobStore` on a fresh bucket (created by ensure_ready, emptied and removed after).

    Data goes to 127.0.0.1, links are signed for localhost: both name the same radosgw.
    """
    from storage.s3 import S3BlobStore

    store = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        public_endpoint_url=s3_server.public_endpoint,
        bucket=f"test-{uuid.uuid4().hex[:12]}",
        region=s3_server.region,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    store.ensure_ready()
    yield store
    client = s3_server.client()
    for key in store.list(""):
        store.delete(key)
    client.delete_bucket(Bucket=store.bucket)


@pytest.fixture
def local_store(tmp_path: Path) -> Any:
    """A `LocalBlobStore` in a temporary directory, with links for http://testserver."""
    from storage.local import LocalBlobStore

    store = LocalBlobStore(
        tmp_path / "storage", secret_key="test-secret-key", public_url="http://testserver"
    )
    store.ensure_ready()
    return store


# --- tasks: a private RabbitMQ vhost, Redis, real Celery worker processes ----------------------


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[Any]:
    """``rabbitmq_vhost() -> broker URL``: a fresh vhost on the local RabbitMQ (guest/guest) per
    call, all deleted at the end, so leftover messages and queues of other runs (or of other
    tests' workers) never meet a test's workers."""
    if shutil.which("rabbitmqctl") is None or not _reachable(5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672: run tools/services.sh")
    created: list[str] = []

    def make() -> str:
        vhost = hygiene.vhost_name("test")
        _rabbitmqctl("add_vhost", vhost)
        created.append(vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"

    try:
        yield make
    finally:
        for vhost in created:
            subprocess.run(
                ["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60, check=False
            )


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq_vhost: Any) -> str:
    """The broker URL of one fresh vhost for the session."""
    return rabbitmq_vhost()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (database 0); tests namespace their keys with a random prefix."""
    if not _reachable(6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379: run tools/services.sh")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix (``settings.job_key_prefix``); its keys are deleted afterwards."""
    import redis

    prefix = f"idphoto-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@dataclass
class WorkerProcess:
    """A real worker started as a subprocess in its own process group (so that its pool children
    can be killed with it); its output goes to ``log``."""

    name: str
    queues: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 120, also: str | None = None) -> None:
        """Until the worker says it is ready (and, with ``also``, that text is in its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if " ready." in out and (also is None or also in out):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited {self.proc.returncode}:\n{out[-4000:]}")
            time.sleep(0.2)
        pytest.fail(f"worker {self.name} not ready within {timeout} s:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL for the whole process group: no orphans."""
        import signal

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group's id is the worker's pid
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="session")
def start_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``start_worker(env, queues, name, concurrency=1) -> WorkerProcess``: a real worker via
    `tasks.worker.run_worker` (``python -m tests.tasks.worker_main``), settings from ``env``.
    Every worker started is stopped at the end of the session (or earlier by the caller)."""
    started: list[WorkerProcess] = []
    logs = tmp_path_factory.mktemp("workers")

    def start(env: dict[str, str], queues: str, name: str, concurrency: int = 1) -> WorkerProcess:
        log = logs / f"{name.partition('@')[0]}.log"
        cmd = [
            sys.executable,
            "-m",
            "tests.tasks.worker_main",
            "--queues",
            queues,
            "-c",
            str(concurrency),
            "-n",
            name,
        ]
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=_REPO,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(name=name, queues=queues, proc=proc, log=log)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


# --- models: loaded once per test session, shared by every module that runs the pipeline ------


@pytest.fixture(scope="session")
def models_dir() -> Path:
    from config.settings import Settings

    d = Settings.from_env().models_dir
    if not (d / "isnet-imgly-medium.onnx").is_file():
        pytest.fail(f"models not in {d}: `make test` runs `idphoto models fetch` first")
    return d


@pytest.fixture(scope="session")
def detector(models_dir: Path):
    from pipeline.detect import FaceDetector

    return FaceDetector.from_dir(models_dir, threads=2)


@pytest.fixture(scope="session")
def landmarker(models_dir: Path):
    from pipeline.landmarks import load_landmarker

    return load_landmarker(models_dir, threads=2)


@pytest.fixture(scope="session")
def segmenter(models_dir: Path):
    from pipeline.segment import load_segmenter

    return load_segmenter(models_dir=models_dir, threads=2)
