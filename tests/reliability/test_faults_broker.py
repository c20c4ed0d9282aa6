"""RabbitMQ restarted mid-run (``rabbitmqctl stop_app`` ... ``start_app``): the workers and the
web app reconnect by themselves and every accepted job completes.

A client posts jobs to the live API the whole time (composite-only jobs on the warm photos, a
new spec and background each). Before the stop a burst leaves jobs queued and running; while the
broker is down the API answers ``503`` with ``Retry-After`` (never another 5xx); after the
restart the same web process accepts jobs again and the same worker processes (no restart by the
supervisor) finish every job accepted before, during and after the outage.

This stops the machine's RabbitMQ for every vhost (other sessions' tests see it too): the outage
is kept to a few seconds, and ``start_app`` runs whatever happens (`harness.rabbitmq_app_stopped`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.reliability import harness

pytestmark = pytest.mark.integration

OUTAGE_S = 4.0
BURST = 8
AFTER_RESTART = 5


@dataclass
class Client:
    """Posts a job every ``interval_s`` (after a 503: every 0.5 s) until stopped."""

    cluster: Any
    photos: list[bytes]
    interval_s: float = 0.3
    answers: list[tuple[float, int, str, str | None]] = field(default_factory=list)
    accepted: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    maker: harness.Requests = field(default_factory=harness.Requests)

    def post_one(self) -> int:
        spec, background = self.maker.next()
        photo = self.photos[len(self.answers) % len(self.photos)]
        try:
            response = self.cluster.post(photo, spec=spec, background=background, timeout=30)
        except requests.RequestException as exc:
            self.answers.append((time.monotonic(), 0, type(exc).__name__, None))
            return 0
        body = (
            response.json()
            if response.headers.get("Content-Type", "").startswith("application/json")
            else {}
        )
        self.answers.append(
            (
                time.monotonic(),
                response.status_code,
                body.get("error", ""),
                response.headers.get("Retry-After"),
            )
        )
        if response.status_code == 202:
            self.accepted.append((time.monotonic(), body["job_id"]))
        return response.status_code

    def run(self) -> None:
        while not self.stop.is_set():
            status = self.post_one()
            self.stop.wait(0.5 if status != 202 else self.interval_s)


def test_broker_restart_mid_run(cluster: Any, warm_photos: dict[str, bytes]) -> None:
    cluster.wait_healthy()
    parents = {w.role: w.parent for w in cluster.workers}
    client = Client(cluster, list(warm_photos.values()))
    thread = threading.Thread(target=client.run, daemon=True)
    for _ in range(BURST):  # queued and running when the broker goes
        assert client.post_one() == 202, client.answers[-1]
    thread.start()
    began = time.monotonic()
    try:
        with harness.rabbitmq_app_stopped() as stop_s:
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
        up_at = time.monotonic()
        print(f"\nstop_app took {stop_s:.1f} s; down {up_at - down_at:.1f} s (start_app incl.)")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if sum(1 for t, _ in client.accepted if t > up_at) >= AFTER_RESTART:
                break
            time.sleep(0.2)
    finally:
        client.stop.set()
        thread.join(timeout=60)
    ids = [job_id for _, job_id in client.accepted]
    records = cluster.wait(ids, timeout=120)
    total = time.monotonic() - began
    statuses: dict[int, int] = {}
    for _, status, _, _ in client.answers:
        statuses[status] = statuses.get(status, 0) + 1
    first_after = min((t for t, _ in client.accepted if t > up_at), default=None)
    print(
        f"answers {statuses}; {len(ids)} accepted ({sum(1 for t, _ in client.accepted if t > up_at)}"
        f" after the restart, the first {first_after - up_at if first_after else -1:.1f} s after"
        f" start_app); all terminal {total:.1f} s after the stop"
    )
    problems = harness.check_jobs(records)
    # Stages cancelled by the connection loss ran again after it: still one object per key.
    problems += harness.check_outputs(
        records, cluster.listing("jobs/"), all_jobs=cluster.created, read=cluster.read
    )
    assert not problems, "\n".join(problems)
    for _, status, error, retry_after in client.answers:
        assert status in (202, 503), (status, error)
        if status == 503:
            assert error in ("unavailable", "overloaded") and retry_after and int(retry_after) > 0
    assert statuses.get(503, 0) >= 1  # the web app noticed the outage and said so
    assert sum(1 for t, _ in client.accepted if t > up_at) >= AFTER_RESTART
    # The same worker processes reconnected: no supervisor restart was needed.
    assert {w.role: w.parent for w in cluster.workers} == parents
    cluster.wait_healthy()
