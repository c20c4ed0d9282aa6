"""The "check my existing photo" page (``/check``) in a real browser (Debian's Chromium, driven by
Playwright): English on a desktop, Chinese on a phone, and without JavaScript.

A photo the pipeline made here passes; the raw astronaut portrait fails, with one plain sentence
per check, what to fix and what could not be checked; declarations (a religious head covering,
medical glasses) change what is checked. axe-core reports no violation in any state. The web app
is a real gunicorn process with the real detector and landmark models (no workers: a check runs
in the web process).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.catalogue import get_spec
from config.settings import Settings
from idphoto.samples import sample_path
from pipeline import stages
from tests.web import test_browser
from tests.web.conftest import live_app
from tests.web.test_browser import DESKTOP, PHONE, _context, _no_overflow, _watch, axe_clean, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: The browser journeys' fixtures: one Chromium per module, axe-core from npm.
browser = test_browser.browser
axe_source = test_browser.axe_source

CHECK_TIMEOUT_MS = 60_000  # the first check loads the detector and the landmark model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("check-page")
    (tmp / "storage").mkdir()
    settings = Settings(
        storage="local",
        storage_dir=tmp / "storage",
        secret_key="check-page-" + uuid.uuid4().hex,
        rate_limit_key_prefix="checkpage-" + uuid.uuid4().hex[:8],
    )
    with live_app(settings, tmp) as url:
        yield url


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, detector, segmenter, landmarker) -> dict:
    """A US passport photo the pipeline made from the astronaut, and the raw astronaut."""
    d = tmp_path_factory.mktemp("check-photos")
    raw = sample_path("astronaut")
    analysis, region = stages.analyse(raw.read_bytes(), detector, landmarker=landmarker)
    matte = stages.refine(region, stages.segment(region, segmenter, face=analysis.face))
    made = stages.compose(matte, analysis, get_spec("us-passport"), "white", sheet=None)
    assert made.report["verdict"] == "pass", made.report["failed"]
    (d / "made.jpg").write_bytes(made.photo.data)
    return {"made": d / "made.jpg", "raw": raw}


def _result(page: Any, photo: Path) -> dict[str, Any]:
    """Check ``photo`` and read the result while it is on the page."""
    page.evaluate("window.__samePage = true")
    page.evaluate(
        "{ const b = document.getElementById('check-result-box'); if (b) b.innerHTML = ''; }"
    )
    page.set_input_files("#photo", str(photo))
    page.click("#check-submit")
    page.wait_for_selector("#check-result #verdict", timeout=CHECK_TIMEOUT_MS)
    page.wait_for_selector("#check-submit:not([disabled])")
    assert page.evaluate("window.__samePage") is True  # no page load: the script did it
    assert page.evaluate("document.activeElement.id") == "check-result"
    return _read(page)


def _read(page: Any) -> dict[str, Any]:
    return {
        "verdict": page.get_attribute("#verdict", "data-verdict"),
        "headline": page.inner_text("#verdict"),
        "checks": page.eval_on_selector_all(
            "#report li", "els => Object.fromEntries(els.map(e => [e.dataset.check, e.innerText]))"
        ),
        "fixes": page.eval_on_selector_all("#fixes li", "els => els.map(e => e.innerText)"),
        "not_checked": page.eval_on_selector_all("#not-checked li", "els => els.length"),
    }


def _plain(result: dict[str, Any]) -> None:
    """One sentence per check, none of them a bare id."""
    for cid, text in result["checks"].items():
        assert len(text.split()) >= 3 or len(text) >= 8, (cid, text)
        assert not re.search(r"[a-z]+_[a-z_]+", text), (cid, text)  # no machine id shown
    assert result["not_checked"] >= 2


def test_check_page_english_desktop(
    browser: Any, server: str, axe_source: Path, photos: dict, artifacts: Path
) -> None:
    context = _context(browser, DESKTOP, "en")
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(server + "/")  # the make form's picker, the same code: still orders backgrounds
        page.fill("#spec-search", "schengen")
        assert page.input_value("#spec") == "schengen-visa"
        assert page.eval_on_selector("#bg-accepted label", "e => e.dataset.name") == "light-grey"
        page.click("#nav-check")
        page.wait_for_url("**/check")
        assert page.inner_text("h1") == "Check my existing photo"
        assert page.input_value("#spec") == "us-passport"
        page.fill("#spec-search", "schengen")  # the main form's picker, searchable
        assert page.input_value("#spec") == "schengen-visa"
        assert "Schengen" in page.inner_text("#spec-detail")
        page.fill("#spec-search", "")
        page.select_option("#spec", "us-passport")
        axe_clean(page, "check form, English, desktop")

        made = _result(page, photos["made"])
        assert made["verdict"] == "pass", made
        assert made["headline"].startswith("Your photo meets the rules")
        assert made["fixes"] == [] and not page.is_visible("#make-instead")
        _plain(made)
        axe_clean(page, "check passed, English, desktop")
        shot(page, artifacts, "check-pass-en-desktop")

        raw = _result(page, photos["raw"])
        assert raw["verdict"] == "fail", raw
        assert "Width: 512 pixels (required 600)." in raw["checks"]["width_px"]
        assert "File format: PNG (required JPEG)." in raw["checks"]["format"]
        assert any("What to do:" in text for text in raw["fixes"])
        assert "Fails" in raw["checks"]["head_height"] and "mm" in raw["checks"]["head_height"]
        assert page.is_visible("#make-instead")
        _plain(raw)
        axe_clean(page, "check failed, English, desktop")
        shot(page, artifacts, "check-fail-en-desktop")
        assert errors == []
    finally:
        context.close()


def test_check_page_chinese_phone_with_declarations(
    browser: Any, server: str, axe_source: Path, photos: dict, artifacts: Path
) -> None:
    context = _context(browser, PHONE, "zh")
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(server + "/check")
        assert page.inner_text("h1") == "检查我现有的照片"
        assert page.input_value("#spec") == "cn-1inch"  # a Chinese visitor's usual document
        page.fill("#spec-search", "护照 美国")
        assert page.input_value("#spec") == "us-passport"
        _no_overflow(page)
        axe_clean(page, "check form, Chinese, phone")

        raw = _result(page, photos["raw"])
        assert raw["verdict"] == "fail", raw
        assert "宽度：512 像素（要求 600）。" in raw["checks"]["width_px"]
        assert any("怎么办：" in text for text in raw["fixes"]), raw["fixes"]
        _plain(raw)
        _no_overflow(page)
        axe_clean(page, "check failed, Chinese, phone")
        shot(page, artifacts, "check-fail-zh-phone")

        made = _result(page, photos["made"])
        assert made["verdict"] == "pass", made
        assert made["headline"] == "在我们能测量的项目上，照片符合此证件的要求。"
        axe_clean(page, "check passed, Chinese, phone")
        shot(page, artifacts, "check-pass-zh-phone")

        # Declarations: a religious head covering is then a point for a person to look at;
        # medical glasses replace the glasses check with the tinted-lens one.
        page.check("input[name=head_covering][value=religious]")
        page.check("#medical-glasses")
        declared = _result(page, photos["made"])
        assert declared["verdict"] == "review", declared
        assert "你声明了因宗教或医疗原因佩戴头饰" in declared["checks"]["head_covering"]
        assert "tinted_lenses" in declared["checks"] and "glasses" not in declared["checks"]
        axe_clean(page, "check with declarations, Chinese, phone")
        assert errors == []
    finally:
        context.close()


def test_check_page_without_javascript(browser: Any, server: str, photos: dict) -> None:
    context = _context(browser, DESKTOP, "en", java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(server + "/check")
        assert page.is_hidden("#spec-search-box")  # the search needs the script
        page.select_option("#spec", "us-passport")
        page.set_input_files("#photo", str(photos["raw"]))
        with page.expect_navigation(timeout=CHECK_TIMEOUT_MS):
            page.click("#check-submit")
        assert page.url.endswith("/check")
        result = _read(page)
        assert result["verdict"] == "fail", result
        assert "Width: 512 pixels (required 600)." in result["checks"]["width_px"]
        assert page.input_value("#spec") == "us-passport"  # the choice is kept

        page.set_input_files("#photo", str(photos["made"]))
        with page.expect_navigation(timeout=CHECK_TIMEOUT_MS):
            page.click("#check-submit")
        assert _read(page)["verdict"] == "pass"

        with page.expect_navigation():  # no photo: the form again, with the error in words
            page.click("#check-submit")
        assert page.inner_text("#error") == "Please choose a photo first."
    finally:
        context.close()
