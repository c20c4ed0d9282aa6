"""The pages in a real browser (Debian's Chromium, driven by Playwright), as people use them:
English on a 1366x900 desktop, Chinese on a 390x844 phone, and without JavaScript.

Each journey uploads (click, drop, the phone's camera input), follows the progress, reads the
result and the report, downloads every file (status, type, pixel size), re-composes by clicking
a swatch, reloads ``/jobs/<id>`` and deletes the photo; the error paths (no face, two faces, not
an image, too large) and the live camera view (Chromium's fake camera) are driven too. axe-core
(npm, ``tests/web/package.json``) is injected into every page by the test and must report no
violation in any state. Screenshots are kept under tests/artifacts/.

One stack and one browser serve the module; photos after the first reuse its matte (the same
bytes), so only the first journey pays for the model.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from config.catalogue import get_spec
from idphoto.samples import sample_path
from tests.web.conftest import Stack, unique_portrait, wait_true
from web.report_text import EXAMINER_CHECKS

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A synthetic camera for the live view (a test pattern), granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"viewport": {"width": 1366, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
JOB_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium (make system-deps)")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def axe_source() -> Path:
    """axe-core from npm, installed into tests/web/node_modules from the pinned lock file."""
    if not AXE.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE} (cd tests/web && npm ci)")
    return AXE


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The portrait (fresh bytes: the first job really runs every stage), and bad inputs."""
    d = tmp_path_factory.mktemp("photos")
    (d / "me.jpg").write_bytes(unique_portrait())
    with Image.open(sample_path("grace_hopper")) as im:
        rgb = im.convert("RGB")
    twins = Image.new("RGB", (rgb.width * 2, rgb.height))
    twins.paste(rgb, (0, 0))
    twins.paste(rgb, (rgb.width, 0))
    twins.save(d / "twins.jpg", quality=90)
    coffee = sample_path("astronaut").with_name("coffee.png")
    Image.open(coffee).convert("RGB").save(d / "coffee.jpg", quality=90)
    (d / "notes.jpg").write_text("these are my notes, not a photo\n" * 20)
    noise = np.random.default_rng(1).integers(0, 255, (900, 900, 3), dtype=np.uint8)
    Image.fromarray(noise).save(d / "large.png")  # incompressible: over the 512 KB test limit
    return {p.stem: p for p in d.iterdir()}


def _context(browser: Any, size: dict, lang: str, **extra: Any) -> Any:
    accept = "zh-CN,zh;q=0.9,en;q=0.3" if lang == "zh" else "en-GB,en;q=0.9"
    return browser.new_context(
        **size,
        locale="zh-CN" if lang == "zh" else "en-GB",
        extra_http_headers={"Accept-Language": accept},
        **extra,
    )


def _watch(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None,
    )
    return errors


def axe_clean(page: Any, name: str) -> None:
    """No axe-core violation in the page as it is now (axe was injected by the context)."""
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => v.id + ' (' + v.impact + '): '
                  + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))"""
    )
    assert violations == [], f"axe on {name}: {violations}"


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"web-{name}.png"), full_page=True)


def _no_overflow(page: Any) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _in_view(page: Any, selector: str) -> bool:
    return page.evaluate(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
                    return r.top >= 0 && r.top < window.innerHeight; }""",
        selector,
    )


def _labels_too_wide(page: Any) -> list[str]:
    """Document labels that the closed select on this screen would cut off."""
    return page.evaluate(
        """() => { const s = document.getElementById('spec'), cs = getComputedStyle(s);
             const ctx = document.createElement('canvas').getContext('2d');
             ctx.font = cs.fontSize + ' ' + cs.fontFamily;
             const room = s.clientWidth - parseFloat(cs.paddingLeft)
                          - parseFloat(cs.paddingRight) - 24;  /* the arrow */
             return Array.from(s.options).map(o => o.textContent)
                         .filter(t => ctx.measureText(t).width > room); }"""
    )


def _active_id(page: Any) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def _wait_result(page: Any) -> None:
    page.wait_for_selector("#result", timeout=JOB_TIMEOUT_MS)
    wait_true(
        page,
        "document.getElementById('result-img').complete"
        " && document.getElementById('result-img').naturalWidth > 0",
        timeout_ms=30_000,
    )


