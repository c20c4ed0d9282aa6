"""Bad input through the live API: every upload of the generated corpus (tests/reliability/
corpus.py, >= 40 files: empty, text/HTML/SVG/PDF named .jpg, truncated and corrupt JPEG, PNG,
TIFF, WebP and HEIC, a PNG declaring 30000x30000, decompression bombs in pixels and in iCCP/zTXt
metadata, animations, 1x1 images, every EXIF orientation of a real portrait, CMYK, 16-bit,
greyscale, palette with transparency, a 4 MB ICC profile, and faces that are missing, doubled,
tiny, cut off, half a face, rotated and upside down) gets either an immediate 4xx with an error
code, or a job that ends ``failed`` with a reason and a message, or ``done``, each as the case
expects; never a 5xx; and no worker process dies or is replaced while the corpus runs.

tests/web/test_live.py already covers the single cases of a text file named .jpg (415), a photo
without a face and the 413 for an oversized body; this module is the corpus at scale.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.reliability import corpus

pytestmark = pytest.mark.integration

SPEC = "us-passport"
CORPUS_TIMEOUT_S = 300


def _pixels(url: str) -> np.ndarray:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.status_code
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)


def _poll(cluster: Any, ids: dict[str, str], timeout: float) -> dict[str, dict]:
    """Final API bodies of the jobs (GET /api/v1/jobs/{id}), every answer checked for 5xx."""
    bodies: dict[str, dict] = {}
    pending = dict(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, job_id in list(pending.items()):
            response = requests.get(cluster.api(f"/jobs/{job_id}"), timeout=30)
            assert response.status_code == 200, (name, response.status_code, response.text)
            body = response.json()
            bodies[name] = body
            if body["state"] in ("done", "failed"):
                del pending[name]
        time.sleep(0.5)
    return bodies


def test_corpus_gets_4xx_or_a_reason_never_5xx(cluster: Any) -> None:
    cluster.wait_healthy()
    before = {w.role: (w.parent, tuple(w.pool())) for w in cluster.workers}
    restarts = sum(len(w.restarts) for w in cluster.workers)
    cases = corpus.build(cluster.tag)
    assert len(cases) >= 40
    began = time.monotonic()
    outcomes: dict[str, str] = {}
    accepted: dict[str, str] = {}
    for case in cases:
        response = cluster.post(
            case.data,
            spec=SPEC,
            filename=case.filename,
            content_type=case.content_type,
        )
        assert response.status_code < 500, (case.name, response.status_code, response.text)
        body = response.json()
        if response.status_code == 202:
            accepted[case.name] = body["job_id"]
        else:
            assert 400 <= response.status_code < 500 and body["error"] and body["message"], body
            outcomes[case.name] = f"{response.status_code}:{body['error']}"
    bodies = _poll(cluster, accepted, CORPUS_TIMEOUT_S)
    for name, body in bodies.items():
        if body["state"] == "done":
            outcomes[name] = "done"
            assert body["outputs"].keys() >= {"photo", "cutout", "report"}, body
        elif body["state"] == "failed":
            assert body["reason"] and body["message"], body
            outcomes[name] = f"failed:{body['reason']}"
        else:
            outcomes[name] = f"stuck:{body['state']}"
    elapsed = time.monotonic() - began
    width = max(len(c.name) for c in cases)
    print(
        f"\n{len(cases)} inputs, {len(accepted)} accepted as jobs, all answered in {elapsed:.1f} s"
    )
    for case in cases:
        mark = "ok" if outcomes.get(case.name) in case.expect else "UNEXPECTED"
        print(f"  {case.name:<{width}}  {outcomes.get(case.name, '?'):<28} {mark}")
    wrong = {c.name: outcomes.get(c.name) for c in cases if outcomes.get(c.name) not in c.expect}
    assert not wrong, wrong

    # Every EXIF orientation made the same upright photo: each differs from orientation 1's by
    # re-encoding noise (measured: ~6.5 levels on average), a mirrored photo by ~32.
    photos = {n: _pixels(bodies[f"EXIF orientation {n}"]["outputs"]["photo"]) for n in range(1, 9)}
    diffs = {n: float(np.abs(photos[n] - photos[1]).mean()) for n in range(2, 9)}
    mirrored = float(np.abs(photos[1][:, ::-1] - photos[1]).mean())
    print(f"  orientation vs 1, mean |diff|: {diffs}; photo 1 vs its mirror image: {mirrored:.1f}")
    assert all(d < mirrored / 3 for d in diffs.values()), (diffs, mirrored)

    # No worker died: the same parents and pool children, no supervisor restart, all answer.
    after = {w.role: (w.parent, tuple(w.pool())) for w in cluster.workers}
    assert after == before
    assert sum(len(w.restarts) for w in cluster.workers) == restarts
    names = {n.split("@")[0] for n in cluster.ping()}
    assert {w.current.name.split("@")[0] for w in cluster.workers} <= names
    for worker in cluster.workers:
        log = worker.current.output()
        assert "WorkerLostError" not in log and "Traceback" not in log, log[-3000:]
