"""Job records: where a job stands, who ran each stage, and why it failed.

A record is a flat mapping of fields to JSON values, so that every write is a field update
(``HSET`` in Redis) instead of a read-modify-write of one document: the tasks of one job, the
failure handler and the web layer never lose each other's updates. Field names:

- ``state``: queued | segmenting | refining | compositing | storing | done | failed;
- ``ts.<state>``: when the job entered that state (Unix seconds);
- ``stage.<stage>``: ``{"worker", "hostname", "pid", "started_at", "finished_at",
  "duration_s", "status", ...}`` for segment, matte_refine, composite, store;
- ``reason`` / ``message`` / ``error_details`` on failure, ``outputs`` when done, and the
  request (``spec``, ``background``, ``options``, ``sha256``, ...).

`assemble` turns the flat fields into the record callers see (``timestamps`` and ``stages``
sub-dicts). Writes to a job only happen while its record exists (a deleted or expired job is
never resurrected by a late task) and, for state changes, only while it is not finished
(``unless_states``): the first failure reason wins, and a late failure never undoes ``done``.

Two backends, chosen by ``settings.job_store`` (`make_jobstore`):

- `RedisJobStore` (``auto`` with a broker): one hash per job, ``{prefix}:job:{id}``, with a TTL
  refreshed on every write; conditional writes are Lua scripts (atomic).
- `FileJobStore` (``auto`` in embedded mode): one JSON file per job under
  ``storage_dir/../jobs``, every operation under one ``flock``; for a single machine without
  Redis. Expiry is checked on read.

Both also keep, per input hash, the set of jobs that use it (``add_ref``/``remove_ref``, so the
last job deleted takes the shared input and matte with it) and a small index of finished
requests (``remember``/``recall``) so identical requests can reuse outputs.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, cast

from config.contracts import STAGES, STATES, JobRecord, JobState, Report
from config.settings import Settings
from storage.errors import StorageUnavailable

RUNNING_STATES: tuple[JobState, ...] = STATES[:5]
TERMINAL_STATES: tuple[JobState, ...] = ("done", "failed")


def done_fields(now: float, outputs: Mapping[str, str], report: Report) -> dict[str, Any]:
    """The fields that end a job ``done`` (the one place they are named)."""
    return {
        "state": "done",
        "ts.done": now,
        "updated_at": now,
        "finished_at": now,
        "outputs": dict(outputs),
        "report": report,
    }


def failed_fields(now: float, reason: str, message: str) -> dict[str, Any]:
    """The fields that end a job ``failed`` with a stable ``reason`` (the one place they are
    named); callers add what they know (``failed_stage``, ``error_details``, ``lost_in``...)."""
    return {
        "state": "failed",
        "ts.failed": now,
        "updated_at": now,
        "finished_at": now,
        "reason": reason,
        "message": message,
    }


class JobStoreUnavailable(StorageUnavailable):
    """The job store (Redis) cannot be reached: transient, tasks retry (it is a
    `StorageUnavailable`, so the web layer answers 503 for it as for the blob store)."""


class JobStore(Protocol):
    """Job records and the small indexes that go with them. Values are JSON-serialisable."""

    def ping(self) -> None: ...

    def create(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        ref: str | None = None,
        tally: str | None = None,
    ) -> None:
        """Write a new record (replacing any with that id) and, in the same write, with ``ref``
        note that the job uses the input of that hash (`add_ref`); with ``tally``, count its
        outcome (a job created finished)."""
        ...

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        unless_states: Sequence[str] = (),
        remember: tuple[str, str] | None = None,
        tally: str | None = None,
    ) -> int:
        """Set ``fields``: 1 if written, 0 if there is no record, -1 if its state is one of
        ``unless_states`` (nothing written). In the same write, only if the fields were
        written: ``remember`` (name, value) is kept (`remember`), and the outcome ``tally``
        (``done`` or ``failed:<reason>``) is counted once (`outcomes`)."""
        ...

    def outcomes(self) -> dict[str, int]:
        """How many jobs ended each way (``tally`` of `update` and `create`), since the store
        was new: what ``/metrics`` reports, counted where the job ends, once."""
        ...

    def incr(self, job_id: str, field: str) -> int:
        """Add one to an integer field and return it (0 when there is no record)."""
        ...

    def get(self, job_id: str) -> JobRecord | None:
        """The assembled record, or None."""
        ...

    def state(self, job_id: str) -> str | None:
        """The record's ``state`` alone (one field read, for the tasks' checks), or None when
        there is no record."""
        ...

    def delete(self, job_id: str) -> bool: ...

    def add_ref(self, sha256: str, job_id: str) -> None:
        """Note that ``job_id`` uses the input ``sha256``."""
        ...

    def remove_ref(self, sha256: str, job_id: str) -> int:
        """Forget that use; return how many jobs still use the input."""
        ...

    def remember(self, name: str, value: str) -> None:
        """Keep ``name -> value`` for the record TTL."""
        ...

    def recall(self, name: str) -> str | None: ...


def assemble(job_id: str, flat: Mapping[str, Any]) -> JobRecord:
    """The record callers see: flat ``ts.*`` / ``stage.*`` fields grouped into sub-dicts."""
    record: dict[str, Any] = {"job_id": job_id, "timestamps": {}, "stages": {}}
    for field, value in flat.items():
        if field.startswith("ts."):
            record["timestamps"][field[3:]] = value
        elif field.startswith("stage."):
            record["stages"][field[6:]] = value
        elif field.startswith("_"):
            continue
        else:
            record[field] = value
    ordered = {s: record["timestamps"][s] for s in STATES if s in record["timestamps"]}
    record["timestamps"] = ordered
    record["stages"] = {s: record["stages"][s] for s in STAGES if s in record["stages"]}
    return cast(JobRecord, record)  # fields as stored: the writers are typed (config.contracts)


# -- Redis -------------------------------------------------------------------------------------

_UPDATE_LUA = """
-- KEYS: the job; the request to remember, or ''; the outcome tallies, or ''.
-- ARGV: ttl, n, n states to leave alone, [remembered value], [tally field], field, value, ...
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then
  local state = redis.call('HGET', KEYS[1], 'state')
  for i = 3, 2 + n do
    if state == ARGV[i] then return -1 end
  end
