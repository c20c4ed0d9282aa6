"""Security properties of the running service (runs after the fault tests: the log check then
reads every log this session wrote, outages and kills included).

Already covered elsewhere, not repeated here:

- presigned links expire, are refused when tampered with, moved to another key or signed for
  another host, and the bucket refuses an unsigned GET and list: tests/storage/test_s3_presign.py
  (against radosgw, which validates SigV4); an unsigned GET of a job's output:
  tests/web/test_live.py::test_submit_poll_and_download;
- the bucket's lifecycle rules and public-access block as ``ensure_ready`` sets them:
  test_s3_presign.py::test_ensure_ready_is_idempotent_and_sets_lifecycle_rules, and in
  docker-compose: tests/test_deploy.py::test_bucket_setup_is_private_with_lifecycle;
- Flower refuses requests without (or with wrong) credentials: tests/web/test_flower.py;
- CSRF rules (cookie without token, token in header or field, foreign Origin) and the cookie's
  flags: tests/web/test_app.py; CSP and security headers on GET responses: test_app.py and
  test_live.py::test_security_headers_live;
- the web log has no signature, secret key or ``?expires=`` query: test_live.py::
  test_logs_are_json_with_ids_and_no_secrets; metadata stripping by the encoder:
  tests/pipeline/test_encode.py.

Added here: job-id entropy on the ids the service really handed out; anonymous PUT/DELETE/list
refused on the service's own bucket and its lifecycle rule for inputs; DELETE through the API
removes every object of the job from a full bucket listing (outputs, and with the last job of a
photo its input, masks and matte); outputs of a photo carrying EXIF GPS, XMP and a comment
carry none of them (all of photo, sheet, cut-out and report, downloaded through the API's
links); CSRF over real HTTP against gunicorn; security headers on refusals and on 202; no secret
or presigned query string in the web log or any worker log of the session.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from pipeline.encode import strip_check
from storage import output_expiry_days
from tests.reliability import harness

pytestmark = pytest.mark.integration


def _job(cluster: Any, warm_photos: dict[str, bytes]) -> str:
    """A new done job on a warm (GPS-tagged) photo, through the API."""
    spec, background = harness.Requests().next()
    response = cluster.post(warm_photos["grace_hopper"], spec=spec, background=background)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    record = cluster.wait([job_id])[job_id]
    assert record and record["state"] == "done", record
    return job_id


def test_job_ids_are_unguessable(cluster: Any, warm_photos: dict[str, bytes]) -> None:
    maker = harness.Requests()
    photos = list(warm_photos.values())
    while len(cluster.created) < 40:  # when run on its own
        spec, background = maker.next()
        cluster.submit(photos[len(cluster.created) % 2], spec, background)
    ids = list(dict.fromkeys(cluster.created))
    assert len(ids) == len(cluster.created)  # never the same id twice
    raw = []
    for job_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", job_id), job_id
        raw.append(base64.urlsafe_b64decode(job_id + "=="))
    assert all(len(r) == 16 for r in raw)  # 128 bits each
    bits = "".join(f"{byte:08b}" for r in raw for byte in r)
    ones = bits.count("1") / len(bits)
    assert 0.45 < ones < 0.55, ones  # unbiased bits (n >= 40 x 128: 4.5 sigma either side)
    # No structure: no two ids share a 4-character prefix or suffix (time- or counter-based ids
    # would), and consecutive ids differ in about half their bits.
    for a, b in itertools.combinations(ids, 2):
        assert a[:4] != b[:4] and a[-4:] != b[-4:], (a, b)
    flips = [
        sum(bin(x ^ y).count("1") for x, y in zip(r1, r2, strict=True))
        for r1, r2 in zip(raw, raw[1:], strict=False)
    ]
    assert 40 < sum(flips) / len(flips) < 88, flips
    # A near miss is just an unknown job.
    near = ids[-1][:-1] + ("A" if ids[-1][-1] != "A" else "B")
    response = requests.get(cluster.api(f"/jobs/{near}"), timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "unknown_job"


def test_service_bucket_refuses_anonymous_access_and_expires_inputs(
    cluster: Any, warm_photos: dict[str, bytes]
) -> None:
    bucket, endpoint = cluster.settings.s3_bucket, cluster.s3.endpoint
    key = next(k for k in cluster.listing("inputs/"))
    for method, url, data in (
        ("GET", f"{endpoint}/{bucket}/{key}", None),
        ("GET", f"{endpoint}/{bucket}?list-type=2", None),
        ("GET", f"{endpoint}/{bucket}?acl", None),
        ("PUT", f"{endpoint}/{bucket}/jobs/planted/photo.jpg", b"not ours"),
        ("DELETE", f"{endpoint}/{bucket}/{key}", None),
    ):
        response = requests.request(method, url, data=data, timeout=10)
        assert response.status_code == 403, (method, url, response.status_code)
    assert key in cluster.listing("inputs/")  # the anonymous DELETE changed nothing
    assert not cluster.listing("jobs/planted/")
    rules = cluster.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    days = {
        r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules if r["Status"] == "Enabled"
    }
    expiry = cluster.settings.intermediate_expiry_days
    outputs = output_expiry_days(cluster.settings.job_ttl_s)
    assert outputs * 86400 > cluster.settings.job_ttl_s
    assert days == {
        "inputs/": expiry,
        "masks/": expiry,
        "mattes/": expiry,
        "jobs/": outputs,
        "batches/": outputs,  # the batch manifests, kept no longer than their jobs
    }


def test_outputs_carry_no_metadata_of_the_upload(
    cluster: Any, warm_photos: dict[str, bytes]
) -> None:
    assert harness.SECRET_COMMENT.encode() in warm_photos["grace_hopper"]
    assert Image.open(io.BytesIO(warm_photos["grace_hopper"])).getexif().get_ifd(0x8825)
    job_id = _job(cluster, warm_photos)
    body = requests.get(cluster.api(f"/jobs/{job_id}"), timeout=10).json()
    assert set(body["outputs"]) == {"photo", "sheet", "cutout", "report"}
    for name, url in body["outputs"].items():
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, (name, response.status_code)
        data = response.content
        for marker in (
            harness.SECRET_COMMENT.encode(),
            b"ReliabilityCam",
            b"http://ns.adobe.com/xap/1.0/",
            b"adobe:ns:meta",
            b"Exif\0\0",
        ):
            assert marker not in data, (name, marker)
        if name == "report":
            continue
        flags = strip_check(data)
        assert not any(flags[k] for k in ("exif", "gps", "xmp", "iptc", "comments")), (name, flags)
        img = Image.open(io.BytesIO(data))
        assert not img.getexif() and "xmp" not in img.info and "comment" not in img.info, name
        if img.format == "PNG":
            assert not {b"eXIf", b"iTXt", b"tEXt", b"zTXt"} & set(_png_chunks(data)), name


def _png_chunks(data: bytes) -> list[bytes]:
    kinds, i = [], 8
    while i + 8 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kinds.append(data[i + 4 : i + 8])
        i += 12 + length
    return kinds


def test_delete_through_the_api_removes_every_object(cluster: Any) -> None:
    photo = harness.tagged_portrait("astronaut", f"delete-{cluster.tag}")
    sha = hashlib.sha256(photo).hexdigest()
    response = cluster.post(photo, spec="us-passport", filename="me.jpg")
    assert response.status_code == 202, response.text
    first = response.json()["job_id"]
    assert cluster.wait([first])[first]["state"] == "done"
    response = requests.post(
        cluster.api(f"/jobs/{first}/recompose"), json={"background": "#336699"}, timeout=30
    )
    assert response.status_code == 202, response.text
    second = response.json()["job_id"]
    cluster.created.append(second)
    assert cluster.wait([second])[second]["state"] == "done"
    links = requests.get(cluster.api(f"/jobs/{second}"), timeout=10).json()["outputs"]
    mine = [k for k in cluster.listing() if sha in k or first in k or second in k]
    assert {k.split("/")[0] for k in mine} == {"inputs", "masks", "mattes", "jobs"}, mine

    assert requests.delete(cluster.api(f"/jobs/{second}"), timeout=10).status_code == 204
    left = cluster.listing()
    assert not [k for k in left if second in k]
    assert [k for k in left if sha in k], "the first job still needs the photo and matte"
    assert requests.get(links["photo"], timeout=10).status_code == 404

    assert requests.delete(cluster.api(f"/jobs/{first}"), timeout=10).status_code == 204
    assert not [k for k in cluster.listing() if sha in k or first in k or second in k]
    for job_id in (first, second):
        response = requests.get(cluster.api(f"/jobs/{job_id}"), timeout=10)
        assert response.status_code == 404


def test_csrf_over_real_http(cluster: Any) -> None:
    session = requests.Session()
    page = session.get(cluster.url + "/", timeout=10)
    cookie = page.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    form = {"spec": "us-passport"}
    refused = session.post(cluster.api("/jobs"), data=form, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    wrong = session.post(cluster.api("/jobs"), data={**form, "csrf_token": "x" * 43}, timeout=10)
    assert wrong.status_code == 403
    # With the page's token the request gets past CSRF (and fails validation: no photo).
    passed = session.post(cluster.api("/jobs"), data={**form, "csrf_token": token}, timeout=10)
    assert passed.status_code == 422 and passed.json()["error"] == "missing_photo"
    foreign = requests.post(
        cluster.api("/jobs"), data=form, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert foreign.status_code == 403 and foreign.json()["error"] == "csrf_failed"


def test_security_headers_on_refusals_and_acceptance(
    cluster: Any, warm_photos: dict[str, bytes]
) -> None:
    spec, background = harness.Requests().next()
    answers = [
        cluster.post(warm_photos["astronaut"], spec=spec, background=background),  # 202
        cluster.post(b"plain text", filename="x.jpg"),  # 415
        cluster.post(warm_photos["astronaut"], spec="no-such-spec"),  # 422
        requests.get(cluster.api("/jobs/" + "A" * 22), timeout=10),  # 404
        requests.put(cluster.api("/jobs"), timeout=10),  # 405
        requests.post(cluster.api("/jobs"), headers={"Origin": "https://evil.example"}, timeout=10),
    ]
    assert [r.status_code for r in answers] == [202, 415, 422, 404, 405, 403]
    for response in answers:
        headers = response.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"], response.status_code
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Type"].startswith("application/json")


def test_no_secret_or_signed_query_in_any_log(cluster: Any, warm_photos: dict[str, bytes]) -> None:
    job_id = _job(cluster, warm_photos)
    body = requests.get(cluster.api(f"/jobs/{job_id}"), timeout=10).json()
    assert "X-Amz-Signature=" in body["outputs"]["photo"]  # links were handed out...
    requests.get(body["outputs"]["photo"], timeout=10)
    worker_logs = sorted(Path(cluster.gpu.current.log).parent.glob("*.log"))
    logs = {"web": cluster.web_log.read_text(errors="replace")}
    logs.update({p.name: p.read_text(errors="replace") for p in worker_logs})
    assert len(logs) >= 4 and all(logs.values())
    settings = cluster.settings
    secrets = {
        "S3 secret key": settings.s3_secret_key,
        "Flask secret key": settings.secret_key,
        "Flower password": settings.flower_password,
        "broker password in a URL": "guest:guest@",
        "presigned signature": "X-Amz-Signature",
        "presigned credential": "X-Amz-Credential",
        "local link signature": "signature=",
    }
    for name, text in logs.items():
        for what, secret in secrets.items():
            assert secret and secret not in text, f"{what} in the log of {name}"
    print(f"\n{len(logs)} logs checked ({sum(len(t) for t in logs.values()) // 1024} KiB)")
