"""The API against the live topology (gunicorn, GPU and CPU workers, RabbitMQ, Redis, radosgw)."""

from __future__ import annotations

import functools
import io
import json
import re
import select
import socket
import time
from typing import Any

import pytest
import requests
from PIL import Image

from tests.web.conftest import Stack, unique_portrait

pytestmark = pytest.mark.integration

JOB_TIMEOUT_S = 120


@functools.cache
def _photo() -> bytes:
    """One portrait for this module, unique to this run (see `unique_portrait`)."""
    return unique_portrait()


def submit(
    stack: Stack,
    data: bytes | None = None,
    *,
    spec: str | None = "us-passport",
    background: str | None = "white",
    filename: str = "portrait.jpg",
    **fields: str,
) -> requests.Response:
    form = {k: v for k, v in {"spec": spec, "background": background, **fields}.items() if v}
    files = {"photo": (filename, _photo() if data is None else data, "image/jpeg")}
    return requests.post(stack.api("/jobs"), data=form, files=files, timeout=30)


def wait_finished(stack: Stack, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        response = requests.get(stack.api(f"/jobs/{job_id}"), timeout=10)
        assert response.status_code == 200, response.text
        job = response.json()
        if not seen or seen[-1] != job["state"]:
            seen.append(job["state"])
        if job["state"] in ("done", "failed"):
            job["_seen_states"] = seen
            return job
        time.sleep(0.25)
    pytest.fail(f"job {job_id} not finished in {timeout_s} s (states {seen})")


def accepted(response: requests.Response) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"job_id", "status_url"}
    assert body["status_url"].endswith(f"/api/v1/jobs/{body['job_id']}")
    assert response.headers["Location"] == body["status_url"]
    return body["job_id"]


@pytest.fixture(scope="module")
def finished_job(stack: Stack) -> dict[str, Any]:
    began = time.monotonic()
    job_id = accepted(submit(stack))
    job = wait_finished(stack, job_id)
    job["_elapsed_s"] = time.monotonic() - began
    print(f"\nfirst job: {job['_elapsed_s']:.1f} s, states {job['_seen_states']}")
    return job


def test_submit_poll_and_download(stack: Stack, finished_job: dict[str, Any]) -> None:
    job = finished_job
    assert job["state"] == "done", job
    assert job["spec"] == "us-passport" and job["background"] == "#ffffff"
    outputs = job["outputs"]
    assert {"photo", "cutout", "report"} <= set(outputs)
    assert "sheet" in outputs  # default options print a 4x6 sheet
    public = stack.settings.s3_public_endpoint_url
    assert public and all(url.startswith(public) for url in outputs.values())
    photo = requests.get(outputs["photo"], timeout=10)
    assert photo.status_code == 200
    assert Image.open(io.BytesIO(photo.content)).size == (600, 600)
    assert "us-passport-photo.jpg" in photo.headers.get("Content-Disposition", "")
    cutout = Image.open(io.BytesIO(requests.get(outputs["cutout"], timeout=10).content))
    assert cutout.mode in ("RGBA", "LA")
    # The bucket is private: the same object without the signature is refused.
    assert requests.get(outputs["photo"].split("?")[0], timeout=10).status_code == 403
    report = job["report"]
    assert report["spec"] == "us-passport" and report["checks"]
    assert {"check", "value", "limit", "pass"} <= set(report["checks"][0])
    assert set(job["stages"]) == {"segment", "matte_refine", "composite", "store"}
    for stage in job["stages"].values():
        assert stage["status"] == "ok"
        assert "hostname" not in stage and "worker" not in stage and "pid" not in stage
    assert "sha256" not in job and "input_key" not in job


