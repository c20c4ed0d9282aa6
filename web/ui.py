"""The browser pages: the form (``/``) and the API documentation (``/api/docs``)."""

from __future__ import annotations

import json
import re
from itertools import groupby
from typing import Any

from flask import Blueprint, render_template
from markupsafe import Markup, escape

from config.catalogue import COUNTRY_NAMES, list_specs
from config.colours import NAMED_COLOURS
from web.context import state
from web.openapi import openapi_document
from web.security import CSRF_FIELD, csrf_token

bp = Blueprint("ui", __name__)

_CODE_SPAN = re.compile(r"`([^`]+)`")


@bp.app_template_filter("inline_code")
def inline_code(text: str) -> Markup:
    """Escape ``text`` and render its CommonMark code spans (`x`) as <code> (API docs)."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


#: Swatches on the form, in this order (names from config.colours).
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


def _spec_groups() -> list[dict[str, Any]]:
    groups = []
    for country, specs in groupby(list_specs(), key=lambda s: s.country):
        items = []
        for spec in specs:
            size = f"{spec.width_px}×{spec.height_px} px"
            if spec.size_mm:
                w, h = spec.size_mm
                size = f"{w:g}×{h:g} mm, " + size
            items.append(
                {
                    "id": spec.id,
                    "label": f"{spec.name} ({size})",
                    "backgrounds": list(spec.backgrounds),
                    "default_background": spec.default_background,
                }
            )
        groups.append(
            {"country": country, "name": COUNTRY_NAMES.get(country, country), "specs": items}
        )
    return groups


@bp.get("/")
def index() -> str:
    settings = state().settings
    groups = _spec_groups()
    spec_info = {
        s["id"]: {"backgrounds": s["backgrounds"], "default": s["default_background"]}
        for g in groups
        for s in g["specs"]
    }
    return render_template(
        "index.html",
        groups=groups,
        default_spec="us-passport",
        swatches=[(name, NAMED_COLOURS[name]) for name in SWATCHES if name in NAMED_COLOURS],
        csrf_token=csrf_token(),
        csrf_field=CSRF_FIELD,
        max_upload_bytes=settings.max_upload_bytes,
        max_upload_mb=f"{settings.max_upload_bytes / (1024 * 1024):g}",
        spec_info=json.dumps(spec_info),
    )


@bp.get("/api/docs")
def docs() -> str:
    document = openapi_document(max_upload_bytes=state().settings.max_upload_bytes)
    return render_template("docs.html", doc=document, schemas=document["components"]["schemas"])
