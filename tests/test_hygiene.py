"""The next run clears what an interrupted run left: its processes and its vhosts, and nothing of
a run that is still going."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests import hygiene


def _sleeper(owner: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, hygiene.OWNER_VAR: owner}
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env=env, start_new_session=True
    )


def _wait_gone(proc: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.05)
    return False


def test_this_run_is_marked_and_alive() -> None:
    assert os.environ[hygiene.OWNER_VAR] == hygiene.token()


def test_orphans_of_a_finished_run_are_killed_and_this_runs_are_not() -> None:
    # a finished run: pid 1 is alive, but with another start time than this token says
    gone = _sleeper(f"1:{int(hygiene._start_time(1) or 0) + 12345}")
    ours = _sleeper(os.environ[hygiene.OWNER_VAR])
    try:
        time.sleep(0.3)  # until the children have exec'd with their environments
        assert gone.pid in hygiene.orphans() and ours.pid not in hygiene.orphans()
        assert gone.pid in hygiene.reap()
        assert _wait_gone(gone)
        assert ours.poll() is None
    finally:
        for proc in (gone, ours):
            proc.kill()
            proc.wait()


def test_stale_vhosts_are_those_whose_maker_is_gone() -> None:
    mine = hygiene.vhost_name("test")
    assert str(os.getpid()) in mine
    dead = "idphoto-web-999999999-0123456789"
    old = "idphoto-test-0123456789"  # made before vhosts carried a pid
    others = ["/", "production", "idphoto-bench-01234567", "idphoto-test-x"]
    assert hygiene.stale_vhosts([mine, dead, old, *others]) == [dead, old]
