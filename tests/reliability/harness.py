"""Fault injection and end-state checks shared by the reliability tests and ``bench/soak.py``.

Nothing here needs pytest, so the soak script runs the same scenarios at full scale:

- `Supervised`: one worker role kept running the way systemd or a container runtime would: when
  the worker's parent process dies, a new incarnation is started;
- `kill_scenario`: jobs submitted at a steady pace while worker processes are SIGKILLed at random
  moments (a pool child in the middle of a task, a worker parent, or a whole process group);
- `Radosgw`: the S3 server's own process stopped (SIGKILL, connection refused) and started again
  with the same command line, or paused (SIGSTOP: connections hang);
- `rabbitmq_app_stopped`: ``rabbitmqctl stop_app`` ... ``start_app``, always restored;
- `check_jobs` / `check_outputs`: every job terminal, every output stored under its own key, once,
  and no object of an unknown job in the bucket.

Jobs that do real work cheaply: a few distinct photos (segmentation costs seconds on a CPU), then
many jobs on the same photos with a different spec and background each (matte cached: composite
and store only); identical requests would be answered at once from earlier outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from config.catalogue import list_specs
from idphoto.samples import sample_path

#: Specs both sample portraits meet (astronaut's head is too small for de-biometric's 600 dpi).
SPECS: tuple[str, ...] = tuple(s.id for s in list_specs() if s.id != "de-biometric")
PHOTOS = ("grace_hopper", "astronaut")
TERMINAL = ("done", "failed")
#: The secret a tagged portrait carries in its metadata; it must never reach an output.
SECRET_COMMENT = "idphoto-reliability-secret-location"


# --- inputs -------------------------------------------------------------------------------------


def gps_exif(orientation: int = 1) -> Image.Exif:
    """EXIF with a camera maker, an orientation and a GPS position."""
    exif = Image.Exif()
    exif[0x010F] = "ReliabilityCam"
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 13.0, 1.5)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 2.5)
    return exif


XMP = (
    b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/"
    b"22-rdf-syntax-ns#'><rdf:Description xmlns:exif='http://ns.adobe.com/exif/1.0/' "
    b"exif:GPSLatitude='52,0.0N'>" + SECRET_COMMENT.encode() + b"</rdf:Description></rdf:RDF>"
    b"</x:xmpmeta>"
)


def tagged_portrait(name: str, label: str = "") -> bytes:
    """A sample portrait re-encoded as a JPEG carrying EXIF with GPS, XMP and a comment (new bytes
    per ``label``, so no earlier job's matte or outputs are reused for it)."""
    with Image.open(sample_path(name)) as img:
        rgb = img.convert("RGB")
    buf = io.BytesIO()
    rgb.save(
        buf,
        "JPEG",
        quality=95,
        exif=gps_exif(),
        xmp=XMP,
        comment=f"{SECRET_COMMENT} {label}".encode(),
    )
    return buf.getvalue()


class Requests:
    """Unique (spec, background) pairs: each job on a cached matte still composes for real."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.seen: set[tuple[str, str]] = set()

    def next(self) -> tuple[str, str]:
        while True:
            spec = self.rng.choice(SPECS)
            background = f"#{self.rng.randrange(0x1000000):06x}"
            if (spec, background) not in self.seen:
                self.seen.add((spec, background))
                return spec, background


# --- processes ----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Supervised:
    """One worker role kept running: the supervisor thread starts a new incarnation (a new
    process, a new node name ``{role}{n}-...``) whenever the current parent process has died.

    ``spawn(name)`` starts a worker and returns it (a `tests.conftest.WorkerProcess`).
    """

    role: str
    spawn: Callable[[str], Any]
    tag: str
    ready: tuple[str, ...] = (" ready.",)  # texts the worker's log shows once it serves
    incarnations: list[Any] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def current(self) -> Any:
        return self.incarnations[-1]

    def _start_one(self) -> Any:
        worker = self.spawn(f"{self.role}{len(self.incarnations)}-{self.tag}@%h")
        self.incarnations.append(worker)
        return worker

    def start(self, wait: bool = True, timeout: float = 120) -> None:
        """Start the first incarnation and the supervisor (and, with ``wait``, until ready)."""
        worker = self._start_one()
        if wait and not self.wait_ready(timeout):
            raise RuntimeError(f"{worker.name} not ready:\n{worker.output()[-3000:]}")
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{self.role}")
        self._thread.daemon = True
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                if self.current.proc.poll() is None:
                    continue
                self.restarts.append(time.monotonic())
                self._start_one()

    def wait_ready(self, timeout: float = 120) -> bool:
        """Until the current incarnation is ready (False if it is not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                worker = self.current
            out = worker.output()
            if all(text in out for text in self.ready) and worker.proc.poll() is None:
                return True
            time.sleep(0.1)
        return False

    @property
    def parent(self) -> int:
        return self.current.proc.pid

    def pool(self) -> list[int]:
        """The pool children of the current incarnation."""
        return children(self.parent)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for worker in self.incarnations:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(w.output() for w in self.incarnations)


# --- fault: SIGKILL while jobs run --------------------------------------------------------------


@dataclass
class Kill:
    at_s: float
    kind: str  # child | parent | group
    role: str
    pid: int
    mid_task: bool  # the victim was running a stage of a job at that moment


def _running_stage_pids(get: Callable[[str], dict | None], ids: Sequence[str]) -> list[int]:
    pids = []
    for job_id in ids:
        record = get(job_id) or {}
        if record.get("state") in TERMINAL:
            continue
        for info in (record.get("stages") or {}).values():
            if isinstance(info, dict) and info.get("status") == "running" and info.get("pid"):
                pids.append(int(info["pid"]))
    return pids


def kill_one(
    workers: Sequence[Supervised],
    kind: str,
    rng: random.Random,
    busy: Sequence[int] = (),
) -> Kill | None:
    """SIGKILL one process of one of ``workers``: a pool child (the worker replaces it, RabbitMQ
    redelivers its unacknowledged message), the worker's parent (its children are orphaned and
    the supervisor starts a new worker), or the whole process group (a container being
    OOM-killed). A child that is running a stage (``busy``) is preferred as the victim."""
    candidates = []
    for worker in workers:
        if worker.current.proc.poll() is not None:
            continue
        for child in worker.pool():
            candidates.append((worker, child, child in busy))
    if not candidates:
        return None
    mid = [c for c in candidates if c[2]]
    worker, child, mid_task = rng.choice(mid or candidates)
    parent = worker.parent
    try:
        if kind == "child":
            os.kill(child, signal.SIGKILL)
            pid = child
        elif kind == "parent":
            os.kill(parent, signal.SIGKILL)
            pid = parent
        else:
            os.killpg(parent, signal.SIGKILL)  # the worker leads its own process group
            pid = parent
    except ProcessLookupError:
        return None
    return Kill(at_s=time.monotonic(), kind=kind, role=worker.role, pid=pid, mid_task=mid_task)


def kill_scenario(
    *,
    submit: Callable[[int], str],
    get: Callable[[str], dict | None],
    workers: Sequence[Supervised],
    jobs: int,
    kills: int,
    submit_interval_s: float,
    seed: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[list[str], list[Kill]]:
    """Submit ``jobs`` jobs, one every ``submit_interval_s``, while ``kills`` SIGKILLs land at
    random moments of that window, each kind (child, parent, group) in turn. Returns the job ids
    and the kills; the caller waits for the jobs and checks the end state."""
    rng = random.Random(seed)
    ids: list[str] = []
    window = jobs * submit_interval_s
    began = time.monotonic()
    # Random moments in the submission window, at least 1.5 s apart (a restarted worker needs a
    # moment before the next blow, or every kill would land on a worker still starting).
    gap = min(1.5, window / (2 * max(kills, 1)))
    moments: list[float] = []
    for _ in range(1000):
        moments = sorted(rng.uniform(0.1 * window, 0.95 * window) for _ in range(kills))
        if all(b - a >= gap for a, b in zip(moments, moments[1:], strict=False)):
            break
    kinds = [("child", "parent", "group")[i % 3] for i in range(kills)]
    rng.shuffle(kinds)
    done: list[Kill] = []
    next_kill = 0
    for n in range(jobs):
        ids.append(submit(n))
        target = began + (n + 1) * submit_interval_s
        while next_kill < kills and began + moments[next_kill] <= target:
            pause = began + moments[next_kill] - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            kill = None
            for _ in range(20):  # a worker may be between incarnations: try again shortly
                kill = kill_one(workers, kinds[next_kill], rng, _running_stage_pids(get, ids))
                if kill is not None:
                    break
                time.sleep(0.25)
            if kill is not None:
                kill.at_s -= began
                done.append(kill)
                log(
                    f"kill {len(done)}/{kills} at {kill.at_s:.1f} s: {kill.kind} {kill.pid} of "
                    f"{kill.role} ({'mid-task' if kill.mid_task else 'idle'})"
                )
            next_kill += 1
        pause = target - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return ids, done


# --- end-state checks ---------------------------------------------------------------------------


def wait_terminal(
    get: Callable[[str], dict | None], ids: Sequence[str], timeout: float, poll_s: float = 0.25
) -> dict[str, dict | None]:
    """The records of ``ids`` once all are done or failed, or as they are at ``timeout``."""
    deadline = time.monotonic() + timeout
    records: dict[str, dict | None] = {}
    pending = list(ids)
    while True:
        still = []
        for job_id in pending:
            record = get(job_id)
            records[job_id] = record
            if not record or record.get("state") not in TERMINAL:
                still.append(job_id)
        pending = still
        if not pending or time.monotonic() >= deadline:
            return records
        time.sleep(poll_s)


def check_jobs(records: Mapping[str, dict | None], want: str | None = "done") -> list[str]:
    """Problems: a record lost, a job not terminal (stuck in a running state), or (with
    ``want``) a job that did not end ``want``."""
    problems = []
    for job_id, record in records.items():
        if record is None:
            problems.append(f"{job_id}: record lost")
        elif record.get("state") not in TERMINAL:
            problems.append(f"{job_id}: stuck in {record.get('state')}")
        elif want and record["state"] != want:
            problems.append(
                f"{job_id}: {record['state']} ({record.get('reason')} at "
                f"{record.get('failed_stage')}: {record.get('message')})"
            )
    return problems


def list_bucket(client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every key in the bucket under ``prefix`` (raw S3 listing, not the app's BlobStore)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def check_outputs(
    records: Mapping[str, dict | None],
    listing: Sequence[str],
    *,
    all_jobs: Sequence[str] | None = None,
    read: Callable[[str], bytes] | None = None,
) -> list[str]:
    """Problems with the outputs of ``records``' done jobs against a bucket ``listing``:

    - each done job's outputs are exactly the objects under ``jobs/{id}/`` (nothing missing,
      nothing extra: a duplicate run wrote under the same deterministic keys or nowhere);
    - no output key is shared by two jobs;
    - no object under ``jobs/`` belongs to a job outside ``all_jobs`` (default: ``records``);
    - with ``read``: each job's stored report names its own spec and background.
    """
    problems = []
    by_job: dict[str, set[str]] = {}
    for key in listing:
        if key.startswith("jobs/"):
            by_job.setdefault(key.split("/")[1], set()).add(key)
    known = set(all_jobs if all_jobs is not None else records)
    for job_id in sorted(set(by_job) - known):
        problems.append(f"objects of an unknown job {job_id}: {sorted(by_job[job_id])}")
    owners: dict[str, str] = {}
    for job_id, record in records.items():
        if not record or record.get("state") != "done":
            continue
        outputs = record.get("outputs") or {}
        keys = set(outputs.values())
        stored = by_job.get(job_id, set())
        if len(keys) != len(outputs) or not keys:
            problems.append(f"{job_id}: outputs {outputs}")
        if keys != stored:
            problems.append(f"{job_id}: record names {sorted(keys)}, bucket holds {sorted(stored)}")
        for key in keys:
            if key in owners:
                problems.append(f"{key} is an output of {owners[key]} and {job_id}")
            owners[key] = job_id
        if read is not None and "report" in outputs:
            report = json.loads(read(outputs["report"]))
            if report.get("spec") != record.get("spec"):
                problems.append(f"{job_id}: report of spec {report.get('spec')}")
    return problems


# --- fault: the S3 server's process -------------------------------------------------------------


class Radosgw:
    """The radosgw daemon of a `tests.conftest.S3Server` (or any started by
    tools/radosgw-local.sh in ``directory``): stopped for real and started again."""

    def __init__(self, directory: Path, endpoint: str) -> None:
        self.directory = Path(directory)
        self.endpoint = endpoint
        self._argv: list[str] | None = None

    @property
    def pid_file(self) -> Path:
        return self.directory / "run" / "client.rgw.a.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 for an anonymous request) means it serves
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the daemon (connections are then refused); remember how it was started."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"radosgw is not running (pid file {self.pid_file})")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            self._argv = [a.decode() for a in f.read().split(b"\0") if a]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def start(self, timeout: float = 60) -> float:
        """Start it again with the same command line; seconds until it answers HTTP."""
        if self._argv is None:
            raise RuntimeError("radosgw was not stopped by this object")
        began = time.monotonic()
        if self.pid() is None:
            with open(self.directory / "log" / "restart.log", "ab") as out:
                subprocess.run(self._argv, stdout=out, stderr=subprocess.STDOUT, check=True)
        while not self.answers():
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"radosgw did not answer within {timeout} s of its restart")
            time.sleep(0.1)
        return time.monotonic() - began

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The daemon killed for the block; started again (and answering) after it, always."""
        self.kill()
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP for the block (requests hang instead of being refused), SIGCONT after."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError("radosgw is not running")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


# --- fault: RabbitMQ ----------------------------------------------------------------------------


def rabbitmqctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextlib.contextmanager
def rabbitmq_app_stopped() -> Iterator[float]:
    """``rabbitmqctl stop_app`` for the block (every connection of every vhost drops, the
    node's Erlang VM keeps running), then ``start_app`` and ``await_startup`` whatever happens.
    Yields the seconds ``stop_app`` took."""
    began = time.monotonic()
    stopped = rabbitmqctl("stop_app")
    try:
        if stopped.returncode != 0:
            raise RuntimeError(f"rabbitmqctl stop_app failed: {stopped.stderr}")
        yield time.monotonic() - began
    finally:
        started = rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        if started.returncode != 0:  # once more: the machine's broker must be left running
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")
