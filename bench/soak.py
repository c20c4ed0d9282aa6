"""Soak and chaos runs against the whole service on this machine.

    .venv/bin/python -m bench.soak                      # load: 10 minutes at 2x capacity
    .venv/bin/python -m bench.soak --minutes 1.5 --out /tmp/soak.json
    .venv/bin/python -m bench.soak --scenario kill      # 200 jobs, 10 SIGKILLs (issue 6's size)
    .venv/bin/python -m bench.soak --scenario hosts     # 100 jobs on six hosts, a link cut (root)

The service is `bench.stack`'s: its own radosgw on free ports, RabbitMQ vhost, Redis prefix and
bucket, gunicorn (2 gevent workers), one GPU worker and one CPU worker as ``idphoto serve``
starts them; everything is removed afterwards. Exit status 0 when every criterion holds.

load (default). Capacity is measured first: a burst of ``--calibration`` jobs of the same mix,
done jobs / (last done - first submit). Then jobs arrive (Poisson, open loop: a refused client
does not come back) at ``--load`` x capacity (default 2) for ``--minutes``; then arrivals stop
and the accepted jobs drain. The mix: new photos (a portrait made distinct by a random JPEG
comment: a full chain, segmentation on the GPU queue) and ``--recompose-share`` re-compositions
of finished jobs with a new background (composite and store on the CPU queue). Criteria:

- admission control keeps the GPU queue bounded: refusals are ``503`` with ``Retry-After`` and
  the deepest GPU queue seen stays within ``--max-depth`` (the service's
  ``gpu_queue_max_depth``) plus the arrivals of the admission check's one-second cache;
- no other 5xx and no transport error;
- every accepted job completes (``done``; none failed, none unfinished after the drain);
- memory stays flat: each process tree's PSS (shared pages split, /proc/*/smaps_rollup) over the
  last quarter of the run is within max(64 MiB, 15 %) of the second quarter (after warm-up).

kill. `tests.reliability.harness.kill_scenario` at full size: the stack's workers are replaced
by supervised ones, two CPU workers and the GPU worker (a new one when a parent dies);
``--jobs`` jobs through the API, every ``--new-every``-th a new photo (the whole chain, segment
on the GPU worker), the others a new spec and background of two warm photos (composite and
store), while ``--kills`` SIGKILLs hit pool children mid-task, worker parents and whole process
groups of any of them. Criteria: every job
``done``, no record lost or stuck, each output stored once under its job's key and nothing else
under ``jobs/`` (`harness.check_outputs` on a raw bucket listing).

hosts. `bench.hosts`: broker, Redis and S3 on one network namespace, the web, a GPU worker and
two CPU workers on four others, the client on a sixth; a CPU worker's link is cut mid-task for
longer than the broker's heartbeat allows while the GPU worker's link has latency and loss.
Criteria: every job ``done`` once, no output stored twice (one successful PUT per key in the
S3 server's access log), every presigned link fetched from the client's namespace.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

if __package__ in (None, ""):  # `python bench/soak.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hosts  # noqa: E402
from bench.stack import REPO, Stack, pss_mb  # noqa: E402
from config.settings import Settings  # noqa: E402
from idphoto.serve import colocated_env, settings_environ, worker_argv  # noqa: E402
from tasks.services import Services  # noqa: E402
from tests.conftest import S3Server, WorkerProcess  # noqa: E402
from tests.reliability import harness  # noqa: E402
from web.admission import CACHE_S, queue_depth  # noqa: E402

TERMINAL = ("done", "failed")
SAMPLE_S = 2.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float  # monotonic, when the request was sent
    kind: str  # new | recompose
    status: int  # 0: no HTTP answer
    error: str = ""
    retry_after: str | None = None
    job_id: str | None = None
    seconds: float = 0.0


@dataclass
class Client:
    """Submits jobs through the HTTP API and keeps every answer."""

    url: str
    rng: random.Random
    recompose_share: float
    answers: list[Answer] = field(default_factory=list)
    done_ids: list[str] = field(default_factory=list)  # finished jobs, for re-compositions
    lock: threading.Lock = field(default_factory=threading.Lock)
    maker: harness.Requests = field(default_factory=harness.Requests)

    def submit(self) -> Answer:
        with self.lock:
            recompose = self.done_ids and self.rng.random() < self.recompose_share
            parent = self.rng.choice(self.done_ids) if recompose else None
            spec, background = self.maker.next()
            name = harness.PHOTOS[len(self.answers) % 2]
        began = time.monotonic()
        answer = Answer(at=began, kind="recompose" if parent else "new", status=0)
        try:
            if parent:
                response = requests.post(
                    f"{self.url}/api/v1/jobs/{parent}/recompose",
                    json={"background": background},
                    timeout=120,
                )
            else:
                photo = harness.tagged_portrait(name, uuid.uuid4().hex)
                response = requests.post(
                    f"{self.url}/api/v1/jobs",
                    data={"spec": spec, "background": background},
                    files={"photo": ("photo.jpg", photo, "image/jpeg")},
                    timeout=120,
                )
            answer.status = response.status_code
            answer.retry_after = response.headers.get("Retry-After")
            body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
            answer.error = body.get("error", "")
            answer.job_id = body.get("job_id") if response.status_code == 202 else None
        except requests.RequestException as exc:
            answer.error = type(exc).__name__
        answer.seconds = time.monotonic() - began
        with self.lock:
            self.answers.append(answer)
        return answer


def get_job(services: Services, job_id: str) -> dict | None:
    from tasks.jobs import get_job as _get

    return _get(services, job_id)


# --- sampling -----------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    gpu_depth: int | None
    cpu_depth: int | None
    pss: dict[str, float]
    pending: int


class Sampler(threading.Thread):
    """Queue depths and per-process-tree PSS every `SAMPLE_S` seconds."""

    def __init__(self, stack: Stack, pending: Any) -> None:
        super().__init__(daemon=True, name="soak-sampler")
        self.stack = stack
        self.pending = pending
        self.samples: list[Sample] = []
        self.stopped = threading.Event()

    def sample(self) -> Sample:
        broker = str(self.stack.settings.broker_url)  # type: ignore[union-attr]

        def depth(queue: str) -> int | None:
            try:
                return queue_depth(broker, queue)
            except Exception:
                return None

        pss = {name: pss_mb(proc.tree()) for name, proc in self.stack.procs.items()}
        return Sample(time.monotonic(), depth("gpu"), depth("cpu"), pss, self.pending())

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_S):
            self.samples.append(self.sample())


# --- load ---------------------------------------------------------------------------------------


def _base(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    return replace(base, device=args.device) if args.device else base


def calibrate(client: Client, services: Services, jobs: int) -> float:
    """Jobs/s the service sustains with the run's mix: a burst, first submit to last done."""
    warm = client.submit()  # the first job also pays for cold caches
    if warm.status != 202 or warm.job_id is None:
        raise SystemExit(f"the service refused the first job: {warm}")
    wait_jobs(services, [warm.job_id], 300)
    client.done_ids.append(warm.job_id)
    began = time.time()  # wall clock: compared with the records' timestamps
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        answers = list(pool.map(lambda _: client.submit(), range(jobs)))
    ids = [a.job_id for a in answers if a.status == 202 and a.job_id]
    records = wait_jobs(services, ids, 600)
    ends = [(r or {}).get("finished_at") or time.time() for r in records.values()]
    client.done_ids += [i for i, r in records.items() if r and r.get("state") == "done"]
    return len(ids) / max(1e-3, max(ends, default=time.time()) - began)


