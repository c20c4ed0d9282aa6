"""A job whose message is gone is failed with reason ``lost`` (issue 17).

Messages lost from the broker (simulated by purging the queue) left their jobs ``queued``
until the record expired after 7 days. Real RabbitMQ vhost and Redis; no worker runs, so the
purged message is the only copy there ever was.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from config.settings import Settings
from idphoto.samples import sample_path
from tasks.app import GPU_QUEUE, connect, declare_topology
from tasks.jobs import get_job, submit_job


def test_a_job_whose_message_was_purged_fails_as_lost(
    rabbitmq_vhost: Any, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(
        broker_url=rabbitmq_vhost(),
        quorum_queues=True,
        redis_url=redis_url,
        job_key_prefix=redis_prefix,
        storage="local",
        storage_dir=tmp_path / "storage",
        secret_key="lost-test",
        job_lost_queued_s=2,
    )
    services = connect(settings)
    app = services.celery
    declare_topology(app)
    photo = sample_path("grace_hopper").read_bytes() + uuid.uuid4().bytes  # unique bytes
    job_id = submit_job(services, photo, spec="us-passport")
    assert get_job(services, job_id)["state"] == "queued"
    with app.connection_for_write() as conn:
        purged = conn.default_channel.queue_purge(GPU_QUEUE)
    assert purged == 1
    assert get_job(services, job_id)["state"] == "queued"  # within the deadline: still waiting
    time.sleep(2.5)
    record = get_job(services, job_id)
    assert record["state"] == "failed" and record["reason"] == "lost", record
    assert record["waiting_for"] == "segment" and record["lost_in"] == "queued"
    assert "segment" in record["message"] and record["timestamps"]["failed"]
    assert get_job(services, job_id)["state"] == "failed"  # once, and it stays so
