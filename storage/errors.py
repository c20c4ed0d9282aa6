"""Storage errors: every backend translates its vendor errors into these, at the adapter.

Callers (tasks, the web error handlers) depend only on this module, never on botocore or on
``OSError`` details, so the backend can change without touching them.
"""

from __future__ import annotations


class StorageError(Exception):
    """Any failure of the blob store that is not one of the more specific errors below."""


class ObjectNotFound(StorageError, FileNotFoundError, KeyError):
    """The key names no object.

    Also a ``FileNotFoundError`` (as warehouse's storage does it) and a ``KeyError`` (a store is a
    mapping of keys to bytes), so code written against either convention catches it.
    """

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:  # OSError and KeyError would both format the single arg oddly
        return f"no object with key {self.key!r}"

    def __reduce__(self) -> tuple[type[ObjectNotFound], tuple[str]]:  # survives pickling
        return (type(self), (self.key,))


class StorageUnavailable(StorageError):
    """The store cannot be reached or keeps failing (refused, timed out, 5xx after retries).

    Transient: the operation may succeed later; tasks should retry, /readyz should say not ready.
    """


class StorageFull(StorageError):
    """The store has no space left (a full disk or quota): answered 507, and /readyz says not
    ready until space is freed; retrying in seconds will not help."""


class InvalidKey(StorageError, ValueError):
    """The key (or prefix) is not a safe, relative, '/'-separated name."""