def _downloads(page: Any) -> dict[str, requests.Response]:
    links = page.eval_on_selector_all("#downloads a", "els => els.map(a => [a.id, a.href])")
    answers = {}
    for ident, href in links:
        response = requests.get(href, timeout=30)
        assert response.status_code == 200, (ident, response.status_code, response.text[:200])
        answers[ident.removeprefix("download-")] = response
    return answers


def _check_files(files: dict[str, requests.Response], spec_id: str, sheet_mm: tuple | None):
    spec = get_spec(spec_id)
    photo = Image.open(io.BytesIO(files["photo"].content))
    assert files["photo"].headers["Content-Type"] == "image/jpeg" and photo.format == "JPEG"
    assert photo.size == (spec.width_px, spec.height_px)
    cutout = Image.open(io.BytesIO(files["cutout"].content))
    assert files["cutout"].headers["Content-Type"] == "image/png" and cutout.mode == "RGBA"
    assert files["report"].headers["Content-Type"].startswith("application/json")
    named = json.loads(files["report"].content)["spec"]
    assert (named["id"] if isinstance(named, dict) else named) == spec_id
    if sheet_mm is None:
        assert "sheet" not in files
        return
    sheet = Image.open(io.BytesIO(files["sheet"].content))
    expected = sorted(round(mm / 25.4 * spec.dpi) for mm in sheet_mm)
    assert [abs(a - b) <= 2 for a, b in zip(sorted(sheet.size), expected, strict=True)] == [
        True,
        True,
    ], (sheet.size, expected)


def _job_id(page: Any) -> str:
    match = re.search(r"/jobs/([A-Za-z0-9_-]+)$", page.url)
    assert match, page.url
    return match.group(1)


# --- journeys ----------------------------------------------------------------------------------