end
local i = 3 + n
local remember = nil
if KEYS[2] ~= '' then remember = ARGV[i]; i = i + 1 end
local tally = nil
if KEYS[3] ~= '' then tally = ARGV[i]; i = i + 1 end
local kv = {}
for j = i, #ARGV do kv[#kv + 1] = ARGV[j] end
if #kv > 0 then redis.call('HSET', KEYS[1], unpack(kv)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
if remember then redis.call('SET', KEYS[2], remember, 'EX', tonumber(ARGV[1])) end
if tally then redis.call('HINCRBY', KEYS[3], tally, 1) end
return 1
"""

_INCR_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class RedisJobStore:
    """Job records in Redis hashes. Thread- and fork-safe (redis-py's pool reconnects per pid)."""

    def __init__(self, url: str, *, prefix: str = "idphoto", ttl_s: int = 7 * 24 * 3600) -> None:
        import redis

        self._redis_errors = (redis.ConnectionError, redis.TimeoutError)
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=3
        )
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._update = self.client.register_script(_UPDATE_LUA)
        self._incr = self.client.register_script(_INCR_LUA)

    def __repr__(self) -> str:
        return f"RedisJobStore(prefix={self.prefix!r})"

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _refs(self, sha256: str) -> str:
        return f"{self.prefix}:refs:{sha256}"

    def _req(self, name: str) -> str:
        return f"{self.prefix}:req:{name}"

    @property
    def _outcomes(self) -> str:
        return f"{self.prefix}:outcomes"

    def outcomes(self) -> dict[str, int]:
        with self._errors():
            counts = cast("dict[str, str]", self.client.hgetall(self._outcomes))  # decoded
            return {k: int(v) for k, v in counts.items()}

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._redis_errors as exc:
            raise JobStoreUnavailable(f"job store: {exc}") from exc

    def ping(self) -> None:
        with self._errors():
            self.client.ping()

    def create(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        ref: str | None = None,
        tally: str | None = None,
    ) -> None:
        key = self._job(job_id)
        with self._errors(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={k: _encode(v) for k, v in fields.items()})
            pipe.expire(key, self.ttl_s)
            if ref is not None:
                pipe.sadd(self._refs(ref), job_id)
                pipe.expire(self._refs(ref), self.ttl_s)
            if tally is not None:
                pipe.hincrby(self._outcomes, tally, 1)
            pipe.execute()

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        unless_states: Sequence[str] = (),
        remember: tuple[str, str] | None = None,
        tally: str | None = None,
    ) -> int:
        argv: list[Any] = [self.ttl_s, len(unless_states), *(_encode(s) for s in unless_states)]
        keys_ = [self._job(job_id), "", ""]
        if remember is not None:
            keys_[1] = self._req(remember[0])
            argv.append(remember[1])
        if tally is not None:
            keys_[2] = self._outcomes
            argv.append(tally)
        for k, v in fields.items():
            argv += [k, _encode(v)]
        with self._errors():
            return int(self._update(keys=keys_, args=argv))

    def incr(self, job_id: str, field: str) -> int:
        with self._errors():
            return int(self._incr(keys=[self._job(job_id)], args=[field]))

    def get(self, job_id: str) -> JobRecord | None:
        with self._errors():
            raw = cast("dict[str, str]", self.client.hgetall(self._job(job_id)))  # decoded
        if not raw:
            return None
        return assemble(job_id, {k: json.loads(v) for k, v in raw.items()})

    def state(self, job_id: str) -> str | None:
        with self._errors():
            raw = self.client.hget(self._job(job_id), "state")
        return None if raw is None else str(json.loads(raw))

    def delete(self, job_id: str) -> bool:
        with self._errors():
            return bool(self.client.delete(self._job(job_id)))

    def add_ref(self, sha256: str, job_id: str) -> None:
        key = self._refs(sha256)
        with self._errors(), self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, job_id)
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def remove_ref(self, sha256: str, job_id: str) -> int:
        key = self._refs(sha256)
        with self._errors(), self.client.pipeline(transaction=True) as pipe:
            pipe.srem(key, job_id)
            pipe.scard(key)
            return int(pipe.execute()[1])

    def remember(self, name: str, value: str) -> None:
        with self._errors():
            self.client.set(self._req(name), value, ex=self.ttl_s)

    def recall(self, name: str) -> str | None:
        with self._errors():
            return cast("str | None", self.client.get(self._req(name)))  # decoded


