"""Hostile batch zips (issue 17) through the Flask test client: too many members, damaged
members, path tricks in member names, zip bombs. Each gets a 4xx with a reason, a damaged
member fails alone, and memory stays bounded while a bomb is refused.
"""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.reliability.test_hostile import _photo, _post_batch, _settings, _zip, client
from web import create_app

__all__ = ["client"]  # the fixture, shared with test_hostile


# --- batches ----------------------------------------------------------------------------------


def test_batch_of_250_is_422_not_a_503_to_retry(rabbitmq_vhost: Any, tmp_path: Path) -> None:
    # With a broker, the admission check counted the 250 incoming jobs against the GPU queue's
    # depth and answered 503 overloaded with Retry-After: clients retried for ever.
    settings = _settings(tmp_path / "storage", broker_url=rabbitmq_vhost(), job_store="file")
    client = create_app(settings).test_client()
    archive = _zip({f"p{i}.jpg": b"x" for i in range(250)})
    response = _post_batch(client, archive)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "Retry-After" not in response.headers
    body = response.get_json()
    assert body["error"] == "bad_parameter" and "at most 50 per batch" in body["message"]


def _member_offsets(data: bytes) -> list[tuple[int, int]]:
    """(local header offset, central directory entry offset) of each member, in order."""
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    central, start = [], 0
    while (found := data.find(b"PK\x01\x02", start)) != -1:
        central.append(found)
        start = found + 4
    return [(info.header_offset, c) for info, c in zip(infos, central, strict=True)]


def _patch(data: bytes, index: int, *, local: int, central: int, value: bytes) -> bytes:
    out = bytearray(data)
    lh, cd = _member_offsets(data)[index]
    out[lh + local : lh + local + len(value)] = value
    out[cd + central : cd + central + len(value)] = value
    return bytes(out)


def _damaged_archive() -> bytes:
    photo = _photo()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("crc.jpg", "inflate.jpg", "locked.jpg", "d64.jpg"):
            method = zipfile.ZIP_DEFLATED if name == "inflate.jpg" else zipfile.ZIP_STORED
            z.writestr(name, photo, compress_type=method)
    data = buf.getvalue()
    # bad CRC: the stored CRC of member 0 (local header +14, central entry +16)
    data = _patch(data, 0, local=14, central=16, value=b"\x00\x00\x00\x00")
    # encrypted flag on member 2 (general purpose bit 0: local +6, central +8)
    data = _patch(data, 2, local=6, central=8, value=struct.pack("<H", 1))
    # deflate64 (method 9) on member 3 (local +8, central +10)
    data = _patch(data, 3, local=8, central=10, value=struct.pack("<H", 9))
    # corrupt deflate: member 1's compressed bytes overwritten in the middle
    lh, _ = _member_offsets(data)[1]
    body_at = lh + 30 + len("inflate.jpg")
    out = bytearray(data)
    out[body_at + 100 : body_at + 400] = b"\xff" * 300
    return bytes(out)


def test_batch_members_that_cannot_be_unpacked_fail_alone_with_a_reason(
    client: FlaskClient,
) -> None:
    response = _post_batch(client, _damaged_archive())
    assert response.status_code == 202, response.get_data(as_text=True)[:500]
    batch = client.get(f"/api/v1/batches/{response.get_json()['batch_id']}").get_json()
    items = {item["name"]: item for item in batch["items"]}
    assert set(items) == {"crc.jpg", "inflate.jpg", "locked.jpg", "d64.jpg"}
    for item in items.values():
        assert item["state"] == "failed" and item["error"] == "unsupported_image", item
    assert "damaged" in items["crc.jpg"]["message"]
    assert "damaged" in items["inflate.jpg"]["message"]
    assert "encrypted" in items["locked.jpg"]["message"]
    assert "method" in items["d64.jpg"]["message"]


def test_batch_member_names_are_safe_on_every_os(client: FlaskClient) -> None:
    not_a_photo = b"plain text, not a photo\n"
    archive = _zip(
        {
            "a\\..\\..\\Users\\Public\\evil-us-passport.jpg": not_a_photo,
            "..\\..\\x.jpg": not_a_photo,
            "C:\\Windows\\x.jpg": not_a_photo,
            "../../up.jpg": not_a_photo,
            "__MACOSX/._up.jpg": not_a_photo,
            ".DS_Store": not_a_photo,
        }
    )
    response = _post_batch(client, archive)
    assert response.status_code == 202, response.get_data(as_text=True)[:500]
    batch_id = response.get_json()["batch_id"]
    batch = client.get(f"/api/v1/batches/{batch_id}").get_json()
    names = sorted(item["name"] for item in batch["items"])
    assert names == ["evil-us-passport.jpg", "up.jpg", "x-2.jpg", "x.jpg"]
    skipped = {row["name"]: row["reason"] for row in batch["skipped"]}
    assert set(skipped) == {"_up.jpg", "DS_Store"} and all(skipped.values())
    results = client.get(f"/api/v1/batches/{batch_id}/results.zip")
    with zipfile.ZipFile(io.BytesIO(results.get_data())) as z:
        arcnames = z.namelist()
    assert arcnames, arcnames
    for name in arcnames:
        assert "\\" not in name and "/" not in name and ".." not in name and ":" not in name
    assert "evil-us-passport.error.json" in arcnames and "x-2.error.json" in arcnames


def test_zip_bomb_is_refused_in_bounded_memory(client: FlaskClient) -> None:
    # 50 members of a PNG signature and 5 MB of zeros: about 250 KB zipped, 262 MB unpacked.
    member = b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024)
    archive = _zip({f"p{i}.png": member for i in range(50)}, zipfile.ZIP_DEFLATED)
    del member
    assert len(archive) < 400_000
    tracemalloc.start()
    try:
        response = _post_batch(client, archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code in (413, 422), response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] in ("bad_parameter", "archive_too_large") and body["message"]
    assert peak < 40 * 1024 * 1024, f"peak traced memory {peak / 1e6:.0f} MB"


def test_batch_unpacking_to_more_than_ten_uploads_is_413(tmp_path: Path) -> None:
    # Each member compresses only ~50x (under the ratio cap), but 50 of them unpack to 45 MB,
    # 45 uploads' worth, from an archive under the 1 MB upload limit.
    settings = _settings(tmp_path / "storage", max_upload_bytes=1_000_000)
    client = create_app(settings).test_client()
    rng = random.Random(17)
    members = {
        f"p{i}.jpg": b"\xff\xd8\xff" + rng.randbytes(15_000) + b"\0" * 885_000 for i in range(50)
    }
    archive = _zip(members, zipfile.ZIP_DEFLATED)
    assert len(archive) < settings.max_upload_bytes
    response = _post_batch(client, archive)
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == "archive_too_large" and "at most" in body["message"]
