"""docker-compose.yml and the Dockerfile: no engine runs here, so check their structure and that
every cross-reference resolves (services, env names, volumes, commands the project really has)."""

from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_present(compose):
    services = compose["services"]
    for name in (
        "rabbitmq",
        "redis",
        "minio",
        "storage-init",
        "web",
        "worker-gpu",
        "worker-cpu",
        "flower",
    ):
        assert name in services, name
    assert "management" in services["rabbitmq"]["image"]


def test_depends_on_and_volumes_resolve(compose):
    services = compose["services"]
    declared = set(compose.get("volumes", {}))
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if not src.startswith((".", "/")):
                assert src in declared, f"{name} uses undeclared volume {src}"


def test_idphoto_env_names_are_real_settings(compose):
    known = {"IDPHOTO_" + f.name.upper() for f in fields(Settings)}
    for name in ("web", "worker-gpu", "worker-cpu", "flower"):
        env = compose["services"][name]["environment"]
        for key in env:
            if key.startswith("IDPHOTO_"):
                assert key in known, f"{name}: {key} is not a Settings field"
    s = Settings.from_env({k: str(v) for k, v in compose["services"]["web"]["environment"].items()})
    assert s.storage == "s3" and s.broker_url.startswith("amqp://")
    assert s.s3_public_endpoint_url and s.s3_endpoint_url != s.s3_public_endpoint_url


def test_commands_exist(compose):
    from idphoto.cli import build_parser

    parser = build_parser()
    for name in ("worker-gpu", "worker-cpu", "flower"):
        cmd = compose["services"][name]["command"]
        assert cmd[0] == "idphoto"
        parser.parse_args(cmd[1:])  # SystemExit if the subcommand or an option does not exist
    gpu = compose["services"]["worker-gpu"]
    assert gpu["command"][gpu["command"].index("--queues") + 1] == "gpu"
    assert gpu["command"][gpu["command"].index("--concurrency") + 1] == "1"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    cpu = compose["services"]["worker-cpu"]["command"]
    assert cpu[cpu.index("--queues") + 1] == "cpu"
    web = compose["services"]["web"]["command"]
    assert web[0] == "gunicorn"
    conf = web[web.index("-c") + 1]  # the app's own gunicorn settings: gevent workers
    assert conf == "python:config.gunicorn"
    assert importlib.import_module(conf.split(":", 1)[1]).worker_class == "gevent"
    module, call = web[-1].split(":")
    factory = getattr(importlib.import_module(module), call.split("(")[0])
    assert callable(factory)


def test_bucket_setup_is_the_apps_own_command_run_first(compose):
    """The bucket is set up by ``idphoto storage init`` (the app's own rules, tested against a
    real S3 server in tests/storage), once, before every service that uses it."""
    from idphoto.cli import build_parser

    services = compose["services"]
    init = services["storage-init"]
    assert init["command"] == ["idphoto", "storage", "init"]
    build_parser().parse_args(init["command"][1:])
    assert init["environment"] == services["web"]["environment"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in ("web", "worker-gpu", "worker-cpu", "flower"):
        dep = services[name]["depends_on"]["storage-init"]
        assert dep["condition"] == "service_completed_successfully", name


def test_dockerfile_copies_existing_paths_and_bakes_models():
    text = (ROOT / "Dockerfile").read_text()
    for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"Dockerfile copies missing {part}"
    assert "idphoto models fetch" in text


def test_workers_restart_but_give_up_when_they_cannot_start(compose) -> None:
    """A worker without its models exits 78 at start (tests/tasks/test_worker_start.py):
    compose restarts a crashed worker, a bounded number of times, so one that cannot start ends
    up visibly "Exited (78)" instead of looping; the web app and Flower always come back."""
    from tasks.worker import EXIT_NO_MODELS

    assert EXIT_NO_MODELS == 78
    services = compose["services"]
    for name in ("worker-gpu", "worker-cpu"):
        policy = services[name].get("restart", "")
        assert re.fullmatch(r"on-failure:[1-9]\d?", policy), (name, policy)
    for name in ("web", "flower"):
        assert services[name].get("restart") == "unless-stopped", name