def test_recompose_json_and_form(stack: Stack, finished_job: dict[str, Any]) -> None:
    parent = finished_job["job_id"]
    began = time.monotonic()
    response = requests.post(
        stack.api(f"/jobs/{parent}/recompose"), json={"background": "light-blue"}, timeout=30
    )
    job = wait_finished(stack, accepted(response))
    elapsed = time.monotonic() - began
    assert job["state"] == "done", job
    assert job["background"] == "#64c5ff" and job["spec"] == "us-passport"
    assert job["parent"] == parent and "matte_cached" not in job  # not the client's to know
    # Segment and refine were not run again: the record has only the last two stages, and the
    # answer shows the first two as done, with nothing more (as for someone else's photo).
    assert job["stages"]["segment"] == job["stages"]["matte_refine"] == {"status": "ok"}
    assert {k for k, v in job["stages"].items() if "started_at" in v} == {"composite", "store"}
    print(f"\nrecompose: {elapsed:.2f} s")
    response = requests.post(
        stack.api(f"/jobs/{parent}/recompose"), data={"spec": "schengen-visa"}, timeout=30
    )
    job = wait_finished(stack, accepted(response))
    assert job["state"] == "done" and job["spec"] == "schengen-visa"
    photo = requests.get(job["outputs"]["photo"], timeout=10).content
    assert Image.open(io.BytesIO(photo)).size == (413, 531)
    # Recomposing needs something to change.
    response = requests.post(stack.api(f"/jobs/{parent}/recompose"), json={}, timeout=10)
    assert response.status_code == 422 and response.json()["error"] == "bad_parameter"
    response = requests.post(
        stack.api(f"/jobs/{parent}/recompose"), json={"spec": "no-such-spec"}, timeout=10
    )
    assert response.status_code == 422 and response.json()["error"] == "unknown_spec"
    # As strict as the API document: no fields it does not list, no overlong values.
    for body in (
        {"background": "blue", "colour": "red"},
        {"background": "white" + " " * 70},
        {"spec": "us-passport" + " " * 300},
    ):
        response = requests.post(stack.api(f"/jobs/{parent}/recompose"), json=body, timeout=10)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "bad_parameter"