def test_english_desktop_journey(
    browser: Any, stack: Stack, artifacts: Path, axe_source: Path, photos: dict[str, Path]
) -> None:
    context = _context(browser, DESKTOP, "en")
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(stack.url + "/")
        assert page.inner_text("h1") == "Make an ID photo"
        assert page.input_value("#spec") == "us-passport"
        axe_clean(page, "form, English, desktop")
        shot(page, artifacts, "form-en-desktop")

        # Keyboard: tabbing through the whole form changes no choice; the drop zone shows focus.
        chosen = page.eval_on_selector("input[name=background]:checked", "e => e.value")
        page.focus("#photo")
        ring = page.eval_on_selector(
            "#drop-zone",
            "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]",
        )
        assert ring[0] != "none" and float(ring[1].rstrip("px")) >= 2, ring
        visited = []
        for _ in range(60):
            page.keyboard.press("Tab")
            visited.append(_active_id(page))
        assert "custom-colour" in visited and "submit" in visited, visited
        assert page.eval_on_selector("input[name=background]:checked", "e => e.value") == chosen

        # The picker: search in either language, backgrounds ordered for the document.
        page.fill("#spec-search", "schengen")
        assert page.input_value("#spec") == "schengen-visa"
        assert "1" in page.inner_text("#spec-count")
        assert page.eval_on_selector("#bg-accepted label", "e => e.dataset.name") == "light-grey"
        assert (
            page.eval_on_selector("input[name=background]:checked", "e => e.value") == "light-grey"
        )
        page.fill("#spec-search", "护照 美国")
        assert page.input_value("#spec") == "us-passport"
        page.fill("#spec-search", "")
        accepted = page.eval_on_selector_all(
            "#bg-accepted label", "els => els.map(e => e.dataset.name)"
        )
        assert accepted == ["white", "off-white"]
        assert page.is_visible("#bg-other label.not-accepted[data-name=blue]")

        # Upload by clicking the drop zone, a 5x7 sheet, then the progress takes the focus.
        with page.expect_file_chooser() as chooser:
            page.click("#drop-zone")
        chooser.value.set_files(str(photos["me"]))
        page.wait_for_selector("#preview:not([hidden])")
        page.select_option("#sheet", "5x7")
        page.click("#submit")
        assert _active_id(page) == "progress" and page.is_visible("#progress")
        page.wait_for_url(re.compile(r"/jobs/"), timeout=30_000)
        page.wait_for_selector("#progress, #result")
        if page.locator("#progress").count():
            assert _active_id(page) == "progress"
            stages = page.eval_on_selector_all("#stages li", "els => els.map(e => e.dataset.stage)")
            assert stages == ["segment", "matte_refine", "composite", "store"]
            assert re.search(r"about \d+ s left", page.inner_text("#progress"))
            axe_clean(page, "progress, English, desktop")
            shot(page, artifacts, "progress-en-desktop")
        else:
            pytest.fail("the first job was done before its page showed any progress")
        _wait_result(page)
        assert _active_id(page) == "result" and _in_view(page, "#result-title")
        first_job = _job_id(page)
        assert "Head height, chin to crown:" in page.inner_text("#report")
        assert " mm (allowed " in page.inner_text("#report")
        axe_clean(page, "result, English, desktop")
        shot(page, artifacts, "result-en-desktop")
        files = _downloads(page)
        _check_files(files, "us-passport", (5 * 25.4, 7 * 25.4))
        # What the service could not check: the examiner checks missing from this report.
        checked = {c["check"] for c in json.loads(files["report"].content)["checks"]}
        unchecked = [cid for cid in EXAMINER_CHECKS if cid not in checked]
        assert unchecked and page.locator("#not-checked li").count() == len(unchecked)

        # A swatch re-composes at once: the same photo on off-white, a new job page.
        before = page.get_attribute("#result-img", "src")
        began = time.monotonic()
        page.click("#recompose-form button[value=off-white]")
        page.wait_for_url(lambda url: first_job not in url, timeout=60_000)
        _wait_result(page)
        print(f"\nswatch click to new result: {time.monotonic() - began:.2f} s")
        assert page.get_attribute("#result-img", "src") != before
        pressed = page.get_attribute("#recompose-form button[value=off-white]", "aria-pressed")
        assert pressed == "true"

        # Reload: the page answers again with fresh links that work.
        page.reload()
        _wait_result(page)
        _check_files(_downloads(page), "us-passport", (5 * 25.4, 7 * 25.4))

        # Custom size for an exam site: 354x472 px, 20-60 KB, no sheet.
        page.goto(stack.url + "/")
        page.set_input_files("#photo", str(photos["me"]))
        page.select_option("#spec", "custom")
        assert page.is_visible("#custom-size")
        page.fill("#custom-width", "354")
        page.fill("#custom-height", "472")
        page.select_option("#custom-unit", "px")
        page.fill("#kb-min", "20")
        page.fill("#kb-max", "60")
        page.select_option("#sheet", "none")
        page.click("#submit")
        _wait_result(page)
        files = _downloads(page)
        custom = Image.open(io.BytesIO(files["photo"].content))
        assert custom.size == (354, 472)
        assert 20 * 1024 <= len(files["photo"].content) <= 60 * 1000
        assert "sheet" not in files

        # Delete now: the page says so, the job's address then answers a friendly 404.
        page.click("#delete")
        page.wait_for_selector("#gone-message")
        assert "have been deleted" in page.inner_text("#gone-message")
        gone = page.goto(f"{stack.url}/jobs/{first_job}")
        assert gone is not None and gone.status == 200  # the first job is still there
        deleted_id = _job_id(page)
        page.click("#delete")
        page.wait_for_selector("#gone-message")
        assert not errors, errors  # (the 404 page below logs its own status as an error)
        again = page.goto(f"{stack.url}/jobs/{deleted_id}")
        assert again is not None and again.status == 404
        assert "deleted, or it expired" in page.inner_text("#gone-message")
        axe_clean(page, "gone page, English, desktop")
        assert requests.get(stack.api(f"/jobs/{deleted_id}"), timeout=10).status_code == 404
    finally:
        context.close()


