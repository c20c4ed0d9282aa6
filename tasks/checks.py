"""Check mode behind the API: measure an uploaded photo against a spec, in the calling process.

A check needs no segmentation: the face detector and the landmark model (a few MB each, a few
tens of ms of CPU per photo) load once per process, on the first check, through the caller's
``Services``. The answer is the report of ``pipeline.check.check_photo``.
"""

from __future__ import annotations

from typing import Any

from config.catalogue import parse_spec_arg
from config.contracts import Report
from pipeline.check import check_photo
from pipeline.declared import Declared
from tasks.services import Services


def check_upload(
    services: Services, data: bytes, spec: str, options: dict[str, Any] | None = None
) -> Report:
    """The check report of ``data`` against ``spec`` (domain errors propagate to the edge)."""
    photo_spec = parse_spec_arg(spec)
    declared = Declared.from_options(options)
    return check_photo(
        data,
        photo_spec,
        services.detector,
        services.landmarker,
        max_pixels=services.settings.max_pixels,
        declared=declared,
    )
