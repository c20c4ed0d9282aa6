"""The README's embedded default, as a newcomer runs it: ``idphoto serve`` with no settings at
all, started from a fresh working directory, then the form in a real browser.

Every other web test gives absolute temporary paths; this one gives none, so relative defaults
(``var/storage``) are resolved the way a user's shell resolves them. It loads the preview and
every download link the page offers, and checks each answer's status, type and pixel size.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from config.catalogue import get_spec
from idphoto.samples import sample_path
from tests.conftest import free_ports
from tests.web.conftest import ARTIFACTS, _tail, _wait_http, wait_true
from tests.web.test_browser import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

IDPHOTO = Path(sys.executable).with_name("idphoto")  # the console script `make setup` installs


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    workdir = tmp_path_factory.mktemp("newcomer")
    log = workdir.parent / "embedded-serve.log"
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDPHOTO_")}
    env.pop("PYTHONPATH", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(IDPHOTO), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/readyz", lambda r: r.status_code == 200, 120, proc, log)
        yield url, workdir, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_embedded_default_serves_the_preview_and_every_download(
    browser: Any,  # noqa: F811
    embedded: tuple[str, Path, Path],
) -> None:
    url, workdir, log = embedded
    spec = get_spec("us-passport")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "/")
        page.set_input_files("#photo", str(sample_path("grace_hopper")))
        page.select_option("#spec", spec.id)
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=180_000)
        # The finished photo is shown, not a broken image.
        wait_true(
            page,
            "document.getElementById('result-img').complete"
            " && document.getElementById('result-img').naturalWidth > 0",
            timeout_ms=30_000,
        )
        shown = page.evaluate(
            "[document.getElementById('result-img').naturalWidth,"
            " document.getElementById('result-img').naturalHeight]"
        )
        assert tuple(shown) == (spec.width_px, spec.height_px)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "embedded-serve-result.png"), full_page=True)

        links = page.eval_on_selector_all("#downloads a", "els => els.map(a => [a.id, a.href])")
        names = {name.removeprefix("download-") for name, _ in links}
        assert {"photo", "sheet", "cutout", "report"} <= names, links
        for name, href in links:
            response = requests.get(href, timeout=30)
            assert response.status_code == 200, (name, response.status_code, response.text[:200])
            kind = response.headers["Content-Type"]
            name = name.removeprefix("download-")
            if name == "report":
                assert kind.startswith("application/json")
                assert json.loads(response.content)["spec"] == spec.id
                continue
            image = Image.open(io.BytesIO(response.content))
            if name == "photo":
                assert kind == "image/jpeg" and image.format == "JPEG"
                assert image.size == (spec.width_px, spec.height_px)
            elif name == "cutout":
                assert kind == "image/png" and image.mode == "RGBA"
            elif name == "sheet":
                assert kind == "image/jpeg" and image.width > spec.width_px
        # A dead link opened directly gets a page that says what to do, not JSON; the job's
        # page, reloaded, signs fresh links.
        job_page = page.url
        photo_href = dict(links)["download-photo"]
        dead = page.goto(photo_href.replace("signature=", "signature=0"))
        assert dead is not None and dead.status == 403
        assert dead.headers["content-type"].startswith("text/html")
        assert "download link has expired" in page.inner_text("#gone-message")
        page.goto(job_page)
        fresh = page.get_attribute("#download-photo", "href")
        assert fresh and requests.get(fresh, timeout=30).status_code == 200
        assert not errors, errors
    finally:
        context.close()
    # Everything landed where the user started the service, and the banner announced no Flower.
    assert (workdir / "var" / "storage").is_dir()
    banner = [line for line in _tail(log, 400).splitlines() if line.startswith("idphoto: web on")]
    assert banner and "Flower" not in banner[0], banner
