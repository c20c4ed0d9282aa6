"""Check mode: photos the pipeline made, checked again from their files alone, read the same
(geometry within 1 % of the height, the same verdict); a photo that is no ID photo fails with
the reasons; the CLI's ``idphoto check`` answers with make's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.catalogue import get_spec
from idphoto.samples import sample_path
from pipeline import stages
from pipeline.check import check_photo
from pipeline.errors import NoFaceError

IDPHOTO = Path(sys.executable).with_name("idphoto")
CASES = [
    ("astronaut", "us-passport"),
    ("astronaut", "cn-id-card"),
    ("grace_hopper", "schengen-visa"),
    ("grace_hopper", "jp-passport"),
]


@pytest.fixture(scope="module")
def made(detector, segmenter, landmarker):
    out = {}
    for sample in {s for s, _ in CASES}:
        data = sample_path(sample).read_bytes()
        analysis, region = stages.analyse(data, detector, landmarker=landmarker)
        matte = stages.refine(region, stages.segment(region, segmenter, face=analysis.face))
        for name, spec_id in CASES:
            if name == sample:
                spec = get_spec(spec_id)
                out[(name, spec_id)] = stages.compose(
                    matte, analysis, spec, spec.default_background, sheet=None
                )
    return out


@pytest.mark.parametrize(("sample", "spec_id"), CASES)
def test_a_photo_made_here_checks_the_same(made, detector, landmarker, sample, spec_id) -> None:
    comp = made[(sample, spec_id)]
    spec = get_spec(spec_id)
    report = check_photo(comp.photo.data, spec, detector, landmarker)
    made_m, m = comp.report["measures"], report["measures"]
    for key in ("head_height_fraction", "eye_line_from_bottom_fraction", "top_margin_fraction"):
        assert abs(m[key] - made_m[key]) <= 0.01, (key, m[key], made_m[key])
    assert report["verdict"] == comp.report["verdict"], (report["failed"], comp.report["failed"])
    checked = {c["check"]: c["pass"] for c in report["checks"]}
    for name in ("width_px", "dpi", "head_height", "background", "face_count", "eyes_open"):
        assert checked[name], name
    assert m["background"] in spec.backgrounds


def test_a_portrait_is_not_an_id_photo(detector, landmarker) -> None:
    report = check_photo(
        sample_path("astronaut").read_bytes(), get_spec("us-passport"), detector, landmarker
    )
    assert report["verdict"] == "fail"
    assert {"width_px", "background"} <= set(report["failed"])


def test_a_photo_without_a_face_is_a_face_error(detector, landmarker) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (413, 531), (240, 240, 240)).save(buf, "JPEG")
    with pytest.raises(NoFaceError):
        check_photo(buf.getvalue(), get_spec("icao-35x45"), detector, landmarker)


def test_cli_check_exit_codes(made, tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(made[("astronaut", "us-passport")].photo.data)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo\n" * 40)
    run = subprocess.run(
        [str(IDPHOTO), "check", str(good), "--spec", "us-passport", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout.splitlines()[0])
    assert line["verdict"] == "pass" and line["mode"] == "check"
    raw = subprocess.run(
        [str(IDPHOTO), "check", str(sample_path("astronaut")), "--spec", "us-passport"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert raw.returncode == 5 and "fail for US passport" in raw.stdout
    bad = subprocess.run(
        [str(IDPHOTO), "check", str(notes), "--spec", "us-passport"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 3, bad.stderr
