"""Refusals caused for real on live gunicorn apps: a request burst (429) and a GPU-queue backlog
(503). Neither app has workers; the backlog lives in a vhost of its own."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from dataclasses import replace
from pathlib import Path

import pika
import pytest
import requests

from config.settings import Settings
from tests.web.conftest import Vhosts, live_app, unique_portrait

pytestmark = pytest.mark.integration


def test_429_on_a_burst(base_settings: Settings, tmp_path: Path) -> None:
    settings = replace(
        base_settings, rate_limit="3/minute", rate_limit_key_prefix=f"burst-{uuid.uuid4().hex}"
    )
    with live_app(settings, tmp_path) as url:
        statuses = []
        last = None
        for _ in range(6):
            last = requests.post(f"{url}/api/v1/jobs", data={"spec": "us-passport"}, timeout=10)
            statuses.append(last.status_code)
        # Three requests go through (and fail validation: no photo); the rest are refused.
        assert statuses == [422, 422, 422, 429, 429, 429]
        assert last is not None
        assert last.json()["error"] == "rate_limited"
        assert 0 < int(last.headers["Retry-After"]) <= 60
        # Reads are not limited: a client can still poll and browse.
        assert requests.get(f"{url}/api/v1/specs", timeout=10).status_code == 200
        assert requests.get(f"{url}/api/v1/jobs/{'A' * 22}", timeout=10).status_code == 404
        # Another client address has its own budget (X-Forwarded-For is not trusted by default).
        spoofed = requests.post(
            f"{url}/api/v1/jobs",
            data={"spec": "us-passport"},
            headers={"X-Forwarded-For": "10.1.2.3"},
            timeout=10,
        )
        assert spoofed.status_code == 429


def _publish(broker_url: str, queue: str, count: int) -> None:
    from web.admission import pika_parameters

    connection = pika.BlockingConnection(pika_parameters(broker_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue, durable=True)
        for i in range(count):
            channel.basic_publish("", queue, f"backlog {i}".encode())
    finally:
        connection.close()


def _purge(broker_url: str, queue: str) -> None:
    from web.admission import pika_parameters

    connection = pika.BlockingConnection(pika_parameters(broker_url))
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()


def test_503_while_the_gpu_queue_is_too_deep(
    base_settings: Settings, vhosts: Vhosts, tmp_path: Path
) -> None:
    broker_url = vhosts.url(vhosts.backlog)
    settings = replace(base_settings, broker_url=broker_url, gpu_queue_max_depth=2)
    photo = unique_portrait()  # a known photo could be answered from finished work at once

    def post() -> requests.Response:
        return requests.post(
            f"{url}/api/v1/jobs",
            data={"spec": "us-passport"},
            files={"photo": ("me.jpg", photo, "image/jpeg")},
            timeout=30,
        )

    _publish(broker_url, "gpu", 3)  # nobody consumes this vhost: a real backlog of 3 > 2
    with live_app(settings, tmp_path) as url:
        response = post()
        assert response.status_code == 503
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["Retry-After"]) > 0
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200  # busy, not broken

        _purge(broker_url, "gpu")
        time.sleep(1.2)  # the depth is cached for a second
        response = post()
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert requests.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json()["state"] == "queued"
        assert requests.delete(f"{url}/api/v1/jobs/{job_id}", timeout=10).status_code == 204

        # The queue still holds that job's message (depth 1 <= 2): a batch of 3 would overshoot.
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            for n in range(3):
                z.writestr(f"p{n}.jpg", photo)
        time.sleep(1.2)
        response = requests.post(
            f"{url}/api/v1/batches",
            data={"spec": "us-passport"},
            files={"archive": ("b.zip", archive.getvalue(), "application/zip")},
            timeout=30,
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "overloaded"


def test_503_while_the_cpu_queue_is_too_deep(
    base_settings: Settings, vhosts: Vhosts, tmp_path: Path
) -> None:
    """Re-compositions join only the CPU queue: a CPU backlog refuses them (and new photos),
    whatever the GPU queue holds."""
    broker_url = vhosts.url(vhosts.backlog)
    settings = replace(
        base_settings, broker_url=broker_url, gpu_queue_max_depth=1000, cpu_queue_max_depth=2
    )
    photo = unique_portrait()
    absent = "A" * 22  # a well-formed job id that does not exist

    def recompose() -> requests.Response:
        return requests.post(
            f"{url}/api/v1/jobs/{absent}/recompose", json={"background": "blue"}, timeout=30
        )

    _purge_if_exists(broker_url, "cpu")
    _publish(broker_url, "cpu", 3)  # nobody consumes this vhost: a real backlog of 3 > 2
    try:
        with live_app(settings, tmp_path) as url:
            response = recompose()
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "overloaded"
            assert int(response.headers["Retry-After"]) > 0
            response = requests.post(
                f"{url}/api/v1/jobs",
                data={"spec": "us-passport"},
                files={"photo": ("me.jpg", photo, "image/jpeg")},
                timeout=30,
            )
            assert response.status_code == 503, response.text

            _purge(broker_url, "cpu")
            time.sleep(1.2)  # the depth is cached for a second
            response = recompose()  # admitted now: answered by the job lookup
            assert response.status_code == 404, response.text
            assert response.json()["error"] == "unknown_job"
    finally:
        _purge_if_exists(broker_url, "cpu")


def _purge_if_exists(broker_url: str, queue: str) -> None:
    from web.admission import queue_depths

    if queue_depths(broker_url, (queue,))[queue]:
        _purge(broker_url, queue)