# -- files -------------------------------------------------------------------------------------


class FileJobStore:
    """Job records as JSON files, for the embedded mode (one machine, no Redis).

    Every operation holds an exclusive ``flock`` on ``{root}/.lock``: the worker processes and
    the submitting process are serialised, which is plenty for a handful of jobs a minute.
    Files are replaced atomically (``os.replace``), so a reader never sees half a record.
    """

    def __init__(self, root: Path | str, *, ttl_s: int = 7 * 24 * 3600) -> None:
        self.root = Path(root)
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"FileJobStore({str(self.root)!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        if data.get("_expires_at", float("inf")) < time.time():
            path.unlink(missing_ok=True)
            return None
        return data

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        data["_expires_at"] = time.time() + self.ttl_s
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(_encode(data))
        os.replace(tmp, path)

    def ping(self) -> None:
        with self._locked():
            pass

    def create(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        ref: str | None = None,
        tally: str | None = None,
    ) -> None:
        with self._locked():
            self._write(self._path("jobs", job_id), json.loads(_encode(dict(fields))))
            if ref is not None:
                self._add_ref(ref, job_id)
            if tally is not None:
                self._tally(tally)

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        unless_states: Sequence[str] = (),
        remember: tuple[str, str] | None = None,
        tally: str | None = None,
    ) -> int:
        path = self._path("jobs", job_id)
        with self._locked():
            data = self._read(path)
            if data is None:
                return 0
            if data.get("state") in unless_states:
                return -1
            data.update(json.loads(_encode(dict(fields))))
            self._write(path, data)
            if remember is not None:
                self._write(self._path("requests", remember[0]), {"value": remember[1]})
            if tally is not None:
                self._tally(tally)
            return 1

    def _tally(self, field: str) -> None:
        path = self.root / "outcomes.json"
        try:
            counts = json.loads(path.read_text())
        except FileNotFoundError:
            counts = {}
        counts[field] = int(counts.get(field, 0)) + 1
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(counts))
        os.replace(tmp, path)

    def outcomes(self) -> dict[str, int]:
        with self._locked():
            try:
                return {
                    k: int(v)
                    for k, v in json.loads((self.root / "outcomes.json").read_text()).items()
                }
            except FileNotFoundError:
                return {}

    def incr(self, job_id: str, field: str) -> int:
        path = self._path("jobs", job_id)
        with self._locked():
            data = self._read(path)
            if data is None:
                return 0
            data[field] = int(data.get(field, 0)) + 1
            self._write(path, data)
            return data[field]

    def get(self, job_id: str) -> JobRecord | None:
        with self._locked():
            data = self._read(self._path("jobs", job_id))
        return None if data is None else assemble(job_id, data)

    def state(self, job_id: str) -> str | None:
        with self._locked():
            data = self._read(self._path("jobs", job_id))
        return None if data is None else str(data.get("state", ""))

    def delete(self, job_id: str) -> bool:
        path = self._path("jobs", job_id)
        with self._locked():
            existed = self._read(path) is not None
            path.unlink(missing_ok=True)
            return existed

    def add_ref(self, sha256: str, job_id: str) -> None:
        with self._locked():
            self._add_ref(sha256, job_id)

    def _add_ref(self, sha256: str, job_id: str) -> None:
        path = self._path("refs", sha256)
        data = self._read(path) or {"jobs": []}
        if job_id not in data["jobs"]:
            data["jobs"].append(job_id)
        self._write(path, data)

    def remove_ref(self, sha256: str, job_id: str) -> int:
        path = self._path("refs", sha256)
        with self._locked():
            data = self._read(path) or {"jobs": []}
            jobs = [j for j in data["jobs"] if j != job_id]
            if jobs:
                self._write(path, {"jobs": jobs})
            else:
                path.unlink(missing_ok=True)
            return len(jobs)

    def remember(self, name: str, value: str) -> None:
        with self._locked():
            self._write(self._path("requests", name), {"value": value})

    def recall(self, name: str) -> str | None:
        with self._locked():
            data = self._read(self._path("requests", name))
        return None if data is None else data.get("value")


def state_dir(settings: Settings) -> Path:
    """The folder next to the local storage where the embedded mode keeps broker and jobs."""
    return Path(settings.storage_dir).expanduser().resolve().parent


def make_jobstore(settings: Settings) -> JobStore:
    """The job store ``settings.job_store`` names; ``auto`` is Redis when a broker is
    configured, else the file store next to the local storage. Connects to nothing."""
    kind = settings.job_store
    if kind == "auto":
        kind = "file" if settings.embedded else "redis"
    if kind == "redis":
        return RedisJobStore(
            settings.redis_url, prefix=settings.job_key_prefix, ttl_s=settings.job_ttl_s
        )
    if kind == "file":
        return FileJobStore(state_dir(settings) / "jobs", ttl_s=settings.job_ttl_s)
    raise ValueError(f"unknown job store {settings.job_store!r} (expected auto, redis or file)")
