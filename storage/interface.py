"""The one storage interface: a flat namespace of keys to bytes, with links users can fetch.

Backends (``LocalBlobStore``, ``S3BlobStore``) are chosen by configuration in
`storage.factory.make_store`; callers depend on this protocol and on `storage.errors` only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class BlobStore(Protocol):
    """Bytes stored under '/'-separated relative keys (see `storage.keys.validate_key`).

    Every method raises `InvalidKey` for a bad key, `StorageUnavailable` when the backend cannot
    be reached and `StorageError` for anything else; none of them leaks a vendor exception.
    Writes are whole-object and atomic: a reader sees the old bytes or the new ones, never a part,
    so a redelivered task may simply write again.
    """

    def ensure_ready(self) -> None:
        """Create what the store needs (bucket, lifecycle rules, directories). Idempotent."""
        ...

    def ping(self) -> None:
        """Return quickly if the store is usable, else raise `StorageUnavailable` (/readyz)."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; `ObjectNotFound` if there is none."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_absent: bool = False,
    ) -> bool:
        """Store ``data`` under ``key``, replacing any object there; return True.

        With ``if_absent`` the write is conditional and atomic (S3 ``If-None-Match: *``, a hard
        link on a filesystem): when an object is already there it is kept, nothing is written
        and False is returned. A job's outputs are written so: a second attempt of the same task
        (a redelivery after a lost connection, a retried request whose answer was lost) never
        stores an output twice.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error (idempotent)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; return how many were removed.

        ``prefix`` matches as a string (``jobs/1`` also matches ``jobs/10/...``): pass
        ``jobs/{id}/`` for one job. An empty prefix is refused with `InvalidKey`.
        """
        ...

    def list(self, prefix: str = "") -> list[str]:
        """The keys that start with ``prefix`` (string match, as in S3), sorted."""
        ...

    def presign_get(
        self, key: str, *, expires_s: int | None = None, filename: str | None = None
    ) -> str:
        """A URL the user's browser can fetch the object from directly, without credentials.

        Valid for ``expires_s`` seconds (the store's default when None; at most 7 days, else
        ValueError). With ``filename`` the response is an attachment with that name. No network
        call is made and the object's existence is not checked.
        """
        ...
