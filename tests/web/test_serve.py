"""`idphoto.serve`: the pieces of the topology runner that need no running service (the whole
topology runs, and is stopped with SIGINT, in the `stack` fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

from config.settings import Settings
from idphoto.serve import flower_argv, settings_environ, web_argv, worker_argv


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
    for queue in ("gpu", "cpu"):
        argv = worker_argv(queue, 1)
        assert argv[0] == sys.executable and queue in argv
        assert f"{queue}@%h" in argv
    flower = flower_argv(settings, "0.0.0.0")
    assert "--basic-auth=ops:s3cret" in flower
    assert "--url_prefix=flower" in flower and "--port=5566" in flower
