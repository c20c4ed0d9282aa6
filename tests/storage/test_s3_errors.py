"""botocore errors are translated at the adapter; nothing here needs a server."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from storage import InvalidKey, ObjectNotFound, StorageError, StorageUnavailable
from storage.s3 import S3BlobStore, _translate


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("NoSuchKey", 404), ObjectNotFound),
        (client_error("404", 404), ObjectNotFound),
        (client_error("InternalError", 500), StorageUnavailable),
        (client_error("ServiceUnavailable", 503), StorageUnavailable),
        (client_error("SlowDown", 503), StorageUnavailable),
        (client_error("AccessDenied", 403), StorageError),
        (client_error("NoSuchBucket", 404), StorageError),
        (EndpointConnectionError(endpoint_url="http://x"), StorageUnavailable),
        (ConnectTimeoutError(endpoint_url="http://x"), StorageUnavailable),
        (ReadTimeoutError(endpoint_url="http://x"), StorageUnavailable),
        (NoCredentialsError(), StorageError),
    ],
)
def test_translation(exc: Exception, expected: type[StorageError]) -> None:
    translated = _translate(exc, "get", "some/key")
    assert type(translated) is expected


def test_not_found_without_a_key_is_not_object_not_found() -> None:
    assert type(_translate(client_error("NoSuchKey", 404), "list", None)) is StorageError


def test_constructor_checks_arguments() -> None:
    with pytest.raises(ValueError):
        S3BlobStore(endpoint_url="http://127.0.0.1:1", bucket="ab")
    with pytest.raises(InvalidKey):
        S3BlobStore(endpoint_url="http://127.0.0.1:1", bucket="abc", intermediate_prefixes=[""])
    with pytest.raises(ValueError):
        S3BlobStore(endpoint_url="http://127.0.0.1:1", bucket="abc", default_expiry_s=10**7)


def test_presign_signs_for_the_public_endpoint_without_a_network_call() -> None:
    store = S3BlobStore(
        endpoint_url="http://rgw.internal:7480",
        public_endpoint_url="https://files.example.com",
        bucket="photos",
        access_key="AK",
        secret_key="SK",
    )
    url = store.presign_get("jobs/1/photo.jpg", expires_s=60)
    assert url.startswith("https://files.example.com/photos/jobs/1/photo.jpg?")
    assert "X-Amz-Expires=60" in url
    assert "X-Amz-SignedHeaders=host" in url
