"""``POST /api/v1/checks``: an existing photo measured against a spec, answered at once.

Real models (the detector and the landmark model load in the web process on the first check),
real photos: one the pipeline made (passes, and reads as its own report did), the raw portrait
(fails: wrong size, not a plain background), and the error answers.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from flask.testing import FlaskClient
from PIL import Image

from config.catalogue import get_spec
from config.settings import Settings
from idphoto.samples import sample_path
from pipeline import stages
from web import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    storage = tmp_path_factory.mktemp("checks") / "storage"
    storage.mkdir()
    settings = Settings(
        storage="local",
        storage_dir=storage,
        secret_key="checks-" + uuid.uuid4().hex,
        public_url="http://localhost",
        rate_limit_key_prefix="checktest-" + uuid.uuid4().hex[:8],
    )
    return create_app(settings).test_client()


@pytest.fixture(scope="module")
def made(detector, segmenter, landmarker):
    spec = get_spec("us-passport")
    analysis, region = stages.analyse(
        sample_path("astronaut").read_bytes(), detector, landmarker=landmarker
    )
    matte = stages.refine(region, stages.segment(region, segmenter, face=analysis.face))
    return stages.compose(matte, analysis, spec, "white", sheet=None)


def _post(client: FlaskClient, data: bytes, **form: str):
    return client.post(
        "/api/v1/checks",
        data={"photo": (io.BytesIO(data), "photo.jpg"), **form},
        content_type="multipart/form-data",
    )


def test_a_photo_made_here_passes_its_check(client: FlaskClient, made) -> None:
    response = _post(client, made.photo.data, spec="us-passport")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["mode"] == "check" and report["verdict"] == made.report["verdict"] == "pass"
    head = report["measures"]["head_height_fraction"]
    assert abs(head - made.report["measures"]["head_height_fraction"]) <= 0.01


def test_a_raw_portrait_fails_with_reasons(client: FlaskClient) -> None:
    response = _post(client, sample_path("astronaut").read_bytes(), spec="us-passport")
    assert response.status_code == 200
    report = response.get_json()
    assert report["verdict"] == "fail" and "width_px" in report["failed"]


def test_check_errors(client: FlaskClient) -> None:
    assert _post(client, b"not an image at all" * 10, spec="us-passport").status_code == 415
    photo = sample_path("grace_hopper").read_bytes()
    missing = _post(client, photo)
    assert missing.status_code == 422 and missing.get_json()["error"] == "missing_spec"
    unknown = _post(client, photo, spec="atlantis-passport")
    assert unknown.status_code == 422 and unknown.get_json()["error"] == "unknown_spec"
    bad = _post(client, photo, spec="us-passport", options=json.dumps({"head_covering": "hat"}))
    assert bad.status_code == 422 and bad.get_json()["error"] == "bad_parameter"
    blank = io.BytesIO()
    Image.new("RGB", (413, 531), (235, 235, 235)).save(blank, "JPEG")
    face = _post(client, blank.getvalue(), spec="icao-35x45")
    assert face.status_code == 422 and face.get_json()["error"] == "no_face"


def test_declared_religious_covering_is_a_review_item(client: FlaskClient, made) -> None:
    report = _post(
        client,
        made.photo.data,
        spec="schengen-visa",
        options=json.dumps({"head_covering": "religious"}),
    ).get_json()
    covering = [c for c in report["checks"] if c["check"] == "head_covering"][0]
    assert covering["level"] == "review" and report["verdict"] != "pass"


def test_openapi_documents_checks(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/checks"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["properties"][
        "verdict"
    ]["enum"] == ["pass", "fail", "review"]
