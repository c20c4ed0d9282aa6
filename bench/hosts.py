"""The service across several hosts, with a cut link and a lossy one (`bench.soak`'s ``hosts``).

    .venv/bin/python -m bench.soak --scenario hosts                  # 100 jobs, the faults below
    .venv/bin/python -m bench.soak --scenario hosts --jobs 40 --out /tmp/hosts.json

Every host is a network namespace of its own (``ip netns``, Debian's iproute2; root only) with
one veth on a bridge, addresses ``10.77.N.10`` up, and nothing shared but the files on disk:

==========  ====  ===================================================================
host        .x    runs
==========  ====  ===================================================================
infra       .10   its own RabbitMQ node, Redis and radosgw (S3)
web         .11   gunicorn (`idphoto.serve.web_argv`), the public URL ``http://.11:8000``
gpu         .12   ``worker_argv("gpu", 1)``: the segment stage
cpu1, cpu2  .13,  ``worker_argv("cpu", 1)`` each: matte_refine, composite, store
            .14
client      .15   the client (this module's ``client`` command): submits through the API,
                  polls, and fetches every presigned link through the public S3 endpoint
==========  ====  ===================================================================

Each process is configured only by its environment (``IDPHOTO_*``, `settings_environ`), and
reaches the others only by their addresses. The operator (this process, in the root namespace,
``.1`` on the bridge) starts everything, injects the faults and checks the end state.

Faults, once the client's jobs are flowing: when cpu1 has a task in progress its link is cut
(``ip link set down`` on its veth) for ``--cut-s`` seconds, longer than the broker needs to
notice (two heartbeats, ``--heartbeat-s``), so its unacknowledged message goes to cpu2 while
cpu1 still holds it; then, once cpu1 is back, the same for cpu2. From the first cut the GPU worker's link has ``--delay-ms`` of latency
and ``--loss`` % packet loss each way for ``--netem-s`` seconds (``tc netem``; on a kernel
without sch_netem, iptables' statistic match and an NFQUEUE delayer, `tools/nfq-delay.c`). Then
both are restored.

Criteria (``ok``): every job ``done``, and its outcome counted once (the job store's tally);
each done job's outputs are exactly the objects under its key and each was stored by exactly
one PUT (radosgw's access log: a second attempt's conditional PUT is refused with 412); every presigned link
answers 200 with the photo's bytes from the client's namespace; the cut hit a task in progress
and the broker redelivered it; every worker is alive at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from bench.stack import RADOSGW, REPO
from config.settings import Settings
from idphoto.serve import colocated_env, settings_environ, web_argv, worker_argv
from tests.conftest import S3Server
from tests.reliability import harness

HOSTS = ("infra", "web", "gpu", "cpu1", "cpu2", "client")
WEB_PORT = 8000
S3_PORT = 7480
NFQ_DELAY = REPO / "tools" / "nfq-delay.c"
RECEIVED = re.compile(r"Task (idphoto\.\w+)\[([0-9a-f-]{36})\] received")
ENDED = re.compile(r"Task idphoto\.\w+\[([0-9a-f-]{36})\] (?:succeeded|raised|retry|ignored)")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


# -- the network -----------------------------------------------------------------------------


@dataclass
class Net:
    """A bridge in the root namespace and one namespace per host on it."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:4])
    octet: int = field(default_factory=lambda: random.randrange(1, 250))
    made: list[str] = field(default_factory=list)
    faulty: dict[str, str] = field(default_factory=dict)  # host -> how its link is degraded
    delayers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"idpbr{self.tag}"

    def ns(self, host: str) -> str:
        return f"idp{self.tag}-{host}"

    def ip(self, host: str) -> str:
        return f"10.77.{self.octet}.{10 + HOSTS.index(host)}"

    @property
    def operator_ip(self) -> str:
        return f"10.77.{self.octet}.1"

    def veth(self, host: str) -> str:
        return f"vh{self.tag}{HOSTS.index(host)}"

    def up(self) -> None:
        if shutil.which("ip") is None or shutil.which("tc") is None:
            raise SystemExit("ip and tc are needed (Debian's iproute2)")
        if os.geteuid() != 0:
            raise SystemExit("network namespaces need root")
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self.made.append("bridge")
        _run("ip", "addr", "add", f"{self.operator_ip}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for host in HOSTS:
            ns = self.ns(host)
            _run("ip", "netns", "add", ns)
            self.made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            veth = ("ip", "link", "add", self.veth(host), "type", "veth")
            _run(*veth, "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", ns, "addr", "add", f"{self.ip(host)}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "link", "set", self.veth(host), "master", self.bridge, "up")

    def argv(self, host: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def cut(self, host: str) -> None:
        _run("ip", "link", "set", self.veth(host), "down")

    def restore(self, host: str) -> None:
        _run("ip", "link", "set", self.veth(host), "up")

    def netem(self, host: str, delay_ms: int, loss_pct: float, workdir: Path) -> str:
        """``delay_ms`` more on every packet the host sends, ``loss_pct`` % of the packets lost
        each way. With ``tc netem`` where the kernel has it; else (a kernel built without
        sch_netem) in the host's own netfilter: ``iptables -m statistic`` drops, and an NFQUEUE
        rule whose packets `tools/nfq-delay.c` holds for ``delay_ms``. Returns which."""
        spec = ["netem", "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%"]
        tried = _run(
            *self.argv(host, ["tc", "qdisc", "replace", "dev", "eth0", "root", *spec]), check=False
        )
        if tried.returncode == 0:
            _run(
                "tc",
                "qdisc",
                "replace",
                "dev",
                self.veth(host),
                "root",
                "netem",
                "loss",
                f"{loss_pct}%",
            )
            self.faulty[host] = "netem"
            return "tc netem"
        delayer = workdir / "nfq-delay"
        if not delayer.exists():
            _run("cc", "-O2", "-o", str(delayer), str(NFQ_DELAY), "-lnetfilter_queue", "-lpthread")
        queue = str(10 + HOSTS.index(host))
        self.delayers[host] = subprocess.Popen(
            self.argv(host, [str(delayer), queue, str(delay_ms)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probability = f"{loss_pct / 100:.4f}"
        for chain, flag in (("OUTPUT", "-o"), ("INPUT", "-i")):
            drop = [
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                probability,
                "-j",
                "DROP",
            ]
            _run(*self.argv(host, ["iptables", "-I", chain, "1", flag, "eth0", *drop]))
        delay = ["-j", "NFQUEUE", "--queue-num", queue, "--queue-bypass"]
        _run(*self.argv(host, ["iptables", "-A", "OUTPUT", "-o", "eth0", *delay]))
        self.faulty[host] = "iptables"
        return "iptables statistic + NFQUEUE delay (no sch_netem in this kernel)"

    def clear_netem(self, host: str) -> None:
        how = self.faulty.pop(host, None)
        if how == "netem":
            _run("tc", "qdisc", "del", "dev", self.veth(host), "root", check=False)
            _run(*self.argv(host, ["tc", "qdisc", "del", "dev", "eth0", "root"]), check=False)
        elif how == "iptables":
            for chain in ("OUTPUT", "INPUT"):
                _run(*self.argv(host, ["iptables", "-F", chain]), check=False)
            delayer = self.delayers.pop(host, None)
            if delayer is not None:  # after the flush: no packet is left waiting on it
                time.sleep(0.5)
                delayer.terminate()
                delayer.wait(timeout=10)

    def down(self) -> None:
        """Kill whatever still runs in the namespaces, then remove them and the bridge."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for ns in self.made:
                if ns == "bridge":
                    continue
                for pid in _run("ip", "netns", "pids", ns, check=False).stdout.split():
                    try:
                        os.kill(int(pid), sig)
                    except (ProcessLookupError, ValueError):
                        pass
            time.sleep(2 if sig == signal.SIGTERM else 0.5)
        for ns in reversed(self.made):
            if ns == "bridge":
                _run("ip", "link", "del", self.bridge, check=False)
            else:
                _run("ip", "netns", "del", ns, check=False)
        self.made.clear()


# -- the hosts' processes ----------------------------------------------------------------------


@dataclass
class HostProc:
    host: str
    log: Path
    popen: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Deployment:
    """The infrastructure on ``infra`` and the service on the other hosts."""

    net: Net
    base: Settings
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="idp-hosts-")))
    procs: dict[str, HostProc] = field(default_factory=dict)
    settings: Settings | None = None
    heartbeat_s: int = 10

    def spawn(self, name: str, host: str, argv: list[str], env: dict[str, str]) -> HostProc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                self.net.argv(host, argv),
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = HostProc(host, log, popen)
        return self.procs[name]

    def start(self, log: Callable[[str], None]) -> Settings:
        net, infra = self.net, self.net.ip("infra")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("IDPHOTO_", "RABBITMQ_"))}
        began = time.monotonic()
        # RabbitMQ: a node of its own on infra (guest may log in from other hosts here).
        rabbit = self.workdir / "rabbitmq"
        rabbit.mkdir()
        os.chmod(self.workdir, 0o777)
        os.chmod(rabbit, 0o777)
        conf = rabbit / "rabbitmq.conf"
        conf.write_text("loopback_users = none\nlisteners.tcp.default = 5672\n")
        self.spawn(
            "rabbitmq",
            "infra",
            ["rabbitmq-server"],
            {
                **clean,
                "RABBITMQ_NODENAME": f"idphoto{net.tag}@localhost",
                "RABBITMQ_CONFIG_FILE": str(conf),
                "RABBITMQ_MNESIA_BASE": str(rabbit / "mnesia"),
                "RABBITMQ_LOG_BASE": str(rabbit / "log"),
                "RABBITMQ_PID_FILE": str(rabbit / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(rabbit / "plugins"),
            },
        )
        self.spawn(
            "redis",
            "infra",
            ["redis-server", "--bind", infra, "--port", "6379", "--save", "", "--appendonly", "no"]
            + ["--protected-mode", "no"],
            clean,
        )
        access, secret = "IDPHOTOHOSTS", "idphoto-hosts-" + uuid.uuid4().hex[:8]
        rgw_dir = self.workdir / "rgw"
        with (self.workdir / "radosgw-start.log").open("w") as out:
            result = subprocess.run(
                net.argv("infra", ["bash", str(RADOSGW), "start", str(rgw_dir), str(S3_PORT)]),
                env={**clean, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret, "RGW_BIND": infra},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if result.returncode != 0:
            raise SystemExit(
                f"radosgw did not start: {(self.workdir / 'radosgw-start.log').read_text()[-2000:]}"
            )
        broker_url = f"amqp://guest:guest@{infra}:5672//"
        _wait(lambda: _amqp_ok(broker_url), 90, "RabbitMQ on infra", self.procs["rabbitmq"])
        log(f"infra up in {time.monotonic() - began:.1f} s: amqp, redis and s3 on {infra}")
        s3 = f"http://{infra}:{S3_PORT}"
        settings = replace(
            self.base,
            broker_url=broker_url,
            redis_url=f"redis://{infra}:6379/0",
            storage="s3",
            s3_endpoint_url=s3,
            s3_public_endpoint_url=s3,
            s3_bucket=f"hosts-{net.tag}",
            s3_region="us-east-1",
            s3_access_key=access,
            s3_secret_key=secret,
            secret_key="hosts-" + uuid.uuid4().hex,
            rate_limit="",
            public_url=f"http://{net.ip('web')}:{WEB_PORT}",
            broker_heartbeat_s=self.heartbeat_s,
        )
        self.settings = settings
        from storage import make_store

        make_store(settings).ensure_ready()
        env = {**clean, **settings_environ(settings)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        colocated = colocated_env(settings)
        began = time.monotonic()
        for name, host, argv, role in (
            ("worker-gpu", "gpu", worker_argv("gpu", 1, "gpu@gpu-host"), "worker-gpu"),
            ("worker-cpu1", "cpu1", worker_argv("cpu", 1, "cpu1@cpu1-host"), "worker-cpu"),
            ("worker-cpu2", "cpu2", worker_argv("cpu", 1, "cpu2@cpu2-host"), "worker-cpu"),
            ("web", "web", web_argv(net.ip("web"), WEB_PORT), "web"),
        ):
            metrics = self.workdir / f"metrics-{host}"
            metrics.mkdir()
            self.spawn(
                name,
                host,
                argv,
                {**env, **colocated.get(role, {}), "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
            )
        for name, needles in (
            ("worker-cpu1", (" ready.",)),
            ("worker-cpu2", (" ready.",)),
            ("worker-gpu", (" ready.", f"loaded {settings.segment_model} on")),
        ):
            proc = self.procs[name]
            _wait(lambda p=proc, n=needles: all(x in p.text() for x in n), 180, name, proc)
        ready = f"{settings.public_url}/readyz"
        _wait(lambda: _http_ok(ready), 60, "web /readyz", self.procs["web"])
        log(f"web, gpu and two cpu workers ready in {time.monotonic() - began:.1f} s")
        return settings

    def rgw_log(self) -> str:
        path = self.workdir / "rgw" / "log" / "client.rgw.a.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def s3(self) -> Any:
        """The operator's raw boto3 client (the tests' own, `S3Server.client`)."""
        s = self.settings
        assert s is not None
        return S3Server(
            endpoint=str(s.s3_endpoint_url),
            public_endpoint=str(s.s3_public_endpoint_url),
            access_key=str(s.s3_access_key),
            secret_key=str(s.s3_secret_key),
            region=s.s3_region,
            port=S3_PORT,
            directory=self.workdir / "rgw",
            startup_s=0,
        ).client()

    def stop(self, keep_logs: Path | None = None) -> None:
        for name, proc in self.procs.items():
            if name not in ("rabbitmq", "redis") and proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in self.procs.items():
            if name in ("rabbitmq", "redis"):
                continue
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(
            self.net.argv("infra", ["bash", str(RADOSGW), "stop", str(self.workdir / "rgw")]),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for path in self.workdir.glob("*.log"):
                shutil.copy(path, keep_logs / path.name)
        self.net.down()  # whatever is left (rabbitmq, epmd, redis, pool children)
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait(ok: Callable[[], bool], timeout_s: float, what: str, proc: HostProc) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        if not proc.alive():
            raise SystemExit(f"{what} exited:\n{proc.text()[-3000:]}")
        time.sleep(0.3)
    raise SystemExit(f"{what} not ready in {timeout_s} s:\n{proc.text()[-3000:]}")


def _amqp_ok(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.connect()
        return True
    except Exception:
        return False


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False


def _access(bucket: str) -> re.Pattern[str]:
    return re.compile(rf'"PUT /{re.escape(bucket)}/(\S+) HTTP/1\.1" (\d{{3}})')


def stored_puts(rgw_log: str, bucket: str, prefix: str) -> dict[str, int]:
    """Successful PUTs per key under ``prefix``, from radosgw's access log."""
    counts: dict[str, int] = {}
    for key, status in _access(bucket).findall(rgw_log):
        key = urllib.parse.unquote(key)
        if status == "200" and key.startswith(prefix):
            counts[key] = counts.get(key, 0) + 1
    return counts


def refused_puts(rgw_log: str, bucket: str) -> int:
    """PUTs the server refused with 412 (an object was there: a second attempt kept it)."""
    return sum(1 for _, status in _access(bucket).findall(rgw_log) if status == "412")


def _mid_task(proc: HostProc, timeout_s: float, settle: int = 0) -> tuple[str, str] | None:
    """(task, id) of a task ``proc``'s worker has in progress, among those it receives from now
    on after the first ``settle``."""
    skip = len(RECEIVED.findall(proc.text())) + settle
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = proc.text()
        ended = set(ENDED.findall(text))
        fresh = [t for t in RECEIVED.findall(text)[skip:] if t[1] not in ended]
        if fresh:
            return fresh[-1]
        time.sleep(0.02)
    return None


# -- the client (runs in the client's namespace) -------------------------------------------------


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hosts client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--new-every", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--drain", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tag = uuid.uuid4().hex[:6]
    session = requests.Session()

    def post(photo: bytes, spec: str, background: str) -> str:
        for attempt in range(20):  # 503 overloaded: come back when it says
            response = session.post(
                f"{args.url}/api/v1/jobs",
                data={"spec": spec, "background": background},
                files={"photo": ("photo.jpg", photo, "image/jpeg")},
                timeout=60,
            )
            if response.status_code == 202:
                return str(response.json()["job_id"])
            if response.status_code != 503 or attempt == 19:
                raise RuntimeError(f"refused: {response.status_code} {response.text[:300]}")
            time.sleep(float(response.headers.get("Retry-After", "1")))
        raise AssertionError("unreachable")

    def get(job_id: str) -> dict | None:
        response = session.get(f"{args.url}/api/v1/jobs/{job_id}", timeout=30)
        return response.json() if response.status_code == 200 else None

    photos = [harness.tagged_portrait(n, tag) for n in harness.PHOTOS]
    warm = [post(p, "us-passport", "white") for p in photos]
    warm_records = harness.wait_terminal(get, warm, 300, poll_s=0.5)
    print("warm", flush=True)  # the operator waits for this line before the faults
    maker = harness.Requests(args.seed)
    ids: list[str] = []
    began = time.monotonic()
    for n in range(args.jobs):
        if args.new_every and n % args.new_every == args.new_every - 1:
            photo = harness.tagged_portrait(harness.PHOTOS[n % 2], f"{tag}-new-{n}")
        else:
            photo = photos[n % 2]
        ids.append(post(photo, *maker.next()))
        pause = began + (n + 1) * args.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print("submitted", flush=True)
    records = harness.wait_terminal(get, ids, args.drain, poll_s=0.5)
    elapsed = time.monotonic() - began
    downloads: dict[str, Any] = {"fetched": 0, "bytes": 0, "failed": []}
    for job_id, record in {**warm_records, **records}.items():
        for name, link in ((record or {}).get("outputs") or {}).items():
            try:
                response = requests.get(link, timeout=30)  # no session: a browser's own request
                ok = response.status_code == 200 and len(response.content) > 0
            except requests.RequestException as exc:
                ok, response = False, None
                downloads["failed"].append(f"{job_id} {name}: {type(exc).__name__}")
            if ok and response is not None:
                downloads["fetched"] += 1
                downloads["bytes"] += len(response.content)
            elif response is not None:
                downloads["failed"].append(f"{job_id} {name}: {response.status_code}")
    states = {
        s: sum(1 for r in records.values() if (r or {}).get("state") == s)
        for s in ("done", "failed")
    }
    args.out.write_text(
        json.dumps(
            {
                "ids": ids,
                "warm": warm,
                "seconds": round(elapsed, 1),
                "states": states,
                "problems": harness.check_jobs(records),
                "downloads": downloads,
            }
        )
    )
    return 0


# -- the scenario ------------------------------------------------------------------------------


def run(args: argparse.Namespace, base: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    net = Net()
    deployment = Deployment(net, base, heartbeat_s=args.heartbeat_s)
    summary: dict[str, Any] = {"scenario": "hosts", "seed": args.seed, "hosts": {}}
    client: subprocess.Popen[bytes] | None = None
    try:
        net.up()
        summary["hosts"] = {h: net.ip(h) for h in HOSTS}
        settings = deployment.start(log)
        out = deployment.workdir / "client.json"
        client_log = deployment.workdir / "client.log"
        with client_log.open("wb") as sink:
            client = subprocess.Popen(
                net.argv(
                    "client",
                    [
                        sys.executable,
                        "-m",
                        "bench.hosts",
                        "client",
                        "--url",
                        str(settings.public_url),
                        "--jobs",
                        str(args.jobs),
                        "--new-every",
                        str(args.new_every),
                        "--interval",
                        str(args.interval),
                        "--drain",
                        str(args.drain),
                        "--seed",
                        str(args.seed),
                        "--out",
                        str(out),
                    ],
                ),
                cwd=REPO,
                env={k: v for k, v in os.environ.items() if not k.startswith("IDPHOTO_")},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        warm_deadline = time.monotonic() + 400
        while "warm" not in client_log.read_text() and time.monotonic() < warm_deadline:
            if client.poll() is not None:
                raise SystemExit(f"client exited:\n{client_log.read_text()[-3000:]}")
            time.sleep(0.2)
        # The cuts: cpu1's link when it is in the middle of a task (after the warm-up), with the
        # GPU link degraded from the same moment; then, once cpu1 is back, cpu2's.
        began = time.monotonic()
        faults: list[dict[str, Any]] = []
        targets: list[tuple[str, str]] = []
        for n, host in enumerate(("cpu1", "cpu2")):
            target = _mid_task(deployment.procs[f"worker-{host}"], 300, settle=3 - 3 * n)
            if target is None:
                log(f"{host} took no task to cut")
                faults.append({"host": host, "fault": "link down", "task": None})
                continue
            cut_at = time.monotonic()
            net.cut(host)
            log(f"cut {host}'s link during {target[0]} {target[1]}")
            faults.append({"host": host, "fault": "link down", "task": target[0], "id": target[1]})
            targets.append(target)
            if n == 0:
                began = cut_at
                how = net.netem("gpu", args.delay_ms, args.loss, deployment.workdir)
                log(f"gpu link: +{args.delay_ms} ms out, {args.loss} % loss each way, by {how}")
                faults.append(
                    {"host": "gpu", "fault": f"+{args.delay_ms} ms, {args.loss} % loss", "by": how}
                )
            while time.monotonic() - cut_at < args.cut_s:
                if "gpu" in net.faulty and time.monotonic() - began >= args.netem_s:
                    net.clear_netem("gpu")
                    log(f"gpu link clean again after {time.monotonic() - began:.1f} s")
                time.sleep(0.1)
            net.restore(host)
            log(f"{host}'s link restored after {time.monotonic() - cut_at:.1f} s")
        while "gpu" in net.faulty and time.monotonic() - began < args.netem_s:
            time.sleep(0.1)
        if "gpu" in net.faulty:
            net.clear_netem("gpu")
            log(f"gpu link clean again after {time.monotonic() - began:.1f} s")
        client.wait(timeout=args.drain + 600)
        if not out.exists():
            raise SystemExit(f"client failed:\n{client_log.read_text()[-3000:]}")
        result = json.loads(out.read_text())
        summary.update(_check(deployment, settings, result, targets))
        summary["faults"] = [*faults, {"cut_s": args.cut_s, "degraded_s": args.netem_s}]
        summary["seconds"] = result["seconds"]
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        deployment.stop(keep_logs=args.logs)
    return summary


def _check(
    deployment: Deployment,
    settings: Settings,
    result: dict[str, Any],
    targets: list[tuple[str, str]],
) -> dict[str, Any]:
    from tasks.jobstore import RedisJobStore

    store = RedisJobStore(settings.redis_url, prefix=settings.job_key_prefix)
    ids, warm = result["ids"], result["warm"]
    records = {i: store.get(i) for i in ids + warm}
    problems = list(result["problems"]) + harness.check_jobs(records)
    s3 = deployment.s3()
    listing = harness.list_bucket(s3, settings.s3_bucket, "jobs/")
    problems += harness.check_outputs(records, listing, all_jobs=ids + warm)
    # What the S3 server itself stored: radosgw's access log has a line per request
    # ("PUT /bucket/key HTTP/1.1" 200); a key with two 200 PUTs was stored twice. (Object
    # versioning cannot tell: Ceph 16 ignores If-None-Match in a versioned bucket.)
    puts = stored_puts(deployment.rgw_log(), settings.s3_bucket, "jobs/")
    twice = sorted(k for k, n in puts.items() if n > 1)
    problems += [f"{k} stored {puts[k]} times" for k in twice[:20]]
    if set(puts) != set(listing):
        problems.append(f"access log and listing disagree: {sorted(set(puts) ^ set(listing))[:5]}")
    outcomes = store.outcomes()
    if outcomes.get("done", 0) != len(ids) + len(warm) or len(outcomes) != 1:
        problems.append(f"outcomes counted: {outcomes} for {len(ids) + len(warm)} jobs")
    downloads = result["downloads"]
    problems += downloads["failed"][:20]
    redelivered = {
        i: sorted(k for k in (r or {}) if k.startswith("redeliveries."))
        for i, r in records.items()
        if any(k.startswith("redeliveries.") for k in (r or {}))
    }
    if not targets:
        problems.append("no link was cut during a task")
    elif not redelivered:
        problems.append(f"no task was redelivered after the cuts of {targets}")
    by_host: dict[str, int] = {}
    for record in records.values():
        for stage in ((record or {}).get("stages") or {}).values():
            host = str(stage.get("worker", "?"))
            by_host[host] = by_host.get(host, 0) + 1
    dead = [n for n, p in deployment.procs.items() if not p.alive()]
    problems += [f"{n} died" for n in dead]
    return {
        "jobs": len(ids),
        "states": result["states"],
        "outcomes": outcomes,
        "output_objects": len(listing),
        "output_puts": sum(puts.values()),
        "conditional_puts_refused": refused_puts(deployment.rgw_log(), settings.s3_bucket),
        "outputs_stored_twice": len(twice),
        "downloads": {k: v for k, v in downloads.items() if k != "failed"},
        "jobs_with_a_redelivered_stage": len(redelivered),
        "stages_by_worker": by_host,
        "problems": problems[:50],
        "ok": not problems,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        sys.exit(client_main(sys.argv[2:]))
    sys.exit("usage: python -m bench.soak --scenario hosts (this module's own command is `client`)")
