"""Flower, as ``idphoto serve`` starts it: behind basic auth, seeing both workers and queues."""

from __future__ import annotations

import pytest
import requests

from tests.web.conftest import Stack, flower_workers

pytestmark = pytest.mark.integration


def test_flower_requires_credentials(stack: Stack) -> None:
    for path in ("/", "/api/workers"):
        assert requests.get(stack.flower_url + path, timeout=10).status_code == 401
        wrong = requests.get(stack.flower_url + path, auth=("flower", "wrong"), timeout=10)
        assert wrong.status_code == 401
    auth = (stack.settings.flower_user, stack.settings.flower_password)
    dashboard = requests.get(stack.flower_url + "/", auth=auth, timeout=10)
    assert dashboard.status_code == 200 and "Flower" in dashboard.text


def test_flower_lists_both_workers_and_queues(stack: Stack) -> None:
    workers = flower_workers(stack, timeout=15)
    names = sorted(workers)
    assert len(names) == 2, names
    queues = {
        name: {q["name"] for q in info.get("active_queues", [])} for name, info in workers.items()
    }
    gpu = [n for n in names if n.startswith("gpu@")]
    cpu = [n for n in names if n.startswith("cpu@")]
    assert gpu and cpu, names
    assert queues[gpu[0]] == {"gpu"} and queues[cpu[0]] == {"cpu"}
    # The dashboard page names both workers too.
    auth = (stack.settings.flower_user, stack.settings.flower_password)
    page = requests.get(stack.flower_url + "/workers", auth=auth, timeout=10)
    if page.status_code == 404:  # older Flower: the dashboard is the root page
        page = requests.get(stack.flower_url + "/", auth=auth, timeout=10)
    assert page.status_code == 200


def test_flower_password_is_not_on_any_command_line(stack: Stack) -> None:
    """Every user of the host can read /proc/*/cmdline (``ps``): the login goes to Flower
    through its environment."""
    from pathlib import Path

    secret = stack.settings.flower_password
    assert secret
    seen = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        text = b" ".join(argv).decode(errors="replace")
        if "flower" in text:
            seen.append(text)
        assert secret not in text, f"password on a command line: {text[:200]}"
    assert seen, "no Flower process found"
