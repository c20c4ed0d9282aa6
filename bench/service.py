"""The service benchmark: the live topology against its limit (the model) and against the seed.

    .venv/bin/python -m bench.service [--quick] [--jobs N] [--jobs-memory M] [--out PATH]

Starts its own stack (`bench.stack`: radosgw on free ports, a RabbitMQ vhost, a Redis key
prefix, gunicorn, one GPU worker and one CPU worker as ``idphoto serve`` starts them), measures,
prints a table and writes JSON (default ``bench/results/service.json``), and removes everything
it started. ``--quick``: 12 jobs per concurrency level and 60 compose-only jobs for the memory
run (default 50 and 300).

What it measures, in this order, all in one run (compare the ratios, not the absolute times: on
a shared 2-core machine they move with the load):

1. model-only: `pipeline.stages.segment` (ISNet through `pipeline.segment`) on the photos'
   face regions, in this process, with the models loaded as a GPU worker's pool child loads them
   (`tasks.services.Services.load_models`, threads = ``settings.ort_threads`` or cores / the GPU
   worker's concurrency, see ``tasks.startup._on_process_init``): photos/s, the limit. Measured
   before and after the service runs; their mean is the reference.
2. large input: a 24 MP (6000x4000) JPEG from bytes to the model's 1024x1024 input, our way
   (`stages.analyse`: draft decode, detection, face region, then the segmenter's resize) and
   the naive way (PIL full decode, EXIF transpose, full-size RGB, resize to 1024x1024 with
   LANCZOS as rembg does; BILINEAR also shown), stored upright and stored rotated with
   EXIF Orientation 6 as phones store portraits.
3. seed: `bench.seedworker.SeedWorker` (rembg.remove with a new session per photo, PIL resize
   and paste) sequentially over the same photos as the concurrency-1 run.
4. end-to-end: N jobs through the HTTP API (POST /api/v1/jobs, poll GET) at client concurrency
   1, 4 and 16 (closed loop: each client submits its next job when its last one is done).
   Photos: synthetic phone photos of 8, 12 and 24 MP in rotation, each upload made distinct by
   a random JPEG comment (new sha256, same pixels), so no job reuses another's matte or outputs.
   Latency is submit (client, before the upload) to done (the record's ``finished_at``);
   throughput is done jobs / (last done - first submit). Stage times come from the job records
   (`tasks.jobs.get_job`), with the queue waits between stages. The CPU time of every process
   on the machine is added up per level (/proc) by component, and each stage records its
   worker's process CPU (``cpu_s``; the segment stage also the model step's,
   ``inference_cpu_s``): the CPU a job costs besides the model is what a GPU cannot take off
   the CPUs, so it sizes a GPU deployment (cores and GPU-worker processes for 50 jobs/s). It
   slightly flatters a GPU: the model step's resizes in and out (~0.02 s) stay on the CPU.
5. re-compose: POST /api/v1/jobs/{id}/recompose (new spec and background) on finished jobs,
   one at a time, against the full jobs' latency at concurrency 1.
6. memory: RSS (VmRSS summed over each process tree, /proc) of the GPU worker, CPU worker and
   web app at start, after warm-up, before and after M compose-only jobs (recompose with a new
   spec/background each, concurrency 4), and the peak; PSS (shared pages split) alongside.

GPU: run with ``IDPHOTO_DEVICE=cuda`` (or ``--device cuda``) on a machine with onnxruntime-gpu;
the model-only and worker figures then come from CUDA, and GPU memory is read with nvidia-smi.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from PIL import Image, ImageOps

if __package__ in (None, ""):  # `python bench/service.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seedworker import SeedWorker  # noqa: E402
from bench.stack import GPU_CONCURRENCY, Stack, pss_mb, rss_mb  # noqa: E402
from config.settings import Settings  # noqa: E402
from idphoto.samples import sample_path  # noqa: E402
from idphoto.serve import settings_environ  # noqa: E402
from pipeline import stages  # noqa: E402
from pipeline.segment import DEFAULT_MODEL, ISNET_INPUT  # noqa: E402
from tests.tasks.opslog import RedisWrites  # noqa: E402  (the chain test's counter)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "service.json"
PHONE_SIZES = ((2448, 3264), (3024, 4032), (4000, 6000))  # 8, 12, 24 MP, portrait
LARGE_SIZE = (6000, 4000)
RECOMPOSE_SPECS = ("cn-1inch", "schengen-visa", "uk-passport", "jp-passport", "ca-passport")
JOB_TIMEOUT_S = 600
STAGE_NAMES = ("segment", "matte_refine", "composite", "store")
TARGETS = {
    "efficiency": 0.85,
    "vs_seed": 2.5,
    "recompose_ratio": 0.15,
    "rss_growth": 0.05,
    "large_input_ratio": 0.25,
    "cpu_s_outside_model": 0.35,
    "job_store_writes": 4,
    "intermediates_mb": 1.5,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- inputs ------------------------------------------------------------------------------------


def phone_photo(width: int, height: int, seed: int = 0, *, orientation: int = 1) -> bytes:
    """grace_hopper scaled into a ``width`` x ``height`` frame (upright) on a wall with sensor-like
    noise, as a q90 JPEG. ``orientation=6``: stored rotated (``height`` x ``width`` pixels) with
    EXIF Orientation 6, as a phone stores a portrait."""
    with Image.open(sample_path("grace_hopper")) as im:
        src = im.convert("RGB")
    scale = min(width / src.width, height / src.height)
    scaled = src.resize(
        (round(src.width * scale), round(src.height * scale)), Image.Resampling.BICUBIC
    )
    wall = np.asarray(src)[:8, :8].reshape(-1, 3).mean(0)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = wall * np.linspace(0.92, 1.0, height, dtype=np.float32)[:, None, None]
    x0 = (width - scaled.width) // 2
    canvas[height - scaled.height :, x0 : x0 + scaled.width] = np.asarray(scaled, np.float32)
    canvas += np.random.default_rng(seed).normal(0.0, 3.0, canvas.shape).astype(np.float32)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    kwargs: dict[str, Any] = {}
    if orientation != 1:
        assert orientation == 6
        image = image.transpose(Image.Transpose.ROTATE_90)  # Orientation 6 turns it back (CW)
        exif = Image.Exif()
        exif[0x0112] = 6
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def distinct(data: bytes, tag: str) -> bytes:
    """The same JPEG with a comment segment right after SOI: new bytes (new sha256, so no matte
    or output reuse), the same pixels."""
    assert data[:2] == b"\xff\xd8"
    payload = f"idphoto-bench {tag} {secrets.token_hex(8)}".encode()
    return data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


# -- small helpers ------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def rnd(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def gpu_query() -> dict[str, Any] | None:
    """GPU memory via nvidia-smi, or None where there is none."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        gpus = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        apps = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    out: dict[str, Any] = {"gpus": [], "apps": {}}
    for line in gpus.strip().splitlines():
        name, used, total = (x.strip() for x in line.split(","))
        out["gpus"].append({"name": name, "used_mb": float(used), "total_mb": float(total)})
    for line in apps.strip().splitlines():
        parts = [x.strip() for x in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            out["apps"][int(parts[0])] = float(parts[1])
    return out


# -- memory sampling ----------------------------------------------------------------------------


class MemorySampler:
    """RSS of each stack process tree every ``interval_s``, in a thread; peaks and checkpoints."""

    def __init__(self, stack: Stack, interval_s: float = 0.5) -> None:
        self.stack = stack
        self.interval_s = interval_s
        self.peak: dict[str, float] = {}
        self.gpu_peak_mb: float | None = None
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.timeline: list[dict[str, Any]] = []
        self.pool_pids: dict[str, set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._gpu = shutil.which("nvidia-smi") is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> dict[str, dict[str, Any]]:
        from bench.stack import _children_map

        children = _children_map()
        out: dict[str, dict[str, Any]] = {}
        for name, proc in self.stack.procs.items():
            tree = proc.tree(children)
            out[name] = {"rss_mb": rss_mb(tree), "pids": tree}
        return out

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval_s):
            try:
                now = self.sample()
            except Exception:  # a process ending mid-read: skip the sample
                continue
            for name, info in now.items():
                self.peak[name] = max(self.peak.get(name, 0.0), info["rss_mb"])
                self.pool_pids.setdefault(name, set()).update(info["pids"][1:])
            if tick % 4 == 0:
                self.timeline.append(
                    {"t": round(time.time(), 1)}
                    | {n: round(i["rss_mb"], 1) for n, i in now.items()}
                )
                if self._gpu:
                    q = gpu_query()
                    if q and q["gpus"]:
                        used = max(g["used_mb"] for g in q["gpus"])
                        self.gpu_peak_mb = max(self.gpu_peak_mb or 0.0, used)
            tick += 1

    def checkpoint(self, label: str) -> dict[str, Any]:
        now = self.sample()
        point = {
            name: {
                "rss_mb": round(info["rss_mb"], 1),
                "pss_mb": round(pss_mb(info["pids"]), 1),
                "pids": info["pids"],
            }
            for name, info in now.items()
        }
        for name, info in now.items():
            self.peak[name] = max(self.peak.get(name, 0.0), info["rss_mb"])
        gpu = gpu_query()
        if gpu is not None:
            point["gpu"] = gpu["gpus"]
        self.checkpoints[label] = point
        return point


# -- CPU accounting ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_COMM_GROUPS = {
    "ceph-mon": "s3 (radosgw+ceph)",
    "ceph-osd": "s3 (radosgw+ceph)",
    "radosgw": "s3 (radosgw+ceph)",
    "beam.smp": "rabbitmq",
    "erl_child_setup": "rabbitmq",
    "epmd": "rabbitmq",
    "redis-server": "redis",
}


