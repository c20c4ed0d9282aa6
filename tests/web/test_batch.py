"""Batches through the live API: a zip of mixed good and bad photos in, results and reasons out."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
import requests
from PIL import Image

from tests.web.conftest import Stack, unique_portrait

pytestmark = pytest.mark.integration


def _no_face_jpeg() -> bytes:
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    img = np.dstack([np.tile(ramp, (480, 1))] * 3)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def _post(stack: Stack, archive: bytes, spec: str = "icao-35x45") -> requests.Response:
    return requests.post(
        stack.api("/batches"),
        data={"spec": spec, "background": "light-grey"},
        files={"archive": ("photos.zip", archive, "application/zip")},
        timeout=60,
    )


def test_batch_of_mixed_photos_gives_results_for_good_and_reasons_for_bad(stack: Stack):
    archive = _zip(
        {
            "people/alice.jpg": unique_portrait(),
            "notes.jpg": b"this is text, not a photo",
            "landscape.jpg": _no_face_jpeg(),
            "__MACOSX/._alice.jpg": b"resource fork",
        }
    )
    response = _post(stack, archive)
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    deadline = time.monotonic() + 180
    while True:
        batch = requests.get(status_url, timeout=10).json()
        if batch["state"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert batch["state"] == "done", batch
    by_name = {i["name"]: i for i in batch["items"]}
    assert set(by_name) == {"alice.jpg", "notes.jpg", "landscape.jpg"}
    assert by_name["alice.jpg"]["state"] == "done"
    assert by_name["notes.jpg"]["error"] == "unsupported_image"
    assert by_name["landscape.jpg"]["error"] == "no_face"
    assert batch["counts"] == {"done": 1, "failed": 2}

    zipped = requests.get(batch["results_url"], timeout=60)
    assert zipped.status_code == 200
    assert zipped.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as z:
        names = set(z.namelist())
        assert names == {
            "alice-icao-35x45.jpg",
            "alice-report.json",
            "notes.error.json",
            "landscape.error.json",
            "summary.json",
        }
        photo = Image.open(io.BytesIO(z.read("alice-icao-35x45.jpg")))
        assert photo.size == (413, 531)
        report = json.loads(z.read("alice-report.json"))
        assert report["spec"] == "icao-35x45"
        assert json.loads(z.read("landscape.error.json"))["error"] == "no_face"


def test_batch_errors(stack: Stack):
    assert _post(stack, b"not a zip at all").status_code == 415
    bad_spec = _post(stack, _zip({"a.jpg": b"x"}), spec="no-such-spec")
    assert bad_spec.status_code == 422 and bad_spec.json()["error"] == "unknown_spec"
    empty = _post(stack, _zip({}))
    assert empty.status_code in (415, 422)
    missing = requests.get(stack.api("/batches/nope"), timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_batch"
