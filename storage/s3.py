"""Blob store on any S3 API server (AWS S3, Ceph radosgw, MinIO, ...), through boto3.

Two clients: ``_client`` talks to ``endpoint_url`` (which may be an internal name such as
``http://rgw:7480``), ``_presign_client`` only signs links for ``public_endpoint_url``, the host
the user's browser will contact. SigV4 signs the Host header, so a link signed for the internal
name fails with 403 when fetched through the public one; presigning makes no network call. A third,
impatient client (one attempt, short timeouts) serves `ping`, so /readyz answers in seconds
instead of waiting out the data client's retries.

botocore errors never leave this module: see `_translate`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from storage.errors import ObjectNotFound, StorageError, StorageUnavailable
from storage.keys import content_disposition, resolve_expiry, validate_key, validate_prefix

logger = logging.getLogger(__name__)

#: DeleteObjects accepts at most this many keys per request.
_DELETE_BATCH = 1000
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError", "Throttling"}
)
_UNSUPPORTED_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "XNotImplemented"})


def _error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def _translate(exc: Exception, action: str, key: str | None) -> StorageError:
    """The storage error for a botocore exception raised while doing ``action`` on ``key``."""
    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if key is not None and code in _NOT_FOUND_CODES:
            return ObjectNotFound(key)
        if status >= 500 or code in _TRANSIENT_CODES:
            return StorageUnavailable(f"{action}: S3 answered {status} {code}: {message}")
        return StorageError(f"{action}: S3 answered {status} {code}: {message}")
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return StorageUnavailable(f"{action}: {exc}")
    return StorageError(f"{action}: {exc}")


class S3BlobStore:
    """`BlobStore` in one bucket of an S3 API server. Thread-safe (boto3 clients are)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        public_endpoint_url: str | None = None,
        bucket: str,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        default_expiry_s: int = 900,
        intermediate_prefixes: Sequence[str] = ("inputs/", "masks/", "mattes/"),
        intermediate_expiry_days: int = 1,
        output_prefixes: Sequence[str] = ("jobs/", "batches/"),
        output_expiry_days: int = 0,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_attempts: int = 5,
    ) -> None:
        """``endpoint_url`` None means AWS itself; credentials None mean boto3's usual chain.

        ``connect_timeout``, ``read_timeout`` and ``max_attempts`` (total attempts, standard
        retry mode) apply to data operations; tests lower them.
        """
        if len(bucket) < 3:
            raise ValueError(f"bucket names have at least 3 characters: {bucket!r}")
        for prefix in (*intermediate_prefixes, *output_prefixes):
            validate_prefix(prefix, allow_empty=False)
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url or endpoint_url
        self.default_expiry_s = resolve_expiry(default_expiry_s, default_expiry_s)
        self.intermediate_prefixes = tuple(intermediate_prefixes)
        self.intermediate_expiry_days = intermediate_expiry_days
        self.output_prefixes = tuple(output_prefixes)
        self.output_expiry_days = output_expiry_days
        # A private session: boto3's default session is shared and not thread-safe to set up.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=self._config(connect_timeout, read_timeout, max_attempts),
        )
        self._presign_client: Any = session.client(
            "s3",
            endpoint_url=self.public_endpoint_url,
            config=self._config(connect_timeout, read_timeout, max_attempts),
        )
        self._ping_client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=self._config(min(connect_timeout, 2), min(read_timeout, 5), 1),
        )

    def _config(self, connect_timeout: float, read_timeout: float, max_attempts: int) -> Config:
        return Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # botocore >= 1.36 otherwise adds CRC trailers (aws-chunked uploads) that many S3
            # servers other than AWS reject; checksums are sent only where the API demands one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r})"

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, action, key) from exc

    # -- lifecycle -------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Create the bucket, make it private and expire intermediates. Safe to run repeatedly
        and from several processes at once."""
        with self._errors(f"ensure_ready({self.bucket})"):
            self._create_bucket()
            self._block_public_access()
            self._expire_intermediates()

    def _create_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code, status = _error_code(exc)
            if status != 404 and code not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # AWS refuses an explicit us-east-1 constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
            logger.info("created bucket %s", self.bucket)
        except ClientError as exc:
            code, _ = _error_code(exc)
            if code == "BucketAlreadyOwnedByYou":  # another worker won the race
                return
            if code == "BucketAlreadyExists":
                raise StorageError(
                    f"bucket name {self.bucket!r} is taken by another account"
                ) from exc
            raise

    def _block_public_access(self) -> None:
        """Objects are reached only through presigned links, never anonymously.

        ``BlockPublicAcls`` stays off on purpose: radosgw (15.x, 16.2 measured here) then refuses
        every PutObject from the bucket owner with 403 (ceph/ceph PR #30033 discussion).
        ``IgnorePublicAcls`` already makes any public ACL ineffective, so the bucket stays private.
        """
        try:
            self._client.put_public_access_block(
                Bucket=self.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": False,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        except ClientError as exc:
            code, status = _error_code(exc)
            if code not in _UNSUPPORTED_CODES and status not in (405, 501):
                raise
            logger.info("S3 server does not support public access blocks (%s)", code)

    def _expire_intermediates(self) -> None:
        """Inputs and intermediates (masks, mattes) expire after N days by lifecycle rule, and
        job outputs after M days (a backstop: deleting a job deletes its outputs, but a job
        whose record expired leaves them behind; M is set from the records' lifetime).

        The rules replace the bucket's lifecycle configuration: the bucket belongs to the app.
        A server that rejects lifecycle rules gets a warning, not a failure: the app works, the
        bucket just keeps growing.
        """
        expiry = [(p, self.intermediate_expiry_days) for p in self.intermediate_prefixes]
        expiry += [(p, self.output_expiry_days) for p in self.output_prefixes]
        rules: list[dict[str, Any]] = [
            {
                "ID": "idphoto-expire-" + prefix.strip("/").replace("/", "-"),
                "Filter": {"Prefix": prefix},
                "Status": "Enabled",
                "Expiration": {"Days": days},
            }
            for prefix, days in expiry
            if days > 0
        ]
        if not rules:
            return
        try:
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
            )
        except ClientError as exc:
            code, status = _error_code(exc)
            if status >= 500 and code not in _UNSUPPORTED_CODES:
                raise
            logger.warning(
                "S3 server rejected the lifecycle rules for bucket %s (%s %s): objects "
                "under %s will not expire",
                self.bucket,
                status,
                code,
                ", ".join(r["Filter"]["Prefix"] for r in rules),
            )

    def ping(self) -> None:
        """One quick HEAD of the bucket; any failure (down, bucket missing, bad credentials)
        means not ready."""
        try:
            with self._errors(f"ping({self.bucket})"):
                self._ping_client.head_bucket(Bucket=self.bucket)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc

    # -- objects ---------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        validate_key(key)
        with self._errors("get", key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_absent: bool = False,
    ) -> bool:
        validate_key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        # If-None-Match on PUT: AWS S3 (since 2024), MinIO and Ceph's radosgw honour it; radosgw
        # 16 not in a bucket with versioning on (the service's own buckets have none).
        kwargs: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        with self._errors("put", None):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(data),
                    ContentType=content_type,
                    **kwargs,
                )
            except ClientError as exc:
                # 412: an object is there (also when botocore retried a PUT whose first answer
                # was lost after it had been stored). 409 ConditionalRequestConflict: a
                # concurrent conditional write of the key is in flight; its retry would find
                # the winner's object, so this attempt has lost either way.
                code, status = _error_code(exc)
                if if_absent and (status in (409, 412) or code == "PreconditionFailed"):
                    return False
                raise
        return True

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            with self._errors("exists", key):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._errors("delete", None):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix, allow_empty=False)
        removed = 0
        batch: list[str] = []
        # Deleting while paginating is safe: the continuation token names the last key seen.
        for key in self._iter_keys(prefix):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                removed += self._delete_batch(batch)
                batch = []
        if batch:
            removed += self._delete_batch(batch)
        return removed

    def _delete_batch(self, keys: list[str]) -> int:
        with self._errors("delete_prefix"):
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"delete_prefix: {len(errors)} of {len(keys)} objects not deleted, e.g. "
                f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
            )
        return len(keys)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        return sorted(self._iter_keys(prefix))

    # -- links -----------------------------------------------------------------------------------

    def presign_get(
        self, key: str, *, expires_s: int | None = None, filename: str | None = None
    ) -> str:
        validate_key(key)
        lifetime = resolve_expiry(expires_s, self.default_expiry_s)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        with self._errors("presign_get", key):
            return self._presign_client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=lifetime
            )
