"""The embedded mode (no broker configured): the same chain through kombu's filesystem broker,
a real worker process, local storage and file job records; and the explicit eager option."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from config.catalogue import get_spec
from config.settings import Settings
from idphoto.samples import sample_path
from pipeline.encode import unpack_matte
from storage import make_store
from tasks.app import connect
from tasks.jobs import delete_job, get_job, submit_job
from tasks.jobstore import FileJobStore, make_jobstore
from tasks.services import Services

SPEC = "icao-35x45"


def _settings(root: Path) -> tuple[Settings, dict[str, str]]:
    env = {
        "IDPHOTO_BROKER_URL": "",
        "IDPHOTO_STORAGE": "local",
        "IDPHOTO_STORAGE_DIR": str(root / "var" / "storage"),
        "IDPHOTO_DEVICE": "cpu",
        "IDPHOTO_JOB_STORE": "auto",
    }
    return Settings.from_env({**os.environ, **env}), env


def _wait(services: Services, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = get_job(services, job_id)
        if record and record["state"] in ("done", "failed"):
            return record
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not finish: {record}")


def test_embedded_job_runs_through_real_worker_processes(tmp_path: Path, start_worker: Any) -> None:
    settings, env = _settings(tmp_path)
    assert settings.embedded and isinstance(make_jobstore(settings), FileJobStore)
    name = f"embedded-{uuid.uuid4().hex[:8]}@%h"
    worker = start_worker(env, "gpu,cpu", name)
    worker.wait_ready(also="loaded")
    began = time.monotonic()
    services = connect(settings)
    job_id = submit_job(services, sample_path("astronaut").read_bytes(), spec=SPEC)
    record = _wait(services, job_id)
    print(f"embedded job done in {time.monotonic() - began:.1f} s")
    worker.stop()

    assert record["state"] == "done", record
    assert list(record["stages"]) == ["segment", "matte_refine", "composite", "store"]
    for stage in record["stages"].values():
        assert stage["worker"].startswith(name.partition("@")[0] + "@")
        assert stage["pid"] != os.getpid()
    store = make_store(settings)
    spec = get_spec(SPEC)
    photo = Image.open(io.BytesIO(store.get(record["outputs"]["photo"])))
    assert photo.size == (spec.width_px, spec.height_px)
    state = Path(settings.storage_dir).resolve().parent
    assert (state / "jobs" / "jobs" / f"{job_id}.json").is_file()
    # The messages went through the filesystem broker: the worker claimed them from there.
    claimed = [p.name for p in (state / "broker" / "processed").iterdir()]
    assert any(n.endswith(".gpu.msg") for n in claimed)
    assert sum(n.endswith(".cpu.msg") for n in claimed) >= 3
    assert not list((state / "broker" / "queue").iterdir())

    assert delete_job(services, job_id) is True
    assert store.list("") == []


def test_eager_option_runs_the_chain_in_process(tmp_path: Path) -> None:
    """``task_always_eager`` (the CLI's single-process path): no worker, no broker; a photo with
    no face fails at once with its reason and without loading the segmenter."""
    settings = replace(_settings(tmp_path)[0], task_always_eager=True)
    img = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    services = connect(settings)
    job_id = submit_job(services, buf.getvalue(), spec=SPEC)
    record = get_job(services, job_id)
    assert record is not None and record["state"] == "failed", record
    assert record["reason"] == "no_face"
    assert record["stages"]["segment"]["status"] == "failed"
    assert "inference_s" not in record["stages"]["segment"]


def test_a_second_composite_of_a_job_stores_each_output_once(tmp_path: Path) -> None:
    """A composite redelivered while its first attempt was cut off from the broker (or after it
    died half-way) must not store the job's outputs again: the writes are conditional, the
    second attempt keeps the objects the first one stored and hands the same keys on; once the
    job is done, a late attempt stops without writing."""
    from tasks import keys
    from tasks.app import COMPOSITE, STORE
    from tasks.pipeline import CONTEXT_VERSION

    settings = replace(_settings(tmp_path)[0], task_always_eager=True)
    data = sample_path("grace_hopper").read_bytes()
    services = connect(settings)
    first = get_job(services, submit_job(services, data, spec=SPEC))
    assert first is not None and first["state"] == "done", first
    app = services.celery
    job_id = "second-composite-" + uuid.uuid4().hex[:8]
    services.jobstore.create(
        job_id, {"state": "refining", "sha256": first["sha256"], "model": first["model"]}
    )
    ctx = {
        "v": CONTEXT_VERSION,
        "job_id": job_id,
        "sha256": first["sha256"],
        "model": first["model"],
        "spec": "us-passport",
        "background": "white",
        "options": {},
        "stages": {"segment": {"status": "ok"}, "matte_refine": {"status": "ok"}},
    }
    handed = app.tasks[COMPOSITE].apply(args=(dict(ctx),)).get()
    stored = sorted(services.store.list(keys.job_prefix(job_id)))
    assert stored == sorted(handed["outputs"].values()) and len(stored) >= 3

    def files() -> dict[str, tuple[int, int]]:
        paths = {key: services.store.path(key).stat() for key in stored}  # type: ignore[attr-defined]
        return {key: (st.st_ino, st.st_mtime_ns) for key, st in paths.items()}

    before = files()
    again = app.tasks[COMPOSITE].apply(args=(dict(ctx),)).get()  # the job is not done yet
    assert again["outputs"] == handed["outputs"]
    # What it hands to store is what the first attempt stored: the report is a function of the
    # matte and the request only (no timings or worker in it), so the record matches the file.
    stored_report = json.loads(services.store.get(handed["outputs"]["report"]))
    assert again["report"] == handed["report"] == stored_report
    assert again["stages"]["composite"]["outputs_kept"] == len(stored)
    assert files() == before, "a second attempt rewrote the outputs"
    app.tasks[STORE].apply(args=(handed,)).get()
    assert services.jobstore.state(job_id) == "done"
    late = app.tasks[COMPOSITE].apply(args=(dict(ctx),))
    assert late.state == "IGNORED", (late.state, late.result)
    assert files() == before
    assert sorted(services.store.list(keys.job_prefix(job_id))) == stored


def test_refine_without_a_stored_region_decodes_the_upload_again(tmp_path: Path) -> None:
    """A segment stage run by an older worker stored no region (.npy): the refine stage then
    decodes the region from the upload (``stages.load_region``, for messages in flight during a
    deploy) and must make the very matte the stored region gives. Refine deletes the coarse mask
    and the region once the matte is stored, and a redelivered refine finds the matte made."""
    from tasks import keys
    from tasks.app import MATTE_REFINE, SEGMENT
    from tasks.pipeline import CONTEXT_VERSION

    settings = replace(_settings(tmp_path)[0], task_always_eager=True)
    data = sample_path("grace_hopper").read_bytes()
    services = connect(settings)
    first = get_job(services, submit_job(services, data, spec=SPEC))
    assert first is not None and first["state"] == "done", first
    store, sha, model = services.store, first["sha256"], first["model"]
    matte_key, region_key = keys.matte_key(sha, model), keys.region_key(sha, model)
    coarse_key = keys.coarse_key(sha, model)
    assert not store.exists(region_key) and not store.exists(coarse_key)
    made_by_the_chain = store.get(matte_key)
    app = services.celery

    def run(task: str, *, drop_region: bool) -> dict:
        job_id = "refine-fallback-" + uuid.uuid4().hex[:8]
        services.jobstore.create(job_id, {"state": "queued", "sha256": sha, "model": model})
        ctx = {
            "v": CONTEXT_VERSION,
            "job_id": job_id,
            "sha256": sha,
            "model": model,
            "spec": SPEC,
            "background": "white",
            "options": {},
        }
        if task == MATTE_REFINE:
            ctx = app.tasks[SEGMENT].apply(args=(ctx,)).get()
            assert store.exists(coarse_key) and store.exists(region_key)
            if drop_region:
                store.delete(region_key)
            store.delete(matte_key)
        return app.tasks[task].apply(args=(ctx,)).get()

    run(MATTE_REFINE, drop_region=True)
    assert not store.exists(region_key) and not store.exists(coarse_key)
    without_region = store.get(matte_key)
    ctx = run(MATTE_REFINE, drop_region=False)
    assert ctx["stages"]["matte_refine"]["status"] == "ok"
    with_region = store.get(matte_key)
    assert with_region == without_region == made_by_the_chain
    before, after = unpack_matte(with_region), unpack_matte(without_region)
    assert after.shape == before.shape and after.dtype == np.uint8
    # Redelivered after it had finished (the coarse mask is gone, the matte is there): done.
    again = app.tasks[MATTE_REFINE].apply(args=(dict(ctx, stages={}),)).get()
    assert again["stages"]["matte_refine"]["reused"] is True
    assert store.get(matte_key) == with_region
