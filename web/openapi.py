"""The OpenAPI 3 description of ``/api/v1``, served as JSON and rendered by ``/api/docs``."""

from __future__ import annotations

from typing import Any, get_args

from config.catalogue import MAX_SPEC_CHARS
from config.contracts import STAGES as STAGE_NAMES
from config.contracts import STATES, Verdict
from config.outputs import OUTPUTS
from pipeline.composite import MAX_BACKGROUND_CHARS

JOB_STATES = list(STATES)
#: The longest ``options`` JSON a request may send (a few flags and a sheet name).
MAX_OPTIONS_CHARS = 4096


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}

_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The id returned when the job was accepted.",
    "schema": {"type": "string"},
}

_BATCH_ID = {
    "name": "batch_id",
    "in": "path",
    "required": True,
    "description": "The id returned when the batch was accepted.",
    "schema": {"type": "string"},
}

_CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": False,
    "description": (
        "Only for browsers holding the form's session cookie: the token from the form page. "
        "Programmatic clients send no cookie and no token."
    ),
    "schema": {"type": "string"},
}


def openapi_document(max_upload_bytes: int) -> dict[str, Any]:
    mb = max_upload_bytes / (1024 * 1024)
    common_write = {
        "403": _error(
            "csrf_failed: a browser request without the form's token, or from another site."
        ),
        "429": {
            **_error("rate_limited: this client's request budget is spent."),
            "headers": _RETRY_AFTER,
        },
        "507": _error("insufficient_storage: the server's disk is full."),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "idphoto API",
            "version": "1.0.0",
            "description": (
                "Turn a portrait into an official ID photo. Submit a photo with a specification "
                "and a background, poll the job until it is `done` or `failed`, then download the "
                "outputs through the presigned links in the job. Errors are JSON "
                "`{error, message}` with a stable machine-readable `error` code. "
                "Writes (POST, DELETE) are rate-limited per client."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/checks": {
                "post": {
                    "operationId": "createCheck",
                    "summary": "Check an existing photo",
                    "description": (
                        "Measure a photo that is already made (by a studio, a phone app, or this "
                        "service) against a spec, without changing it: size, dpi, file size, "
                        "head height, eye line, top margin, centring, background colour and "
                        "uniformity, and the examiner's checks (eyes, mouth, expression, "
                        "glasses, head covering, pose, light). Answered at once with a report "
                        "whose verdict is pass, fail or review."
                    ),
                    "parameters": [_CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["photo", "spec"],
                                    "properties": {
                                        "photo": {"type": "string", "format": "binary"},
                                        "spec": {
                                            "type": "string",
                                            "example": "us-passport",
                                            "minLength": 1,
                                            "maxLength": MAX_SPEC_CHARS,
                                        },
                                        "options": {
                                            "type": "string",
                                            "maxLength": MAX_OPTIONS_CHARS,
                                            "description": (
                                                'A JSON object: {"head_covering": "religious" | '
                                                '"medical", "medical_glasses": true}.'
                                            ),
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The check report.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["spec", "verdict", "checks", "measures"],
                                        "properties": {
                                            "spec": {"type": "string"},
                                            "mode": {"type": "string", "enum": ["check"]},
                                            "verdict": {
                                                "type": "string",
                                                "enum": list(get_args(Verdict)),
                                            },
                                            "failed": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                            "review": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                            "checks": {
                                                "type": "array",
                                                "items": {"type": "object"},
                                            },
                                            "measures": {"type": "object"},
                                            "not_checked": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "413": _error("file_too_large / image_too_large."),
                        "415": _error("unsupported_image: the file is not an image we read."),
                        "422": _error(
                            "missing_photo, missing_spec, unknown_spec, bad_parameter, or a face "
                            "problem: no_face, multiple_faces, face_too_small."
                        ),
                        **common_write,
                    },
                }
            },
            "/api/v1/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Submit a photo",
                    "description": (
                        f"Upload one portrait (JPEG, PNG, WebP or HEIC, at most {mb:g} MB). "
                        "The format is read from the file's bytes, not its name."
                    ),
                    "parameters": [_CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["photo", "spec"],
                                    "properties": {
                                        "photo": {
                                            "type": "string",
                                            "format": "binary",
                                            "description": "The portrait.",
                                        },
                                        "spec": {
                                            "type": "string",
                                            "example": "us-passport",
                                            "minLength": 1,
                                            "maxLength": MAX_SPEC_CHARS,
                                            "description": "A spec id from GET /api/v1/specs, "
                                            "or custom:<w>x<h>mm@<dpi>[,head=<lo>-<hi>].",
                                        },
                                        "background": {
                                            "type": "string",
                                            "example": "white",
                                            "maxLength": MAX_BACKGROUND_CHARS,
                                            "description": (
                                                "A colour name, #rrggbb, transparent, or "
                                                "gradient:<top>,<bottom>. Default: the spec's."
                                            ),
                                        },
                                        "options": {
                                            "type": "string",
                                            "maxLength": MAX_OPTIONS_CHARS,
                                            "description": 'A JSON object: {"sheet": "4x6" | '
                                            '"5x7" | "a4" | "none", "level": true, '
                                            '"zero_margin": false, "head_covering": "religious" '
                                            '| "medical", "medical_glasses": true}.',
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            **_json("Accepted: poll status_url.", "JobAccepted"),
                            "headers": {
                                "Location": {
                                    "schema": {"type": "string"},
                                    "description": "The job's status URL.",
                                }
                            },
                        },
                        "413": _error("file_too_large / image_too_large."),
                        "415": _error("unsupported_image: the file is not an image we read."),
                        "422": _error(
                            "missing_photo, missing_spec, unknown_spec, bad_parameter (e.g. a bad "
                            "colour or options that are not a JSON object)."
                        ),
                        **common_write,
                        "503": {
                            **_error(
                                "overloaded: the GPU queue is full; unavailable: a backend is down."
                            ),
                            "headers": _RETRY_AFTER,
                        },
                    },
                }
            },
            "/api/v1/jobs/{job_id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "Poll a job",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json("The job's state; outputs and report once done.", "Job"),
                        "404": _error("unknown_job."),
                    },
                },
                "delete": {
                    "operationId": "deleteJob",
                    "summary": "Delete a job and its outputs",
                    "parameters": [_JOB_ID, _CSRF],
                    "responses": {
                        "204": {"description": "Deleted."},
                        "404": _error("unknown_job."),
                        **common_write,
                    },
                },
            },
            "/api/v1/jobs/{job_id}/recompose": {
                "post": {
                    "operationId": "recomposeJob",
                    "summary": "Same photo, another spec or background",
                    "description": (
                        "Reuses the job's cached matte: only composition and storage run again. "
                        "Returns a new job."
                    ),
                    "parameters": [_JOB_ID, _CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Recompose"}
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": {"$ref": "#/components/schemas/Recompose"}
                            },
                        },
                    },
                    "responses": {
                        "202": _json("Accepted: poll status_url.", "JobAccepted"),
                        "404": _error("unknown_job."),
                        "422": _error("bad_parameter / unknown_spec."),
                        **common_write,
                    },
                }
            },
            "/api/v1/batches": {
                "post": {
                    "operationId": "createBatch",
                    "summary": "Submit a zip of photos with one spec and background",
                    "description": (
                        "At most 50 photos. Each becomes a job; photos refused at submission "
                        "are listed with their reason."
                    ),
                    "parameters": [_CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["archive", "spec"],
                                    "properties": {
                                        "archive": {"type": "string", "format": "binary"},
                                        "spec": {"type": "string"},
                                        "background": {"type": "string"},
                                        "options": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {"description": "Accepted: poll status_url."},
                        "413": _error(
                            "file_too_large / archive_too_large: the zip unpacks to more than "
                            "ten uploads."
                        ),
                        "415": _error("unsupported_archive: not a zip."),
                        "422": _error(
                            "bad_parameter (more than 50 photos, a member compressed over 100x) "
                            "/ unknown_spec / missing_archive."
                        ),
                        **common_write,
                    },
                }
            },
            "/api/v1/batches/{batch_id}": {
                "get": {
                    "operationId": "getBatch",
                    "summary": "Poll a batch: each photo's state and reason",
                    "parameters": [_BATCH_ID],
                    "responses": {
                        "200": {"description": "The batch."},
                        "404": _error("unknown_batch."),
                    },
                }
            },
            "/api/v1/batches/{batch_id}/results.zip": {
                "get": {
                    "operationId": "getBatchResults",
                    "summary": "A zip of the finished photos, their reports and the failures' reasons",
                    "parameters": [_BATCH_ID],
                    "responses": {
                        "200": {"description": "application/zip"},
                        "404": _error("unknown_batch."),
                    },
                }
            },
            "/api/v1/specs": {
                "get": {
                    "operationId": "listSpecs",
                    "summary": "The photo specifications and named backgrounds",
                    "responses": {"200": _json("The catalogue.", "SpecList")},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "Stable code, e.g. no_face."},
                        "message": {"type": "string", "description": "Plain words for a person."},
                    },
                    # The numbers behind the error, named after it: e.g. spec and suggestions
                    # for unknown_spec, limit_bytes for file_too_large, param for bad_parameter.
                    "additionalProperties": True,
                },
                "JobAccepted": {
                    "type": "object",
                    "required": ["job_id", "status_url"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "status_url": {"type": "string", "format": "uri"},
                    },
                },
                "Job": {
                    "type": "object",
                    "required": ["job_id", "state"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "state": {"type": "string", "enum": JOB_STATES},
                        "reason": {
                            "type": "string",
                            "nullable": True,
                            "description": "Why it failed: no_face, multiple_faces, "
                            "face_too_small, unsupported_image, image_too_large, ...",
                        },
                        "message": {"type": "string", "nullable": True},
                        "error_details": {
                            "type": "object",
                            "description": "Numbers behind a failure (e.g. mm missing below "
                            "the chin for too_close).",
                        },
                        "failed_stage": {"type": "string", "enum": list(STAGE_NAMES)},
                        "spec": {"type": "string"},
                        "background": {"type": "string", "description": "#rrggbb"},
                        "options": {"type": "object"},
                        "parent": {
                            "type": "string",
                            "description": "The job this one recomposes.",
                        },
                        "created_at": {"type": "number", "description": "Unix seconds"},
                        "updated_at": {"type": "number"},
                        "finished_at": {"type": "number"},
                        "timestamps": {
                            "type": "object",
                            "description": "When the job entered each state (Unix seconds).",
                            "additionalProperties": {"type": "number"},
                        },
                        "stages": {
                            "type": "object",
                            "description": "Per-stage progress and timings: "
                            + ", ".join(STAGE_NAMES)
                            + ".",
                            "additionalProperties": {"$ref": "#/components/schemas/Stage"},
                        },
                        "outputs": {
                            "type": "object",
                            "description": "Presigned download links once done: "
                            + "; ".join(f"{o.name}: {o.description}" for o in OUTPUTS)
                            + ".",
                            "properties": {
                                o.name: {"type": "string", "format": "uri"} for o in OUTPUTS
                            },
                            "additionalProperties": False,
                        },
                        "report": {
                            "type": "object",
                            "nullable": True,
                            "description": "Compliance report: measures, checks, verdict.",
                        },
                    },
                },
                "Stage": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["running", "ok", "failed"]},
                        "started_at": {"type": "number"},
                        "finished_at": {"type": "number"},
                        "duration_s": {"type": "number"},
                        "attempt": {"type": "integer"},
                        "error": {"type": "string", "description": "The failure's reason."},
                    },
                    "additionalProperties": False,
                },
                "Recompose": {
                    "type": "object",
                    "description": "A new spec, a new background, or both.",
                    "minProperties": 1,
                    "properties": {
                        "spec": {"type": "string", "minLength": 1, "maxLength": MAX_SPEC_CHARS},
                        "background": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_BACKGROUND_CHARS,
                        },
                    },
                    "additionalProperties": False,
                },
                "SpecList": {
                    "type": "object",
                    "properties": {
                        "specs": {"type": "array", "items": {"type": "object"}},
                        "countries": {"type": "object", "additionalProperties": {"type": "string"}},
                        "backgrounds": {"type": "object"},
                    },
                },
            }
        },
    }