def wait_jobs(services: Services, ids: list[str], timeout: float) -> dict[str, dict | None]:
    return harness.wait_terminal(lambda i: get_job(services, i), ids, timeout, poll_s=0.5)


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    base = replace(_base(args), gpu_queue_max_depth=args.max_depth)
    stack = Stack(base, keep_logs=args.logs)
    rng = random.Random(args.seed)
    summary: dict[str, Any] = {"scenario": "load", "seed": args.seed}
    sampler: Sampler | None = None
    try:
        settings = stack.start(log=log)
        services = Services(settings)  # reads job records (a bench: sends no chain)
        client = Client(stack.url, rng, args.recompose_share)
        if args.capacity:
            capacity = args.capacity
        else:
            log(f"measuring capacity: {args.calibration} jobs at once")
            capacity = calibrate(client, services, args.calibration)
        rate = args.load * capacity
        log(f"capacity {capacity:.3f} jobs/s: offering {rate:.3f} jobs/s for {args.minutes} min")
        accepted: list[tuple[float, str]] = []
        finished: set[str] = set()

        def pending() -> int:
            return len(accepted) - len(finished)

        sampler = Sampler(stack, pending)
        sampler.samples.append(sampler.sample())
        sampler.start()
        calibration_answers = len(client.answers)
        began = time.monotonic()
        end = began + args.minutes * 60
        futures = []
        next_report = began + 15
        with ThreadPoolExecutor(max_workers=32) as pool:
            at = began
            while True:
                at += rng.expovariate(rate)
                if at >= end:
                    break
                pause = at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(client.submit))
                if time.monotonic() >= next_report:
                    next_report += 15
                    _progress(client, sampler, calibration_answers, began)
                    _track(client, services, calibration_answers, accepted, finished)
            for f in futures:
                f.result()
        arrivals_s = time.monotonic() - began
        _track(client, services, calibration_answers, accepted, finished)
        log(f"arrivals stopped after {arrivals_s:.0f} s; draining {pending()} jobs")
        ids = [job_id for _, job_id in accepted]
        records = wait_jobs(services, ids, args.drain)
        drained_s = time.monotonic() - began - arrivals_s
        sampler.stopped.set()
        sampler.join(timeout=10)
        sampler.samples.append(sampler.sample())
        summary.update(
            _load_summary(
                args,
                client.answers[calibration_answers:],
                records,
                sampler.samples,
                capacity,
                rate,
                arrivals_s,
                drained_s,
                stack,
            )
        )
        stack.check_alive()
        summary["processes_alive"] = True
    finally:
        if sampler is not None:
            sampler.stopped.set()
        stack.stop(log=log)
    return summary


