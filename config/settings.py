"""Settings: one frozen object built from the environment (``IDPHOTO_*``).

Nothing connects at import time; the object is passed into ``create_app(settings)``, the Celery
app factory and the CLI. ``Settings.from_env()`` is the only place that reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def _default_models_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "idphoto" / "models"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


#: The settings that take one of a fixed set of values (checked in `Settings.__post_init__`).
CHOICES: dict[str, tuple[str, ...]] = {
    "segment_precision": ("auto", "int8", "int8+fp32", "fp32", "fp16", "fetched"),
    "device": ("auto", "cpu", "cuda"),
    "storage": ("local", "s3"),
    "job_store": ("auto", "redis", "file"),
    "cache_scope": ("global", "client"),
    "env": ("development", "production"),
}


@dataclass(frozen=True)
class Settings:
    # --- models -------------------------------------------------------------------------------
    models_dir: Path = Path("~/.cache/idphoto/models")
    segment_model: str = "isnet-imgly-medium"  # or any rembg model name (u2net, birefnet-portrait)
    # Which ISNet file a worker runs: auto = int8 on a CPU with AVX-512 VNNI or AMX, fp32 on
    # other CPUs, the fetched fp16 model on CUDA; or force one (fp32 also simulates a CPU
    # without VNNI/AMX). fetched = fp16 = the model as fetched (fp16 weights cast on a CPU).
    segment_precision: str = "auto"  # auto | int8 | int8+fp32 | fp32 | fp16 | fetched
    device: str = "auto"  # auto | cpu | cuda
    ort_threads: int = 0  # intra-op threads per model session; 0 = the process's share of cores
    # ONNX Runtime's intra-op threads spin between operators; off where the model shares its
    # cores with the CPU stages (one machine, no GPU), so its idle threads leave them the cores.
    ort_spinning: bool = True
    cpu_threads: int = 0  # OpenCV threads of a CPU-queue worker's child; 0 = its share of cores
    cuda_device_id: int = 0
    cuda_mem_limit_mb: int = 0  # 0 = no limit
    # --- input limits --------------------------------------------------------------------------
    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    # --- storage -------------------------------------------------------------------------------
    storage: str = "local"  # local | s3
    storage_dir: Path = Path("var/storage")
    s3_endpoint_url: str | None = None  # how the service reaches S3 (may be an internal name)
    s3_public_endpoint_url: str | None = None  # host that presigned links name
    s3_bucket: str = "idphoto"
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    presign_expiry_s: int = 900
    intermediate_expiry_days: int = 1
    # --- queueing ------------------------------------------------------------------------------
    broker_url: str | None = None  # None = embedded (in-process) mode
    redis_url: str = "redis://127.0.0.1:6379/0"
    quorum_queues: bool = False
    # AMQP heartbeat of the workers' broker connection (s; 0 = none). RabbitMQ closes a
    # connection that misses two, and redelivers its unacknowledged messages to other workers:
    # a worker whose host drops off the network gives its task back within about twice this.
    # (Celery's 120 s was cut to RabbitMQ's 60 s by negotiation.) Producers send none.
    broker_heartbeat_s: int = 30
    gpu_queue_max_depth: int = 200  # admission control: new photos get 503 above this
    cpu_queue_max_depth: int = 400  # ... and new photos and re-compositions above this
    task_soft_time_limit_s: int = 120
    task_time_limit_s: int = 180
    worker_max_memory_mb: int = 1500
    worker_proc_alive_timeout_s: int = 120  # a pool child may take this long to load its models
    # A job with no progress for this long is failed with reason "lost" when next polled: its
    # message left the broker without a worker finishing it (a purged queue, a lost broker).
    job_lost_queued_s: int = 3600  # waiting in a queue (a full GPU queue drains well within)
    job_lost_running_s: int = 1800  # inside one stage (time limits, retries and redeliveries)
    # A stage redelivered more often than this (its message keeps killing workers) fails the job
    # with worker_lost. Not lower: unrelated kills (OOM killer, deploys, the kill soak's random
    # SIGKILLs) hit the same message 3 times in a row when one GPU worker restarts onto it.
    max_redeliveries: int = 5
    # Retries of a stage on transient storage errors. Celery draws each delay with full jitter
    # from [0, backoff]: 5 retries could all fire within seconds (a 20 s S3 outage failed 4 of
    # 24 jobs); 8 spans a 30 s outage with high probability.
    task_max_retries: int = 8
    task_retry_backoff_s: int = 2  # first retry delay; doubles each time (with jitter)
    task_retry_backoff_max_s: int = 60
    task_always_eager: bool = False  # run the chain in the calling process (CLI single-process)
    job_store: str = "auto"  # auto | redis | file (auto: redis with a broker, file when embedded)
    job_key_prefix: str = "idphoto"  # namespace of job records in Redis
    job_ttl_s: int = 7 * 24 * 3600  # job records expire this long after their last update
    # Who a photo's matte (and an identical request's outputs) is reused for: "global", anyone
    # who sends the same bytes (fastest; a client can tell from the answer's speed that the
    # photo was sent before, so any holder of a photo can test whether it was); "client",
    # only the same client (the web app's session; an API call without one shares nothing).
    cache_scope: str = "global"  # global | client
    # --- web -----------------------------------------------------------------------------------
    secret_key: str = "dev-insecure-change-me"
    rate_limit: str = "60/minute"  # per client, on job submission/recompose/delete; "" = off
    rate_limit_key_prefix: str = "idphoto"  # namespace of the limiter's counters in Redis
    trusted_proxy_hops: int = 0  # reverse proxies in front of the web app (X-Forwarded-*)
    log_level: str = "INFO"
    env: str = "development"  # development | production (production refuses default secrets)
    public_url: str = "http://127.0.0.1:8000"
    flower_user: str = "admin"
    flower_password: str = "admin"
    flower_url_prefix: str = "flower"
    flower_port: int = 5555

    def __post_init__(self) -> None:
        # Paths are made absolute once, here: a relative default such as ``var/storage`` means
        # the directory the command was started in, for every process and library that later
        # gets it (Flask's ``send_file`` resolves relative paths against the ``web`` package,
        # and ``idphoto serve`` starts its children in another directory).
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                object.__setattr__(self, f.name, Path(os.path.abspath(value.expanduser())))
        # Every setting with a fixed set of values is checked here, once, for every entry point:
        # a typo fails at start with the variable's name, not inside the first job.
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"IDPHOTO_{name.upper()} must be one of {', '.join(allowed)}, not {value!r}"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"models_dir": _default_models_dir(env)}
        for f in fields(cls):
            key = "IDPHOTO_" + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            default = f.default
            if isinstance(default, bool):
                values[f.name] = _bool(raw)
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw or None if default is None else raw
        values.update(overrides)
        return cls(**values)

    @property
    def embedded(self) -> bool:
        return not self.broker_url
