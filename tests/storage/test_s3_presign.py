"""Presigned links and bucket set-up against a real S3 server (Ceph radosgw).

moto and s3rver accept tampered or expired signatures (see ../shared/s3-local.md); these checks
only mean something against a server that enforces SigV4.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from storage import ObjectNotFound, S3BlobStore, StorageUnavailable
from tests.conftest import S3Server, free_ports

pytestmark = pytest.mark.integration

PHOTO = bytes(range(256)) * 1000


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def photo_key(s3_store: S3BlobStore) -> str:
    s3_store.put("jobs/j1/photo.jpg", PHOTO, content_type="image/jpeg")
    return "jobs/j1/photo.jpg"


def test_link_names_the_public_host_and_serves_the_bytes_as_attachment(
    s3_store: S3BlobStore, s3_server: S3Server, photo_key: str
) -> None:
    url = s3_store.presign_get(photo_key, filename="passport photo.jpg")
    assert url.startswith(f"{s3_server.public_endpoint}/{s3_store.bucket}/jobs/j1/photo.jpg?")
    status, headers, body = http_get(url)
    assert status == 200
    assert body == PHOTO
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"] == 'attachment; filename="passport photo.jpg"'


def test_non_ascii_filename_is_carried_in_filename_star(
    s3_store: S3BlobStore, photo_key: str
) -> None:
    status, headers, _ = http_get(s3_store.presign_get(photo_key, filename="证件照.jpg"))
    assert status == 200
    assert "filename*=UTF-8''%E8%AF%81%E4%BB%B6%E7%85%A7.jpg" in headers["Content-Disposition"]


def test_default_expiry_is_fifteen_minutes(s3_store: S3BlobStore, photo_key: str) -> None:
    query = parse_qs(urlsplit(s3_store.presign_get(photo_key)).query)
    assert query["X-Amz-Expires"] == ["900"]


def test_link_signed_for_another_host_is_refused(
    s3_store: S3BlobStore, s3_server: S3Server, photo_key: str
) -> None:
    url = s3_store.presign_get(photo_key)
    moved = url.replace(s3_server.public_endpoint, s3_server.endpoint, 1)
    assert moved != url
    assert http_get(moved)[0] == 403  # same server, but the signed Host header differs


def test_tampered_signature_is_refused(s3_store: S3BlobStore, photo_key: str) -> None:
    url = s3_store.presign_get(photo_key)
    last = url[-1]
    assert http_get(url[:-1] + ("0" if last != "0" else "1"))[0] == 403


def test_link_cannot_be_moved_to_another_key(s3_store: S3BlobStore, photo_key: str) -> None:
    s3_store.put("jobs/j2/photo.jpg", b"someone else's photo")
    url = s3_store.presign_get(photo_key).replace("/jobs/j1/", "/jobs/j2/")
    assert http_get(url)[0] == 403


def test_expired_link_is_refused(s3_store: S3BlobStore, photo_key: str) -> None:
    url = s3_store.presign_get(photo_key, expires_s=1)
    time.sleep(2.5)
    assert http_get(url)[0] == 403


def test_unsigned_get_is_refused(
    s3_store: S3BlobStore, s3_server: S3Server, photo_key: str
) -> None:
    assert http_get(f"{s3_server.endpoint}/{s3_store.bucket}/{photo_key}")[0] == 403
    assert http_get(f"{s3_server.endpoint}/{s3_store.bucket}?list-type=2")[0] == 403


def test_expiry_above_seven_days_is_a_value_error(s3_store: S3BlobStore) -> None:
    s3_store.presign_get("jobs/x/y.jpg", expires_s=7 * 24 * 3600)
    with pytest.raises(ValueError):
        s3_store.presign_get("jobs/x/y.jpg", expires_s=7 * 24 * 3600 + 1)


def test_missing_key(s3_store: S3BlobStore) -> None:
    with pytest.raises(ObjectNotFound):
        s3_store.get("inputs/nothing")
    assert not s3_store.exists("inputs/nothing")
    assert http_get(s3_store.presign_get("inputs/nothing"))[0] == 404


def test_closed_port_is_storage_unavailable_quickly() -> None:
    (port,) = free_ports(1)
    store = S3BlobStore(
        endpoint_url=f"http://127.0.0.1:{port}",
        bucket="closed",
        access_key="k",
        secret_key="s",
        connect_timeout=1,
        read_timeout=1,
        max_attempts=2,
    )
    began = time.monotonic()
    for call in (
        lambda: store.get("a"),
        lambda: store.put("a", b"x"),
        lambda: store.exists("a"),
        lambda: store.list(""),
        lambda: store.delete_prefix("a/"),
        store.ensure_ready,
        store.ping,
    ):
        with pytest.raises(StorageUnavailable):
            call()
    assert time.monotonic() - began < 10
    store.presign_get("a")  # signing needs no server


def test_ping(s3_store: S3BlobStore, s3_server: S3Server) -> None:
    s3_store.ping()
    missing = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket="no-such-bucket-here",
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    with pytest.raises(StorageUnavailable):
        missing.ping()
    wrong = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket=s3_store.bucket,
        access_key=s3_server.access_key,
        secret_key="wrong",
    )
    with pytest.raises(StorageUnavailable):
        wrong.ping()


def test_ensure_ready_is_idempotent_and_sets_lifecycle_rules(
    s3_store: S3BlobStore, s3_server: S3Server
) -> None:
    s3_store.put("inputs/abc", b"upload")
    s3_store.ensure_ready()
    s3_store.ensure_ready()
    assert s3_store.get("inputs/abc") == b"upload"  # set-up again touches no object
    client: Any = s3_server.client()
    rules = client.get_bucket_lifecycle_configuration(Bucket=s3_store.bucket)["Rules"]
    by_prefix = {rule["Filter"]["Prefix"]: rule for rule in rules}
    assert set(by_prefix) == {"inputs/", "masks/", "mattes/"}
    for rule in rules:
        assert rule["Status"] == "Enabled"
        assert rule["Expiration"] == {"Days": 1}
    block = client.get_public_access_block(Bucket=s3_store.bucket)
    assert block["PublicAccessBlockConfiguration"]["IgnorePublicAcls"] is True
    assert block["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def test_outputs_get_their_own_expiry_rule(s3_server: S3Server) -> None:
    """The S3 server takes the outputs' rule beside the intermediates' (what ``make_store``
    sets from the job records' lifetime) and keeps each prefix's own number of days."""
    store = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket="expiry-bucket",
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        intermediate_expiry_days=1,
        output_expiry_days=8,
    )
    try:
        store.ensure_ready()
        rules = s3_server.client().get_bucket_lifecycle_configuration(Bucket="expiry-bucket")
        days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules["Rules"]}
        assert days == {"inputs/": 1, "masks/": 1, "mattes/": 1, "jobs/": 8, "batches/": 8}
    finally:
        s3_server.client().delete_bucket(Bucket="expiry-bucket")


def test_storage_init_command_sets_up_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    """``idphoto storage init``, as compose runs it before anything else: a new bucket,
    private, with every rule, from the settings' environment; run again, it changes nothing."""
    bucket = f"init-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "IDPHOTO_STORAGE": "s3",
        "IDPHOTO_S3_ENDPOINT_URL": s3_server.endpoint,
        "IDPHOTO_S3_BUCKET": bucket,
        "IDPHOTO_S3_REGION": s3_server.region,
        "IDPHOTO_S3_ACCESS_KEY": s3_server.access_key,
        "IDPHOTO_S3_SECRET_KEY": s3_server.secret_key,
    }
    client: Any = s3_server.client()

    def init(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "idphoto.cli", "storage", "init"]
        return subprocess.run(
            argv, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    try:
        for _ in range(2):
            done = init(env)
            assert done.returncode == 0, done.stderr
            assert f"bucket='{bucket}'" in done.stdout and "expire after 1 day" in done.stdout
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        prefixes = {r["Filter"]["Prefix"] for r in rules}
        assert prefixes == {"inputs/", "masks/", "mattes/", "jobs/", "batches/"}
        block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block["IgnorePublicAcls"] and block["RestrictPublicBuckets"]
        # Unreachable storage: a clear error and a failing exit, for compose to stop on.
        failed = init({**env, "IDPHOTO_S3_ENDPOINT_URL": "http://127.0.0.1:9"})
        assert failed.returncode == 1 and "error:" in failed.stderr, failed
    finally:
        client.delete_bucket(Bucket=bucket)


def test_concurrent_ensure_ready_creates_one_bucket(s3_server: S3Server) -> None:
    stores = [
        S3BlobStore(
            endpoint_url=s3_server.endpoint,
            bucket="race-bucket",
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            intermediate_expiry_days=3,
        )
        for _ in range(4)
    ]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: s.ensure_ready(), stores))
        stores[0].put("inputs/x", b"x")
        assert stores[3].get("inputs/x") == b"x"
        rules = s3_server.client().get_bucket_lifecycle_configuration(Bucket="race-bucket")
        assert {r["Expiration"]["Days"] for r in rules["Rules"]} == {3}
    finally:
        stores[0].delete("inputs/x")
        s3_server.client().delete_bucket(Bucket="race-bucket")


def test_rejected_lifecycle_is_a_warning(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from botocore.exceptions import ClientError

    def reject(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "NotImplemented", "Message": "no"},
                "ResponseMetadata": {"HTTPStatusCode": 501},
            },
            "PutBucketLifecycleConfiguration",
        )

    monkeypatch.setattr(s3_store._client, "put_bucket_lifecycle_configuration", reject)
    with caplog.at_level(logging.WARNING, logger="storage.s3"):
        s3_store.ensure_ready()
    assert "will not expire" in caplog.text
