"""Property tests (hypothesis) on the parsers that take what a client sends: spec strings,
backgrounds, options (as the API's JSON string and as the job layer's object) and zip archives
(damaged, truncated, or with any byte changed). Whatever the input, each answers with a value or
a domain error (`IdPhotoError`, or the API's `ApiError`: a 4xx with a reason), never another
exception (a 500). Issue 17's fuzzing pass; the examples a failure finds are kept by hypothesis
in .hypothesis/ and replayed first."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from config.catalogue import parse_spec_arg
from config.settings import Settings
from idphoto.samples import sample_path
from pipeline.composite import parse_background
from pipeline.errors import IdPhotoError
from tasks import batches
from tasks.jobs import validate_request
from web.api import _options as api_options
from web.errors import ApiError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

_NUMBER = st.one_of(
    st.integers(min_value=-5, max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text("0123456789.", max_size=8),
)
_CUSTOM = st.builds(
    lambda w, h, unit, dpi, head: f"custom:{w}x{h}{unit}{dpi}{head}",
    _NUMBER,
    _NUMBER,
    st.sampled_from(["mm", "in", "px", "cm", ""]),
    st.one_of(st.just(""), _NUMBER.map(lambda d: f"@{d}")),
    st.one_of(st.just(""), st.tuples(_NUMBER, _NUMBER).map(lambda t: f",head={t[0]}-{t[1]}")),
)


@FUZZ
@given(st.one_of(st.text(max_size=400), _CUSTOM))
@example("custom:35x45mm@300,head=70-80")
@example("custom:" + "9" * 5000 + "x1mm")
def test_spec_strings(text: str) -> None:
    try:
        spec = parse_spec_arg(text)
    except IdPhotoError:
        return
    assert spec.width_px > 0 and spec.height_px > 0 and spec.id


@FUZZ
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(lambda a, b: f"gradient:{a},{b}", st.text(max_size=12), st.text(max_size=12)),
        st.from_regex(r"#[0-9a-fA-F]{0,8}", fullmatch=True),
    )
)
def test_backgrounds(text: str) -> None:
    try:
        parse_background(text)
    except IdPhotoError:
        pass


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_OPTION_KEYS = ["level", "sheet", "zero_margin", "head_covering", "medical_glasses", "other"]


@FUZZ
@given(
    st.one_of(
        _JSON,
        st.dictionaries(st.sampled_from(_OPTION_KEYS), _JSON, max_size=5),
    )
)
def test_options_objects(options: Any) -> None:
    try:
        _, _, merged = validate_request("us-passport", None, options)
    except IdPhotoError:
        return
    json.dumps(merged)  # what the job record stores


@FUZZ
@given(st.one_of(st.text(max_size=300), _JSON.map(json.dumps)))
@example("[" * 100_000)
def test_options_strings(raw: str) -> None:
    try:
        api_options(raw)
    except ApiError as exc:
        assert 400 <= exc.status < 500


def _zip() -> bytes:
    photo = sample_path("grace_hopper").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a/me.jpg", photo, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("b\\..\\two.jpg", photo[:5000], compress_type=zipfile.ZIP_STORED)
        archive.writestr("__MACOSX/._me.jpg", b"x")
    return buf.getvalue()


_ARCHIVE = _zip()
_SETTINGS = Settings(max_upload_bytes=2 * 1024 * 1024)


def _unpack(data: bytes) -> None:
    """What a batch does with an upload before it submits anything: count, plan, inflate."""
    batches.count_members(data)
    archive = batches._open_archive(data)
    members, _ = batches._plan(archive, _SETTINGS)
    for info, name in members:
        assert name and "/" not in name and "\\" not in name
        try:
            batches._read_member(archive, info, _SETTINGS)
        except IdPhotoError:
            pass  # that member fails alone


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(_ARCHIVE) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(_ARCHIVE)),
)
def test_damaged_zip_archives(changes: list[tuple[int, int]], keep: int) -> None:
    data = bytearray(_ARCHIVE)
    for at, value in changes:
        data[at] = value
    try:
        _unpack(bytes(data[: max(keep, 1)]))
    except IdPhotoError:
        pass


def test_the_fuzzed_archive_is_a_real_batch() -> None:
    """The archive the fuzzer damages unpacks whole when left alone (the test is not vacuous)."""
    archive = batches._open_archive(_ARCHIVE)
    members, skipped = batches._plan(archive, _SETTINGS)
    assert [name for _, name in members] == ["me.jpg", "two.jpg"]
    assert len(skipped) == 1 and "__MACOSX" in skipped[0]["reason"]
    assert batches._read_member(archive, members[0][0], _SETTINGS)[:2] == b"\xff\xd8"


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # zipfile on duplicate names
