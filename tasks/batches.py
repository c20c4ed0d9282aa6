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
import posixpath
import secrets
import time
import zipfile
from typing import Any

from config.settings import Settings
from pipeline.errors import BadParameter, IdPhotoError, UnsupportedImage
from tasks.jobs import get_job, submit_job, validate_request
from tasks.services import services_for

MAX_MEMBERS = 50
TERMINAL = ("done", "failed")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp")


class BatchNotFound(IdPhotoError):
    code = "unknown_batch"


def _manifest_key(batch_id: str) -> str:
    return f"batches/{batch_id}/manifest.json"


def _members(data: bytes, settings: Settings) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UnsupportedImage("The batch upload is not a zip archive.") from exc
    infos = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and not posixpath.basename(i.filename).startswith(".")
        and "__MACOSX" not in i.filename
    ]
    if not infos:
        raise BadParameter("The zip archive holds no files.", parameter="archive")
    if len(infos) > MAX_MEMBERS:
        raise BadParameter(
            f"The zip archive holds {len(infos)} files; at most {MAX_MEMBERS} per batch.",
            parameter="archive",
        )
    total = 0
    out: list[tuple[str, bytes]] = []
    for info in infos:
        # Declared sizes first (cheap), then the real bytes read with a cap: a zip bomb can lie.
        if info.file_size > settings.max_upload_bytes:
            out.append((info.filename, b""))
            continue
        with archive.open(info) as fh:
            body = fh.read(settings.max_upload_bytes + 1)
        total += len(body)
        if total > MAX_MEMBERS * settings.max_upload_bytes:
            raise BadParameter("The zip archive unpacks to too much data.", parameter="archive")
        out.append((info.filename, body))
    return out


def submit_batch(
    settings: Settings,
    data: bytes,
    *,
    spec: str,
    background: str | None = None,
    options: dict[str, Any] | None = None,
) -> str:
    """Submit every photo in a zip archive; returns the batch id. Photos refused at submission
    (not an image, too large) are recorded with their reason; the others become jobs."""
    validate_request(
        spec, background, options
    )  # a bad spec/colour refuses the batch, not each photo
    members = _members(data, settings)
    items: list[dict[str, Any]] = []
    for name, body in members:
        item: dict[str, Any] = {"name": posixpath.basename(name) or name}
        try:
            if not body:
                raise UnsupportedImage("The file is empty or larger than the upload limit.")
            item["job_id"] = submit_job(
                settings, body, spec=spec, background=background, options=options
            )
        except IdPhotoError as exc:
            item["error"] = exc.code
            item["message"] = exc.message
        items.append(item)
    batch_id = secrets.token_urlsafe(16)
    manifest = {
        "batch_id": batch_id,
        "created_at": time.time(),
        "spec": spec,
        "background": background,
        "items": items,
    }
    store = services_for(settings).store
    store.put(
        _manifest_key(batch_id), json.dumps(manifest).encode(), content_type="application/json"
    )
    return batch_id


def _manifest(settings: Settings, batch_id: str) -> dict[str, Any]:
    from storage import ObjectNotFound

    if not batch_id.replace("-", "").replace("_", "").isalnum() or len(batch_id) > 64:
        raise BatchNotFound("No batch with this id.")
    try:
        raw = services_for(settings).store.get(_manifest_key(batch_id))
    except ObjectNotFound as exc:
        raise BatchNotFound("No batch with this id: it may have expired.") from exc
    return json.loads(raw)


def get_batch(settings: Settings, batch_id: str) -> dict[str, Any]:
    """The batch with each photo's job state and reason, and counts per state."""
    manifest = _manifest(settings, batch_id)
    counts: dict[str, int] = {}
    items = []
    for item in manifest["items"]:
        row = dict(item)
        if "job_id" in item:
            record = get_job(settings, item["job_id"]) or {"state": "failed", "reason": "expired"}
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
    }


def batch_zip(settings: Settings, batch_id: str) -> bytes:
    """A zip of each done photo (``<stem>-<spec>.jpg``), its report, and ``<name>.error.json``
    for each failure, plus ``summary.json``. Photos still running are listed as such."""
    batch = get_batch(settings, batch_id)
    store = services_for(settings).store
    buf = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as out:
        for item in batch["items"]:
            stem = posixpath.splitext(item["name"])[0] or "photo"
            base = stem
            n = 2
            while base in used:
                base, n = f"{stem}-{n}", n + 1
            used.add(base)
            item["files"] = []
            if item["state"] == "done":
                record = get_job(settings, item["job_id"]) or {}
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
