"""A GPU worker that cannot load its models must not start (issue 17).

It used to log the error, say ``ready``, then fail every job it took in 20 ms
(``internal_error``), draining the queue. Now it exits non-zero before it consumes anything.
A real worker process (`tests.tasks.worker_main`, as ``idphoto worker``) on a private vhost.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from config.models import FACE_MESH
from config.settings import Settings
from tasks.app import GPU_QUEUE, SEGMENT, declare_topology, make_celery

#: How long a worker may take to notice and exit (imports included) on this 2-core machine.
EXIT_WITHIN_S = 90


def _queue_depth(app: Any, queue: str) -> int:
    with app.connection_for_write() as conn:
        _, count, _ = conn.default_channel.queue_declare(queue=queue, passive=True)
    return count


def _setup(
    broker_url: str, redis_url: str, tmp_path: Path, models: Path, tag: str
) -> tuple[dict[str, str], Any]:
    """The worker's environment, and an app that has left one job waiting on the GPU queue."""
    env = {
        "IDPHOTO_BROKER_URL": broker_url,
        "IDPHOTO_QUORUM_QUEUES": "1",
        "IDPHOTO_REDIS_URL": redis_url,
        "IDPHOTO_JOB_KEY_PREFIX": f"idphoto-test-{tag}",
        "IDPHOTO_STORAGE": "local",
        "IDPHOTO_STORAGE_DIR": str(tmp_path / "storage"),
        "IDPHOTO_MODELS_DIR": str(models),
        "IDPHOTO_DEVICE": "cpu",
    }
    settings = Settings(
        broker_url=broker_url,
        quorum_queues=True,
        redis_url=redis_url,
        job_key_prefix=env["IDPHOTO_JOB_KEY_PREFIX"],
        storage="local",
        storage_dir=tmp_path / "storage",
    )
    app = make_celery(settings)
    declare_topology(app)
    # A job waiting on the GPU queue: a bad worker must leave it there for a good one.
    app.send_task(SEGMENT, args=[{"job_id": "waiting-" + tag}], queue=GPU_QUEUE)
    deadline = time.monotonic() + 10
    while _queue_depth(app, GPU_QUEUE) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _queue_depth(app, GPU_QUEUE) == 1
    return env, app


def _wait_exit(worker: Any) -> str:
    deadline = time.monotonic() + EXIT_WITHIN_S
    while worker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    output = worker.output()
    assert worker.proc.returncode is not None, f"still running:\n{output[-3000:]}"
    return output


def test_worker_with_a_wrong_models_dir_exits_non_zero_and_takes_no_message(
    rabbitmq_vhost: Any, redis_url: str, start_worker: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    env, app = _setup(rabbitmq_vhost(), redis_url, tmp_path, tmp_path / "no-models-here", tag)
    worker = start_worker(env, "gpu", f"gpu-nomodels-{tag}@%h")
    output = _wait_exit(worker)
    assert worker.proc.returncode != 0, output[-3000:]
    assert "no-models-here" in output and " ready." not in output, output[-3000:]
    assert _queue_depth(app, GPU_QUEUE) == 1, output[-3000:]


def test_worker_whose_model_will_not_load_stops_and_takes_no_message(
    rabbitmq_vhost: Any, redis_url: str, start_worker: Any, tmp_path: Path, models_dir: Path
) -> None:
    # Every file there, one of them garbage: the parent's check passes, the child's load fails.
    broken = tmp_path / "models"
    broken.mkdir()
    for path in Path(models_dir).expanduser().iterdir():
        (broken / path.name).symlink_to(path)
    (broken / FACE_MESH.filename).unlink()
    (broken / FACE_MESH.filename).write_bytes(b"not an onnx model" * 100)
    tag = uuid.uuid4().hex[:8]
    env, app = _setup(rabbitmq_vhost(), redis_url, tmp_path, broken, tag)
    worker = start_worker(env, "gpu", f"gpu-broken-{tag}@%h")
    output = _wait_exit(worker)
    assert worker.proc.returncode != 0, output[-3000:]
    assert "models failed to load" in output, output[-3000:]
    assert _queue_depth(app, GPU_QUEUE) == 1, output[-3000:]
