"""The form in a real browser (Debian's Chromium, driven by Playwright): upload, pick, wait,
download through the presigned link, check the pixel size."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from config.catalogue import get_spec
from idphoto.samples import sample_path
from tests.web.conftest import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


def test_form_makes_a_photo_of_the_exact_size(
    browser: Any, stack: Stack, artifacts: Path, tmp_path: Path
) -> None:
    spec = get_spec("us-passport")
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        began = time.monotonic()
        page.goto(stack.url + "/")
        assert page.title().startswith("idphoto")
        # Usable on a phone: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        assert not page.is_visible("#recompose") and not page.is_visible("#result")
        page.set_input_files("#photo", str(sample_path("grace_hopper")))
        page.wait_for_selector("#preview:not([hidden])")
        page.select_option("#spec", spec.id)
        page.click("label.swatch[title='off-white']")
        assert page.is_checked("input[name=background][value='off-white']")
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        elapsed = time.monotonic() - began

        src = page.get_attribute("#result-img", "src")
        assert src and src.startswith(stack.settings.s3_public_endpoint_url or "")
        page.wait_for_function("document.getElementById('result-img').naturalWidth > 0")
        rows = page.locator("#report tbody tr")
        assert rows.count() >= 5
        assert page.locator("#download-cutout").count() == 1
        assert page.locator("#download-sheet").count() == 1
        page.screenshot(path=str(artifacts / "web-form-result.png"), full_page=True)

        with page.expect_download() as download_info:
            page.click("#download-photo")
        download = download_info.value
        assert download.suggested_filename == "us-passport-photo.jpg"
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        image = Image.open(io.BytesIO(target.read_bytes()))
        assert image.format == "JPEG"
        assert image.size == (spec.width_px, spec.height_px)
        print(f"\nbrowser: upload to result {elapsed:.1f} s")

        # Another background afterwards: only composite and store run again.
        page.click("label.swatch[title='white']")
        page.click("#recompose")
        page.wait_for_function(
            "src => document.getElementById('result-img').src !== src"
            " && !document.getElementById('result').hidden",
            arg=src,
            timeout=60_000,
        )
        assert "pass" in page.inner_text("#report tbody")
        assert not errors, errors
    finally:
        context.close()


def test_form_shows_errors_in_plain_words(browser: Any, stack: Stack, tmp_path: Path) -> None:
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("these are my notes, not a photo\n" * 20)
    page = browser.new_page()
    try:
        page.goto(stack.url + "/")
        page.set_input_files("#photo", str(not_a_photo))
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "isn't a photo we can read" in page.inner_text("#error")
    finally:
        page.close()
