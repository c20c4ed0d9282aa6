"""Transient storage errors are retried through the broker (on quorum queues the retry's
countdown goes through RabbitMQ's native delayed delivery), then end the job ``failed``."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest

from config.settings import Settings
from idphoto.samples import sample_path
from storage import make_store
from tasks.app import connect
from tasks.jobs import get_job, submit_job
from tests.conftest import free_ports

pytestmark = pytest.mark.integration


def test_storage_outage_is_retried_then_fails_the_job(
    s3_server: Any, rabbitmq_vhost: Any, redis_url: str, redis_prefix: str, start_worker: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    common = {
        "IDPHOTO_BROKER_URL": rabbitmq_vhost(),  # its own vhost: no other test's workers
        "IDPHOTO_QUORUM_QUEUES": "1",
        "IDPHOTO_REDIS_URL": redis_url,
        "IDPHOTO_JOB_KEY_PREFIX": redis_prefix,
        "IDPHOTO_STORAGE": "s3",
        "IDPHOTO_S3_BUCKET": f"retry-{tag}",
        "IDPHOTO_S3_ACCESS_KEY": s3_server.access_key,
        "IDPHOTO_S3_SECRET_KEY": s3_server.secret_key,
        "IDPHOTO_DEVICE": "cpu",
        "IDPHOTO_TASK_MAX_RETRIES": "2",
        "IDPHOTO_TASK_RETRY_BACKOFF_S": "1",
    }
    settings = Settings.from_env(
        {**os.environ, **common, "IDPHOTO_S3_ENDPOINT_URL": s3_server.endpoint}
    )
    (closed,) = free_ports(1)  # nothing listens there: the worker's S3 is "down"
    worker = start_worker(
        {**common, "IDPHOTO_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed}"}, "gpu", f"r-{tag}@%h"
    )
    worker.wait_ready(also="loaded")
    make_store(settings).ensure_ready()  # `idphoto storage init`, as a deployment runs it first
    services = connect(settings)
    job_id = submit_job(services, sample_path("grace_hopper").read_bytes(), spec="us-passport")
    deadline = time.monotonic() + 120
    record = None
    while time.monotonic() < deadline:
        record = get_job(services, job_id)
        if record and record["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    worker.stop()
    assert record is not None and record["state"] == "failed", record
    assert record["reason"] == "storage_unavailable" and record["failed_stage"] == "segment"
    segment = record["stages"]["segment"]
    assert segment["attempt"] == 3 and segment["status"] == "failed"  # 1 try + 2 retries
    log = worker.output()
    assert log.count("Retry in") == 2
    assert "CRITICAL" not in log  # e.g. "Native delayed delivery will not be available"
    client = s3_server.client()
    for obj in client.list_objects_v2(Bucket=settings.s3_bucket).get("Contents", []):
        client.delete_object(Bucket=settings.s3_bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=settings.s3_bucket)
