"""The live service for `bench.service`: radosgw, a RabbitMQ vhost, a Redis prefix, the workers
and the web app, each started here as its own process (so each one's memory can be read), and
all of it removed again afterwards.

The processes are the ones ``idphoto serve`` (`idphoto.serve.run_topology`) starts, built from
the same functions: gunicorn from `idphoto.serve.web_argv` (2 gevent workers, `config.gunicorn`),
one GPU worker from ``worker_argv("gpu", 1)`` and one CPU worker from ``worker_argv("cpu", 1)``, with
the settings passed down as ``IDPHOTO_*`` variables by `idphoto.serve.settings_environ`. Flower
is left out (it only watches). Everything private to this run: its own radosgw on free ports
(``tools/radosgw-local.sh``), its own vhost, its own Redis key prefixes, its own bucket.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from config.settings import Settings
from idphoto.serve import colocated_env, settings_environ, web_argv, worker_argv
from tests.conftest import free_ports  # one free-port picker for the tests and the benches

REPO = Path(__file__).resolve().parents[1]
RADOSGW = REPO / "tools" / "radosgw-local.sh"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/{vhost}"
REDIS_URL = "redis://127.0.0.1:6379/0"
GPU_CONCURRENCY = 1  # what run_topology gives the GPU worker (worker_argv("gpu", 1))
CPU_CONCURRENCY = 1  # run_topology's default cpu_concurrency


class StackError(RuntimeError):
    """Something of the stack did not start; the message carries the log's tail."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- process trees and their memory ----------------------------------------------------------


