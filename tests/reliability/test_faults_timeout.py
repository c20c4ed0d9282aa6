"""A worker that hits its time limit: the pool child is killed and replaced, and its job ends
``failed`` with reason ``timeout`` (never left in a running state).

A GPU worker of its own (another vhost; the session's bucket and job records) runs with tiny
limits from settings: ``task_soft_time_limit_s = task_time_limit_s = 1``. Equal limits make the
outcome certain: billiard's timeout handler (it looks once a second) applies the hard limit
first when both are due, so the child is SIGKILLed in the middle of segmentation instead of
racing a soft-limit exception against ONNX Runtime's C call. The photo is a large PNG so the
stage takes several seconds on any CPU (full PNG decode, downscale, detection, ISNet).

The hard time limit is handled in the worker's parent: ``on_timeout`` calls the task's
``on_failure`` and the chain's error callback there (`tasks.pipeline.fail_job`), acknowledges
the message (``task_acks_on_failure_or_timeout``) and the pool forks a new child, which loads
the models again.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from idphoto.samples import sample_path
from idphoto.serve import settings_environ
from tasks.app import make_celery
from tests.reliability import harness

pytestmark = pytest.mark.integration


def _large_png(label: str) -> bytes:
    """grace_hopper enlarged to 4300x5040 (21.7 MP, under the 50 MP limit), as a PNG."""
    with Image.open(sample_path("grace_hopper")) as img:
        big = img.convert("RGB").resize((4300, 5040), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, "PNG", compress_level=1)
    return buf.getvalue() + label.encode()  # trailing bytes after IEND: ignored, new hash


def test_time_limit_fails_the_job_and_replaces_the_child(
    cluster: Any, rabbitmq_vhost: Any, start_worker: Any
) -> None:
    limited = replace(
        cluster.settings,
        broker_url=rabbitmq_vhost(),
        task_soft_time_limit_s=1,
        task_time_limit_s=1,
    )
    worker = start_worker(settings_environ(limited), "gpu", f"limited-{cluster.tag}@%h")
    try:
        worker.wait_ready(also="loaded")
        before = harness.children(worker.proc.pid)
        assert len(before) == 1
        job_id = cluster.submit(_large_png(cluster.tag), "us-passport", settings=limited)
        began = time.monotonic()
        record = harness.wait_terminal(cluster.get, [job_id], timeout=60)[job_id]
        print(
            f"\njob failed {time.monotonic() - began:.1f} s after submission: {record and record.get('reason')}"
        )
        assert record is not None and record["state"] == "failed", record
        assert record["reason"] == "timeout" and record["failed_stage"] == "segment", record
        assert record["stages"]["segment"]["status"] == "failed", record["stages"]
        assert "Hard time limit (1" in worker.output()

        # The killed child is replaced by a new one that loads the models again.
        deadline = time.monotonic() + 90
        after: list[int] = []
        while time.monotonic() < deadline:
            after = harness.children(worker.proc.pid)
            if after and not set(after) & set(before) and worker.output().count("loaded") >= 2:
                break
            time.sleep(0.2)
        assert after and not set(after) & set(before), (before, after)
        assert worker.output().count("loaded") >= 2, worker.output()[-3000:]
        assert worker.proc.poll() is None
        app = make_celery(limited)
        with app.connection_for_write() as conn:
            replies = app.control.ping(timeout=3, connection=conn) or []
        assert any(name.startswith(f"limited-{cluster.tag}@") for r in replies for name in r)
        # Nothing stays behind in a running state; a poll through the API says the same.
        import requests

        body = requests.get(cluster.api(f"/jobs/{job_id}"), timeout=10).json()
        assert body["state"] == "failed" and body["reason"] == "timeout"
    finally:
        worker.stop()
