"""Batches: a zip of photos in, one job per photo, a zip of results and reports out.

A batch is nothing but its jobs: ``submit_batch`` unpacks the zip (guarded against zip bombs,
path tricks and non-image members), submits each photo with ``submit_job`` and stores a small
manifest (``batches/{id}/manifest.json``: member name -> job id or the error that refused it).
``get_batch`` summarises the jobs' states; ``batch_zip`` packs every finished photo with its
report, and a ``<name>.error.json`` with the reason for each photo that failed.
"""

from __future__ import annotations

import io
import json
import lzma
import posixpath
import re
import secrets
import time
import zipfile
import zlib
from typing import Any

from config.settings import Settings
from pipeline.errors import BadParameter, IdPhotoError, ImageTooLarge, UnsupportedImage
from tasks.jobs import get_job, submit_job, validate_request
from tasks.services import Services

MAX_MEMBERS = 50
#: A member that unpacks to more than this many times its compressed size is a zip bomb (real
#: photos barely compress; an uncompressed BMP or TIFF portrait a few times).
MAX_COMPRESSION_RATIO = 100
#: All members together may unpack to at most this many uploads' worth of bytes.
MAX_TOTAL_UPLOADS = 10
TERMINAL = ("done", "failed")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp")
# What a zip member's bytes can fail with while they are inflated: a bad CRC or local header
# (BadZipFile), corrupt deflate data (zlib.error), a member cut short (EOFError), an encrypted
# member (RuntimeError), a method zipfile lacks, e.g. deflate64 (NotImplementedError).
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
    OSError,
    ValueError,
    lzma.LZMAError,
)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")


class BatchNotFound(IdPhotoError):
    code = "unknown_batch"


class ArchiveTooLarge(IdPhotoError):
    """The zip unpacks to more than a batch may hold (answered 413)."""

    code = "archive_too_large"


def _manifest_key(batch_id: str) -> str:
    return f"batches/{batch_id}/manifest.json"


def safe_name(name: str) -> str:
    """A member's name as a plain file name on every OS: backslashes are separators too, drive
    letters, ``.`` and ``..`` go, only the last part is kept ("" when nothing is left).

    ``a\\..\\..\\Users\\Public\\evil.jpg`` came back in results.zip as a Windows traversal
    path; ``..\\..\\x.jpg`` looked like a hidden file and was dropped.
    """
    parts = [p for p in _WINDOWS_DRIVE.sub("", name.replace("\\", "/")).split("/")]
    parts = [p.strip() for p in parts if p.strip() not in ("", ".", "..")]
    if not parts:
        return ""
    return _UNSAFE_CHARS.sub("_", parts[-1]).strip(" .")[:200]


def _open_archive(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise UnsupportedImage("The batch upload is not a zip archive.") from exc


def _skip_reason(info: zipfile.ZipInfo, name: str) -> str | None:
    """Why a member is not a photo at all (folders are not listed anywhere)."""
    parts = info.filename.replace("\\", "/").split("/")
    if "__MACOSX" in parts:
        return "macOS resource data (__MACOSX), not a photo"
    if not name:
        return "the name has no file part"
    if parts[-1].strip().startswith(".") and parts[-1].strip() not in (".", ".."):
        return "a hidden file, not a photo"
    return None


def count_members(data: bytes) -> int:
    """How many files the zip holds (folders aside): checked against ``MAX_MEMBERS`` before the
    queue admission, so a too-large batch is a 422 and never a 503 that clients retry."""
    return sum(not i.is_dir() for i in _open_archive(data).infolist())


def _plan(
    archive: zipfile.ZipFile, settings: Settings
) -> tuple[list[tuple[zipfile.ZipInfo, str]], list[dict[str, str]]]:
    """The members to submit with their safe, unique names, and those skipped with a reason;
    refuses the whole batch on the declared sizes before a single byte is inflated (zipfile
    never returns more than the declared size, and a lying CRC fails that member)."""
    files = [i for i in archive.infolist() if not i.is_dir()]
    if not files:
        raise BadParameter("The zip archive holds no files.", param="archive")
    if len(files) > MAX_MEMBERS:
        raise BadParameter(
            f"The zip archive holds {len(files)} files; at most {MAX_MEMBERS} per batch.",
            param="archive",
            max_members=MAX_MEMBERS,
        )
    limit = MAX_TOTAL_UPLOADS * settings.max_upload_bytes
    total = sum(i.file_size for i in files if i.file_size <= settings.max_upload_bytes)
    if total > limit:
        raise ArchiveTooLarge(
            f"The zip archive unpacks to {total} bytes; a batch may hold at most {limit}.",
            limit_bytes=limit,
        )
    for info in files:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > MAX_COMPRESSION_RATIO:
            raise BadParameter(
                f"{safe_name(info.filename) or 'A member'} unpacks to {ratio:.0f} times its "
                f"compressed size (at most {MAX_COMPRESSION_RATIO}): this is not a zip of photos.",
                param="archive",
            )
    members: list[tuple[zipfile.ZipInfo, str]] = []
    skipped: list[dict[str, str]] = []
    used: set[str] = set()
    for info in files:
        name = safe_name(info.filename)
        reason = _skip_reason(info, name)
        if reason is not None:
            skipped.append({"name": name or info.filename[:200], "reason": reason})
            continue
        stem, ext = posixpath.splitext(name)
        unique, n = name, 2
        while unique.lower() in used:
            unique, n = f"{stem}-{n}{ext}", n + 1
        used.add(unique.lower())
        members.append((info, unique))
    return members, skipped


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, settings: Settings) -> bytes:
    """One member's bytes, at most the upload limit; a member that cannot be unpacked raises
    ``UnsupportedImage`` with the reason (it fails alone, not the batch)."""
    if info.file_size > settings.max_upload_bytes:
        raise ImageTooLarge(
            f"The file unpacks to {info.file_size} bytes; the limit is "
            f"{settings.max_upload_bytes}.",
            limit_bytes=settings.max_upload_bytes,
        )
    if info.flag_bits & 0x1:
        raise UnsupportedImage(
            "The file is encrypted in the zip archive; zip it without a password."
        )
    try:
        with archive.open(info) as fh:
            body = fh.read(settings.max_upload_bytes + 1)
    except NotImplementedError as exc:
        raise UnsupportedImage(
            f"The file is compressed with a method this server cannot unpack "
            f"(zip method {info.compress_type}); use deflate or store."
        ) from exc
    except _MEMBER_ERRORS as exc:
        raise UnsupportedImage(
            f"The file is damaged in the zip archive and cannot be unpacked ({type(exc).__name__})."
        ) from exc
    if not body:
        raise UnsupportedImage("The file is empty.")
    return body


