"""One contract, every backend: whatever the configuration picks must behave the same."""

from __future__ import annotations

import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from storage import (
    BlobStore,
    InvalidKey,
    LocalBlobStore,
    ObjectNotFound,
    S3BlobStore,
    StorageError,
    verify_local_signature,
)
from storage.keys import MAX_PRESIGN_EXPIRY_S


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_store")


def fetch_presigned(store: Any, url: str) -> bytes:
    """What the user's browser would receive for ``url``.

    S3: the server itself answers. Local: the web app (not part of this package) serves
    /files/<key> after `verify_local_signature`; this does what it does.
    """
    if isinstance(store, S3BlobStore):
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            return response.read()
    assert isinstance(store, LocalBlobStore)
    parts = urlsplit(url)
    assert url.startswith(store.public_url + "/files/")
    key = unquote(parts.path.removeprefix("/files/"))
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert verify_local_signature(
        "test-secret-key", key, query["expires"], query.get("filename"), query["signature"]
    )
    return store.path(key).read_bytes()


def test_is_a_blob_store(store: Any) -> None:
    assert isinstance(store, BlobStore)
    store.ping()
    store.ensure_ready()  # idempotent


def test_put_get_exists_delete(store: Any) -> None:
    key = "jobs/abc/photo.jpg"
    assert not store.exists(key)
    store.put(key, b"jpeg bytes", content_type="image/jpeg")
    assert store.exists(key)
    assert store.get(key) == b"jpeg bytes"
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.get(key)


def test_delete_is_idempotent(store: Any) -> None:
    store.delete("never/was/here")
    store.put("once", b"1")
    store.delete("once")
    store.delete("once")
    assert store.list("") == []


def test_missing_key_is_object_not_found_keyerror_and_filenotfound(store: Any) -> None:
    for catch in (ObjectNotFound, KeyError, FileNotFoundError, StorageError):
        with pytest.raises(catch) as info:
            store.get("inputs/missing")
        assert info.value.key == "inputs/missing"
    store.put("inputs/file", b"x")
    with pytest.raises(ObjectNotFound):  # a "directory" that is really an object
        store.get("inputs/file/below")
    with pytest.raises(ObjectNotFound):  # a "directory" holding objects
        store.get("inputs")
    assert not store.exists("inputs/file/below")
    assert not store.exists("inputs")


def test_overwrite_replaces_and_repeating_a_write_is_harmless(store: Any) -> None:
    store.put("masks/h/coarse", b"first")
    store.put("masks/h/coarse", b"second, longer")
    assert store.get("masks/h/coarse") == b"second, longer"
    store.put("masks/h/coarse", b"short")
    store.put("masks/h/coarse", b"short")  # a redelivered task writes again
    assert store.get("masks/h/coarse") == b"short"
    assert store.list("masks/") == ["masks/h/coarse"]


def test_a_conditional_write_stores_once(store: Any) -> None:
    """``if_absent``: the first write wins, a second attempt keeps it and says so."""
    key = "jobs/abc/photo.jpg"
    assert store.put(key, b"first", content_type="image/jpeg", if_absent=True) is True
    assert store.put(key, b"second attempt", content_type="image/jpeg", if_absent=True) is False
    assert store.get(key) == b"first"
    assert store.list("jobs/") == [key]
    assert store.put(key, b"replaced") is True  # an unconditional write still replaces
    assert store.get(key) == b"replaced"


def test_concurrent_conditional_writes_have_one_winner(store: Any) -> None:
    key = "jobs/race/photo.jpg"

    def attempt(i: int) -> bool:
        return bool(store.put(key, f"attempt {i}".encode(), if_absent=True))

    with ThreadPoolExecutor(max_workers=6) as pool:
        won = list(pool.map(attempt, range(6)))
    assert won.count(True) == 1, won
    assert store.get(key) == f"attempt {won.index(True)}".encode()
    assert store.list("jobs/race/") == [key]


