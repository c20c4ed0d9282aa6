"""Blob store on the local filesystem: the embedded mode's backend, and the tests' fastest one.

Layout: the object for key ``a/b/c.jpg`` is the file ``{root}/a/b/c.jpg``; directories are created
on write and pruned when they empty. Writes go to a temporary file in the target's directory and
are moved into place with ``os.replace`` (atomic on POSIX), so readers never see a partial object.

The content type is not stored (no sidecar files to keep consistent with the data): whoever serves
``/files/<key>`` guesses it from the key's extension with `guess_content_type`. The keys the
pipeline hands to users all carry an extension (``jobs/{id}/photo.jpg``, ``report.json``).

Presigned links point at the web app, ``{public_url}/files/{key}?expires=..&signature=..``, signed
with HMAC-SHA256 under the app's secret key; the app checks them with `verify_local_signature`.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import mimetypes
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from storage.errors import (
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from storage.keys import content_disposition, resolve_expiry, validate_key, validate_prefix

#: Temporary files of in-flight writes start with this; `list` skips them and keys may not use it.
_TMP_PREFIX = ".idphoto-tmp-"
#: Below this much free space the store says it is not ready: one upload (25 MB) and its
#: outputs must still fit.
MIN_FREE_BYTES = 64 * 1024 * 1024
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def _write_error(key: str, exc: OSError) -> StorageError:
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"cannot write {key!r}: no space left in the storage directory")
    return StorageError(f"cannot write {key!r}: {exc}")


#: Domain separation: the app's secret key also signs sessions, so link signatures get their own
#: message format that no other use of the key can produce.
_SIGNATURE_CONTEXT = "idphoto-local-presign-v1"


def _signature(secret_key: str, key: str, expires: int, filename: str | None) -> str:
    # key has no newline (validate_key) and expires is an integer, so filename, last, may hold
    # anything without making two different links sign the same message.
    message = "\n".join((_SIGNATURE_CONTEXT, key, str(expires), filename or ""))
    return hmac.new(
        secret_key.encode("utf-8"), message.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


def verify_local_signature(
    secret_key: str,
    key: str,
    expires: int | str,
    filename: str | None,
    signature: str,
    now: float | None = None,
) -> bool:
    """Whether a link made by `LocalBlobStore.presign_get` is authentic and not expired.

    Takes the query arguments as they arrive (strings); a missing ``filename`` is None or "".
    Compares in constant time. Never raises on malformed input: it answers False.
    """
    try:
        validate_key(key)
        expires_at = int(expires)
    except (InvalidKey, TypeError, ValueError):
        return False
    if not isinstance(signature, str):
        return False
    expected = _signature(secret_key, key, expires_at, filename)
    authentic = hmac.compare_digest(
        expected.encode("ascii"), signature.encode("utf-8", "surrogatepass")
    )
    current = time.time() if now is None else now
    return authentic and current <= expires_at


def guess_content_type(key: str) -> str:
    """The content type to serve a local object with, from its key's extension."""
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


class LocalBlobStore:
    """`BlobStore` over a directory. Safe for several threads and processes on one machine."""

    def __init__(
        self,
        root: Path | str,
        *,
        secret_key: str,
        public_url: str,
        default_expiry_s: int = 900,
    ) -> None:
        if not secret_key:
            raise ValueError("LocalBlobStore needs a secret key to sign links")
        self.root = Path(root)
        self.public_url = public_url.rstrip("/")
        self.default_expiry_s = resolve_expiry(default_expiry_s, default_expiry_s)
        self._secret_key = secret_key

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file that holds ``key``'s object (it may not exist). For the web app's /files."""
        validate_key(key)
        parts = key.split("/")
        if any(part.startswith(_TMP_PREFIX) for part in parts):
            raise InvalidKey(f"key parts may not start with {_TMP_PREFIX!r}: {key!r}")
        return self.root.joinpath(*parts)

    # -- lifecycle -------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage directory {self.root}: {exc}") from exc

    def ping(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"storage directory {self.root} does not exist")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"storage directory {self.root} is not writable")
        fs = os.statvfs(self.root)
        if fs.f_bavail * fs.f_frsize < MIN_FREE_BYTES:
            raise StorageFull(
                f"storage directory {self.root} has {fs.f_bavail * fs.f_frsize} bytes free; "
                f"{MIN_FREE_BYTES} are needed"
            )

    # -- objects ---------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_absent: bool = False,
    ) -> bool:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        target = self.path(key)
        fd, tmp = self._temp_file(key, target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a separate web server
            if not if_absent:
                os.replace(tmp, target)
                return True
            try:  # link(2) fails if the name exists: a check and a write in one step
                os.link(tmp, target)
            except FileExistsError:
                return False
            finally:
                Path(tmp).unlink(missing_ok=True)
            return True
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, IsADirectoryError):
                raise StorageError(f"cannot store {key!r}: other objects live under it") from exc
            if isinstance(exc, OSError):
                raise _write_error(key, exc) from exc
            raise

    def _temp_file(self, key: str, directory: Path) -> tuple[int, str]:
        # A concurrent delete may prune directories between our mkdir and mkstemp (or inside
        # Path.mkdir itself, which then reports FileExistsError): try again unless an object
        # really sits where a directory must be.
        for _ in range(20):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                return tempfile.mkstemp(dir=directory, prefix=_TMP_PREFIX)
            except (FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
                if self._object_above(directory):
                    raise StorageError(
                        f"cannot store {key!r}: a parent of it is an object"
                    ) from exc
            except OSError as exc:
                raise _write_error(key, exc) from exc
        raise StorageError(f"cannot write {key!r}: its directory keeps disappearing")

    def _object_above(self, directory: Path) -> bool:
        """Whether ``directory`` or one of its parents below the root is a file (an object)."""
        return any(p.is_file() for p in (directory, *directory.parents) if self.root in p.parents)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self._remove(self.path(key))

    def _remove(self, path: Path) -> bool:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc}") from exc
        self._prune(path.parent)
        return True

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from ``directory`` up to, not including, the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone, or a write is starting in it)
                return
            directory = directory.parent

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix, allow_empty=False)
        return sum(self._remove(self.path(key)) for key in self.list(prefix))

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names in full; filter the rest as strings.
        head, _, partial = prefix.rpartition("/")
        base = self.root.joinpath(*head.split("/")) if head else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            if dirpath == str(base):
                dirnames[:] = [d for d in dirnames if d.startswith(partial)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    # -- links -----------------------------------------------------------------------------------

    def presign_get(
        self, key: str, *, expires_s: int | None = None, filename: str | None = None
    ) -> str:
        self.path(key)
        lifetime = resolve_expiry(expires_s, self.default_expiry_s)
        if filename is not None:
            content_disposition(filename)  # refuse an unusable name now, not when served
        expires = int(time.time()) + lifetime
        query: dict[str, str | int] = {"expires": expires}
        if filename:
            query["filename"] = filename
        query["signature"] = _signature(self._secret_key, key, expires, filename)
        return f"{self.public_url}/files/{quote(key, safe='/')}?{urlencode(query, quote_via=quote)}"