def cpu_snapshot() -> dict[int, tuple[str, float, int]]:
    """CPU seconds (user + system) of every process now: pid -> (comm, seconds, ppid)."""
    from bench.stack import proc_stats

    out: dict[int, tuple[str, float, int]] = {}
    for pid, stat in proc_stats():
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat.rpartition(")")[2].split()
        out[pid] = (comm, (int(rest[11]) + int(rest[12])) / _TICK, int(rest[1]))
    return out


def cpu_by_group(
    before: dict[int, tuple[str, float, int]],
    after: dict[int, tuple[str, float, int]],
    stack: Stack,
) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by service component (whole machine)."""
    from bench.stack import _children_map

    children = _children_map()
    owner: dict[int, str] = {}
    for name, proc in stack.procs.items():
        for pid in proc.tree(children):
            owner[pid] = name
    for pid in [os.getpid(), *children.get(os.getpid(), [])]:
        owner.setdefault(pid, "bench client (this process)")
    spent: dict[str, float] = {}
    for pid, (comm, secs, _ppid) in after.items():
        was = before.get(pid)
        delta = secs - (was[1] if was and was[0] == comm else 0.0)
        if delta <= 0:
            continue
        group = owner.get(pid) or _COMM_GROUPS.get(comm) or "other"
        spent[group] = spent.get(group, 0.0) + delta
    return {k: round(v, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}


# -- the API client -----------------------------------------------------------------------------


def _wait_done(http: requests.Session, url: str, poll_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        response = http.get(url, timeout=30)
        response.raise_for_status()
        body = response.json()
        if body.get("state") in ("done", "failed"):
            return body
        time.sleep(poll_s)
    raise TimeoutError(f"{url} not finished in {JOB_TIMEOUT_S} s")


def _post(http: requests.Session, send: Callable[[], requests.Response]) -> tuple[str, int]:
    """(job id, 503 answers waited out) for one submission."""
    refused = 0
    while True:
        response = send()
        if response.status_code == 503:  # admission control: wait as a client is told to
            refused += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code != 202:
            raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
        return response.json()["job_id"], refused


def run_closed_loop(
    base_url: str,
    make_request: Callable[[requests.Session, int], requests.Response],
    n: int,
    concurrency: int,
    poll_s: float,
    after: Callable[[requests.Session, str], None] | None = None,
) -> list[dict[str, Any]]:
    """``n`` jobs by ``concurrency`` clients, each submitting its next when its last is done."""
    lock = threading.Lock()
    todo = iter(range(n))
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def client() -> None:
        http = requests.Session()
        while True:
            with lock:
                i = next(todo, None)
            if i is None or errors:
                return
            try:
                t_submit = time.time()
                job_id, refused = _post(http, lambda i=i: make_request(http, i))
                t_accepted = time.time()
                body = _wait_done(http, f"{base_url}/api/v1/jobs/{job_id}", poll_s)
                entry = {
                    "i": i,
                    "job_id": job_id,
                    "t_submit": t_submit,
                    "t_accepted": t_accepted,
                    "t_seen": time.time(),
                    "state": body["state"],
                    "reason": body.get("reason"),
                    "refused_503": refused,
                }
                if after is not None:
                    after(http, job_id)
            except BaseException as exc:  # noqa: BLE001 - reported after the threads join
                errors.append(exc)
                return
            with lock:
                results.append(entry)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sorted(results, key=lambda e: e["i"])


def delete_jobs(base_url: str, job_ids: Sequence[str]) -> None:
    http = requests.Session()
    for job_id in job_ids:
        http.delete(f"{base_url}/api/v1/jobs/{job_id}", timeout=30)


def budgets(settings: Settings, entries: list[dict[str, Any]], writes: int) -> dict[str, Any]:
    """Issue 15's budgets over one level's jobs (each a new photo): job store writes per job
    (counted by `RedisWrites` while they ran, polling excluded: reads) and what each photo
    leaves in the store besides its upload (masks/ and mattes/, once the job is done)."""
    from storage import make_store
    from tasks import keys

    store = make_store(settings)
    shas = {e["record"].get("sha256") for e in entries if e["state"] == "done"}
    shas.discard(None)
    sizes = []
    for sha in shas:
        kept = store.list(keys.mask_prefix(sha)) + store.list(keys.matte_prefix(sha))
        sizes.append(sum(len(store.get(k)) for k in kept))
    return {
        "jobs": len(entries),
        "job_store_writes": writes,
        "job_store_writes_per_job": rnd(writes / max(1, len(entries))),
        "photos": len(sizes),
        "intermediates_mb_per_photo": rnd(mean(sizes) / 1e6) if sizes else None,
        "intermediates_mb_max": rnd(max(sizes) / 1e6) if sizes else None,
    }


def attach_records(settings: Settings, entries: list[dict[str, Any]]) -> None:
    from tasks.jobs import get_job
    from tasks.services import Services

    services = Services(settings)  # reads the records only
    for entry in entries:
        record = get_job(services, entry["job_id"]) or {}
        entry["record"] = record
        finished = record.get("finished_at")
        entry["latency_s"] = (finished - entry["t_submit"]) if finished else None


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput, latency percentiles, mean stage durations and queue waits of one run."""
    ok = [e for e in entries if e["state"] == "done" and e.get("latency_s") is not None]
    lat = [e["latency_s"] for e in ok]
    wall = (
        (max(e["record"]["finished_at"] for e in ok) - min(e["t_submit"] for e in entries))
        if ok
        else None
    )
    stage_s: dict[str, list[float]] = {}
    wait_s: dict[str, list[float]] = {}
    for e in ok:
        rec = e["record"]
        stages_ = rec.get("stages") or {}
        stage_s.setdefault("upload", []).append(rec["created_at"] - e["t_submit"])
        previous_end = rec.get("created_at")
        for name in STAGE_NAMES:
            info = stages_.get(name)
            if not info:
                continue
            stage_s.setdefault(name, []).append(info.get("duration_s", 0.0))
            if previous_end is not None and info.get("started_at"):
                wait_s.setdefault(name, []).append(info["started_at"] - previous_end)
            previous_end = info.get("finished_at")
            for extra, value in info.items():
                if (
                    extra.endswith("_s")
                    and extra != "duration_s"
                    and isinstance(value, int | float)
                ):
                    stage_s.setdefault(f"{name}.{extra[:-2]}", []).append(value)
    return {
        "jobs": len(entries),
        "done": len(ok),
        "failed": [e.get("reason") for e in entries if e["state"] != "done"],
        "refused_503": sum(e["refused_503"] for e in entries),
        # stages run again after their worker died (redelivered by RabbitMQ; see pool restarts)
        "redelivered": sum(
            1 for e in entries if any(k.startswith("redeliveries.") for k in e.get("record", {}))
        ),
        "wall_s": rnd(wall),
        "throughput_per_s": rnd(len(ok) / wall if wall else None, 4),
        "latency_s": {
            "mean": rnd(mean(lat)),
            "p50": rnd(pct(lat, 50)),
            "p95": rnd(pct(lat, 95)),
            "p99": rnd(pct(lat, 99)),
            "max": rnd(max(lat) if lat else None),
        },
        "stage_mean_s": {k: rnd(mean(v)) for k, v in stage_s.items()},
        "queue_wait_mean_s": {k: rnd(mean(v)) for k, v in wait_s.items()},
    }


