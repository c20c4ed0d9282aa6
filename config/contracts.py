"""The shapes that cross layers and processes, typed in one place: a check and the compliance
report (made by `pipeline.report`, read by tasks, web and the CLI), the chain's message (the job
context `tasks.pipeline` passes from stage to stage) and the job record (`tasks.jobstore`,
served by the API and the job page).

They are ``TypedDict``s, not classes: each is JSON on the wire (a Celery message, a Redis hash,
``report.json``, an API answer) and stays a plain ``dict`` at run time, so nothing converts on
the job path; mypy (every layer, setup.cfg) checks the keys and value types at each producer and
consumer. The job states and stages are listed here once; `tasks.jobstore` derives its tuples
from them.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, get_args

Level = Literal["required", "review", "advisory"]
Verdict = Literal["pass", "fail", "review"]

#: One check of a report. ``pass`` is a Python keyword, hence the functional form.
Check = TypedDict(
    "Check",
    {
        "check": str,  # its id (web/report_text.py words each one)
        "value": Any,  # the measured value (number, [x, y], text), or None where not measured
        "limit": Any,  # the limit: a number, [lo, hi], or a list of allowed values
        "unit": str,  # "", "fraction", "px", "deg", "bytes", ...
        "pass": bool,
        "level": Level,
        "message": NotRequired[str],  # the examiner's sentence (pipeline.examine)
        "heuristic": NotRequired[bool],  # rests on a heuristic, not a model (said in the report)
        "estimate": NotRequired[bool],  # pose from BlazeFace keypoints (no landmark model)
        "iso_limit": NotRequired[float],
    },
)


class VerdictFields(TypedDict):
    """The verdict of a list of checks and the names behind it (`pipeline.report.verdict_of`)."""

    failed: list[str]  # required checks that fail: what to fix
    review: list[str]  # review-level checks that fail: what a person should look at
    warnings: list[str]  # advisory checks that fail: they change nothing
    verdict: Verdict


class Report(VerdictFields, total=False):
    """The compliance report of one photo against one spec (``report.json``)."""

    spec: str
    spec_name: str
    measures: dict[str, Any]  # the geometry and the examiner's measures, by name
    checks: list[Check]
    rules: str  # the authority's rule set (config/specs.toml)
    not_checked: list[str]
    notes: list[str]
    sheet: dict[str, Any]  # the print sheet's layout, when one was made
    mode: Literal["check"]  # a photo measured as it is (pipeline.check), not made here


JobState = Literal["queued", "segmenting", "refining", "compositing", "storing", "done", "failed"]
Stage = Literal["segment", "matte_refine", "composite", "store"]
STATES: tuple[JobState, ...] = get_args(JobState)
STAGES: tuple[Stage, ...] = get_args(Stage)


#: Who ran one stage of a job and how it went (the record's ``stages`` entries): ``status``
#: (running | ok | failed), ``worker``, ``hostname``, ``pid``, ``attempt``, ``started_at``,
#: ``finished_at``, ``duration_s``, ``cpu_s``, ``error`` (a failure's reason code), ``cached``
#: (skipped: the matte was stored), and each stage's own measures (``detect_s``,
#: ``inference_s``, ``outputs_kept``, ``verdict``, ...). Open-ended by design: a mapping.
StageRecord = dict[str, Any]


class JobContext(TypedDict):
    """The chain's message: what each stage needs to find its inputs, and what it hands on."""

    v: int  # the context's version (`tasks.pipeline.CONTEXT_VERSION`)
    job_id: str
    sha256: str  # the upload's content hash: where the input and the matte are stored
    model: str
    spec: str
    background: str
    options: dict[str, Any]
    scope: NotRequired[str]  # the client's cache scope (``cache_scope = "client"``)
    stages: NotRequired[dict[str, StageRecord]]  # finished stages, written when the job ends
    outputs: NotRequired[dict[str, str]]  # composite -> store: output name -> key
    report: NotRequired[Report]  # composite -> store


class JobRecord(TypedDict, total=False):
    """A job as the job store returns it (`tasks.jobstore.assemble`) and the API serves it."""

    job_id: str
    state: JobState
    timestamps: dict[str, float]  # state -> when the job entered it
    stages: dict[str, StageRecord]
    created_at: float
    updated_at: float
    finished_at: float
    # the request
    sha256: str
    input_key: str
    input_format: str
    input_bytes: int
    model: str
    spec: str
    background: str
    options: dict[str, Any]
    cache_scope: str
    matte_cached: bool
    parent: str  # the job this one recomposes
    reused_from: str  # the identical request whose outputs were copied
    # done
    outputs: dict[str, str]
    report: Report
    # failed
    reason: str
    message: str
    failed_stage: str
    error_details: dict[str, Any]
    lost_in: str
    waiting_for: str
