"""The browser pages: the form (``/``), a job's page (``/jobs/<id>``), "check my existing
photo" (``/check``) and the API docs.

Every page works without JavaScript: the form posts to ``/make`` and is redirected to the job's
page, which refreshes itself until the photo is ready and then shows the photo, the downloads,
the report in plain words, the backgrounds (each a small form that re-composes) and a "delete my
photo now" button. The script (``static/app.js``) only makes the same things faster: upload with
progress, polling, swatches that re-compose in place.

The job page signs its download links when it is rendered, so reloading it renews links that
have expired.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup, escape

from config.catalogue import COUNTRY_NAMES, list_specs, parse_spec_arg
from config.colours import NAMED_COLOURS
from config.contracts import JobRecord, Report
from pipeline.errors import IdPhotoError
from web import i18n
from web.api import admit, read_photo, submit
from web.context import services, state
from web.errors import ApiError, status_of
from web.messages import DOWNLOADS, STAGES, STATES, error_text, strings
from web.openapi import openapi_document
from web.report_text import describe
from web.security import CSRF_FIELD, check_csrf, csrf_token

bp = Blueprint("ui", __name__)

_CODE_SPAN = re.compile(r"`([^`]+)`")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: Swatches on the form (names from config.colours); a spec's accepted ones come first.
SWATCHES = (
    "white",
    "off-white",
    "cream",
    "light-grey",
    "light-blue",
    "sky-blue",
    "blue",
    "dark-blue",
    "red",
)
#: Print sheets (pipeline.sheet.SHEETS keys) with what people call them.
SHEETS = ("4x6", "5x7", "a4", "none")
#: Seconds between refreshes of a running job's page when the script does not run.
REFRESH_S = 2


@bp.app_template_filter("inline_code")
def inline_code(text: str) -> Markup:
    """Escape ``text`` and render its CommonMark code spans (`x`) as <code> (API docs)."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def _jobs() -> ModuleType:
    from tasks import jobs  # on first use: serving the form needs no image stack

    return jobs


def _checks() -> ModuleType:
    from tasks import checks  # on first use, as web/api.py does: the models load on a check

    return checks


def _size_label(spec: Any) -> str:
    if spec.size_mm:
        w, h = spec.size_mm
        return f"{w:g}×{h:g} mm"
    return f"{spec.width_px}×{spec.height_px} px"


_HAS_SIZE = re.compile(r"\d\s*[x×]\s*\d")
_MAX_LABEL = 36  # characters that fit a 390 px wide phone's select at 14 px
_SHORT = {"US": "US", "GB": "UK", "KR": "Korea"}
_BRACKETS = re.compile(r"\s*[(（][^)）]*[)）]")


def _option_label(spec: Any) -> str:
    """Short enough for a phone's select (the full name shows under it, `_detail`): no
    parentheses, no leading country (its group says it), the size unless the name says it."""
    name = _BRACKETS.sub("", i18n.spec_name(spec)).strip()
    if i18n.language() == "en":
        country = {COUNTRY_NAMES.get(spec.country, ""), spec.country, _SHORT.get(spec.country)}
        first, _, rest = name.partition(" ")
        if rest and first in country:
            name = rest[0].upper() + rest[1:]
        if not spec.size_mm:  # a pixel size says "digital" already
            name = re.sub(r",?\s*\bdigital\b", "", name).strip()
    label = name if _HAS_SIZE.search(name) else f"{name} · {_size_label(spec)}"
    if len(label) > _MAX_LABEL and " / " in name:  # the first of two names, then
        label = f"{name.split(' / ')[0]} · {_size_label(spec)}"
    return label


def _detail(spec: Any) -> str:
    """The chosen document in full, under the select (its label may be cut off on a phone)."""
    parts = [i18n.spec_name(spec)]
    if spec.size_mm:
        parts.append("{:g}×{:g} mm".format(*spec.size_mm))
    parts.append(f"{spec.width_px}×{spec.height_px} px, {spec.dpi} dpi")
    return " · ".join(parts)


