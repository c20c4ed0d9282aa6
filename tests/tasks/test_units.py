"""Fast tests of the task layer's parts: app configuration, job stores, options, keys, the
failure mapping and the stage bookkeeping (no worker, no models)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from billiard.exceptions import WorkerLostError
from celery.exceptions import Ignore, TimeLimitExceeded

from config.settings import Settings
from pipeline.errors import BadParameter, NoFaceError
from storage.errors import ObjectNotFound, StorageUnavailable
from tasks import keys, startup
from tasks.app import COMPOSITE, FAIL_JOB, MATTE_REFINE, SEGMENT, STORE, connect, make_celery
from tasks.jobs import _options
from tasks.jobstore import FileJobStore, JobStore, RedisJobStore, make_jobstore
from tasks.pipeline import _stage, failure_of, request_fingerprint
from tasks.services import Services
from tasks.worker import worker_argv

REPO = Path(__file__).resolve().parents[2]


def test_app_wiring() -> None:
    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//", quorum_queues=True)
    app = make_celery(settings)
    conf = app.conf
    queues = {q.name: q for q in conf.task_queues}
    assert set(queues) == {"gpu", "cpu"}
    for name, q in queues.items():
        assert q.durable and q.routing_key == name
        assert q.exchange.name == "idphoto" and q.exchange.type == "topic"
        assert q.queue_arguments == {"x-queue-type": "quorum"}
    assert conf.task_routes[SEGMENT]["queue"] == "gpu"
    for name in (MATTE_REFINE, COMPOSITE, STORE, FAIL_JOB):
        assert conf.task_routes[name]["queue"] == "cpu"
        assert name in app.tasks
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert app.tasks[SEGMENT].time_limit == settings.task_time_limit_s
    assert app.tasks[SEGMENT].soft_time_limit == settings.task_soft_time_limit_s
    assert StorageUnavailable in app.tasks[SEGMENT].autoretry_for
    classic = make_celery(Settings(broker_url="amqp://x//"))
    assert all(q.queue_arguments is None for q in classic.conf.task_queues)


def test_embedded_app_uses_the_filesystem_broker(tmp_path: Path) -> None:
    settings = Settings(storage_dir=tmp_path / "var" / "storage")
    app = make_celery(settings)
    assert app.conf.broker_url == "filesystem://"
    opts = app.conf.broker_transport_options
    assert opts["data_folder_in"] == opts["data_folder_out"] == str(tmp_path / "var/broker/queue")
    assert isinstance(make_jobstore(settings), FileJobStore)


def test_importing_the_task_layer_loads_no_model_runtime() -> None:
    """The worker's parent imports these: numba (via pymatting) or ONNX Runtime there would be
    inherited by every pool child (numba's OpenMP pool then kills children that use it)."""
    code = (
        "import sys, tasks.jobs, tasks.worker, tasks.app\n"
        "from config.settings import Settings\n"
        "tasks.app.make_celery(Settings(broker_url='amqp://x//'))\n"
        "bad = [m for m in ('numba', 'pymatting', 'rembg', 'onnxruntime') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_worker_argv() -> None:
    argv = worker_argv(["gpu"], 1, "gpu-1@%h")
    assert argv[:3] == ["worker", "-Q", "gpu"] and "-n" in argv and "prefork" in argv
    with pytest.raises(ValueError):
        worker_argv(["celery"], 1)
    with pytest.raises(ValueError):
        worker_argv(["cpu"], 0)


def test_cpu_only_worker_gets_a_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import signals

    import tasks.app

    monkeypatch.setattr(tasks.app, "declare_topology", lambda app: None)  # no broker here

    settings = Settings(broker_url="amqp://x//", worker_max_memory_mb=700)
    for queues, expected in ((["cpu"], 700 * 1024), (["gpu"], None), (["gpu", "cpu"], None)):
        app = make_celery(settings)
        instance = SimpleNamespace(app=app)
        signals.celeryd_init.send(
            sender="w@h", instance=instance, conf=app.conf, options={"queues": queues}
        )
        assert app.conf.worker_max_memory_per_child == expected
    startup._WORKER.clear()  # the handler noted a worker role in this (test) process


def test_keys_are_deterministic_and_safe() -> None:
    sha = "a" * 64
    assert keys.input_key(sha) == f"inputs/{sha}"
    assert keys.matte_key(sha, "isnet-imgly-medium") == (
        f"mattes/{sha}/isnet-imgly-medium/matte.idm"
    )
    assert keys.region_key(sha, "isnet-imgly-medium").startswith(keys.mask_prefix(sha))
    assert keys.output_key("x" * 22, "photo", "jpg") == f"jobs/{'x' * 22}/photo.jpg"
    for bad in ("../etc", "a/b", "", "x" * 15):
        assert not keys.is_job_id(bad)
    with pytest.raises(ValueError):
        keys.input_key("../" + sha)


def test_options_are_validated_and_canonical() -> None:
    assert _options(None) == {"level": True, "sheet": "4x6", "zero_margin": False}
    assert _options({"sheet": "A4"})["sheet"] == "a4"
    assert _options({"sheet": "none"})["sheet"] is None
    assert _options({"head_covering": "religious"})["head_covering"] == "religious"
    assert _options({"medical_glasses": True})["medical_glasses"] is True
    for bad in (
        {"sheet": "letter"},
        {"level": "yes"},
        {"colour": 1},
        ["level"],
        {"head_covering": "hat"},
        {"medical_glasses": "yes"},
    ):
        with pytest.raises(BadParameter):
            _options(bad)  # type: ignore[arg-type]
    a = request_fingerprint("a" * 64, "m", "s", "#ffffff", {"level": True, "sheet": None})
    b = request_fingerprint("a" * 64, "m", "s", "#ffffff", {"sheet": None, "level": True})
    assert a == b


def test_failure_reasons() -> None:
    assert failure_of(NoFaceError())[0] == "no_face"
    assert failure_of(NoFaceError())[2] == {"face_count": 0}
    assert failure_of(StorageUnavailable("down"))[0] == "storage_unavailable"
    assert failure_of(ObjectNotFound("inputs/x"))[0] == "input_missing"
    assert failure_of(TimeLimitExceeded(3))[0] == "timeout"
    assert failure_of(WorkerLostError("gone"))[0] == "worker_lost"
    reason, message, _ = failure_of(RuntimeError("/secret/path"))
    assert reason == "internal_error" and "/secret" not in message


@pytest.fixture(params=["file", "redis"])
def jobstore(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        yield FileJobStore(tmp_path / "jobs", ttl_s=60)
        return
    url = request.getfixturevalue("redis_url")
    store = RedisJobStore(url, prefix=f"idphoto-test-{uuid.uuid4().hex[:8]}", ttl_s=60)
    yield store
    for key in store.client.scan_iter(match=f"{store.prefix}:*"):
        store.client.delete(key)


def test_jobstore_contract(jobstore: JobStore) -> None:
    jobstore.create("job1", {"state": "queued", "ts.queued": 1.0, "spec": "us-passport"})
    assert jobstore.update("job1", {"state": "segmenting", "stage.segment": {"pid": 1}}) == 1
    record = jobstore.get("job1")
    assert record is not None
    assert record["state"] == "segmenting" and record["spec"] == "us-passport"
    assert record["timestamps"] == {"queued": 1.0}
    assert record["stages"] == {"segment": {"pid": 1}}
    # Finished jobs keep their state; the first failure wins.
    assert jobstore.update("job1", {"state": "failed", "reason": "no_face"}) == 1
    assert jobstore.update("job1", {"state": "done"}, unless_states=("done", "failed")) == -1
    assert jobstore.get("job1")["state"] == "failed"  # type: ignore[index]
    # A missing (deleted) job is never resurrected.
    assert jobstore.update("nope", {"state": "done"}) == 0
    assert jobstore.get("nope") is None and jobstore.incr("nope", "n") == 0
    assert jobstore.incr("job1", "redeliveries.segment") == 1
    assert jobstore.incr("job1", "redeliveries.segment") == 2
    assert jobstore.delete("job1") is True and jobstore.get("job1") is None
    assert jobstore.delete("job1") is False
    jobstore.add_ref("s" * 64, "a")
    jobstore.add_ref("s" * 64, "b")
    jobstore.add_ref("s" * 64, "b")
    assert jobstore.remove_ref("s" * 64, "a") == 1
    assert jobstore.remove_ref("s" * 64, "b") == 0
    jobstore.remember("fp", "job9")
    assert jobstore.recall("fp") == "job9" and jobstore.recall("other") is None


def test_jobstore_writes_a_reference_and_a_remembered_request_with_the_record(
    jobstore: JobStore,
) -> None:
    """A job's four writes: its creation carries its reference on the input, and its last
    update the request it answers, each in the same write (and only if that write happens)."""
    jobstore.create("j2", {"state": "queued"}, ref="r" * 64)
    jobstore.add_ref("r" * 64, "other")
    assert jobstore.remove_ref("r" * 64, "other") == 1  # j2 still holds it
    fields = {"state": "done", "outputs": {"photo": "k"}, "stage.store": {"status": "ok"}}
    assert jobstore.outcomes() == {}
    assert (
        jobstore.update("j2", fields, unless_states=("done",), remember=("fp2", "j2"), tally="done")
        == 1
    )
    jobstore.create("j3", {"state": "done"}, tally="done")  # a reused request: done at once
    assert jobstore.recall("fp2") == "j2"
    record = jobstore.get("j2")
    assert record is not None and record["outputs"] == {"photo": "k"}
    assert record["stages"] == {"store": {"status": "ok"}} and "fp2" not in str(record)
    # Not written (finished, or gone): nothing is remembered either.
    assert (
        jobstore.update("j2", {"state": "x"}, unless_states=("done",), remember=("fp3", "j2")) == -1
    )
    assert jobstore.update("gone", {"state": "x"}, remember=("fp4", "gone"), tally="done") == 0
    assert jobstore.recall("fp3") is None and jobstore.recall("fp4") is None
    assert jobstore.update("j3", {"state": "failed"}, tally="failed:no_face") == 1
    # Each outcome counted once, where it was written: not for the writes that did not happen.
    assert jobstore.outcomes() == {"done": 2, "failed:no_face": 1}
    assert jobstore.get("j2")["state"] == "done"  # type: ignore[index]
    assert jobstore.remove_ref("r" * 64, "j2") == 0


def test_file_jobstore_expires_records(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path, ttl_s=1)
    store.create("j", {"state": "queued"})
    assert store.get("j") is not None
    time.sleep(1.1)
    assert store.get("j") is None


def _fake_task(services: Services, *, redelivered: bool = False) -> Any:
    return SimpleNamespace(
        app=SimpleNamespace(idphoto_settings=services.settings, idphoto_services=services),
        request=SimpleNamespace(
            delivery_info={"redelivered": redelivered}, hostname="cpu-1@host", retries=0
        ),
    )


def _embedded(tmp_path: Path) -> Settings:
    return Settings(storage_dir=tmp_path / "var" / "storage", max_redeliveries=2)


def test_stage_records_worker_duration_and_failure(tmp_path: Path) -> None:
    settings = _embedded(tmp_path)
    svc = Services(settings)
    jobs = svc.jobstore
    ctx = {"job_id": "j" * 22, "sha256": "a" * 64}
    jobs.create(ctx["job_id"], {"state": "queued"})
    with _stage(_fake_task(svc), ctx, "composite", "compositing", announce=True) as info:
        info["extra"] = 1
        running = jobs.get(ctx["job_id"])  # the start is written (announce)
        spent = time.thread_time() + 0.05
        while time.thread_time() < spent:  # burn 50 ms of CPU: the stage's cpu_s sees it
            pass
    assert running is not None and running["state"] == "compositing"
    assert running["stages"]["composite"]["status"] == "running"
    # The finished stage's record travels on in the chain, for a later write.
    stage = ctx["stages"]["composite"]  # type: ignore[index]
    assert stage["worker"] == "cpu-1@host" and stage["hostname"] == "host"
    assert stage["status"] == "ok" and stage["extra"] == 1 and stage["duration_s"] >= 0
    assert stage["cpu_s"] >= 0.05 and stage["duration_s"] >= 0.05, stage
    assert jobs.get(ctx["job_id"])["stages"]["composite"]["status"] == "running"  # type: ignore[index]
    # A stage that does not announce itself writes nothing when it goes well...
    with _stage(_fake_task(svc), ctx, "store", "storing", announce=False):
        pass
    assert "store" not in jobs.get(ctx["job_id"])["stages"]  # type: ignore[index]
    assert ctx["stages"]["store"]["status"] == "ok"  # type: ignore[index]
    # ...and its failure at once.
    with (
        pytest.raises(NoFaceError),
        _stage(_fake_task(svc), ctx, "store", "storing", announce=False),
    ):
        raise NoFaceError()
    stage = jobs.get(ctx["job_id"])["stages"]["store"]  # type: ignore[index]
    assert stage["status"] == "failed" and stage["error"] == "no_face"


def test_a_stage_that_keeps_killing_workers_fails_the_job(tmp_path: Path) -> None:
    settings = _embedded(tmp_path)
    svc = Services(settings)
    jobs = svc.jobstore
    ctx = {"job_id": "k" * 22, "sha256": "a" * 64}
    jobs.create(ctx["job_id"], {"state": "segmenting"})
    for _ in range(settings.max_redeliveries):
        with _stage(_fake_task(svc, redelivered=True), ctx, "segment", "segmenting", announce=True):
            pass
    with pytest.raises(Ignore):
        with _stage(_fake_task(svc, redelivered=True), ctx, "segment", "segmenting", announce=True):
            pytest.fail("must not run again")
    record = jobs.get(ctx["job_id"])
    assert record is not None and record["state"] == "failed"
    assert record["reason"] == "worker_lost"


@pytest.mark.parametrize("announce", [True, False])
def test_a_task_for_a_deleted_job_stops_and_cleans_up(tmp_path: Path, announce: bool) -> None:
    settings = _embedded(tmp_path)
    svc = Services(settings)
    svc.ready_store()
    sha = "b" * 64
    ctx = {"job_id": "d" * 22, "sha256": sha}
    svc.store.put(keys.input_key(sha), b"photo")
    svc.store.put(keys.output_key(ctx["job_id"], "photo", "jpg"), b"out")
    with pytest.raises(Ignore):
        with _stage(_fake_task(svc), ctx, "composite", "compositing", announce=announce):
            pytest.fail("must not run")
    assert svc.store.list("") == []


def test_a_task_for_a_finished_job_is_skipped(tmp_path: Path) -> None:
    settings = _embedded(tmp_path)
    svc = Services(settings)
    jobs = svc.jobstore
    ctx = {"job_id": "f" * 22, "sha256": "a" * 64}
    jobs.create(ctx["job_id"], {"state": "failed"})
    for announce in (True, False):
        with pytest.raises(Ignore):
            with _stage(_fake_task(svc), ctx, "composite", "compositing", announce=announce):
                pytest.fail("must not run")
    assert jobs.get(ctx["job_id"])["stages"] == {}  # type: ignore[index]


def test_cache_scope_names_the_client_or_no_one() -> None:
    from tasks.jobs import cache_scope

    shared = Settings(cache_scope="global")
    scoped = Settings(cache_scope="client", secret_key="k1")
    assert cache_scope(shared, "alice") == ""
    alice = cache_scope(scoped, "alice")
    assert alice == cache_scope(scoped, "alice") != cache_scope(scoped, "bob")
    assert len(alice) == 16 and int(alice, 16) >= 0
    assert cache_scope(Settings(cache_scope="client", secret_key="k2"), "alice") != alice
    assert cache_scope(scoped, None) != cache_scope(scoped, None)  # unknown: shares nothing
    assert keys.cache_name("isnet-imgly-medium", "") == "isnet-imgly-medium"
    assert keys.matte_key("a" * 64, keys.cache_name("isnet-imgly-medium", alice)) == (
        f"mattes/{'a' * 64}/isnet-imgly-medium.{alice}/matte.idm"
    )
    with pytest.raises(ValueError):
        keys.cache_name("isnet-imgly-medium", "../x")
    with pytest.raises(ValueError):
        Settings(cache_scope="tenant")


def test_a_job_whose_photo_cannot_be_stored_leaves_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record (with its reference on the photo) is written before the photo is stored;
    when storing fails, both are taken back and the caller gets the storage error."""
    from idphoto.samples import sample_path
    from tasks.jobs import submit_job

    settings = _embedded(tmp_path)
    svc = connect(settings)
    created: list[str] = []
    real_create = svc.jobstore.create

    def create(job_id: str, fields: Any, *, ref: str | None = None) -> None:
        created.append(job_id)
        real_create(job_id, fields, ref=ref)

    def put(*_: Any, **__: Any) -> None:
        raise StorageUnavailable("disk gone")

    monkeypatch.setattr(svc.jobstore, "create", create)
    monkeypatch.setattr(svc.store, "put", put)
    data = sample_path("grace_hopper").read_bytes()
    with pytest.raises(StorageUnavailable):
        submit_job(svc, data, spec="us-passport")
    assert len(created) == 1 and svc.jobstore.get(created[0]) is None
    sha = hashlib.sha256(data).hexdigest()
    assert svc.jobstore.remove_ref(sha, "someone-else") == 0  # no reference was left behind
