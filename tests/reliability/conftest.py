"""The reliability tests' service: a live web app and supervised workers on real backends.

Built from the shared fixtures (``s3_server``, ``rabbitmq_vhost``, ``redis_url``,
``start_worker`` in tests/conftest.py; ``live_app`` in tests/web/conftest.py), once per session:

- a RabbitMQ vhost of its own (quorum queues, as docker-compose runs them), a Redis key prefix
  and a bucket of its own on the session's radosgw;
- a GPU worker (``-Q gpu -c 1``) and two CPU workers (``-Q cpu -c 1`` each), every one kept
  running by a `harness.Supervised` (a new incarnation when its parent process dies);
- a gunicorn web app with those settings (rate limit out of the way: the corpus posts dozens).

``warm_photos``: the two sample portraits, tagged with EXIF GPS, XMP and a comment, each made
once (segmentation), so later jobs on them are composite-only and take a fraction of a second.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from config.settings import Settings
from idphoto.serve import settings_environ
from tasks.app import connect
from tasks.jobs import get_job, submit_job
from tasks.services import Services
from tests.conftest import S3Server
from tests.reliability import harness
from tests.web.conftest import live_app

#: Jobs on a cached matte take well under a second; a fresh photo a few seconds (ISNet on CPU).
JOB_TIMEOUT_S = 120


@dataclass
class Cluster:
    settings: Settings
    worker_env: dict[str, str]
    s3: S3Server
    gpu: harness.Supervised
    cpu: list[harness.Supervised]
    url: str
    web_log: Path
    tag: str
    created: list[str] = field(default_factory=list)  # every job id the tests were given
    services: Services = field(init=False)  # what the tests submit through, as the web app does

    def __post_init__(self) -> None:
        self.services = connect(self.settings)

    @property
    def workers(self) -> list[harness.Supervised]:
        return [self.gpu, *self.cpu]

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1{path}"

    def submit(
        self,
        data: bytes,
        spec: str,
        background: str | None = None,
        options: dict | None = None,
        settings: Settings | None = None,
    ) -> str:
        """A job through `tasks.jobs.submit_job`, as the web app submits it."""
        services = connect(settings) if settings is not None else self.services
        job_id = submit_job(services, data, spec=spec, background=background, options=options)
        self.created.append(job_id)
        return job_id

    def post(
        self,
        data: bytes,
        *,
        spec: str = "us-passport",
        background: str | None = None,
        filename: str = "photo.jpg",
        content_type: str = "image/jpeg",
        timeout: float = 60,
    ) -> requests.Response:
        """POST /api/v1/jobs, multipart, as a script would."""
        form = {"spec": spec, **({"background": background} if background else {})}
        files = {"photo": (filename, data, content_type)}
        response = requests.post(self.api("/jobs"), data=form, files=files, timeout=timeout)
        if response.status_code == 202:
            self.created.append(response.json()["job_id"])
        return response

    def get(self, job_id: str) -> dict | None:
        return get_job(self.services, job_id)

    def wait(self, ids: list[str], timeout: float = JOB_TIMEOUT_S) -> dict[str, dict | None]:
        return harness.wait_terminal(self.get, ids, timeout)

    def client(self) -> Any:
        return self.s3.client()

    def listing(self, prefix: str = "") -> list[str]:
        return harness.list_bucket(self.client(), self.settings.s3_bucket, prefix)

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.settings.s3_bucket, Key=key)["Body"].read()

    def ping(self, timeout: float = 3.0) -> dict[str, Any]:
        """``celery inspect ping`` over the broker: node name -> reply, for every worker."""
        app = self.services.celery
        with app.connection_for_write() as conn:  # a new connection: the pooled one may be stale
            replies = app.control.ping(timeout=timeout, connection=conn) or []
        return {name: reply for item in replies for name, reply in item.items()}

    def wait_healthy(self, timeout: float = 120) -> None:
        """Every role's current incarnation ready and answering ``inspect ping``."""
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            assert worker.wait_ready(max(1.0, deadline - time.monotonic())), worker.role
        names: set[str] = set()
        while time.monotonic() < deadline:
            names = {n.split("@")[0] for n in self.ping()}
            want = {w.current.name.split("@")[0] for w in self.workers}
            if want <= names:
                return
            time.sleep(0.5)
        pytest.fail(f"workers not answering ping: {names}")