def proc_stats() -> Iterator[tuple[int, str]]:
    """(pid, /proc/pid/stat text) of every process that is still there when read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                yield int(entry), f.read()
        except OSError:
            continue


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, stat in proc_stats():
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(pid)
    return children


def process_tree(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``pid`` and all its descendants (those alive now)."""
    children = _children_map() if children is None else children
    found, todo = [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_mb(pids: list[int]) -> float:
    """Sum of VmRSS over ``pids`` (MiB). Pages a prefork parent shares with its children are
    counted in each: see `pss_mb` for the shared-aware figure."""
    return sum(_status_kb(p, "VmRSS") for p in pids) / 1024


def pss_mb(pids: list[int]) -> float:
    """Sum of the proportional set size over ``pids`` (MiB): shared pages split between their
    users, so a process tree's figure is what it really adds to the machine."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


# -- the stack --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tree(self, children: dict[int, list[int]] | None = None) -> list[int]:
        return process_tree(self.popen.pid, children) if self.popen is not None else []


@dataclass
class Stack:
    """Start with `start`, stop with `stop` (idempotent, always call it)."""

    base: Settings
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="idp-bench-")))
    settings: Settings | None = None
    url: str = ""
    procs: dict[str, Proc] = field(default_factory=dict)
    vhost: str | None = None
    rgw_dir: Path | None = None
    startup_s: dict[str, float] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per process name
    keep_logs: Path | None = None

    # -- start ---------------------------------------------------------------------------------

    def start(self, log: Any = print) -> Settings:
        tag = uuid.uuid4().hex[:8]
        began = time.monotonic()
        s3 = self._start_radosgw(tag)
        self.startup_s["radosgw"] = round(time.monotonic() - began, 1)
        log(f"radosgw up in {self.startup_s['radosgw']} s on {s3['endpoint']}")
        self.vhost = f"idphoto-bench-{tag}"
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        (port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{port}"
        settings = replace(
            self.base,
            broker_url=RABBITMQ_URL.format(vhost=self.vhost),
            redis_url=REDIS_URL,
            storage="s3",
            s3_endpoint_url=s3["endpoint"],
            s3_public_endpoint_url=s3["endpoint"],
            s3_bucket=f"bench-{tag}",
            s3_region="us-east-1",
            s3_access_key=s3["access_key"],
            s3_secret_key=s3["secret_key"],
            secret_key="bench-" + uuid.uuid4().hex,
            rate_limit="",
            rate_limit_key_prefix=f"idphoto-bench-{tag}",
            job_key_prefix=f"idphoto-bench-{tag}",
            public_url=self.url,
        )
        self.settings = settings
        from storage import make_store

        make_store(settings).ensure_ready()  # the bucket, as run_topology makes it at start
        metrics_dir = self.workdir / "metrics"
        metrics_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDPHOTO_")}
        env.update(settings_environ(settings))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        began = time.monotonic()
        for name, argv in (
            ("worker-gpu", worker_argv("gpu", GPU_CONCURRENCY)),
            ("worker-cpu", worker_argv("cpu", CPU_CONCURRENCY)),
            ("web", web_argv("127.0.0.1", port)),
        ):
            proc = Proc(name, argv, self.workdir / f"{name}.log")
            with proc.log.open("wb") as out:
                proc.popen = subprocess.Popen(
                    argv,
                    cwd=REPO,
                    env={
                        **env,
                        **colocated_env(settings).get(name, {}),
                        **self.extra_env.get(name, {}),
                    },
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: stopped with its pool children
                )
            self.procs[name] = proc
        self._wait_log("worker-cpu", (" ready.",), 120)
        # The GPU worker's pool child loads ISNet in worker_process_init: wait for that too.
        self._wait_log("worker-gpu", (" ready.", f"loaded {settings.segment_model} on"), 180)
        self._wait_http(f"{self.url}/readyz", 60)
        self.startup_s["services"] = round(time.monotonic() - began, 1)
        log(f"web + workers ready in {self.startup_s['services']} s at {self.url}")
        return settings

    def _start_radosgw(self, tag: str) -> dict[str, str]:
        if shutil.which("radosgw") is None:
            raise StackError("radosgw is not installed (make system-deps)")
        self.rgw_dir = Path(tempfile.mkdtemp(prefix="idp-bench-rgw-"))
        port, mon, mon_v1 = free_ports(3)
        access, secret = "IDPHOTOBENCH", "idphoto-bench-" + tag
        env = {**os.environ, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret}
        log = self.workdir / "radosgw-start.log"
        with log.open("w") as out:  # a file, not a pipe: the daemons outlive the script
            result = subprocess.run(
                [
                    "bash",
                    str(RADOSGW),
                    "start",
                    str(self.rgw_dir),
                    str(port),
                    str(mon),
                    str(mon_v1),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if result.returncode != 0:
            raise StackError(f"radosgw did not start:\n{_tail(log)}")
        return {"endpoint": f"http://127.0.0.1:{port}", "access_key": access, "secret_key": secret}

    def _wait_log(self, name: str, needles: tuple[str, ...], timeout_s: float) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
            if all(n in text for n in needles):
                return
            if not proc.alive():
                raise StackError(f"{name} exited:\n{_tail(proc.log)}")
            time.sleep(0.2)
        raise StackError(f"{name} not ready in {timeout_s} s:\n{_tail(proc.log)}")

    def _wait_http(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.procs["web"].alive():
                raise StackError(f"web exited:\n{_tail(self.procs['web'].log)}")
            try:
                response = requests.get(url, timeout=5)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.3)
        raise StackError(f"{url} not ready ({last}):\n{_tail(self.procs['web'].log)}")

    def check_alive(self) -> None:
        for proc in self.procs.values():
            if not proc.alive():
                raise StackError(f"{proc.name} died:\n{_tail(proc.log)}")

    # -- stop ----------------------------------------------------------------------------------

    def stop(self, log: Any = print) -> None:
        for proc in self.procs.values():  # warm shutdown first (celery and gunicorn: SIGTERM)
            if proc.alive():
                assert proc.popen is not None
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group we created for it (its pid): pool children included
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{proc.name} (pid {proc.popen.pid}) did not exit")
        self.procs.clear()
        if self.settings is not None:
            _delete_redis_keys(self.settings)
        if self.vhost:
            subprocess.run(
                ["rabbitmqctl", "delete_vhost", self.vhost],
                capture_output=True,
                timeout=60,
                check=False,
            )
            self.vhost = None
        if self.rgw_dir is not None:
            with (self.workdir / "radosgw-stop.log").open("w") as out:
                subprocess.run(
                    ["bash", str(RADOSGW), "stop", str(self.rgw_dir)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                    check=False,
                )
            shutil.rmtree(self.rgw_dir, ignore_errors=True)
            self.rgw_dir = None
        if self.keep_logs is not None:
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            for path in self.workdir.glob("*.log"):
                shutil.copy(path, self.keep_logs / path.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        raise StackError("rabbitmqctl is not installed (tools/services.sh)")
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise StackError(f"rabbitmqctl {args[0]} failed: {result.stderr.decode(errors='replace')}")


def _delete_redis_keys(settings: Settings) -> None:
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        for prefix in {settings.job_key_prefix, settings.rate_limit_key_prefix}:
            for key in client.scan_iter(match=f"{prefix}:*", count=500):
                client.delete(key)
    except Exception as exc:  # cleanup must not hide the benchmark's own error
        print(f"could not delete the Redis keys: {exc}", file=sys.stderr)
