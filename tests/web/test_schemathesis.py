"""Schemathesis against the API's own OpenAPI document (issue 17): for every operation,
generated requests, valid and invalid by the schema, get no server error, only documented
statuses, content types and bodies, and schema-invalid ones are refused with a 4xx (the
document is as strict as the server: spec, background and options lengths, recompose's fields).

Run in process on the Flask app (WSGI) with the embedded default's local storage: jobs are
queued, no worker runs. Schema-valid requests may still be refused for what the schema cannot
say (a generated "photo" is not a portrait: 415/422), so that check alone is left out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.settings import Settings
from web import create_app

# Built at import: schemathesis parametrizes the test from the document it loads. A temporary
# folder of its own, removed when the session ends.
_TMP = tempfile.TemporaryDirectory(prefix="idphoto-schemathesis-")
_APP = create_app(
    Settings(storage_dir=Path(_TMP.name) / "var" / "storage", rate_limit="100000/minute")
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _APP)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_keeps_to_its_document(case: Any) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_every_operation_is_exercised() -> None:
    """Schemathesis parses every operation the document has (one it cannot read would be left
    out of the run above without a failure)."""
    operations = [op.ok() for op in schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("POST", "/api/v1/jobs") in paths and (
        "POST",
        "/api/v1/jobs/{job_id}/recompose",
    ) in paths
    assert ("POST", "/api/v1/checks") in paths and ("GET", "/api/v1/jobs/{job_id}") in paths
    assert len(paths) >= 8, sorted(paths)
