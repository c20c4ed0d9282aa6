"""Rules every backend shares: what a key is, how long a link lives, how a download is named."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from storage.errors import InvalidKey

#: S3's limit for a presigned SigV4 link (7 days); the local backend keeps the same limit so that
#: both backends accept exactly the same arguments.
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600

#: S3's limit on the length of a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative '/'-separated name, else raise `InvalidKey`.

    Refused: empty keys, absolute paths, backslashes, control characters (NUL included), empty
    parts (``a//b``, a trailing ``/``) and ``.``/``..`` parts. The same key must name the same object
    on a filesystem and in a bucket, and must never escape the local store's root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"key must be a non-empty string, not {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"key longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey(f"key must be relative: {key!r}")
    if "\\" in key:
        raise InvalidKey(f"key must not contain a backslash: {key!r}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in key):
        raise InvalidKey(f"key must not contain control characters: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"key has an empty, '.' or '..' part: {key!r}")
    return key


def validate_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Return ``prefix`` if it is a valid key, optionally ending with '/', or empty if allowed.

    Prefixes match as strings, as in S3: ``jobs/1`` matches ``jobs/10/x``; use ``jobs/1/`` to
    mean one job's objects.
    """
    if prefix == "" and allow_empty:
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def resolve_expiry(expires_s: int | None, default_s: int) -> int:
    """The lifetime of a presigned link: ``default_s`` when unset; 1 s to 7 days else ValueError."""
    value = default_s if expires_s is None else expires_s
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expiry must be an integer number of seconds, not {value!r}")
    if not 1 <= value <= MAX_PRESIGN_EXPIRY_S:
        raise ValueError(f"expiry must be between 1 and {MAX_PRESIGN_EXPIRY_S} s, not {value}")
    return value


def content_disposition(filename: str) -> str:
    """An ``attachment`` Content-Disposition value that names the download ``filename``.

    Only the last path component is kept and control characters are dropped; an ASCII fallback
    goes in ``filename=`` and the exact name in ``filename*`` (RFC 6266) when they differ.
    Raises ValueError when nothing usable is left.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        raise ValueError(f"unusable download filename: {filename!r}")
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = fallback.replace('"', "_").strip() or "download"
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