def test_delete_job(stack: Stack, finished_job: dict[str, Any]) -> None:
    response = requests.post(
        stack.api(f"/jobs/{finished_job['job_id']}/recompose"),
        json={"background": "red"},
        timeout=30,
    )
    job_id = accepted(response)
    job = wait_finished(stack, job_id)
    photo_url = job["outputs"]["photo"]
    response = requests.delete(stack.api(f"/jobs/{job_id}"), timeout=10)
    assert response.status_code == 204 and response.content == b""
    response = requests.get(stack.api(f"/jobs/{job_id}"), timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "unknown_job"
    assert requests.delete(stack.api(f"/jobs/{job_id}"), timeout=10).status_code == 404
    assert requests.get(photo_url, timeout=10).status_code == 404  # outputs went with it


def _no_face_jpeg() -> bytes:
    image = Image.linear_gradient("L").resize((480, 600)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def test_photo_without_a_face_fails_in_plain_words(stack: Stack) -> None:
    job = wait_finished(stack, accepted(submit(stack, _no_face_jpeg())))
    assert job["state"] == "failed"
    assert job["reason"] == "no_face"
    assert "face" in job["message"].lower()
    assert job["outputs"] == {} and job["report"] is None


def _json_schema(doc: dict[str, Any], name: str, *, strict: bool) -> dict[str, Any]:
    """The OpenAPI 3.0 schema ``name`` as JSON Schema (``nullable`` as a null type, refs into
    ``$defs``); ``strict`` also refuses fields the document does not list."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: convert(v) for k, v in node.items() if k != "nullable"}
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        if strict and out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out

    return {"$defs": convert(doc["components"]["schemas"]), "$ref": f"#/$defs/{name}"}


def test_responses_match_the_openapi_document(stack: Stack, finished_job: dict[str, Any]) -> None:
    """Real answers of the running service against its own OpenAPI schemas, strictly: a field
    the API returns and the document does not list fails, like a wrong type."""
    import jsonschema

    doc = requests.get(stack.api("/openapi.json"), timeout=10).json()

    def check(body: Any, name: str) -> None:
        schema = _json_schema(doc, name, strict=True)
        jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)

    done = {k: v for k, v in finished_job.items() if not k.startswith("_")}
    check(done, "Job")
    response = submit(stack, _no_face_jpeg())
    check(response.json(), "JobAccepted")
    failed = wait_finished(stack, accepted(response))
    failed.pop("_seen_states")
    assert failed["state"] == "failed" and failed["failed_stage"] == "segment"
    check(failed, "Job")
    check(requests.get(stack.api("/jobs/" + "x" * 22), timeout=10).json(), "Error")
    check(submit(stack, spec="no-such-spec").json(), "Error")
    check(requests.get(stack.api("/specs"), timeout=10).json(), "SpecList")
    # The check is strict: a field the document does not list is refused.
    with pytest.raises(jsonschema.ValidationError):
        check({**done, "sha256": "0" * 64}, "Job")
    with pytest.raises(jsonschema.ValidationError):
        check({**done, "outputs": {**done["outputs"], "extra": "http://x/"}}, "Job")


def test_415_for_text_named_jpg(stack: Stack) -> None:
    response = submit(
        stack, b"Dear diary, today I uploaded a text file.\n" * 50, filename="holiday.jpg"
    )
    assert response.status_code == 415
    body = response.json()
    assert body["error"] == "unsupported_image"
    assert "JPEG" in body["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"spec": "no-such-spec"}, "unknown_spec"),
        ({"background": "not-a-colour"}, "bad_parameter"),
        ({"background": "#12345"}, "bad_parameter"),
        ({"spec": None}, "missing_spec"),
        ({"options": "{not json"}, "bad_parameter"),
        ({"options": '{"sheet": "poster"}'}, "bad_parameter"),
    ],
)
def test_422_bad_parameters(stack: Stack, fields: dict[str, Any], code: str) -> None:
    response = submit(stack, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]


def test_422_missing_photo(stack: Stack) -> None:
    response = requests.post(stack.api("/jobs"), data={"spec": "us-passport"}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"] == "missing_photo"


def test_404_unknown_job(stack: Stack) -> None:
    unknown = "A" * 22
    for method, path in (
        ("GET", f"/jobs/{unknown}"),
        ("DELETE", f"/jobs/{unknown}"),
        ("POST", f"/jobs/{unknown}/recompose"),
    ):
        response = requests.request(
            method, stack.api(path), json={"spec": "us-passport"}, timeout=10
        )
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"] == "unknown_job"


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _stream_upload(stack: Stack, total: int, *, chunked: bool) -> tuple[int, dict, bytes, int]:
    """POST a multipart body of ``total`` bytes the way a slow client would, a piece at a time,
    stopping as soon as the server answers. Returns status, headers, body, bytes sent."""
    host, port = stack.url.removeprefix("http://").split(":")
    boundary = "----idphoto-test-boundary"
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\nus-passport\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    head = [
        "POST /api/v1/jobs HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
    ]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sent = 0
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        piece = preamble + b"\xff\xd8\xff" + b"\0" * (64 * 1024 - len(preamble) - 3)
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0.01)
            if readable:
                break
            payload = piece if sent == 0 else b"\0" * 64 * 1024
            payload = payload[: total - sent]
            try:
                if chunked:
                    sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                else:
                    sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(payload)
        status, headers, body = _read_response(sock)
    finally:
        sock.close()
    return status, headers, body, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_413_real_oversized_upload(stack: Stack, chunked: bool) -> None:
    limit = stack.settings.max_upload_bytes
    total = 16 * 1024 * 1024  # 32x the configured limit
    status, headers, body, sent = _stream_upload(stack, total, chunked=chunked)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "file_too_large"
    # The server answered long before the client got to send everything: it did not read it all.
    assert sent < total / 2, f"sent {sent} of {total} bytes before the 413"
    if not chunked:
        assert sent < 4 * limit


def test_ready_and_healthy(stack: Stack) -> None:
    assert requests.get(f"{stack.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": "ok", "redis": "ok", "storage": "ok"}


def test_security_headers_live(stack: Stack) -> None:
    for path in ("/", "/api/v1/specs", "/api/v1/jobs/unknown", "/static/app.js"):
        headers = requests.get(stack.url + path, timeout=10).headers
        assert (
            f"img-src 'self' data: blob: {stack.settings.s3_public_endpoint_url}"
            in headers["Content-Security-Policy"]
        )
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_jobs_once(stack: Stack, finished_job: dict[str, Any]) -> None:
    job_url = stack.api(f"/jobs/{finished_job['job_id']}")
    requests.get(job_url, timeout=10)
    before = requests.get(f"{stack.url}/metrics", timeout=10).text
    for _ in range(3):
        requests.get(job_url, timeout=10)
    after = requests.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(after, "idphoto_jobs_submitted_total", kind="new") >= 1
    done = _metric(after, "idphoto_job_outcomes_total", state="done")
    assert done >= 1
    assert done == _metric(before, "idphoto_job_outcomes_total", state="done")
    assert _metric(after, "idphoto_http_requests_total", endpoint="api.get_job", status="200") >= (
        _metric(before, "idphoto_http_requests_total", endpoint="api.get_job", status="200") + 3
    )
    assert (
        _metric(after, "idphoto_http_request_duration_seconds_count", endpoint="api.create_job")
        >= 1
    )


def test_logs_are_json_with_ids_and_no_secrets(stack: Stack, finished_job: dict[str, Any]) -> None:
    # A /files-style or presigned query string must never reach the log.
    requests.get(f"{stack.url}/files/jobs/x/photo.jpg?expires=1&signature=deadbeef", timeout=10)
    requests.get(
        stack.api(f"/jobs/{finished_job['job_id']}"),
        timeout=10,
        headers={"X-Request-ID": "trace-me-123"},
    )
    time.sleep(0.3)
    text = stack.log.read_text(errors="replace")
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    access = [r for r in records if r.get("logger") == "idphoto.web.access"]
    assert access, "no JSON access log records"
    traced = [r for r in access if r.get("request_id") == "trace-me-123"]
    assert traced and traced[0]["job_id"] == finished_job["job_id"]
    assert traced[0]["path"] == f"/api/v1/jobs/{finished_job['job_id']}"
    assert any(r.get("path") == "/files/jobs/x/photo.jpg" for r in access)
    for secret in (
        "signature=",
        "X-Amz-Signature",
        "X-Amz-Credential",
        stack.settings.secret_key,
        stack.settings.s3_secret_key,
    ):
        assert secret and secret not in text, f"{secret!r} leaked into the logs"
    assert not re.search(r"\?expires=", text)


def test_slow_clients_do_not_starve_the_others(stack: Stack) -> None:
    """64 connections that send half a request header and then one byte a second (slowloris)
    while other clients use the service: health checks, the API and an upload are answered as
    if they were not there (gunicorn's threaded workers gave each of them a thread, and with 8
    threads the 9th client waited for ever)."""
    host, port = stack.url.removeprefix("http://").split(":")
    trickling: list[socket.socket] = []
    try:
        for i in range(64):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(f"GET /healthz?slow={i} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
            trickling.append(sock)
        time.sleep(0.5)  # every worker has taken its share of them
        for _ in range(3):
            for sock in trickling:
                sock.send(b"a")
            began = time.monotonic()
            health = requests.get(f"{stack.url}/healthz", timeout=10)
            assert health.status_code == 200 and time.monotonic() - began < 2
            time.sleep(1)
        specs = requests.get(stack.api("/specs"), timeout=10)
        assert specs.status_code == 200
        job_id = accepted(submit(stack))
        assert wait_finished(stack, job_id)["state"] == "done"
    finally:
        for sock in trickling:
            sock.close()
