"""A fixed subset of the development corpus (``idphoto.corpus.CI_SUBSET``), end to end.

Fourteen real photos chosen for difficulty, from small packages: hair at or near the top edge,
short bottoms, dark hair on light walls, curly hair outdoors, a small face, a CMYK photo with an
EXIF rotation, a second person at the edge, and five that must be refused (two people, a drawing,
a tiny cut-off crop, a crown cut off a tilted head, a close-up the face spills out of). Each photo is segmented once and composed
for every spec of the evaluation; the outcome must match the label (``corpus/MANIFEST.tsv``):

- ``ok``: a photo is produced, and measured again on the written file (``bench.measure``: crown
  by difference from the background, chin and eyes from the face-mesh landmarks) every band of
  the spec holds and no hair touches the top edge;
- ``either``: refusing is fine, but a produced photo must hold its bands the same way;
- ``refuse`` for what the photo is: refused, with one of the row's right reasons.

The images are fetched through the project's own step (``idphoto corpus fetch --subset ci``,
about 35 MB, cached); a failed fetch fails the test. The full corpus is a bench
(``python -m bench.corpus``), not a test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.corpus import SPECS
from bench.measure import BAND_TOL, Measurer
from config.catalogue import get_spec
from idphoto import corpus
from pipeline import stages
from pipeline.composite import parse_background
from pipeline.errors import IdPhotoError

ROWS = {r.out_name: r for r in corpus.select(corpus.load_manifest(), subset="ci")}


@pytest.fixture(scope="session")
def corpus_images() -> dict[str, Path]:
    try:
        return corpus.fetch(list(ROWS.values()), log=lambda line: None)
    except corpus.CorpusError as exc:
        pytest.fail(f"`idphoto corpus fetch --subset ci` failed: {exc}")


@pytest.fixture(scope="session")
def prepared(corpus_images, detector, segmenter) -> Callable[[str], tuple[Any, Any, Any]]:
    """name -> (analysis, matte, None) or (None, None, the refusal), one segmentation each."""
    cache: dict[str, tuple[Any, Any, Any]] = {}

    def get(name: str) -> tuple[Any, Any, Any]:
        if name not in cache:
            data = corpus_images[name].read_bytes()
            try:
                analysis, region = stages.analyse(data, detector)
                coarse = stages.segment(region, segmenter, face=analysis.face)
                cache[name] = (analysis, stages.refine(region, coarse), None)
            except IdPhotoError as exc:
                cache[name] = (None, None, exc)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def measurer(models_dir: Path, detector) -> Measurer:
    return Measurer(models_dir, detector)


def test_subset_covers_the_hard_cases() -> None:
    labels = {r.expect for r in ROWS.values()}
    assert labels == {"ok", "either", "refuse"}
    assert sum(r.expect == "refuse" and r.refuse_kind == "photo" for r in ROWS.values()) >= 3
    assert all(r.reasons for r in ROWS.values() if r.expect == "refuse")


@pytest.mark.parametrize("spec_id", SPECS)
@pytest.mark.parametrize("name", corpus.CI_SUBSET)
def test_corpus_photo(name: str, spec_id: str, prepared, measurer: Measurer) -> None:
    row = ROWS[name]
    spec = get_spec(spec_id)
    analysis, matte, refusal = prepared(name)
    if refusal is None:
        bg = parse_background(spec.default_background)
        try:
            comp = stages.compose(matte, analysis, spec, bg, sheet=None)
        except IdPhotoError as exc:
            refusal = exc
    if row.expect == "refuse":
        assert refusal is not None, f"{name} ({';'.join(sorted(row.flags))}) made a photo"
        assert refusal.code in row.reasons, f"refused {refusal.code}: {refusal.message}"
        return
    if refusal is not None:
        assert row.expect == "either", f"ok photo refused {refusal.code}: {refusal.message}"
        return
    m = measurer.measure(comp.photo.data, spec, tuple(bg.top))
    fr = {k: None if v is None else round(v, 4) for k, v in m.fractions.items()}
    assert not m.top_touch, f"hair touches the top edge (crown row {m.crown_y}); {fr}"
    for band_name, holds in m.bands.items():
        band = getattr(spec, band_name)
        assert holds is not None, f"{band_name} not measured on the output ({m.method}); {fr}"
        assert holds, (
            f"{band_name} = {fr[band_name]} outside {band} (+-{BAND_TOL}), "
            f"measured on the output by {m.method}; {fr}"
        )


def test_a_close_up_is_cut_off_in_check_mode_too(
    corpus_images: dict[str, Path], detector, landmarker
) -> None:
    """The close-up the detector cannot see whole (the face spills past the frame) is refused
    as cut off by check mode as by the make path: the search lives in the detector."""
    from pipeline.check import check_photo
    from pipeline.errors import FaceCutOff

    data = corpus_images["thumbor__redeye.png"].read_bytes()
    with pytest.raises(FaceCutOff, match="too close to the camera"):
        check_photo(data, get_spec("us-passport"), detector, landmarker)
    with pytest.raises(FaceCutOff, match="too close to the camera"):
        stages.analyse(data, detector, landmarker=landmarker)
