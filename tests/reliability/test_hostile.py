"""Hostile and careless requests (issue 17) answered in-process through the Flask test client:
each gets a 4xx (or 507) with a reason, never a 500, and never a retry-for-ever 503.

The app runs embedded (local storage, file job store, eager jobs) except where the case needs
the broker's admission check; the bodies sent are refused before any model would run.
"""

from __future__ import annotations

import io
import random
import string
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from idphoto.samples import sample_path
from web import create_app


def _settings(storage_dir: Path, **overrides: Any) -> Settings:
    storage_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "storage": "local",
        "storage_dir": storage_dir,
        "secret_key": "hostile-test-secret",
        "public_url": "http://localhost",
        "rate_limit": "",
        "rate_limit_key_prefix": "hostile-" + uuid.uuid4().hex[:8],
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    return create_app(_settings(tmp_path / "storage")).test_client()


def _post_job(client: FlaskClient, photo: bytes, **fields: str) -> Any:
    data: dict[str, Any] = {"photo": (io.BytesIO(photo), "me.jpg"), "spec": "us-passport"}
    data.update(fields)
    return client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")


def _post_batch(client: FlaskClient, archive: bytes, **fields: str) -> Any:
    data: dict[str, Any] = {"archive": (io.BytesIO(archive), "photos.zip"), "spec": "us-passport"}
    data.update(fields)
    return client.post("/api/v1/batches", data=data, content_type="multipart/form-data")


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def _photo() -> bytes:
    return sample_path("grace_hopper").read_bytes()


# --- options, spec -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    ["[" * 100_000 + "]" * 100_000, '{"sheet": ' + "[" * 100_000 + "]" * 100_000 + "}"],
    ids=["arrays", "in-an-object"],
)
def test_options_nested_100000_deep_is_422(client: FlaskClient, options: str) -> None:
    for response in (
        _post_job(client, _photo(), options=options),
        _post_batch(client, _zip({"a.jpg": _photo()}), options=options),
    ):
        assert response.status_code == 422, response.get_data(as_text=True)[:300]
        body = response.get_json()
        assert body["error"] == "bad_parameter" and "options" in body["message"]


def test_spec_with_a_5000_digit_number_is_422(client: FlaskClient) -> None:
    response = _post_job(client, _photo(), spec="custom:" + "9" * 5000 + "x45mm")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "bad_parameter" and len(body["message"]) < 200


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs filled to the last byte (the tests run as root, as CI does)."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "storage").mkdir()
        with open(mount / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield mount / "storage"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_507_with_a_reason_and_not_ready(full_disk: Path) -> None:
    client = create_app(_settings(full_disk)).test_client()
    response = _post_job(client, _photo())
    assert response.status_code == 507, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert body["error"] == "insufficient_storage" and "space" in body["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failed"] == ["storage"]


# --- metrics ----------------------------------------------------------------------------------


def _series(client: FlaskClient) -> list[str]:
    text = client.get("/metrics").get_data(as_text=True)
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_random_http_methods_do_not_grow_the_metric_series(client: FlaskClient) -> None:
    client.get("/healthz")
    before = len(_series(client))
    rng = random.Random(17)
    for _ in range(200):
        method = "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        path = rng.choice(["/healthz", "/api/v1/jobs", "/nope", "/"])
        client.open(path, method=method)
    series = _series(client)
    methods = {
        line.split('method="', 1)[1].split('"', 1)[0] for line in series if 'method="' in line
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    # Four endpoints x a few statuses x one "other" method, with their latency buckets.
    assert len(series) - before < 120, len(series) - before


def test_a_600_kb_form_field_is_called_a_field_not_a_25_mb_file(client: FlaskClient) -> None:
    response = _post_job(client, _photo(), options="x" * 600_000)
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "field_too_large" and "field" in body["message"], body
    assert "25 MB" not in body["message"]


def test_a_redis_outage_is_not_called_a_storage_outage(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "storage", job_store="redis", redis_url="redis://127.0.0.1:1/0")
    response = create_app(settings).test_client().get("/api/v1/jobs/" + "a" * 22)
    assert response.status_code == 503 and response.headers["Retry-After"]
    body = response.get_json()
    assert body["error"] == "unavailable" and "Job records" in body["message"], body


def test_a_batch_costs_one_request_per_photo(redis_url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "storage", rate_limit="12/minute", redis_url=redis_url)
    client = create_app(settings).test_client()
    archive = _zip({f"p{i}.jpg": b"not a photo" for i in range(8)})
    first = _post_batch(client, archive)
    assert first.status_code == 202, first.get_data(as_text=True)[:300]
    second = _post_batch(client, archive)  # 16 photos in a minute: over the budget of 12
    assert second.status_code == 429, second.get_data(as_text=True)[:300]
    assert second.get_json()["error"] == "rate_limited" and second.headers["Retry-After"]
