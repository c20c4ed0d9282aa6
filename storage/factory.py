"""Choose the blob store backend from settings: the one place that knows both backends."""

from __future__ import annotations

from config.settings import Settings
from storage.interface import BlobStore
from storage.local import LocalBlobStore
from storage.s3 import S3BlobStore


def output_expiry_days(job_ttl_s: int) -> int:
    """Days after which S3 expires job outputs: the job records' lifetime rounded up to whole
    days, plus one, so a lifecycle rule never removes the files of a job whose record still
    links them (a record lives ``job_ttl_s`` after its last write, which follows the outputs').
    0 (no rule) when records never expire."""
    if job_ttl_s <= 0:
        return 0
    return -(-job_ttl_s // 86400) + 1


def make_store(settings: Settings) -> BlobStore:
    """The `BlobStore` ``settings.storage`` names ("local" or "s3"). Connects to nothing:
    call ``ensure_ready()`` once at start-up (CLI, worker init) to create the bucket."""
    if settings.storage == "local":
        return LocalBlobStore(
            settings.storage_dir,
            secret_key=settings.secret_key,
            public_url=settings.public_url,
            default_expiry_s=settings.presign_expiry_s,
        )
    if settings.storage == "s3":
        return S3BlobStore(
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            default_expiry_s=settings.presign_expiry_s,
            intermediate_expiry_days=settings.intermediate_expiry_days,
            output_expiry_days=output_expiry_days(settings.job_ttl_s),
        )
    raise ValueError(f"unknown storage backend {settings.storage!r} (expected 'local' or 's3')")
