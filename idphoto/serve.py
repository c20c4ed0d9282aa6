"""The whole service on one machine without docker: web app, GPU worker, CPU worker and Flower.

``run_topology(settings, port=8000)`` starts each as a child process against the broker, Redis
and object store that ``settings`` names, passing the settings down as ``IDPHOTO_*`` variables,
and supervises them: Ctrl-C (SIGINT) or SIGTERM stops them all (warm shutdown first, SIGKILL
after a grace period), and if one child dies the others are stopped too.

- web: gunicorn with gevent workers (``web:create_app()``, `config.gunicorn`, Prometheus
  multiprocess mode), or werkzeug's threaded server when gunicorn is not installed;
- workers: ``idphoto worker --queues gpu -c 1`` and ``--queues cpu``, named ``gpu@host`` and
  ``cpu@host``;
- Flower: ``celery flower`` with basic auth and ``settings.flower_url_prefix``, on
  ``settings.flower_port``.

``python -m idphoto.serve --port 8000`` runs the same from a shell.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import FrameType

from config.settings import Settings
from web.defaults import InsecureDefaults, check_defaults

logger = logging.getLogger("idphoto.serve")

#: Seconds each child gets to finish after SIGTERM before it is killed.
GRACE_S = 15.0
_REPO = Path(__file__).resolve().parents[1]


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the topology's environment


def settings_environ(settings: Settings) -> dict[str, str]:
    """``IDPHOTO_*`` variables from which ``Settings.from_env()`` rebuilds ``settings``."""
    env: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        env["IDPHOTO_" + f.name.upper()] = text
    return env


def worker_argv(queue: str, concurrency: int, hostname: str | None = None) -> list[str]:
    """The command that runs one worker consuming ``queue``, named ``{queue}@host`` (or
    ``hostname``) so that Flower and ``celery inspect`` tell the workers apart."""
    hostname = hostname or f"{queue}@%h"
    return [
        sys.executable,
        "-m",
        "idphoto.cli",
        "worker",
        "--queues",
        queue,
        "-c",
        str(concurrency),
        "--hostname",
        hostname,
    ]


def web_argv(host: str, port: int) -> list[str]:
    """gunicorn with the app's own settings (`config.gunicorn`: gevent workers, which slow
    clients cannot starve, their number and timeouts; one place for this, the Dockerfile and
    compose), or werkzeug's threaded server where gunicorn is not installed."""
    if importlib.util.find_spec("gunicorn") is not None and importlib.util.find_spec("gevent"):
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:config.gunicorn",
            "--bind",
            f"{host}:{port}",
            "web:create_app()",
        ]
    return [sys.executable, "-m", "idphoto.serve", "web-dev", "--host", host, "--port", str(port)]


def flower_argv(settings: Settings, host: str) -> list[str]:
    """Flower's command; warns about (or, in production, refuses) the default login."""
    check_defaults(settings, secret=False, flower=True)
    prefix = settings.flower_url_prefix.strip("/")
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "idphoto.celery_app",
        "flower",
        f"--address={host}",
        f"--port={settings.flower_port}",
    ]
    if prefix:
        argv.append(f"--url_prefix={prefix}")
    return argv


def flower_env(settings: Settings) -> dict[str, str]:
    """Flower's login, for its environment (``FLOWER_BASIC_AUTH``, which Flower reads like its
    ``--basic-auth`` option): on the command line it would show in ``ps`` to every user of the
    host."""
    return {"FLOWER_BASIC_AUTH": f"{settings.flower_user}:{settings.flower_password}"}


def _start(child: Child, env: Mapping[str, str]) -> None:
    logger.info("starting %s: %s", child.name, " ".join(child.argv[:6]))
    # A session of its own: the terminal's Ctrl-C reaches only this supervisor, which then stops
    # the children in order instead of each of them reacting on its own.
    child.process = subprocess.Popen(
        child.argv, env={**env, **child.env}, cwd=_REPO, start_new_session=True
    )


def _stop(children: Sequence[Child]) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        child.process.send_signal(signal.SIGTERM)  # warm shutdown for celery and gunicorn
    deadline = time.monotonic() + GRACE_S
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s: killing it", child.name, GRACE_S)
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