def test_chinese_phone_journey(
    browser: Any, stack: Stack, artifacts: Path, axe_source: Path, photos: dict[str, Path]
) -> None:
    context = _context(browser, PHONE, "zh")
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(stack.url + "/")
        assert page.inner_text("h1") == "制作证件照"
        assert page.input_value("#spec") == "cn-1inch"
        _no_overflow(page)
        # Phone copy: no drag and drop; a camera button that opens the front camera.
        assert not page.is_visible(".drop-desktop") and page.is_visible(".drop-phone")
        assert "拖" not in page.inner_text("#drop-zone")
        assert page.is_visible("label[for=camera]")
        assert page.get_attribute("#camera", "capture") == "user"
        assert _labels_too_wide(page) == []
        assert page.inner_text("#spec-detail") == "一寸 · 25×35 mm · 295×413 px, 300 dpi"
        axe_clean(page, "form, Chinese, phone")
        shot(page, artifacts, "form-zh-phone")

        # The switcher, remembered.
        page.click("#lang-en")
        assert page.inner_text("h1") == "Make an ID photo"
        page.goto(stack.url + "/")
        assert page.inner_text("h1") == "Make an ID photo"
        page.click("#lang-zh")
        assert page.inner_text("h1") == "制作证件照"

        # Search in Chinese; a document with one background puts the others apart.
        page.fill("#spec-search", "社保卡")
        assert page.input_value("#spec") == "cn-id-card"
        names = page.eval_on_selector_all(
            "#bg-accepted label", "els => els.map(e => e.dataset.name)"
        )
        assert names == ["white"]
        assert page.is_visible("#bg-other label.not-accepted[data-name=blue]")
        page.fill("#spec-search", "一寸")
        assert page.locator("#spec option:not([hidden])").count() >= 3  # 一寸, 大一寸, 小一寸
        page.select_option("#spec", "cn-1inch")
        page.click("label.swatch[data-name=blue]")
        page.select_option("#sheet", "a4")

        # The camera input (a phone's "take a photo"), then progress and result in view.
        page.set_input_files("#camera", str(photos["me"]))
        page.wait_for_selector("#preview:not([hidden])")
        page.click("#submit")
        page.wait_for_url(re.compile(r"/jobs/"), timeout=30_000)
        page.wait_for_selector("#progress, #result")
        if page.locator("#progress").count():
            assert _in_view(page, "#progress-title")
            assert "识别人像" in page.inner_text("#stages")
        _wait_result(page)
        assert _active_id(page) == "result" and _in_view(page, "#result-title")
        _no_overflow(page)
        report = page.inner_text("#report")
        assert "头部高度（下巴到头顶）" in report and "毫米" not in report
        assert "眼镜" in page.inner_text("#not-checked")
        assert page.get_attribute("#recompose-form button[value=blue]", "aria-pressed") == "true"
        axe_clean(page, "result, Chinese, phone")
        shot(page, artifacts, "result-zh-phone")
        _check_files(_downloads(page), "cn-1inch", (210.0, 297.0))
        assert not errors, errors
    finally:
        context.close()


def test_error_paths_in_plain_words(
    browser: Any, stack: Stack, artifacts: Path, axe_source: Path, photos: dict[str, Path]
) -> None:
    desktop = _context(browser, DESKTOP, "en")
    phone = _context(browser, PHONE, "zh")
    for context in (desktop, phone):
        context.add_init_script(path=str(axe_source))
    try:
        page = desktop.new_page()
        page.goto(stack.url + "/")
        # Not an image: refused at upload, said on the form, focused.
        page.set_input_files("#photo", str(photos["notes"]))
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "isn't a photo we can read" in page.inner_text("#error")
        assert _active_id(page) == "error"
        axe_clean(page, "form error, English, desktop")
        # Two faces, dropped on the drop zone.
        data = base64.b64encode(photos["twins"].read_bytes()).decode()
        transfer = page.evaluate_handle(
            """b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                 const dt = new DataTransfer();
                 dt.items.add(new File([bytes], 'twins.jpg', {type: 'image/jpeg'}));
                 return dt; }""",
            data,
        )
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
        page.wait_for_selector("#preview:not([hidden])")
        assert page.evaluate("document.getElementById('photo').files[0].name") == "twins.jpg"
        page.click("#submit")
        page.wait_for_url(re.compile(r"/jobs/"), timeout=30_000)
        page.wait_for_selector("#error", timeout=JOB_TIMEOUT_MS)
        assert "more than one face" in page.inner_text("#error")
        assert _active_id(page) == "error"
        axe_clean(page, "job failed, English, desktop")
        shot(page, artifacts, "error-two-faces-en-desktop")

        page = phone.new_page()
        page.goto(stack.url + "/")
        # Too large: said before anything is sent.
        page.set_input_files("#photo", str(photos["large"]))
        assert "文件太大" in page.inner_text("#error") and page.is_visible("#error")
        # No face.
        page.set_input_files("#photo", str(photos["coffee"]))
        page.click("#submit")
        page.wait_for_url(re.compile(r"/jobs/"), timeout=30_000)
        page.wait_for_selector("#error", timeout=JOB_TIMEOUT_MS)
        assert "照片中没有找到人脸" in page.inner_text("#error")
        assert _in_view(page, "#error")
        axe_clean(page, "job failed, Chinese, phone")
        shot(page, artifacts, "error-no-face-zh-phone")
    finally:
        desktop.close()
        phone.close()