def _search_text(spec: Any) -> str:
    words = [spec.id, spec.name, getattr(spec, "name_zh", ""), spec.country]
    words += list(getattr(spec, "aliases", ()))
    words += i18n.country_names_all(spec.country)
    words.append(f"{spec.width_px}x{spec.height_px}")
    if spec.size_mm:
        words.append("{:g}x{:g}".format(*spec.size_mm))
    return " ".join(w for w in words if w).lower()


def _spec_groups(lang: str) -> list[dict[str, Any]]:
    """Specs grouped by country: the language's home country first, then International, then
    the others by their name in that language."""
    home = {"zh": "CN"}.get(lang)
    by_country: dict[str, list[Any]] = {}
    for spec in list_specs():
        by_country.setdefault(spec.country, []).append(spec)

    def order(code: str) -> tuple[int, str]:
        return (0 if code == home else 1 if code == "INT" else 2, i18n.country_name(code))

    groups = []
    for country in sorted(by_country, key=order):
        items = [
            {
                "id": s.id,
                "label": _option_label(s),
                "detail": _detail(s),
                "search": _search_text(s),
                "backgrounds": list(s.backgrounds),
                "default_background": s.default_background,
            }
            for s in by_country[country]
        ]
        groups.append({"country": country, "name": i18n.country_name(country), "specs": items})
    return groups


def _swatches(accepted: list[str]) -> list[dict[str, Any]]:
    names = [n for n in accepted if n in SWATCHES] + [n for n in SWATCHES if n not in accepted]
    out = [
        {
            "name": n,
            "hex": NAMED_COLOURS[n],
            "label": i18n.colour_name(n),
            "accepted": n in accepted,
        }
        for n in names
        if n in NAMED_COLOURS
    ]
    out.append(
        {
            "name": "transparent",
            "hex": None,
            "label": i18n.colour_name("transparent"),
            "accepted": False,
        }
    )
    return out


def _form_context(error: str | None = None, values: dict[str, str] | None = None) -> dict:
    settings = state().settings
    lang = i18n.language()
    groups = _spec_groups(lang)
    values = values or {}
    spec_info = {
        s["id"]: {
            "backgrounds": s["backgrounds"],
            "default": s["default_background"],
            "detail": s["detail"],
        }
        for g in groups
        for s in g["specs"]
    }
    default_spec = values.get("spec") or i18n.DEFAULT_SPEC.get(lang, "us-passport")
    info = spec_info.get(default_spec) or {
        "backgrounds": ["white"],
        "default": "white",
        "detail": "",
    }
    limit_mb = f"{settings.max_upload_bytes / (1024 * 1024):g}"
    return {
        "groups": groups,
        "default_spec": default_spec,
        "default_background": values.get("background") or info["default"],
        "spec_detail": info["detail"],
        "swatches": _swatches(info["backgrounds"]),
        "sheets": SHEETS,
        "sheet": values.get("sheet") or "4x6",
        "csrf_token": csrf_token(),
        "csrf_field": CSRF_FIELD,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_upload_mb": limit_mb,
        "spec_info": spec_info,
        "with_custom": True,  # the picker offers "Custom size…" (the check page does not)
        "strings": strings(limit_mb),
        "error": error,
        "values": values,
    }


@bp.get("/")
def index() -> str:
    return render_template("index.html", **_form_context())


#: Head-covering declarations the check page offers (tasks.checks.HEAD_COVERING_REASONS).
HEAD_COVERING = ("religious", "medical")


def _declarations(form: Any) -> dict[str, Any]:
    """The check page's declarations as the check's options (unknown values are ignored)."""
    options: dict[str, Any] = {}
    if form.get("head_covering") in HEAD_COVERING:
        options["head_covering"] = form.get("head_covering")
    if form.get("medical_glasses"):
        options["medical_glasses"] = True
    return options


