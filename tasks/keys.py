"""Deterministic object keys: the claim-check names tasks pass instead of image bytes.

Intermediates are named by the content hash of the upload and the segmentation model, so a
redelivered task overwrites what an earlier attempt wrote, and a second job on the same photo
finds the matte already there. Outputs are named by the job id.
"""

from __future__ import annotations

import re

from config import outputs

#: ``secrets.token_urlsafe(16)``: 22 characters of the URL-safe base64 alphabet.
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

#: Output names (`config.outputs`: their file types, content types and file names).
OUTPUT_NAMES = outputs.NAMES


def is_job_id(value: object) -> bool:
    """Whether ``value`` has the shape of a job id (anything else never reaches a store key)."""
    return isinstance(value, str) and bool(JOB_ID_RE.match(value))


def _check(sha256: str, model: str) -> None:
    if not _SHA256_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    if not _MODEL_RE.match(model):
        raise ValueError(f"not a model name: {model!r}")


_SCOPE_RE = re.compile(r"^[0-9a-f]{16}$")


def cache_name(model: str, scope: str = "") -> str:
    """The name a photo's intermediates (analysis, masks, matte) are kept under: the model's,
    or with ``settings.cache_scope = "client"`` the model's and the client's scope (16 hex
    digits), so that one client's upload never finds another's matte."""
    if not scope:
        return model
    if not _SCOPE_RE.match(scope):
        raise ValueError(f"not a cache scope: {scope!r}")
    return f"{model}.{scope}"


def input_key(sha256: str) -> str:
    _check(sha256, "x")
    return f"inputs/{sha256}"


def mask_prefix(sha256: str) -> str:
    """Every model's analysis and coarse mask of one input (for deletion)."""
    _check(sha256, "x")
    return f"masks/{sha256}/"


def matte_prefix(sha256: str) -> str:
    _check(sha256, "x")
    return f"mattes/{sha256}/"


def analysis_key(sha256: str, model: str) -> str:
    _check(sha256, model)
    return f"masks/{sha256}/{model}/analysis.json"


def coarse_key(sha256: str, model: str) -> str:
    _check(sha256, model)
    return f"masks/{sha256}/{model}/coarse.png"


def region_key(sha256: str, model: str) -> str:
    """The face-centred region the model saw (RGB, .npy): the matte is refined on it. Like the
    coarse mask, it is deleted once the matte is stored (only ``matte_refine`` reads it)."""
    _check(sha256, model)
    return f"masks/{sha256}/{model}/region.npy"


def matte_key(sha256: str, model: str) -> str:
    """The refined matte (foreground colour + alpha, `pipeline.encode.pack_matte`): the
    cut-out's source, kept for recompositions. What a photo leaves in the store (with its
    analysis): 0.2-0.8 MB, where the raw RGBA array is 0.9-5.2 MB."""
    _check(sha256, model)
    return f"mattes/{sha256}/{model}/matte.idm"


def job_prefix(job_id: str) -> str:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return f"jobs/{job_id}/"


def output_key(job_id: str, name: str, ext: str) -> str:
    outputs.check(name, ext)
    return f"{job_prefix(job_id)}{name}.{ext}"