def submit_batch(
    services: Services,
    data: bytes,
    *,
    spec: str,
    background: str | None = None,
    options: dict[str, Any] | None = None,
) -> str:
    """Submit every photo in a zip archive; returns the batch id. Photos refused at submission
    (not an image, too large, damaged in the zip) are recorded with their reason; the others
    become jobs. Members are inflated one at a time, so memory holds the archive and one photo."""
    settings = services.settings
    validate_request(
        spec, background, options
    )  # a bad spec/colour refuses the batch, not each photo
    archive = _open_archive(data)
    members, skipped = _plan(archive, settings)
    items: list[dict[str, Any]] = []
    for info, name in members:
        item: dict[str, Any] = {"name": name}
        try:
            body = _read_member(archive, info, settings)
            item["job_id"] = submit_job(
                services, body, spec=spec, background=background, options=options
            )
        except IdPhotoError as exc:
            item["error"] = exc.code
            item["message"] = exc.message
        finally:
            body = b""  # noqa: F841 - drop this member's bytes before the next is read
        items.append(item)
    batch_id = secrets.token_urlsafe(16)
    manifest = {
        "batch_id": batch_id,
        "created_at": time.time(),
        "spec": spec,
        "background": background,
        "items": items,
        "skipped": skipped,
    }
    store = services.store
    store.put(
        _manifest_key(batch_id), json.dumps(manifest).encode(), content_type="application/json"
    )
    return batch_id


def _manifest(services: Services, batch_id: str) -> dict[str, Any]:
    from storage import ObjectNotFound

    if not batch_id.replace("-", "").replace("_", "").isalnum() or len(batch_id) > 64:
        raise BatchNotFound("No batch with this id.")
    try:
        raw = services.store.get(_manifest_key(batch_id))
    except ObjectNotFound as exc:
        raise BatchNotFound("No batch with this id: it may have expired.") from exc
    return json.loads(raw)


def get_batch(services: Services, batch_id: str) -> dict[str, Any]:
    """The batch with each photo's job state and reason, and counts per state."""
    manifest = _manifest(services, batch_id)
    counts: dict[str, int] = {}
    items = []
    for item in manifest["items"]:
        row = dict(item)
        if "job_id" in item:
            record = get_job(services, item["job_id"]) or {"state": "failed", "reason": "expired"}
            row["state"] = record.get("state")
            if record.get("state") == "failed":
                row["error"] = record.get("reason")
                row["message"] = record.get("message")
            if record.get("report"):
                row["verdict"] = record["report"].get("verdict")
        else:
            row["state"] = "failed"
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        items.append(row)
    done = all(i["state"] in TERMINAL for i in items)
    return {
        "batch_id": batch_id,
        "spec": manifest["spec"],
        "background": manifest["background"],
        "state": "done" if done else "running",
        "counts": counts,
        "items": items,
        "skipped": manifest.get("skipped", []),
    }


def batch_zip(services: Services, batch_id: str) -> bytes:
    """A zip of each done photo (``<stem>-<spec>.jpg``), its report, and ``<name>.error.json``
    for each failure, plus ``summary.json``. Photos still running are listed as such."""
    batch = get_batch(services, batch_id)
    store = services.store
    buf = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as out:
        for item in batch["items"]:
            stem = posixpath.splitext(safe_name(item["name"]))[0] or "photo"
            base = stem
            n = 2
            while base in used:
                base, n = f"{stem}-{n}", n + 1
            used.add(base)
            item["files"] = []
            if item["state"] == "done":
                record = get_job(services, item["job_id"]) or {}
                for name, key in (record.get("outputs") or {}).items():
                    if name not in ("photo", "report"):
                        continue
                    ext = key.rsplit(".", 1)[-1]
                    arcname = (
                        f"{base}-{batch['spec']}.{ext}"
                        if name == "photo"
                        else f"{base}-report.json"
                    )
                    out.writestr(arcname, store.get(key))
                    item["files"].append(arcname)
            elif item["state"] == "failed":
                arcname = f"{base}.error.json"
                body = {k: item.get(k) for k in ("name", "error", "message")}
                out.writestr(arcname, json.dumps(body, indent=2))
                item["files"].append(arcname)
        out.writestr("summary.json", json.dumps(batch, indent=2))
    return buf.getvalue()
