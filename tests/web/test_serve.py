"""`idphoto.serve`: the pieces of the topology runner that need no running service (the whole
topology runs, and is stopped with SIGINT, in the `stack` fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

from config.settings import Settings
from idphoto.serve import flower_argv, flower_env, settings_environ, web_argv, worker_argv


def test_settings_travel_to_children_through_the_environment() -> None:
    settings = Settings(
        broker_url="amqp://u:p@rabbit:5672/vh",
        s3_endpoint_url=None,
        storage="s3",
        storage_dir=Path("/srv/idphoto"),
        quorum_queues=True,
        max_upload_bytes=12345,
        rate_limit="",
        models_dir=Path("/models"),
    )
    env = settings_environ(settings)
    assert all(key.startswith("IDPHOTO_") for key in env)
    assert Settings.from_env(env) == settings


def test_commands() -> None:
    settings = Settings(
        flower_user="ops", flower_password="s3cret", flower_url_prefix="/flower/", flower_port=5566
    )
    web = web_argv("127.0.0.1", 8123)
    assert web[:3] == [sys.executable, "-m", "gunicorn"] and web[-1] == "web:create_app()"
    assert "127.0.0.1:8123" in web
    assert web[web.index("-c") + 1] == "python:config.gunicorn"
    # Workers and timeouts come from config.gunicorn alone (serve sets IDPHOTO_WEB_WORKERS).
    assert not any(a.startswith(("--workers", "--graceful-timeout", "--timeout")) for a in web)
    for queue in ("gpu", "cpu"):
        argv = worker_argv(queue, 1)
        assert argv[0] == sys.executable and queue in argv
        assert f"{queue}@%h" in argv
    named = worker_argv("gpu", 1, hostname="gpu3-x@%h")  # a supervisor's numbered incarnation
    assert "gpu3-x@%h" in named and "gpu@%h" not in named
    flower = flower_argv(settings, "0.0.0.0")
    assert not any("s3cret" in a for a in flower), "the password would show in ps"
    assert flower_env(settings) == {"FLOWER_BASIC_AUTH": "ops:s3cret"}
    assert "--url_prefix=flower" in flower and "--port=5566" in flower


def test_colocated_workers_do_not_fight_over_the_cores() -> None:
    """One machine, no CUDA: the CPU worker keeps to one OpenCV thread and the model's idle
    threads do not spin; the settings reach the pool children through the environment."""
    from idphoto.serve import colocated_env
    from pipeline.runtime import session_options

    settings = Settings(device="cpu")
    extra = colocated_env(settings)
    gpu = Settings.from_env({**settings_environ(settings), **extra["worker-gpu"]})
    cpu = Settings.from_env({**settings_environ(settings), **extra["worker-cpu"]})
    assert gpu.ort_spinning is False and gpu.cpu_threads == 0
    assert cpu.cpu_threads == 1 and cpu.ort_spinning is True
    opts = session_options(2, spinning=gpu.ort_spinning)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == 2
    # An operator's own choice wins.
    assert colocated_env(Settings(device="cpu", cpu_threads=3))["worker-cpu"] == {
        "IDPHOTO_CPU_THREADS": "3"
    }
