"""The web app in-process (Flask test client): pages, CSRF, /files links, headers, readiness.

These need Redis only for the rate limiter (it skips the limit when Redis is down); the live
tests with workers are in test_live.py.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from storage import LocalBlobStore
from web import create_app
from web.context import state

SECRET = "app-test-secret"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    storage_dir = tmp_path / "storage"
    storage_dir.mkdir()
    return Settings(
        storage="local",
        storage_dir=storage_dir,
        secret_key=SECRET,
        public_url="http://localhost",
        rate_limit_key_prefix="apptest-" + uuid.uuid4().hex[:8],
        max_upload_bytes=100_000,
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _csrf(client: FlaskClient) -> str:
    page = client.get("/").get_data(as_text=True)
    marker = '<meta name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_form_page_lists_specs_by_country_with_sizes(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<meta name="viewport"' in html
    assert '<optgroup label="United States">' in html
    assert "us-passport" in html and "mm" in html and "px" in html
    for colour in ("white", "off-white", "light-grey", "light-blue", "blue", "red", "transparent"):
        assert f'value="{colour}"' in html
    assert 'type="color"' in html
    assert "<script src=" in html and "<script>" not in html  # no inline script under the CSP


def test_static_assets_are_served(client: FlaskClient) -> None:
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert kind in response.content_type


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for path in ("/", "/api/v1/specs", "/nope", "/healthz", "/files/x.jpg", "/static/app.js"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "img-src 'self' data: blob:" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_csp_names_the_s3_public_origin(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            storage="s3",
            s3_endpoint_url="http://rgw:7480",
            s3_public_endpoint_url="https://photos.example.com/base",
            storage_dir=tmp_path,
        )
    )
    csp = app.test_client().get("/healthz").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://photos.example.com;" in csp


def test_specs_and_openapi(client: FlaskClient) -> None:
    specs = client.get("/api/v1/specs").get_json()
    ids = {s["id"] for s in specs["specs"]}
    assert "us-passport" in ids and specs["countries"]["US"] == "United States"
    us = next(s for s in specs["specs"] if s["id"] == "us-passport")
    assert (us["width_px"], us["height_px"]) == (600, 600)
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/recompose",
        "/api/v1/specs",
    } <= set(doc["paths"])
    responses = doc["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert {"202", "413", "415", "422", "429", "503"} <= set(responses)
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.get_data(as_text=True)
    assert "/api/v1/jobs/{job_id}/recompose" in html and "X-CSRF-Token" in html
    assert "<code>{error, message}</code>" in html and "`" not in html
    assert "cdn" not in html.lower()


def test_errors_are_json_never_tracebacks(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals /etc/passwd")

    client = app.test_client()
    assert client.get("/nope").get_json() == {
        "error": "not_found",
        "message": "There is nothing at this address.",
    }
    response = client.put("/api/v1/specs")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "Something went wrong on our side.",
    }
    assert b"Traceback" not in response.data and b"passwd" not in response.data


# --- CSRF ----------------------------------------------------------------------------------------


def test_api_without_session_needs_no_token(client: FlaskClient) -> None:
    # A script: no cookie, no Origin. It gets past CSRF to the validation (missing photo).
    response = client.post("/api/v1/jobs", data={"spec": "us-passport"})
    assert response.status_code == 422
    assert response.get_json()["error"] == "missing_photo"


def test_session_cookie_without_token_is_refused(client: FlaskClient) -> None:
    _csrf(client)  # the form page sets the session cookie
    response = client.post("/api/v1/jobs", data={"spec": "us-passport"})
    assert response.status_code == 403 and response.get_json()["error"] == "csrf_failed"
    response = client.post(
        "/api/v1/jobs", data={"spec": "us-passport"}, headers={"X-CSRF-Token": "wrong"}
    )
    assert response.status_code == 403
    assert client.delete("/api/v1/jobs/abc").status_code == 403


def test_session_cookie_with_token_in_header_or_field(client: FlaskClient) -> None:
    token = _csrf(client)
    response = client.post(
        "/api/v1/jobs", data={"spec": "us-passport"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 422 and response.get_json()["error"] == "missing_photo"
    response = client.post("/api/v1/jobs", data={"spec": "us-passport", "csrf_token": token})
    assert response.status_code == 422 and response.get_json()["error"] == "missing_photo"


def test_foreign_origin_is_refused_even_without_cookie(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/jobs", data={"spec": "us-passport"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and response.get_json()["error"] == "csrf_failed"
    same = client.post(
        "/api/v1/jobs", data={"spec": "us-passport"}, headers={"Origin": "http://localhost"}
    )
    assert same.status_code == 422


def test_session_cookie_is_httponly_and_lax(client: FlaskClient) -> None:
    cookie = client.get("/").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- validation that needs no job store -----------------------------------------------------------


def test_text_named_jpg_is_415(client: FlaskClient) -> None:
    data = {
        "photo": (io.BytesIO(b"hello, I am not a photo\n" * 20), "me.jpg", "image/jpeg"),
        "spec": "us-passport",
    }
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_image"


def test_oversized_declared_length_is_413(client: FlaskClient) -> None:
    data = {
        "photo": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 200_000), "big.jpg"),
        "spec": "us-passport",
    }
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "file_too_large" and "limit" in body["message"]


def test_bad_options_is_422(client: FlaskClient) -> None:
    data = {
        "photo": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 100), "a.jpg"),
        "spec": "us-passport",
        "options": "[1, 2]",
    }
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["error"] == "bad_parameter"


def test_malformed_job_id_is_404_without_lookup(client: FlaskClient) -> None:
    response = client.get("/api/v1/jobs/" + "x" * 100)
    assert response.status_code == 404 and response.get_json()["error"] == "unknown_job"


# --- /files: the local backend's presigned links -------------------------------------------------


def _store(app: Flask) -> LocalBlobStore:
    store = state(app).store
    assert isinstance(store, LocalBlobStore)
    return store


def _path(url: str) -> str:
    return url.split("http://localhost", 1)[1]


def test_files_serves_signed_links(app: Flask, client: FlaskClient) -> None:
    store = _store(app)
    store.put("jobs/abc/photo.jpg", b"\xff\xd8\xffjpeg-bytes")
    url = store.presign_get("jobs/abc/photo.jpg", filename="us-passport-photo.jpg")
    assert url.startswith("http://localhost/files/jobs/abc/photo.jpg?")
    response = client.get(_path(url))
    assert response.status_code == 200
    assert response.data == b"\xff\xd8\xffjpeg-bytes"
    assert response.content_type == "image/jpeg"
    assert response.headers["Content-Disposition"] == 'attachment; filename="us-passport-photo.jpg"'
    unnamed = client.get(_path(store.presign_get("jobs/abc/photo.jpg")))
    assert unnamed.status_code == 200
    assert unnamed.headers["Content-Disposition"].startswith("inline")


def test_files_refuses_forged_and_expired_links(app: Flask, client: FlaskClient) -> None:
    store = _store(app)
    store.put("jobs/abc/photo.jpg", b"x")
    url = _path(store.presign_get("jobs/abc/photo.jpg", filename="a.jpg"))
    forged = url.replace("signature=", "signature=0")
    assert client.get(forged).status_code == 403
    other_name = url.replace("filename=a.jpg", "filename=b.jpg")
    assert client.get(other_name).status_code == 403
    other_key = url.replace("/files/jobs/abc/photo.jpg", "/files/jobs/abd/photo.jpg")
    assert client.get(other_key).get_json()["error"] == "bad_signature"
    assert client.get("/files/jobs/abc/photo.jpg").status_code == 403
    expiring = _path(store.presign_get("jobs/abc/photo.jpg", expires_s=1))
    time.sleep(2.05)
    assert client.get(expiring).status_code == 403


def test_files_missing_object_is_404(app: Flask, client: FlaskClient) -> None:
    url = _path(_store(app).presign_get("jobs/none/photo.jpg"))
    response = client.get(url)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


# --- operations ----------------------------------------------------------------------------------


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"storage": "ok"}  # embedded: no broker, file job store


def test_readyz_names_what_failed(tmp_path: Path) -> None:
    settings = Settings(
        storage="local",
        storage_dir=tmp_path / "does-not-exist",
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        redis_url="redis://127.0.0.1:1/0",
        rate_limit="",
    )
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["broker", "redis", "storage"]
    assert response.headers["Retry-After"]


def test_unreachable_broker_refuses_uploads_with_503(tmp_path: Path) -> None:
    settings = Settings(
        storage="local",
        storage_dir=tmp_path,
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        rate_limit="",
    )
    data = {"photo": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 100), "a.jpg"), "spec": "us-passport"}
    response = (
        create_app(settings)
        .test_client()
        .post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    )
    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/healthz")
    client.get("/nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'idphoto_http_requests_total{endpoint="ops.healthz",method="GET",status="200"}' in text
    assert 'endpoint="unmatched",method="GET",status="404"' in text
    assert "idphoto_http_request_duration_seconds_bucket" in text


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad id;drop"}).headers["X-Request-ID"]
    assert made != "bad id;drop" and len(made) == 32
