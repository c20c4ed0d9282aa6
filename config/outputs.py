"""The files a job makes, in one place: names, file types, content types, file names.

Used by the chain (`tasks.keys.output_key`, the composite stage's uploads and content types),
the CLI's file names, reused requests' copies and the OpenAPI document. A new output is made
in three files: the pipeline produces it (`pipeline.stages.Composition.files`), it is listed
here, and the web page names its download (``web/messages.py`` ``DOWNLOADS``).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "json": "application/json"}


@dataclass(frozen=True)
class Output:
    name: str  # the key in a job's ``outputs`` and the stem of its object, jobs/{id}/{name}.{ext}
    extensions: tuple[str, ...]  # the file types it may have (the photo's follows the spec)
    file_suffix: str  # the CLI's file name: {input}-{spec}{file_suffix}.{ext}
    description: str  # for the API document


OUTPUTS: tuple[Output, ...] = (
    Output("photo", ("jpg", "png"), "", "the photo, at the spec's pixels and dpi"),
    Output("sheet", ("jpg",), "-sheet", "a print sheet with copies (when asked for)"),
    Output("cutout", ("png",), "-cutout", "the person on a transparent background"),
    Output("report", ("json",), "-report", "the compliance report with the verdict"),
)
BY_NAME = {o.name: o for o in OUTPUTS}
NAMES = tuple(BY_NAME)


def content_type(ext: str) -> str:
    """The content type an output of this file type is stored and served with."""
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def check(name: str, ext: str) -> Output:
    """The output ``name`` when ``ext`` is one of its file types; ValueError otherwise."""
    output = BY_NAME.get(name)
    if output is None or ext not in output.extensions:
        raise ValueError(f"unknown output {name}.{ext}")
    return output
