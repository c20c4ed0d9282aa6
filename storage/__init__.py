"""Object storage: one `BlobStore` interface, a local-filesystem and an S3 backend."""

from storage.errors import InvalidKey, ObjectNotFound, StorageError, StorageUnavailable
from storage.factory import make_store, output_expiry_days
from storage.interface import BlobStore
from storage.keys import MAX_PRESIGN_EXPIRY_S, content_disposition, validate_key
from storage.local import LocalBlobStore, guess_content_type, verify_local_signature
from storage.s3 import S3BlobStore

__all__ = [
    "MAX_PRESIGN_EXPIRY_S",
    "BlobStore",
    "InvalidKey",
    "LocalBlobStore",
    "ObjectNotFound",
    "S3BlobStore",
    "StorageError",
    "StorageUnavailable",
    "content_disposition",
    "guess_content_type",
    "make_store",
    "output_expiry_days",
    "validate_key",
    "verify_local_signature",
]
