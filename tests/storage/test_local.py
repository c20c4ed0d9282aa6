"""The local backend's own promises: signed links, atomic writes, its directory layout."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from config.settings import Settings
from storage import (
    InvalidKey,
    LocalBlobStore,
    S3BlobStore,
    StorageError,
    StorageUnavailable,
    content_disposition,
    guess_content_type,
    make_store,
    output_expiry_days,
    verify_local_signature,
)

SECRET = "test-secret-key"


def link_args(url: str) -> tuple[str, str, str | None, str]:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    key = unquote(parts.path.removeprefix("/files/"))
    return key, query["expires"], query.get("filename"), query["signature"]


def test_link_format_and_verification(local_store: LocalBlobStore) -> None:
    url = local_store.presign_get("jobs/1/photo.jpg", expires_s=60, filename="a b.jpg")
    assert url.startswith("http://testserver/files/jobs/1/photo.jpg?expires=")
    key, expires, filename, signature = link_args(url)
    assert (key, filename) == ("jobs/1/photo.jpg", "a b.jpg")
    assert verify_local_signature(SECRET, key, expires, filename, signature)
    now = int(expires)
    assert verify_local_signature(SECRET, key, expires, filename, signature, now=now)
    assert not verify_local_signature(SECRET, key, expires, filename, signature, now=now + 1)
    assert not verify_local_signature("other", key, expires, filename, signature)
    assert not verify_local_signature(SECRET, "jobs/2/photo.jpg", expires, filename, signature)
    assert not verify_local_signature(SECRET, key, str(now + 3600), filename, signature)
    assert not verify_local_signature(SECRET, key, expires, "other.jpg", signature)
    assert not verify_local_signature(SECRET, key, expires, None, signature)
    assert not verify_local_signature(SECRET, key, expires, filename, signature[:-1] + "x")
    assert not verify_local_signature(SECRET, key, expires, filename, "é" * 64)
    assert not verify_local_signature(SECRET, key, "soon", filename, signature)
    assert not verify_local_signature(SECRET, "../etc/passwd", expires, filename, signature)


def test_link_without_filename(local_store: LocalBlobStore) -> None:
    key, expires, filename, signature = link_args(local_store.presign_get("a/b"))
    assert filename is None
    assert verify_local_signature(SECRET, key, expires, None, signature)
    assert verify_local_signature(SECRET, key, expires, "", signature)


def test_default_expiry(local_store: LocalBlobStore) -> None:
    _, expires, _, _ = link_args(local_store.presign_get("a/b"))
    import time

    assert 895 <= int(expires) - time.time() <= 901


def test_content_disposition() -> None:
    assert content_disposition("photo.jpg") == 'attachment; filename="photo.jpg"'
    assert content_disposition('../../x/ph"o.jpg') == 'attachment; filename="ph_o.jpg"; ' + (
        "filename*=UTF-8''ph%22o.jpg"
    )
    assert content_disposition("Fotó\r\n.jpg") == (
        "attachment; filename=\"Foto.jpg\"; filename*=UTF-8''Fot%C3%B3.jpg"
    )
    with pytest.raises(ValueError):
        content_disposition("dir/")


def test_layout_and_content_type(local_store: LocalBlobStore) -> None:
    local_store.put("jobs/1/photo.jpg", b"x", content_type="image/jpeg")
    assert (local_store.root / "jobs" / "1" / "photo.jpg").read_bytes() == b"x"
    assert guess_content_type("jobs/1/photo.jpg") == "image/jpeg"
    assert guess_content_type("jobs/1/report.json") == "application/json"
    assert guess_content_type("inputs/abcdef") == "application/octet-stream"
    local_store.delete("jobs/1/photo.jpg")
    assert list(local_store.root.iterdir()) == []  # empty directories are pruned


def test_files_are_readable_by_others(local_store: LocalBlobStore) -> None:
    local_store.put("a/b", b"x")
    assert (local_store.path("a/b").stat().st_mode & 0o777) == 0o644


def test_temporary_files_are_hidden_and_reserved(local_store: LocalBlobStore) -> None:
    (local_store.root / "jobs").mkdir()
    (local_store.root / "jobs" / ".idphoto-tmp-abc123").write_bytes(b"partial")
    assert local_store.list("") == []
    with pytest.raises(InvalidKey):
        local_store.put("jobs/.idphoto-tmp-abc123", b"x")


def test_readers_never_see_a_partial_object(local_store: LocalBlobStore) -> None:
    big, small = b"A" * 4_000_000, b"B" * 1000
    local_store.put("k", small)
    stop = threading.Event()
    seen: set[bytes] = set()

    def read() -> None:
        while not stop.is_set():
            data = local_store.get("k")
            seen.add(data[:1] + str(len(data)).encode())

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(20):
        local_store.put("k", big)
        local_store.put("k", small)
    stop.set()
    reader.join()
    assert seen <= {b"A4000000", b"B1000"}


def test_put_and_delete_race_on_one_directory(local_store: LocalBlobStore) -> None:
    errors: list[BaseException] = []

    def churn(n: int) -> None:
        try:
            for i in range(200):
                local_store.put(f"jobs/x/{n}-{i}", b".")
                local_store.delete(f"jobs/x/{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert local_store.list("") == []


def test_object_and_prefix_of_the_same_name_conflict(local_store: LocalBlobStore) -> None:
    # A filesystem cannot hold both "a" and "a/b"; S3 can. Documented difference.
    local_store.put("a", b"x")
    with pytest.raises(StorageError):
        local_store.put("a/b", b"y")
    local_store.delete("a")
    local_store.put("a/b", b"y")
    with pytest.raises(StorageError):
        local_store.put("a", b"x")


def test_ping(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "missing", secret_key=SECRET, public_url="http://x")
    with pytest.raises(StorageUnavailable):
        store.ping()
    store.ensure_ready()
    store.ping()
    if os.geteuid() != 0:  # root can write anywhere
        store.root.chmod(0o500)
        with pytest.raises(StorageUnavailable):
            store.ping()
        store.root.chmod(0o700)


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    local = make_store(Settings(storage="local", storage_dir=tmp_path, presign_expiry_s=60))
    assert isinstance(local, LocalBlobStore)
    assert local.root == tmp_path
    assert local.default_expiry_s == 60
    s3 = make_store(
        Settings(
            storage="s3",
            s3_endpoint_url="http://rgw:7480",
            s3_public_endpoint_url="https://files.example.com",
            s3_bucket="photos",
            s3_access_key="AK",
            s3_secret_key="SK",
            intermediate_expiry_days=2,
        )
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.endpoint_url, s3.public_endpoint_url) == (
        "photos",
        "http://rgw:7480",
        "https://files.example.com",
    )
    assert s3.intermediate_expiry_days == 2
    assert s3.output_prefixes == ("jobs/", "batches/") and s3.output_expiry_days == 8  # 7 days
    assert [output_expiry_days(t) for t in (0, 1, 86400, 86401, 7 * 86400)] == [0, 2, 2, 3, 8]
    default_public = make_store(Settings(storage="s3", s3_endpoint_url="http://rgw:7480"))
    assert isinstance(default_public, S3BlobStore)
    assert default_public.public_endpoint_url == "http://rgw:7480"
    with pytest.raises(ValueError, match="IDPHOTO_STORAGE must be one of local, s3"):
        Settings(storage="ftp")  # refused where settings are made, before any store
