"""The pages in-process (Flask test client): languages and their catalogues, the friendly pages
for gone jobs and expired links, CSRF for the form posted without script, honest defaults.

The journeys in a real browser are in test_journeys.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from web import create_app
from web.context import state
from web.defaults import InsecureDefaults, check_defaults
from web.report_text import describe

REPO = Path(__file__).resolve().parents[2]
TRANSLATIONS = REPO / "web" / "translations"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        storage="local",
        storage_dir=tmp_path / "storage",
        secret_key="pages-test-" + uuid.uuid4().hex,
        public_url="http://localhost",
        rate_limit_key_prefix="pagestest-" + uuid.uuid4().hex[:8],
        max_upload_bytes=100_000,
        flower_password="not-the-default",
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _h1(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()  # type: ignore[union-attr]


def _selected_spec(html: str) -> str:
    select = html[html.index('<select id="spec"') :]
    return re.search(r'<option value="([^"]+)"[^>]*selected', select).group(1)  # type: ignore[union-attr]


# --- languages --------------------------------------------------------------------------------


def test_compiled_catalogue_matches_its_source_and_translates_every_string(tmp_path: Path) -> None:
    """The committed .mo is what the .po says, and every string of the pages has Chinese."""
    pot = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    po = read_po((TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb"))
    mo = read_mo((TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo").open("rb"))
    wanted = {m.id for m in pot if m.id}
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    assert wanted - set(translated) == set(), "untranslated (run pybabel update, translate)"
    compiled = {m.id: m.string for m in mo if m.id}
    assert compiled == translated, "messages.mo is stale: run pybabel compile -d web/translations"
    # And the source has no string the pages no longer use... nor any the extractor misses.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "web/babel.cfg",
            "-k",
            "lazy_gettext",
            "--no-location",
            "--sort-output",
            "-o",
            str(tmp_path / "fresh.pot"),
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    fresh = {m.id for m in read_po((tmp_path / "fresh.pot").open("rb")) if m.id}
    assert fresh == wanted, "messages.pot is stale: run pybabel extract (web/i18n.py)"


def test_accept_language_picks_chinese_with_a_chinese_default_document(client: FlaskClient) -> None:
    zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.4"})
    html = zh.get_data(as_text=True)
    assert _h1(html) == "制作证件照"
    assert '<html lang="zh-Hans">' in html
    assert _selected_spec(html) == "cn-1inch"
    assert '<optgroup label="中国">' in html and '<optgroup label="美国">' in html
    assert "一寸 · 25×35 mm" in html and "中国居民身份证" in html
    assert html.index('<optgroup label="中国">') < html.index('<optgroup label="国际通用">')
    assert ">白色<" in html and ">蓝色<" in html
    en = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    assert _h1(en) == "Make an ID photo" and _selected_spec(en) == "us-passport"
    assert '<optgroup label="United States">' in en


def test_switcher_choice_is_remembered_over_accept_language(client: FlaskClient) -> None:
    page = client.get("/?lang=zh", headers={"Accept-Language": "en"})
    assert (
        "lang=zh" in page.headers["Set-Cookie"] and "Max-Age=31536000" in page.headers["Set-Cookie"]
    )
    assert _h1(page.get_data(as_text=True)) == "制作证件照"
    again = client.get("/api/docs", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="lang-zh" aria-current="true"' in again
    back = client.get("/?lang=en", headers={"Accept-Language": "zh"})
    assert _h1(back.get_data(as_text=True)) == "Make an ID photo"


def test_script_strings_come_translated(client: FlaskClient) -> None:
    html = client.get("/", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    blob = html[html.index('id="strings">') : html.index("</script>", html.index('id="strings">'))]
    texts = json.loads(blob.removeprefix('id="strings">'))
    assert texts["errors"]["no_face"].startswith("照片中没有找到人脸")
    assert texts["states"]["segmenting"][1] == "正在识别照片中的人像…"


def test_report_in_plain_words_both_languages(app: Flask) -> None:
    report = {
        "verdict": "fail",
        "checks": [
            {
                "check": "head_height",
                "value": 0.5,
                "limit": [0.6, 0.72],
                "pass": False,
                "level": "required",
            },
            {
                "check": "yaw",
                "value": 2.5,
                "limit": 10.0,
                "pass": True,
                "level": "required",
                "estimate": True,
            },
            {
                "check": "ears_visible",
                "value": 0.1,
                "limit": 0.2,
                "pass": False,
                "level": "required",
                "message": "Both ears show.",
            },
        ],
    }
    with app.test_request_context(headers={"Accept-Language": "en"}):
        en = describe(report, height_mm=35.0)
    head, yaw, eyes = en["items"]
    assert head["sentence"] == "Head height, chin to crown: 17.5 mm (allowed 21–25.2 mm)."
    assert head["status"] == "fail" and "further away" in head["advice"]
    assert yaw["status"] == "pass" and yaw["advice"] == "" and "(an estimate)" in yaw["sentence"]
    assert eyes["sentence"] == "Both ears show."  # unknown id: the report's own words
    assert "whether your eyes are open and visible" in en["not_checked"]
    assert "hats or head coverings" in en["not_checked"]
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        zh = describe({**report, "verdict": "review"}, height_mm=None)
    assert zh["items"][0]["sentence"] == "头部高度（下巴到头顶）：50%（允许 60%–72%）。"
    assert zh["headline"].startswith("有几点需要人工判断")


def test_examiner_checks_by_id_with_a_review_status(app: Flask) -> None:
    report = {
        "verdict": "review",
        "checks": [
            {
                "check": "eyes_open",
                "value": 0.3,
                "limit": 0.2,
                "pass": True,
                "level": "required",
                "message": "Both eyes are open.",
            },
            {
                "check": "head_covering",
                "value": 0.6,
                "limit": 0.5,
                "pass": False,
                "level": "review",
                "message": "Not clear-cut: take off the hat.",
            },
            {
                "check": "new_check",
                "value": 1,
                "limit": 0,
                "pass": False,
                "level": "required",
                "message": "Something new failed.",
            },
        ],
    }
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        described = describe(report)
    eyes, covering, new = described["items"]
    assert "帽子或头饰" not in described["not_checked"]  # it was checked
    assert "眼镜（大多数证件已不允许佩戴）" in described["not_checked"]
    assert eyes == {"id": "eyes_open", "status": "pass", "sentence": "双眼睁开。", "advice": ""}
    assert covering["status"] == "review" and covering["sentence"] == "不确定：发现帽子或头饰。"
    assert covering["advice"].startswith("请摘下帽子")
    assert new["status"] == "fail" and new["sentence"] == "Something new failed."


# --- pages for people, not JSON ---------------------------------------------------------------


def test_gone_job_and_expired_link_get_friendly_pages(app: Flask, client: FlaskClient) -> None:
    page = client.get("/jobs/no-such-job", headers={"Accept": "text/html", "Accept-Language": "zh"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "已被删除或已过期" in page.get_data(as_text=True)
    store = state(app).store
    store.put("jobs/abc/photo.jpg", b"x")
    link = store.presign_get("jobs/abc/photo.jpg", filename="a.jpg")
    path = link[link.index("/files/") :].replace("signature=", "signature=0")
    opened = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert opened.status_code == 403 and opened.mimetype == "text/html"
    assert "download link has expired" in opened.get_data(as_text=True)
    # A script asking for JSON still gets JSON.
    assert client.get(path).get_json()["error"] == "bad_signature"


def test_form_post_without_script_passes_csrf_with_origin_null(client: FlaskClient) -> None:
    """Under Referrer-Policy: no-referrer a browser posts the form with ``Origin: null``."""
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    form = {
        "csrf_token": token,
        "spec": "us-passport",
        "background": "white",
    }

    def photo() -> tuple[io.BytesIO, str]:
        return io.BytesIO(b"not a photo at all"), "notes.jpg"

    refused = client.post(
        "/make",
        data={**form, "csrf_token": "wrong", "photo": photo()},
        headers={"Origin": "null", "Accept": "text/html"},
    )
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    answered = client.post(
        "/make", data={**form, "photo": photo()}, headers={"Origin": "null", "Accept": "text/html"}
    )
    # CSRF passed: the form itself answers, with the error in plain words.
    assert answered.status_code == 415 and answered.mimetype == "text/html"
    assert "a photo we can read" in answered.get_data(as_text=True)


def test_origin_null_without_a_session_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/api/v1/jobs", data={"spec": "us-passport"}, headers={"Origin": "null"})
    assert response.status_code == 403 and response.get_json()["error"] == "csrf_failed"


# --- honest defaults (issue 14, item 11) ------------------------------------------------------


def test_default_secrets_warn_loudly_and_production_refuses_them(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IDPHOTO_ENV", "production")  # ignored: only Settings.from_env reads it
    defaults = Settings(storage_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="idphoto.web"):
        found = check_defaults(defaults)
    assert len(found) == 2
    assert sum("INSECURE DEFAULT" in r.getMessage() for r in caplog.records) == 2
    production = Settings.from_env({"IDPHOTO_ENV": "production"}, storage_dir=tmp_path)
    assert production.env == "production"
    with pytest.raises(InsecureDefaults, match="IDPHOTO_SECRET_KEY"):
        create_app(production)
    fine = Settings(storage_dir=tmp_path, secret_key="x" * 40, flower_password="long-pass")
    assert check_defaults(fine) == []


def test_serve_refuses_to_start_in_production_with_defaults(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "IDPHOTO_ENV": "production",
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [sys.executable, "-m", "idphoto.serve", "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "refuses to start" in run.stderr and "IDPHOTO_SECRET_KEY" in run.stderr


def test_compose_publishes_flower_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    (port,) = compose["services"]["flower"]["ports"]
    assert port.startswith("${FLOWER_BIND:-127.0.0.1}:"), port


def test_every_error_code_and_failure_reason_has_a_sentence() -> None:
    """Whatever the API answers or a job record says went wrong, the page tells the visitor in
    words, not "Something went wrong": the domain errors' codes, every code the web layer
    answers (read from its source) and the reasons the task layer writes."""
    import inspect
    import re

    import config.errors as domain
    import tasks.jobs
    import tasks.pipeline
    import web.api
    import web.errors
    from web.messages import ERRORS

    codes = {
        cls.code
        for _, cls in inspect.getmembers(domain, inspect.isclass)
        if issubclass(cls, domain.IdPhotoError) and cls.code != "idphoto_error"  # the bases'
    }
    web_source = inspect.getsource(web.errors) + inspect.getsource(web.api)
    codes |= set(
        re.findall(
            r'(?:error_response\(\s*\d{3},|_error\(|unavailable\()\s*"([a-z_]+)"', web_source
        )
    )
    codes |= set(re.findall(r'^\s+\d{3}: \("([a-z_]+)"', inspect.getsource(web.errors), re.M))
    codes |= set(re.findall(r'ApiError\(\s*\d{3},\s*"([a-z_]+)"', web_source))
    task_source = inspect.getsource(tasks.pipeline) + inspect.getsource(tasks.jobs)
    codes |= set(re.findall(r'"reason": "([a-z_]+)"', task_source))
    codes |= set(re.findall(r'failed_fields\(\s*now,\s*"([a-z_]+)"', task_source))
    codes |= set(re.findall(r'return "([a-z_]+)", "', task_source))
    assert {"file_too_large", "insufficient_storage", "lost", "worker_lost"} <= codes
    missing = sorted(codes - set(ERRORS) - {"file_too_large"})  # its text names the limit
    assert not missing, f"no sentence for: {missing}"


def test_every_check_the_report_writes_has_a_sentence() -> None:
    """Each check id `pipeline.report` writes by name is worded by `web.report_text`: without
    it the page showed the bare id ("continued bottom") where a sentence and advice belong."""
    import ast

    def literals(path: Path, call: str | None = None) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if call is None and isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
            elif (
                call is not None
                and isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == call
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
        return found

    written = literals(REPO / "pipeline" / "report.py", "_check")
    assert {"continued_bottom", "shoulders", "width_px"} <= written
    assert written - literals(REPO / "web" / "report_text.py") == set()