def test_live_camera_view_with_a_head_oval(
    browser: Any, stack: Stack, artifacts: Path, axe_source: Path
) -> None:
    context = _context(browser, PHONE, "en", permissions=["camera"])
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(stack.url + "/")
        assert _labels_too_wide(page) == []  # English labels fit on the phone too
        page.click("#camera-live")
        page.wait_for_selector("#camera-view:not([hidden])")
        wait_true(page, "document.getElementById('camera-video').readyState >= 2")
        assert page.is_visible(".camera-frame svg.oval ellipse")
        assert _active_id(page) == "camera-shoot"
        axe_clean(page, "camera view, English, phone")
        shot(page, artifacts, "camera-en-phone")
        page.click("#camera-shoot")
        page.wait_for_selector("#preview:not([hidden])")
        assert page.is_hidden("#camera-view")
        name = page.evaluate("document.getElementById('photo').files[0].name")
        assert name == "camera.jpg"
        assert not errors, errors
    finally:
        context.close()


NO_SCRIPT = {
    # size, language, spec, background, swatch afterwards, sheet size (mm), texts
    "desktop-en": (
        DESKTOP,
        "en",
        "uk-passport",
        "light-grey",
        "cream",
        (4 * 25.4, 6 * 25.4),
        ("Please choose a photo first.", "too large", "have been deleted"),
    ),
    "phone-zh": (
        PHONE,
        "zh",
        "cn-2inch",
        "blue",
        "white",
        (4 * 25.4, 6 * 25.4),
        ("请先选择一张照片。", "文件太大", "已删除"),
    ),
}


@pytest.mark.parametrize("case", sorted(NO_SCRIPT))
def test_without_javascript_the_form_posts_and_the_result_page_answers(
    browser: Any, stack: Stack, artifacts: Path, photos: dict[str, Path], case: str
) -> None:
    size, lang, spec, background, other, sheet_mm, texts = NO_SCRIPT[case]
    missing, too_large, deleted = texts
    context = _context(browser, size, lang, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(stack.url + "/")
        page.click("#submit")  # no photo: the form answers again, saying so
        assert page.inner_text("#error") == missing
        page.set_input_files("#photo", str(photos["large"]))
        page.click("#submit")
        assert too_large in page.inner_text("#gone-message")
        page.goto(stack.url + "/")
        page.set_input_files("#photo", str(photos["me"]))
        page.select_option("#spec", spec)
        page.click(f"label.swatch[data-name={background}]")
        page.click("#submit")  # Origin: null under no-referrer: the session token lets it in
        page.wait_for_url(re.compile(r"/jobs/"), timeout=30_000)
        _wait_result(page)  # the page refreshes itself until the photo is ready
        shot(page, artifacts, f"nojs-result-{case}")
        _check_files(_downloads(page), spec, sheet_mm)
        job = _job_id(page)
        page.click(f"#recompose-form button[value={other}]")
        page.wait_for_url(lambda url: job not in url)
        _wait_result(page)
        pressed = page.get_attribute(f"#recompose-form button[value={other}]", "aria-pressed")
        assert pressed == "true"
        page.click("#delete")
        page.wait_for_selector("#gone-message")
        assert deleted in page.inner_text("#gone-message")
    finally:
        context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pages_are_accessible_in_both_languages(
    browser: Any, stack: Stack, axe_source: Path, size: str, lang: str
) -> None:
    """The form, the API docs and the gone page, in each language at each size."""
    context = _context(browser, DESKTOP if size == "desktop" else PHONE, lang)
    context.add_init_script(path=str(axe_source))
    page = context.new_page()
    try:
        for path in ("/", "/api/docs", "/jobs/no-such-job"):
            page.goto(stack.url + path)
            _no_overflow(page)
            axe_clean(page, f"{path}, {lang}, {size}")
        assert page.get_attribute("html", "lang") == ("zh-Hans" if lang == "zh" else "en")
    finally:
        context.close()