def _track(client: Client, services: Services, offset: int, accepted: list, finished: set) -> None:
    known = {job_id for _, job_id in accepted}
    for answer in client.answers[offset:]:
        if answer.job_id and answer.job_id not in known:
            accepted.append((answer.at, answer.job_id))
            known.add(answer.job_id)
    for _, job_id in accepted:
        if job_id in finished:
            continue
        record = get_job(services, job_id)
        if record and record.get("state") in TERMINAL:
            finished.add(job_id)
            if record["state"] == "done":
                with client.lock:
                    client.done_ids.append(job_id)


def _progress(client: Client, sampler: Sampler, offset: int, began: float) -> None:
    answers = client.answers[offset:]
    counts: dict[int, int] = {}
    for a in answers:
        counts[a.status] = counts.get(a.status, 0) + 1
    last = sampler.samples[-1] if sampler.samples else None
    log(
        f"t={time.monotonic() - began:5.0f} s  answers {dict(sorted(counts.items()))}  "
        + (
            f"gpu queue {last.gpu_depth}  cpu queue {last.cpu_depth}  pending {last.pending}  "
            f"PSS {', '.join(f'{k} {v:.0f}' for k, v in last.pss.items())} MiB"
            if last
            else ""
        )
    )


def _quarter_median(samples: list[Sample], name: str, q: int) -> float:
    n = len(samples)
    part = samples[n * q // 4 : max(n * q // 4 + 1, n * (q + 1) // 4)]
    return statistics.median(s.pss.get(name, 0.0) for s in part) if part else 0.0


def _load_summary(
    args: argparse.Namespace,
    answers: list[Answer],
    records: dict[str, dict | None],
    samples: list[Sample],
    capacity: float,
    rate: float,
    arrivals_s: float,
    drained_s: float,
    stack: Stack,
) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for a in answers:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    refused = [a for a in answers if a.status == 503]
    server_errors = [a for a in answers if a.status >= 500 and a.status != 503]
    transport = [a for a in answers if a.status == 0]
    other_4xx = [a for a in answers if 400 <= a.status < 500]
    states: dict[str, int] = {}
    reasons: dict[str, int] = {}
    latencies = []
    for record in records.values():
        state = (record or {}).get("state", "lost")
        states[state] = states.get(state, 0) + 1
        if state == "failed":
            reasons[record["reason"]] = reasons.get(record["reason"], 0) + 1  # type: ignore[index]
        if state == "done":
            ts = record["timestamps"]  # type: ignore[index]
            latencies.append(ts["done"] - ts["queued"])
    gpu_depths = [s.gpu_depth for s in samples if s.gpu_depth is not None]
    cpu_depths = [s.cpu_depth for s in samples if s.cpu_depth is not None]
    # Arrivals while the admission check trusts a depth read up to CACHE_S ago, plus one.
    bound = args.max_depth + math.ceil(rate * (CACHE_S + 1)) + 2
    memory = {}
    for name in stack.procs:
        early, late = _quarter_median(samples, name, 1), _quarter_median(samples, name, 3)
        memory[name] = {
            "start_mib": round(samples[0].pss.get(name, 0.0), 1),
            "q2_median_mib": round(early, 1),
            "q4_median_mib": round(late, 1),
            "peak_mib": round(max(s.pss.get(name, 0.0) for s in samples), 1),
            "flat": late <= early + max(64.0, 0.15 * early),
        }
    done_per_s = states.get("done", 0) / max(1e-3, arrivals_s + drained_s)
    checks = {
        "refusals are 503 with Retry-After": all(
            a.retry_after and int(a.retry_after) > 0 and a.error in ("overloaded", "unavailable")
            for a in refused
        ),
        "no other 5xx": not server_errors,
        "no transport errors": not transport,
        "no other 4xx": not other_4xx,
        f"GPU queue bounded (max <= {bound})": bool(gpu_depths) and max(gpu_depths) <= bound,
        "admission refused some jobs (the load exceeded capacity)": bool(refused),
        "every accepted job done": states.get("done", 0) == len(records),
        "memory flat": all(m["flat"] for m in memory.values()),
    }
    return {
        "minutes": args.minutes,
        "capacity_jobs_per_s": round(capacity, 4),
        "offered_jobs_per_s": round(rate, 4),
        "max_depth_setting": args.max_depth,
        "recompose_share": args.recompose_share,
        "requests": len(answers),
        "requests_by_kind": {
            k: sum(1 for a in answers if a.kind == k) for k in ("new", "recompose")
        },
        "answers": dict(sorted(statuses.items())),
        "accepted": len(records),
        "refused_503": len(refused),
        "jobs": states,
        "failed_reasons": reasons,
        "done_jobs_per_s": round(done_per_s, 4),
        "latency_s": _percentiles(latencies),
        "request_s": _percentiles([a.seconds for a in answers]),
        "gpu_queue_max": max(gpu_depths) if gpu_depths else None,
        "gpu_queue_bound": bound,
        "cpu_queue_max": max(cpu_depths) if cpu_depths else None,
        "arrivals_s": round(arrivals_s, 1),
        "drain_s": round(drained_s, 1),
        "memory_pss": memory,
        "checks": checks,
        "ok": all(checks.values()),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {"p50": pick(0.5), "p95": pick(0.95), "max": round(values[-1], 2), "n": len(values)}


# --- kill ---------------------------------------------------------------------------------------


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDPHOTO_")}
    env.update(settings_environ(settings))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _stop_proc(stack: Stack, name: str) -> None:
    proc = stack.procs.pop(name)
    assert proc.popen is not None
    proc.popen.send_signal(signal.SIGTERM)
    try:
        proc.popen.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.popen.wait(timeout=10)


def run_kill(args: argparse.Namespace) -> dict[str, Any]:
    base = _base(args)
    stack = Stack(base, keep_logs=args.logs)
    summary: dict[str, Any] = {"scenario": "kill", "seed": args.seed}
    supervised: list[harness.Supervised] = []
    try:
        settings = stack.start(log=log)
        services = Services(settings)  # reads job records (a bench: sends no chain)
        assert stack.settings is not None
        # The stack's workers are replaced by supervised ones: two CPU workers and, unless
        # --no-kill-gpu, the GPU worker (a new one, which loads the models again, when its parent
        # dies), so the kills land on every stage.
        _stop_proc(stack, "worker-cpu")
        if args.kill_gpu:
            _stop_proc(stack, "worker-gpu")
        env = _worker_env(settings)
        logs_dir = stack.workdir
        colocated = colocated_env(settings)

        def spawn(name: str) -> WorkerProcess:
            queue = "gpu" if name.startswith("gpu") else "cpu"
            path = logs_dir / f"{name.split('@')[0]}.log"
            with path.open("w") as out:
                proc = subprocess.Popen(
                    worker_argv(queue, 1, hostname=name),
                    cwd=REPO,
                    env={**env, **colocated.get(f"worker-{queue}", {})},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            return WorkerProcess(name=name, queues=queue, proc=proc, log=path)

        tag = uuid.uuid4().hex[:6]
        roles = ("cpua", "cpub", "gpu") if args.kill_gpu else ("cpua", "cpub")
        supervised = [harness.Supervised(role, spawn, tag) for role in roles]
        for worker in supervised:
            worker.start(wait=False)
        for worker in supervised:
            if not worker.wait_ready(120):
                raise SystemExit(f"{worker.role} did not start:\n{worker.current.output()[-2000:]}")
        url = stack.url

        def post(photo: bytes, spec: str, background: str) -> str:
            response = requests.post(
                f"{url}/api/v1/jobs",
                data={"spec": spec, "background": background},
                files={"photo": ("photo.jpg", photo, "image/jpeg")},
                timeout=60,
            )
            if response.status_code != 202:
                raise RuntimeError(f"job refused: {response.status_code} {response.text[:300]}")
            return response.json()["job_id"]

        photos = [harness.tagged_portrait(n, tag) for n in harness.PHOTOS]
        warm = [post(p, "us-passport", "white") for p in photos]
        records = wait_jobs(services, warm, 300)
        if harness.check_jobs(records):
            raise SystemExit(f"warm-up jobs failed: {records}")
        log(f"warm photos ready; {args.jobs} jobs, {args.kills} kills")
        maker = harness.Requests(args.seed)
        began = time.monotonic()
        new_photos = 0

        def submit(n: int) -> str:
            # Every --new-every-th job is a photo never seen: the whole chain, segment on the
            # GPU worker included; the others re-use a warm photo's matte (composite and store).
            nonlocal new_photos
            if args.new_every and n % args.new_every == args.new_every - 1:
                new_photos += 1
                photo = harness.tagged_portrait(harness.PHOTOS[n % 2], f"{tag}-new-{n}")
                return post(photo, *maker.next())
            return post(photos[n % 2], *maker.next())

        ids, kills = harness.kill_scenario(
            submit=submit,
            get=lambda i: get_job(services, i),
            workers=supervised,
            jobs=args.jobs,
            kills=args.kills,
            submit_interval_s=args.interval,
            seed=args.seed,
            log=log,
        )
        records = wait_jobs(services, ids, args.drain)
        elapsed = time.monotonic() - began
        s3 = S3Server(
            endpoint=str(settings.s3_endpoint_url),
            public_endpoint=str(settings.s3_public_endpoint_url),
            access_key=str(settings.s3_access_key),
            secret_key=str(settings.s3_secret_key),
            region=settings.s3_region,
            port=0,
            directory=Path(stack.rgw_dir or "."),
            startup_s=0,
        )
        client = s3.client()
        listing = harness.list_bucket(client, settings.s3_bucket, "jobs/")

        def read(key: str) -> bytes:
            return client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()

        problems = harness.check_jobs(records)
        problems += harness.check_outputs(records, listing, all_jobs=ids + warm, read=read)
        redelivered = sum(
            1 for r in records.values() if r and any(k.startswith("redeliveries.") for k in r)
        )
        summary.update(
            {
                "jobs": len(ids),
                "kills": [
                    {
                        "at_s": round(k.at_s, 1),
                        "kind": k.kind,
                        "role": k.role,
                        "mid_task": k.mid_task,
                    }
                    for k in kills
                ],
                "full_chain_jobs": new_photos,
                "restarts": {w.role: len(w.restarts) for w in supervised},
                "jobs_with_a_redelivered_stage": redelivered,
                "states": {
                    s: sum(1 for r in records.values() if (r or {}).get("state") == s)
                    for s in ("done", "failed")
                },
                "seconds": round(elapsed, 1),
                "problems": problems[:50],
                "ok": not problems and len(kills) == args.kills,
            }
        )
    finally:
        for worker in supervised:
            worker.stop()
        stack.stop(log=log)
    return summary


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=("load", "kill", "hosts"), default="load")
    parser.add_argument("--minutes", type=float, default=10.0, help="load: arrival time")
    parser.add_argument("--load", type=float, default=2.0, help="load: x measured capacity")
    parser.add_argument(
        "--capacity", type=float, default=0.0, help="load: jobs/s to assume instead of measuring"
    )
    parser.add_argument("--calibration", type=int, default=6, help="load: jobs in the burst")
    parser.add_argument(
        "--max-depth", type=int, default=8, help="load: the service's gpu_queue_max_depth"
    )
    parser.add_argument("--recompose-share", type=float, default=0.2)
    parser.add_argument("--jobs", type=int, default=None, help="kill: jobs (200); hosts: (100)")
    parser.add_argument("--kills", type=int, default=10, help="kill: SIGKILLs")
    parser.add_argument(
        "--new-every",
        type=int,
        default=4,
        help="kill: every Nth job is a new photo (full chain, GPU stage); 0: none",
    )
    parser.add_argument(
        "--no-kill-gpu",
        dest="kill_gpu",
        action="store_false",
        help="kill: leave the GPU worker alone (kills hit the CPU workers only)",
    )
    parser.add_argument(
        "--interval", type=float, default=0.25, help="kill: seconds between submissions"
    )
    parser.add_argument("--drain", type=float, default=600, help="seconds to wait for jobs")
    parser.add_argument("--cut-s", type=float, default=40, help="hosts: cpu1's link down for")
    parser.add_argument("--netem-s", type=float, default=60, help="hosts: gpu link faulty for")
    parser.add_argument("--delay-ms", type=int, default=100, help="hosts: gpu link latency")
    parser.add_argument("--loss", type=float, default=1.0, help="hosts: gpu link loss (%%)")
    parser.add_argument(
        "--heartbeat-s", type=int, default=10, help="hosts: the workers' broker heartbeat"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="cpu | cuda (default: settings)")
    parser.add_argument("--logs", type=Path, default=None, help="keep the service's logs here")
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.jobs is None:
        args.jobs = 100 if args.scenario == "hosts" else 200
    if args.scenario == "hosts":
        summary = hosts.run(args, _base(args), log)
    else:
        summary = run_load(args) if args.scenario == "load" else run_kill(args)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(("PASS" if summary.get("ok") else "FAIL") + f": soak {args.scenario}", flush=True)
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