def cluster_settings(
    s3_server: S3Server, broker_url: str, redis_url: str, tag: str, **overrides: Any
) -> Settings:
    """The session's settings (also the base of the fault tests' own workers)."""
    values: dict[str, Any] = dict(
        broker_url=broker_url,
        quorum_queues=True,
        redis_url=redis_url,
        job_key_prefix=f"idphoto-rel-{tag}",
        storage="s3",
        s3_endpoint_url=s3_server.endpoint,
        s3_public_endpoint_url=s3_server.public_endpoint,
        s3_bucket=f"rel-{tag}",
        s3_region=s3_server.region,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        device="cpu",
        secret_key="rel-test-" + uuid.uuid4().hex,
        rate_limit="100000/minute",
        rate_limit_key_prefix=f"idphoto-rel-{tag}",
        # The default retry budget, spelled out (test_faults_storage.py rides a 30 s outage on
        # it): countdowns drawn from [0, 2], [0, 4], [0, 8] ... [0, 60] s (full jitter).
        task_max_retries=8,
        task_retry_backoff_s=2,
        flower_password="flower-" + uuid.uuid4().hex,
    )
    values.update(overrides)
    return Settings.from_env(**values)


@pytest.fixture(scope="session")
def cluster(
    s3_server: S3Server,
    rabbitmq_vhost: Any,
    redis_url: str,
    start_worker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    tag = uuid.uuid4().hex[:8]
    settings = cluster_settings(s3_server, rabbitmq_vhost(), redis_url, tag)
    from storage import make_store

    make_store(settings).ensure_ready()  # the bucket, as `idphoto serve` makes it at start
    env = settings_environ(settings)

    def spawner(queues: str) -> Any:
        return lambda name: start_worker(env, queues, name, 1)

    gpu = harness.Supervised("gpu", spawner("gpu"), tag, ready=(" ready.", "loaded"))
    cpu = [harness.Supervised(role, spawner("cpu"), tag) for role in ("cpua", "cpub")]
    web_dir = tmp_path_factory.mktemp("web")
    began = time.monotonic()
    try:
        for worker in (gpu, *cpu):
            worker.start(wait=False)
        with live_app(settings, web_dir) as url:
            logs = sorted(web_dir.glob("gunicorn-*.log"))
            cluster = Cluster(
                settings=settings,
                worker_env=env,
                s3=s3_server,
                gpu=gpu,
                cpu=cpu,
                url=url,
                web_log=logs[-1],
                tag=tag,
            )
            cluster.wait_healthy()
            print(
                f"\nradosgw started in {s3_server.startup_s:.1f} s; web app and workers ready "
                f"in {time.monotonic() - began:.1f} s"
            )
            yield cluster
    finally:
        for worker in (gpu, *cpu):
            worker.stop()
        _cleanup(settings, s3_server, redis_url)


def _cleanup(settings: Settings, s3_server: S3Server, redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{settings.job_key_prefix}:*"):
        client.delete(key)
    s3 = s3_server.client()
    try:
        for key in harness.list_bucket(s3, settings.s3_bucket):
            s3.delete_object(Bucket=settings.s3_bucket, Key=key)
        s3.delete_bucket(Bucket=settings.s3_bucket)
    except Exception:  # radosgw may be the thing a failed test left down
        pass


@pytest.fixture(scope="session")
def warm_photos(cluster: Cluster) -> dict[str, bytes]:
    """name -> bytes of each tagged sample portrait, its matte made (one job each, done)."""
    photos = {name: harness.tagged_portrait(name, cluster.tag) for name in harness.PHOTOS}
    began = time.monotonic()
    ids = {name: cluster.submit(data, "us-passport") for name, data in photos.items()}
    records = cluster.wait(list(ids.values()))
    assert not harness.check_jobs(records), records
    print(f"\nwarm photos: {len(photos)} mattes made in {time.monotonic() - began:.1f} s")
    return photos