# -- the measurements -----------------------------------------------------------------------------


def bench_model_only(segmenter: Any, regions: list[np.ndarray], runs: int) -> dict[str, Any]:
    stages.segment(regions[0], segmenter)  # warm-up: first inference allocates the arena
    times = []
    cpu0 = os.times()
    for i in range(runs):
        t0 = time.perf_counter()
        stages.segment(regions[i % len(regions)], segmenter)
        times.append(time.perf_counter() - t0)
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "runs": runs,
        "cpu_s_per_photo": rnd(cpu / runs),
        "photos_per_s": rnd(runs / sum(times), 4),
        "median_s": rnd(statistics.median(times)),
        "min_s": rnd(min(times)),
        "max_s": rnd(max(times)),
    }


def _ours_to_input(data: bytes, detector: Any) -> np.ndarray:
    _, region = stages.analyse(data, detector)
    h, w = region.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > ISNET_INPUT else cv2.INTER_LINEAR
    return cv2.resize(region, (ISNET_INPUT, ISNET_INPUT), interpolation=interp)


def _naive_to_input(data: bytes, resample: Image.Resampling) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        img = ImageOps.exif_transpose(im).convert("RGB")
    return np.asarray(img.resize((ISNET_INPUT, ISNET_INPUT), resample))


def _median_time(fn: Callable[[], Any], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_large_input(detector: Any, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"size": list(LARGE_SIZE), "runs": runs, "variants": {}}
    w, h = LARGE_SIZE
    variants = {
        "upright_6000x4000": phone_photo(w, h, seed=7),
        "exif6_stored_6000x4000": phone_photo(h, w, seed=8, orientation=6),
    }
    for name, data in variants.items():
        with Image.open(io.BytesIO(data)) as im:
            assert im.size == LARGE_SIZE, im.size
        ours = _median_time(lambda d=data: _ours_to_input(d, detector), runs)
        lanczos = _median_time(lambda d=data: _naive_to_input(d, Image.Resampling.LANCZOS), runs)
        bilinear = _median_time(lambda d=data: _naive_to_input(d, Image.Resampling.BILINEAR), runs)
        out["variants"][name] = {
            "bytes": len(data),
            "ours_s": rnd(ours, 4),
            "naive_lanczos_s": rnd(lanczos, 4),
            "naive_bilinear_s": rnd(bilinear, 4),
            "ratio": rnd(ours / lanczos),
            "ratio_vs_bilinear": rnd(ours / bilinear),
        }
    out["ratio"] = max(v["ratio"] for v in out["variants"].values())
    return out


def bench_seed(settings: Settings, photos: list[bytes], spec: str) -> dict[str, Any]:
    if settings.segment_model != DEFAULT_MODEL:
        return {"skipped": f"the seed comparison needs {DEFAULT_MODEL}"}
    import rembg  # noqa: F401 - imported before the clock starts, as a worker has it loaded

    model = Path(settings.models_dir) / f"{DEFAULT_MODEL}.onnx"
    timings = []
    with SeedWorker(model, spec) as worker:
        began = time.perf_counter()
        for data in photos:
            timings.append(worker.process(data))
        total = time.perf_counter() - began
    return {
        "photos": len(photos),
        "total_s": rnd(total),
        "photos_per_s": rnd(len(photos) / total, 4),
        "mean_s": {k: rnd(mean([t[k] for t in timings])) for k in timings[0]},
        "how": "rembg.new_session('dis_custom', model_path=<same ISNet file>) per photo, "
        "rembg.remove at full resolution, PIL resize to the spec + paste on white, JPEG to /tmp",
    }


# -- report ---------------------------------------------------------------------------------------


def targets(record: dict[str, Any]) -> list[dict[str, Any]]:
    e2e = record["end_to_end"]
    best = max(e2e.values(), key=lambda r: r["throughput_per_s"] or 0)
    out = []

    def add(name: str, value: float | None, target: float, op: str, how: str) -> None:
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out.append(
            {"target": name, "value": rnd(value), "goal": f"{op} {target}", "met": met, "how": how}
        )

    add(
        "efficiency (e2e / model-only)",
        best.get("efficiency"),
        TARGETS["efficiency"],
        ">=",
        f"best level, c={best['concurrency']}",
    )
    seed = record["seed"].get("photos_per_s")
    add(
        "e2e / seed-style worker",
        (best["throughput_per_s"] / seed) if seed else None,
        TARGETS["vs_seed"],
        ">=",
        f"best level, c={best['concurrency']}",
    )
    add(
        "re-compose / full-job latency",
        record["recompose"].get("ratio"),
        TARGETS["recompose_ratio"],
        "<=",
        "median vs median at c=1",
    )
    growth = record["memory"].get("growth", {})
    workers = [growth.get(n) for n in ("worker-gpu", "worker-cpu")]
    worst = max((g for g in workers if g is not None), default=None)
    add(
        "worker RSS growth",
        worst,
        TARGETS["rss_growth"],
        "<=",
        "after warm-up -> after all jobs, worst of gpu/cpu worker",
    )
    sizing = [r.get("gpu_sizing") or {} for r in e2e.values()]
    outside = [
        g["cpu_s_per_job_outside_model"] for g in sizing if g.get("cpu_s_per_job_outside_model")
    ]
    add(
        "CPU s per job outside the model",
        min(outside) if outside else None,
        TARGETS["cpu_s_outside_model"],
        "<=",
        "all processes' CPU per job less the model step, best level",
    )
    budget = record.get("budgets") or {}
    add(
        "job store writes per job",
        budget.get("job_store_writes_per_job"),
        TARGETS["job_store_writes"],
        "<=",
        "Redis MONITOR over the first level's jobs (a MULTI block or a script is one)",
    )
    add(
        "intermediates per photo (MB)",
        budget.get("intermediates_mb_per_photo"),
        TARGETS["intermediates_mb"],
        "<=",
        "masks/ and mattes/ objects left per photo of the first level (upload not counted)",
    )
    add(
        "24 MP decode-to-input / naive",
        record["large_input"].get("ratio"),
        TARGETS["large_input_ratio"],
        "<=",
        "worst of upright / EXIF-6 vs PIL LANCZOS",
    )
    return out


def gpu_sizing(r: dict[str, Any], cores: int) -> dict[str, Any] | None:
    """What one level's CPU accounting says about a GPU deployment.

    The stages record their process CPU time (``cpu_s``) and the segment stage the CPU time of
    the model step (``inference_cpu_s``). What a job costs besides the model is the machine's
    CPU per job less the model step: with the model on a GPU that work stays on CPUs, so it
    bounds a GPU machine's throughput however fast the GPU is. The GPU worker's own part
    (decode, detection, object I/O) bounds what one GPU-worker process can feed the GPU.
    """
    s, per = r["stage_mean_s"], r.get("cpu_s_per_job") or {}
    model = s.get("segment.inference_cpu")
    seg = s.get("segment.cpu")
    if model is None or seg is None or not per:
        return None
    outside = sum(per.values()) - model
    feeder = seg - model
    return {
        "cpu_s_per_job_outside_model": rnd(outside),
        "segment_cpu_s_outside_model": rnd(feeder),
        "stage_cpu_s": {n: s.get(f"{n}.cpu") for n in STAGE_NAMES if s.get(f"{n}.cpu") is not None},
        "max_jobs_per_s_on_these_cores": rnd(cores / outside if outside > 0 else None),
        "cores_for_50_per_s": rnd(50 * outside),
        "gpu_worker_processes_for_50_per_s": rnd(50 * feeder),
    }


def gpu_sizing_lines(record: dict[str, Any]) -> list[str]:
    cores = record["config"]["cpu_count"] or 1
    lines = []
    for r in record["end_to_end"].values():
        g = r.get("gpu_sizing")
        if not g:
            continue
        if not lines:
            lines.append(
                "CPU per job besides the model (what a GPU cannot take off the CPUs; "
                "process CPU per stage from the job records):"
            )
        stages_ = ", ".join(f"{k} {v:.2f}" for k, v in g["stage_cpu_s"].items())
        lines.append(
            f"  c={r['concurrency']:<3} {g['cpu_s_per_job_outside_model']:.2f} CPU s/job "
            f"(stages: {stages_}; segment besides the model "
            f"{g['segment_cpu_s_outside_model']:.2f}) -> at most "
            f"{g['max_jobs_per_s_on_these_cores']:.1f} jobs/s on {cores} cores with the model on "
            f"a GPU; 50 jobs/s needs {g['cores_for_50_per_s']:.0f} cores and "
            f">= {g['gpu_worker_processes_for_50_per_s']:.1f} GPU-worker processes"
        )
    return lines


def render(record: dict[str, Any]) -> str:
    lines = []
    cfg = record["config"]
    mo = record["model_only"]
    lines.append(
        f"idphoto service benchmark ({cfg['mode']}: {cfg['jobs']} jobs/level, "
        f"{cfg['jobs_memory']} compose-only jobs) on {cfg['cpu_count']} CPUs, "
        f"load {cfg['load_start']} -> {cfg['load_end']}"
    )
    lines.append(f"GPU: {record['gpu']['note']}")
    lines.append(
        f"model-only ISNet ({mo['provider']}, {mo['threads']} intra-op threads): "
        f"{mo['photos_per_s']:.3f} photos/s ({1 / mo['photos_per_s']:.2f} s/photo; "
        f"before {mo['before']['photos_per_s']:.3f}, after {mo['after']['photos_per_s']:.3f}; "
        f"{mo['before'].get('cpu_s_per_photo') or 0:.2f} CPU s/photo)"
    )
    seed = record["seed"]
    if "photos_per_s" in seed:
        lines.append(
            f"seed-style worker: {seed['photos_per_s']:.3f} photos/s "
            f"({1 / seed['photos_per_s']:.2f} s/photo: session {seed['mean_s']['session_s']:.2f}"
            f" + remove {seed['mean_s']['remove_s']:.2f} + resize/paste/save "
            f"{seed['mean_s']['compose_s']:.2f})"
        )
    lines.append("")
    head = (
        f"{'conc':>4} {'done':>5} {'jobs/s':>7} {'eff':>5} {'xseed':>6} {'p50':>6} {'p95':>6} "
        f"{'p99':>6} | {'upload':>6} {'q>seg':>6} {'seg':>5} {'(inf)':>5} {'q>ref':>6} "
        f"{'refine':>6} {'q>cmp':>6} {'comp':>5} {'q>sto':>6} {'store':>5}"
    )
    lines += ["end-to-end (seconds; q> = queue wait before the stage)", head, "-" * len(head)]
    redelivered = {c: r.get("redelivered", 0) for c, r in record["end_to_end"].items()}
    for r in record["end_to_end"].values():
        s, w, lat = r["stage_mean_s"], r["queue_wait_mean_s"], r["latency_s"]

        def f(x: float | None, width: int = 6, digits: int = 2) -> str:
            return f"{x:>{width}.{digits}f}" if x is not None else f"{'-':>{width}}"

        lines.append(
            f"{r['concurrency']:>4} {r['done']:>2}/{r['jobs']:<2} {f(r['throughput_per_s'], 7, 3)} "
            f"{f(r.get('efficiency'), 5)} {f(r.get('vs_seed'), 6)} {f(lat['p50'])} "
            f"{f(lat['p95'])} {f(lat['p99'])} | {f(s.get('upload'))} {f(w.get('segment'))} "
            f"{f(s.get('segment'), 5)} {f(s.get('segment.inference'), 5)} "
            f"{f(w.get('matte_refine'))} {f(s.get('matte_refine'))} {f(w.get('composite'))} "
            f"{f(s.get('composite'), 5)} {f(w.get('store'))} {f(s.get('store'), 5)}"
        )
    lines.append("CPU seconds per job, whole machine, by component (the model runs in worker-gpu):")
    for r in record["end_to_end"].values():
        per = r.get("cpu_s_per_job") or {}
        total = sum(per.values())
        gpu = per.get("worker-gpu", 0.0)
        lines.append(
            f"  c={r['concurrency']:<3} total {total:.2f}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in per.items() if v >= 0.005)
            + (f"  (worker-gpu share {gpu / total:.2f})" if total else "")
        )
    lines.append("stage breakdown (mean s; fetch/put: object store, decode/encode: image files):")
    for r in record["end_to_end"].values():
        s = r["stage_mean_s"]
        parts = []
        for stage in ("segment", "matte_refine", "composite"):
            laps = [
                f"{k.split('.', 1)[1]} {v:.3f}"
                for k, v in s.items()
                if k.startswith(stage + ".") and v is not None and not k.endswith("cpu")
            ]
            if laps:
                parts.append(f"{stage}: " + ", ".join(laps))
        lines.append(f"  c={r['concurrency']:<3} " + "; ".join(parts))
    lines += gpu_sizing_lines(record)
    if any(redelivered.values()):
        lines.append(
            "jobs with a redelivered stage (worker child died, task re-run): "
            + ", ".join(f"c={c}: {n}" for c, n in redelivered.items())
        )
    rc = record["recompose"]
    lines.append("")
    lines.append(
        f"re-compose: median {rc['median_s']:.2f} s over {rc['jobs']} (composite "
        f"{rc['stage_mean_s'].get('composite', 0):.2f} s, store "
        f"{rc['stage_mean_s'].get('store', 0):.2f} s) vs full job median "
        f"{rc['full_median_s']:.2f} s at c=1: ratio {rc['ratio']:.3f}"
    )
    mem = record["memory"]
    lines.append("")
    lines.append(
        f"memory (RSS MiB, process tree; PSS in brackets) over {mem['segment_jobs']} segmentation"
        f" + {mem['compose_jobs']} compose-only jobs ({mem['compose_jobs_per_s']:.2f} jobs/s):"
    )
    lines.append(
        f"{'process':<11}{'start':>14}{'warm':>14}{'before mem':>14}{'after':>14}"
        f"{'peak':>9}{'growth':>8}"
    )
    for name in ("worker-gpu", "worker-cpu", "web"):
        cells = []
        for label in ("start", "warm", "before_memory_run", "after"):
            c = mem["checkpoints"][label][name]
            cells.append(f"{c['rss_mb']:>7.0f} [{c['pss_mb']:>4.0f}]")
        g = mem["growth"].get(name)
        lines.append(
            f"{name:<11}"
            + "".join(f"{c:>14}" for c in cells)
            + f"{mem['peak_rss_mb'][name]:>9.0f}"
            + (f"{g * 100:>7.1f}%" if g is not None else "")
        )
    for name in ("worker-gpu", "worker-cpu"):
        seen = mem.get("pool_children_seen", {}).get(name, 1)
        if name == "worker-cpu":
            seen = max(seen, mem.get("cpu_pool_children_seen", 1))
        if seen > 1:
            lines.append(
                f"({name}: {seen} pool child pids seen: its child was replaced {seen - 1} time(s)"
                " during the run, and its RSS started again from there"
                + ("; the new child reloaded ISNet)" if name == "worker-gpu" else ")")
            )
    li = record["large_input"]
    lines.append("")
    lines.append("24 MP input to the model's 1024x1024 input (median s):")
    for name, v in li["variants"].items():
        lines.append(
            f"  {name:<24} ours {v['ours_s']:.3f}  naive LANCZOS {v['naive_lanczos_s']:.3f} "
            f"(ratio {v['ratio']:.3f})  naive BILINEAR {v['naive_bilinear_s']:.3f} "
            f"(ratio {v['ratio_vs_bilinear']:.3f})"
        )
    lines.append("")
    lines.append(f"{'target':<34}{'value':>9}  {'goal':<8} result")
    for t in record["targets"]:
        met = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        value = f"{t['value']:.3f}" if t["value"] is not None else "-"
        lines.append(f"{t['target']:<34}{value:>9}  {t['goal']:<8} {met}  ({t['how']})")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 jobs/level, 60 memory jobs")
    parser.add_argument("--jobs", type=int, help="jobs per concurrency level (default 50)")
    parser.add_argument("--jobs-memory", type=int, help="compose-only jobs (default 300)")
    parser.add_argument("--concurrency", default="1,4,16", help="client concurrency levels")
    parser.add_argument("--model-runs", type=int, help="model-only inferences (default 10)")
    parser.add_argument("--spec", default="us-passport")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="settings.device")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-seed", action="store_true", help="skip the seed-style worker")
    parser.add_argument(
        "--gpu-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra environment for the GPU worker only (experiments: threads per queue)",
    )
    parser.add_argument("--cpu-env", action="append", default=[], metavar="K=V")
    parser.add_argument("--logs", type=Path, help="copy the stack's logs here before cleanup")
    args = parser.parse_args(argv)
    jobs = args.jobs or (12 if args.quick else 50)
    jobs_memory = args.jobs_memory if args.jobs_memory is not None else (60 if args.quick else 300)
    model_runs = args.model_runs or (6 if args.quick else 10)
    levels = [int(c) for c in args.concurrency.split(",")]
    began = time.time()

    base = Settings.from_env()
    if args.device:
        base = replace(base, device=args.device)
    threads = base.ort_threads or max(1, (os.cpu_count() or 1) // GPU_CONCURRENCY)
    record: dict[str, Any] = {
        "config": {
            "mode": "quick" if args.quick else "full",
            "jobs": jobs,
            "jobs_memory": jobs_memory,
            "concurrency": levels,
            "spec": args.spec,
            "device": base.device,
            "segment_model": base.segment_model,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "load_start": [round(x, 2) for x in os.getloadavg()],
            "gpu_worker_env": args.gpu_env,
            "cpu_worker_env": args.cpu_env,
            "photos": [f"{w}x{h} ({w * h / 1e6:.0f} MP)" for w, h in PHONE_SIZES],
        }
    }
    gpu = gpu_query()
    record["gpu"] = {
        "present": gpu is not None,
        "note": (
            "none on this machine (no nvidia-smi): CPU figures only; on a GPU machine run with "
            "IDPHOTO_DEVICE=cuda and onnxruntime-gpu"
            if gpu is None
            else ", ".join(
                f"{g['name']} {g['used_mb']:.0f}/{g['total_mb']:.0f} MiB used" for g in gpu["gpus"]
            )
        ),
        "at_start": gpu,
    }

    log("generating the phone photos (8, 12, 24 MP)")
    photos = [phone_photo(w, h, seed=i) for i, (w, h) in enumerate(PHONE_SIZES)]

    from idphoto.serve import colocated_env
    from tasks.services import Services

    gpu_env = colocated_env(base).get("worker-gpu", {})
    models = Services(Settings.from_env({**settings_environ(base), **gpu_env}))
    models.load_models(threads=threads)  # as a GPU worker's pool child does, same settings
    segmenter, detector = models.segmenter, models.detector
    regions = [stages.analyse(p, detector)[1] for p in photos]

    stack = Stack(
        base,
        extra_env={
            "worker-gpu": dict(kv.split("=", 1) for kv in args.gpu_env),
            "worker-cpu": dict(kv.split("=", 1) for kv in args.cpu_env),
        },
        keep_logs=args.logs,
    )
    sampler: MemorySampler | None = None
    try:
        settings = stack.start(log=log)
        sampler = MemorySampler(stack)
        sampler.start()
        sampler.checkpoint("start")
        url = stack.url

        def submit_photo(data: bytes) -> Callable[[requests.Session, int], requests.Response]:
            def send(http: requests.Session, i: int) -> requests.Response:
                return http.post(
                    f"{url}/api/v1/jobs",
                    data={"spec": args.spec, "background": "white"},
                    files={"photo": (f"photo-{i}.jpg", data, "image/jpeg")},
                    timeout=120,
                )

            return send

        log("warm-up: one job per photo size")
        warm_ids = []
        for k, p in enumerate(photos):
            data = distinct(p, f"warm-{k}")
            warm_ids += [e["job_id"] for e in run_closed_loop(url, submit_photo(data), 1, 1, 0.1)]
        delete_jobs(url, warm_ids)
        time.sleep(2)
        sampler.checkpoint("warm")

        log(f"model-only ({model_runs} runs, {threads} threads, {segmenter.provider})")
        before = bench_model_only(segmenter, regions, model_runs)
        log(f"  {before['photos_per_s']:.3f} photos/s")

        log("large input (24 MP)")
        record["large_input"] = bench_large_input(detector, 3 if args.quick else 5)

        level_photos: dict[int, list[bytes]] = {
            c: [distinct(photos[i % len(photos)], f"c{c}-{i}") for i in range(jobs)] for c in levels
        }
        if args.no_seed:
            record["seed"] = {"skipped": "--no-seed"}
        else:
            log(f"seed-style worker over the {jobs} photos of the c={levels[0]} run")
            record["seed"] = bench_seed(base, level_photos[levels[0]], args.spec)
            log(f"  {record['seed'].get('photos_per_s')} photos/s")

        e2e: dict[str, Any] = {}
        keep: list[dict[str, Any]] = []
        for c in levels:
            stack.check_alive()
            log(f"end-to-end: {jobs} jobs at concurrency {c}")
            # Latency comes from the job records, so polling only costs CPU on this machine
            # (client and web): 0.1 s alone, then about 10 polls/s however many clients.
            poll = 0.1 if c == 1 else max(1.0, 0.1 * c)
            cpu_before = cpu_snapshot()
            writes = RedisWrites(settings.redis_url, f"{settings.job_key_prefix}:")
            with writes if c == levels[0] else contextlib.nullcontext():  # the first level's
                entries = run_closed_loop(
                    url,
                    lambda http, i, c=c: submit_photo(level_photos[c][i])(http, i),
                    jobs,
                    c,
                    poll,
                )
            cpu = cpu_by_group(cpu_before, cpu_snapshot(), stack)
            attach_records(settings, entries)
            if c == levels[0]:
                record["budgets"] = budgets(settings, entries, len(writes.writes))
                log(f"  budgets: {record['budgets']}")
            summary = {"concurrency": c, **summarize(entries)}
            done_n = max(1, summary["done"])
            summary["cpu_s_per_job"] = {k: round(v / done_n, 3) for k, v in cpu.items()}
            summary["cpu_s_total"] = cpu
            summary["gpu_sizing"] = gpu_sizing(summary, os.cpu_count() or 1)
            log(f"  {summary['throughput_per_s']} jobs/s, p50 {summary['latency_s']['p50']} s")
            e2e[str(c)] = summary
            done = [e for e in entries if e["state"] == "done"]
            if c == levels[0]:
                keep = done[-len(photos) :]  # one finished job per photo size, for re-compose
            kept = {e["job_id"] for e in keep}
            delete_jobs(url, [e["job_id"] for e in entries if e["job_id"] not in kept])
            time.sleep(2)
        record["end_to_end"] = e2e

        log("re-compose latency")
        n_re = 2 if args.quick else 4
        specs = [s for s in RECOMPOSE_SPECS if s != args.spec]
        rng = random.Random(1)

        def recompose_request(parents: list[str]) -> Callable[[requests.Session, int], Any]:
            def send(http: requests.Session, i: int) -> requests.Response:
                body = {
                    "spec": specs[i % len(specs)],
                    "background": f"#{rng.randrange(1 << 24):06x}",
                }
                return http.post(
                    f"{url}/api/v1/jobs/{parents[i % len(parents)]}/recompose",
                    json=body,
                    timeout=60,
                )

            return send

        parents = [e["job_id"] for e in keep]
        re_entries = run_closed_loop(url, recompose_request(parents), n_re * len(parents), 1, 0.05)
        attach_records(settings, re_entries)
        re_summary = summarize(re_entries)
        first = e2e[str(levels[0])]
        full_median = first["latency_s"]["p50"]
        re_median = re_summary["latency_s"]["p50"]
        record["recompose"] = {
            "jobs": len(re_entries),
            "median_s": re_median,
            "p95_s": re_summary["latency_s"]["p95"],
            "stage_mean_s": re_summary["stage_mean_s"],
            "queue_wait_mean_s": re_summary["queue_wait_mean_s"],
            "full_median_s": full_median,
            "ratio": rnd(re_median / full_median) if re_median and full_median else None,
            "matte_cached": all(e["record"].get("matte_cached") for e in re_entries),
        }
        delete_jobs(url, [e["job_id"] for e in re_entries])
        time.sleep(2)
        sampler.checkpoint("before_memory_run")

        log(f"memory run: {jobs_memory} compose-only jobs at concurrency 4")

        def drop(http: requests.Session, job_id: str) -> None:
            http.delete(f"{url}/api/v1/jobs/{job_id}", timeout=30)

        mem_entries = run_closed_loop(url, recompose_request(parents), jobs_memory, 4, 0.25, drop)
        mem_done = [e for e in mem_entries if e["state"] == "done"]
        mem_wall = (
            max(e["t_seen"] for e in mem_entries) - min(e["t_submit"] for e in mem_entries)
            if mem_entries
            else None
        )
        delete_jobs(url, parents)
        time.sleep(3)
        after = sampler.checkpoint("after")
        stack.check_alive()

        log("model-only again")
        after_mo = bench_model_only(segmenter, regions, model_runs)
        log(f"  {after_mo['photos_per_s']:.3f} photos/s")
        sampler.stop()

        mo = (before["photos_per_s"] + after_mo["photos_per_s"]) / 2
        record["model_only"] = {
            "photos_per_s": rnd(mo, 4),
            "threads": threads,
            "provider": segmenter.provider,
            "before": before,
            "after": after_mo,
            "how": "pipeline.stages.segment on the photos' face regions, models loaded by "
            "tasks.services.Services.load_models as in the GPU worker",
        }
        seed_ps = record["seed"].get("photos_per_s")
        for r in e2e.values():
            r["efficiency"] = rnd(r["throughput_per_s"] / mo) if r["throughput_per_s"] else None
            r["vs_seed"] = rnd(r["throughput_per_s"] / seed_ps) if seed_ps else None
        warm = sampler.checkpoints["warm"]
        cpu_children = sampler.pool_pids.get("worker-cpu", set())
        record["memory"] = {
            "segment_jobs": jobs * len(levels) + len(photos),
            "compose_jobs": len(mem_done) + len(re_entries),
            "compose_jobs_per_s": rnd(len(mem_done) / mem_wall) if mem_wall else 0.0,
            "checkpoints": sampler.checkpoints,
            "peak_rss_mb": {k: round(v, 1) for k, v in sampler.peak.items()},
            "growth": {
                name: rnd((after[name]["rss_mb"] - warm[name]["rss_mb"]) / warm[name]["rss_mb"], 4)
                for name in ("worker-gpu", "worker-cpu")
            },
            "growth_from_start": {
                name: rnd(
                    (after[name]["rss_mb"] - sampler.checkpoints["start"][name]["rss_mb"])
                    / sampler.checkpoints["start"][name]["rss_mb"],
                    4,
                )
                for name in ("worker-gpu", "worker-cpu", "web")
            },
            "cpu_pool_children_seen": len(cpu_children),
            "pool_children_seen": {n: len(p) for n, p in sampler.pool_pids.items()},
            "gpu_peak_mb": sampler.gpu_peak_mb,
            "timeline": sampler.timeline,
        }
        record["memory"]["growth"]["web"] = rnd(
            (after["web"]["rss_mb"] - warm["web"]["rss_mb"]) / warm["web"]["rss_mb"], 4
        )
    finally:
        if sampler is not None:
            sampler.stop()
        log("stopping the stack")
        stack.stop(log=log)

    record["config"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    record["config"]["wall_s"] = round(time.time() - began, 1)
    record["config"]["startup_s"] = stack.startup_s
    record["targets"] = targets(record)
    text = render(record)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    log(f"wrote {args.out} ({record['config']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