def _check_page(
    report: Report | None = None,
    spec: Any = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> str:
    ctx = _form_context(error, values)
    declared = frozenset(k for k in ("head_covering", "medical_glasses") if (values or {}).get(k))
    described = describe(report, spec.height_mm if spec else None, declared) if report else None
    ctx.update(
        with_custom=False,
        result=described,
        fixes=[i for i in described["items"] if i["status"] != "pass"] if described else [],
        result_spec=(i18n.spec_name(spec) + " · " + _size_label(spec)) if spec else "",
    )
    return render_template("check.html", **ctx)


@bp.get("/check")
def check_page() -> str:
    """ "Check my existing photo": an uploaded photo measured against a document as it is."""
    return _check_page()


@bp.post("/check")
def check() -> tuple[str, int] | str:
    """The check form, with or without script: the same page with the result under it (the
    script swaps the result in). The check runs here, in the web process, as
    ``POST /api/v1/checks`` does (no segmentation: a fraction of a second)."""
    check_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
    form = request.form
    values = {k: form.get(k, "") for k in ("spec", "head_covering", "medical_glasses")}
    limit_mb = f"{state().settings.max_upload_bytes / (1024 * 1024):g}"
    try:
        data = read_photo("photo")
        spec_text = (form.get("spec") or "").strip()
        if not spec_text or spec_text == "custom":
            raise ApiError(422, "missing_spec", "Choose a document.")
        spec = parse_spec_arg(spec_text)
        report = _checks().check_upload(services(), data, spec_text, _declarations(form))
    except (ApiError, IdPhotoError) as exc:
        status = status_of(exc)
        return _check_page(error=error_text(exc.code, limit_mb), values=values), status
    metrics = state().metrics
    if metrics is not None:
        metrics.jobs_submitted.labels(kind="check").inc()
    return _check_page(report, spec, values=values)


def custom_spec_text(form: Any) -> str:
    """The ``custom:`` spec text (config.catalogue grammar) from the form's custom-size fields."""

    def number(name: str) -> str:
        raw = (form.get(name) or "").strip().replace(",", ".")
        if not re.fullmatch(r"\d{1,5}(\.\d{1,2})?", raw):
            raise ApiError(422, "bad_parameter", f"'{name}' must be a number.")
        return raw

    unit = form.get("custom_unit") if form.get("custom_unit") in ("mm", "px") else "mm"
    text = f"custom:{number('custom_width')}x{number('custom_height')}{unit}"
    dpi = (form.get("custom_dpi") or "").strip()
    if dpi:
        text += f"@{number('custom_dpi')}"
    lo, hi = (form.get("kb_min") or "").strip(), (form.get("kb_max") or "").strip()
    if lo or hi:
        text += f",kb={number('kb_min') if lo else ''}-{number('kb_max') if hi else ''}"
    return text


def _background(form: Any) -> str:
    value = (form.get("background") or "").strip()
    if value == "custom":
        colour = (form.get("custom_colour") or "").strip().lower()
        return colour if re.fullmatch(r"#[0-9a-f]{6}", colour) else "white"
    return value


@bp.post("/make")
def make() -> Response | tuple[str, int]:
    """The form without JavaScript: submit, then the job's page (303)."""

    check_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
    form = request.form
    values = {k: form.get(k, "") for k in ("spec", "background", "sheet")}
    accept = request.accept_mimetypes
    script = accept.quality("application/json") > accept.quality("text/html")
    try:
        admit()
        field = "camera" if _has_file("camera") and not _has_file("photo") else "photo"
        data = read_photo(field)
        spec = form.get("spec") or ""
        if spec == "custom":
            spec = custom_spec_text(form)
        sheet = form.get("sheet") or "4x6"
        job_id = submit(data, spec, _background(form), {"sheet": sheet})
    except (ApiError, IdPhotoError) as exc:
        if script:  # the page's script shows the error itself, from the JSON answer
            raise
        code = exc.code
        limit_mb = f"{state().settings.max_upload_bytes / (1024 * 1024):g}"
        status = status_of(exc)
        ctx = _form_context(error_text(code, limit_mb), values)
        return render_template("index.html", **ctx), status
    page = url_for("ui.job", job_id=job_id)
    if script:
        response = jsonify({"job_id": job_id, "page_url": page})
        response.status_code = 202
        return response
    return redirect(page, code=303)  # type: ignore[return-value]


def _has_file(name: str) -> bool:
    upload = request.files.get(name)
    return bool(upload and upload.filename)


def _record(job_id: str) -> JobRecord | None:
    if not _JOB_ID.match(job_id):
        return None
    return _jobs().get_job(services(), job_id)


def _spec_of(record: JobRecord) -> Any | None:
    try:
        return parse_spec_arg(str(record.get("spec") or ""))
    except IdPhotoError:
        return None


def _progress(record: JobRecord) -> dict[str, Any]:
    stages = record.get("stages") or {}
    job_state = str(record.get("state") or "queued")
    rows, left = [], 0.0
    for name, _state, typical, label in STAGES:
        info = stages.get(name) or {}
        status = info.get("status") if isinstance(info, dict) else None
        done = status in ("done", "ok", "finished", "success") or bool(
            isinstance(info, dict) and info.get("finished_at")
        )
        running = not done and (_state == job_state or status == "running")
        if not done:
            left += typical
        rows.append({"name": name, "label": str(label), "done": done, "running": running})
    pct, text = STATES.get(job_state, (5, STATES["queued"][1]))
    return {"rows": rows, "percent": pct, "text": str(text), "left_s": round(left)}


def _swatch_name(background: Any) -> str:
    """The swatch a job's background is (records keep the hex value of named colours)."""
    text = str(background or "").lower()
    return next((n for n in SWATCHES if NAMED_COLOURS.get(n, "").lower() == text), text)


def _not_found_page() -> tuple[str, int]:
    return render_template("gone.html", message=error_text("unknown_job")), 404


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Response | tuple[str, int] | str:
    record = _record(job_id)
    if record is None:
        return _not_found_page()
    settings = state().settings
    job_state = record.get("state")
    spec = _spec_of(record)
    links = _jobs().job_links(services(), record) if job_state == "done" else {}
    report = describe(record.get("report"), spec.height_mm if spec else None)
    accepted = list(spec.backgrounds) if spec else ["white"]
    limit_mb = f"{settings.max_upload_bytes / (1024 * 1024):g}"
    body = render_template(
        "job.html",
        job_id=job_id,
        record=record,
        job_state=job_state,
        spec_label=(i18n.spec_name(spec) + " · " + _size_label(spec)) if spec else "",
        background=_swatch_name(record.get("background")),
        links=[(name, links[name], DOWNLOADS[name]) for name in DOWNLOADS if name in links],
        report=report,
        progress=_progress(record),
        error=error_text(record.get("reason")) if job_state == "failed" else None,
        swatches=_swatches(accepted),
        refresh_s=REFRESH_S if job_state not in ("done", "failed") else None,
        csrf_token=csrf_token(),
        csrf_field=CSRF_FIELD,
        strings=strings(limit_mb),
    )
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # its links are signed for this visit
    return response


@bp.post("/jobs/<job_id>/background")
def recompose(job_id: str) -> Response | tuple[str, int]:
    """A swatch on the job page without JavaScript: the same photo on another background."""
    check_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
    if _record(job_id) is None:
        return _not_found_page()
    admit(segment=False)
    new_id = _jobs().recompose(services(), job_id, background=_background(request.form))
    return redirect(url_for("ui.job", job_id=new_id), code=303)  # type: ignore[return-value]


@bp.post("/jobs/<job_id>/delete")
def delete(job_id: str) -> tuple[str, int] | str:
    """The "delete my photo now" button without JavaScript."""
    check_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
    if not (_JOB_ID.match(job_id) and _jobs().delete_job(services(), job_id)):
        return _not_found_page()
    return render_template("gone.html", message=strings("")["deleted"], deleted=True)


@bp.get("/swatches.css")
def swatches_css() -> Response:
    """The swatches' colours as a stylesheet (config.colours), so that they show without
    script and without inline styles (the CSP allows neither)."""
    rules = [f".chip-{name} {{ background-color: {NAMED_COLOURS[name]}; }}" for name in SWATCHES]
    response = Response("\n".join(rules) + "\n", mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/api/docs")
def docs() -> str:
    document = openapi_document(max_upload_bytes=state().settings.max_upload_bytes)
    return render_template("docs.html", doc=document, schemas=document["components"]["schemas"])