class _Stop(Exception):
    pass


def colocated_env(settings: Settings) -> dict[str, dict[str, str]]:
    """Extra environment per worker when the model runs on this machine's CPU beside the CPU
    stages (no CUDA): the CPU worker keeps to one OpenCV thread and the model's idle threads
    do not spin, so the two processes do not fight over the same cores. With a GPU, none."""
    from pipeline.runtime import providers_for

    if providers_for(settings.device)[0] != "CPUExecutionProvider":
        return {}
    return {
        "worker-gpu": {"IDPHOTO_ORT_SPINNING": "0"},
        "worker-cpu": {"IDPHOTO_CPU_THREADS": str(settings.cpu_threads or 1)},
    }


def run_topology(
    settings: Settings,
    *,
    port: int,
    with_flower: bool = True,
    host: str = "127.0.0.1",
    cpu_concurrency: int = 1,
    web_workers: int = 2,
) -> int:
    """Run web + gpu worker + cpu worker (+ Flower) until Ctrl-C/SIGTERM or a child dies.

    Returns 0 after a requested stop, else the exit status of the child that died first.
    """
    from storage import make_store

    try:
        check_defaults(settings, flower=False)
        if with_flower and not settings.embedded:
            flower_args = flower_argv(settings, host)
    except InsecureDefaults as exc:
        print(f"idphoto: {exc}", file=sys.stderr, flush=True)
        return 2
    if settings.public_url == Settings().public_url:  # the default: name where we really listen
        where = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        settings = replace(settings, public_url=f"http://{where}:{port}")
    make_store(settings).ensure_ready()  # the bucket (or directory) before anyone uses it
    metrics_dir = tempfile.mkdtemp(prefix="idphoto-metrics-")
    env = {**os.environ, **settings_environ(settings), "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    children = [
        Child("web", web_argv(host, port)),
        Child("worker-gpu", worker_argv("gpu", 1)),
        Child("worker-cpu", worker_argv("cpu", cpu_concurrency)),
    ]
    extra_env = colocated_env(settings)
    extra_env.setdefault("web", {})["IDPHOTO_WEB_WORKERS"] = str(web_workers)  # config.gunicorn
    for child in children:
        child.env = extra_env.get(child.name, {})
    if with_flower:
        if settings.embedded:
            logger.warning("Flower needs a broker: not started in embedded mode")
        else:
            children.append(Child("flower", flower_args, env=flower_env(settings)))

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        for child in children:
            _start(child, env)
        flower_running = any(c.name == "flower" for c in children)
        print(
            f"idphoto: web on http://{host}:{port}/"
            + (
                f", Flower on http://{host}:{settings.flower_port}/"
                f"{settings.flower_url_prefix.strip('/')}"
                if flower_running
                else ""
            )
            + (" (embedded: local storage in " + str(settings.storage_dir) + ")")
            * settings.embedded
            + " (Ctrl-C stops everything)",
            file=sys.stderr,
            flush=True,
        )
        while True:
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    logger.error("%s exited with status %s: stopping the others", child.name, code)
                    status = code or 1
                    raise _Stop()
            time.sleep(0.5)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        try:
            _stop(children)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _remove_tree(metrics_dir)
    return status


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _run_dev_web(host: str, port: int) -> int:
    """The web app on werkzeug's threaded server (when gunicorn is not installed)."""
    from werkzeug.serving import run_simple

    from web import create_app

    run_simple(host, port, create_app(), threaded=True, use_reloader=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m idphoto.serve", description=__doc__)
    parser.add_argument("mode", nargs="?", default="all", choices=("all", "web-dev"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-flower", action="store_true")
    parser.add_argument("--cpu-concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.mode == "web-dev":
        return _run_dev_web(args.host, args.port)
    return run_topology(
        Settings.from_env(),
        port=args.port,
        with_flower=not args.no_flower,
        host=args.host,
        cpu_concurrency=args.cpu_concurrency,
    )


if __name__ == "__main__":
    sys.exit(main())