def test_binary_bytes_round_trip(store: Any) -> None:
    data = bytes(range(256)) * 4 + b"\x00\r\n\x1a" + os.urandom(4096)
    store.put("bin/all-bytes", data)
    assert store.get("bin/all-bytes") == data
    store.put("bin/empty", b"")
    assert store.get("bin/empty") == b""
    assert store.exists("bin/empty")
    store.put("bin/view", memoryview(b"from a view"))
    assert store.get("bin/view") == b"from a view"


def test_large_object(store: Any) -> None:
    data = os.urandom(8 * 1024 * 1024)
    store.put("inputs/large", data)
    assert store.get("inputs/large") == data


def test_unicode_and_odd_characters_in_keys(store: Any) -> None:
    key = "jobs/ünï cødé/photo (1)+%20&=?#.jpg"
    store.put(key, b"odd")
    assert store.get(key) == b"odd"
    assert store.list("jobs/") == [key]
    assert fetch_presigned(store, store.presign_get(key, filename="Fotó.jpg")) == b"odd"


def test_list_matches_prefixes_as_strings(store: Any) -> None:
    keys = ["jobs/1/a", "jobs/1/b/c", "jobs/10/x", "inputs/abc", "jobs1"]
    for key in keys:
        store.put(key, key.encode())
    assert store.list("") == sorted(keys)
    assert store.list("jobs/1/") == ["jobs/1/a", "jobs/1/b/c"]
    assert store.list("jobs/1") == ["jobs/1/a", "jobs/1/b/c", "jobs/10/x"]
    assert store.list("jobs") == ["jobs/1/a", "jobs/1/b/c", "jobs/10/x", "jobs1"]
    assert store.list("inputs/ab") == ["inputs/abc"]
    assert store.list("nothing/") == []


def test_delete_prefix_removes_one_job_only(store: Any) -> None:
    for key in ["jobs/1/photo.jpg", "jobs/1/sheet.jpg", "jobs/1/sub/report.json", "jobs/10/a"]:
        store.put(key, b"x")
    assert store.delete_prefix("jobs/1/") == 3
    assert store.list("") == ["jobs/10/a"]
    assert store.delete_prefix("jobs/1/") == 0
    with pytest.raises(InvalidKey):
        store.delete_prefix("")  # never "everything"


def test_delete_prefix_more_than_one_batch(store: Any) -> None:
    keys = [f"jobs/many/{i:04d}" for i in range(1003)]  # S3 deletes in batches of 1000
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(k, b"."), keys))
    store.put("jobs/other/keep", b"k")
    assert store.delete_prefix("jobs/many/") == 1003
    assert store.list("") == ["jobs/other/keep"]


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../b",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "a\nb",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_invalid_keys_are_refused_everywhere(store: Any, key: str) -> None:
    for call in (
        lambda: store.get(key),
        lambda: store.put(key, b"x"),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.presign_get(key),
    ):
        with pytest.raises(InvalidKey):
            call()
    if key not in ("", "a/"):  # both are fine as prefixes
        with pytest.raises(InvalidKey):
            store.list(key)
        with pytest.raises(InvalidKey):
            store.delete_prefix(key)
    assert store.list("") == []


def test_invalid_key_is_a_value_error(store: Any) -> None:
    with pytest.raises(ValueError):
        store.get("../x")


def test_presigned_link_returns_the_exact_bytes(store: Any) -> None:
    data = os.urandom(100_000)
    store.put("jobs/j1/photo.jpg", data, content_type="image/jpeg")
    assert fetch_presigned(store, store.presign_get("jobs/j1/photo.jpg")) == data
    url = store.presign_get("jobs/j1/photo.jpg", expires_s=60, filename="passport.jpg")
    assert fetch_presigned(store, url) == data


def test_presign_expiry_limits(store: Any) -> None:
    store.put("k/v", b"v")
    store.presign_get("k/v", expires_s=MAX_PRESIGN_EXPIRY_S)
    for bad in (MAX_PRESIGN_EXPIRY_S + 1, 0, -5):
        with pytest.raises(ValueError):
            store.presign_get("k/v", expires_s=bad)
    with pytest.raises(ValueError):
        store.presign_get("k/v", filename="")


def test_put_refuses_text(store: Any) -> None:
    with pytest.raises(TypeError):
        store.put("k/text", "not bytes")  # type: ignore[arg-type]
