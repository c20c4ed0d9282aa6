"""The quality gate of the derived ISNet models, and the choice of which one a worker runs.

The gate: a model a worker may run instead of the fp32 reference must give masks whose IoU
against the reference's, at the model's resolution, has median >= 0.99 and worst >= 0.97 over
real photos the model is given: the two test samples plus the corpus's CI subset where
``idphoto corpus fetch`` has put it (the samples alone otherwise), less the photos the product
refuses before segmenting (`idphoto.modelderive.segment_input`). None of these photos is in the
calibration set (`idphoto.modelderive.CALIBRATION_PHOTOS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from config.models import DERIVED
from config.settings import Settings
from idphoto.modelderive import (
    CALIBRATION_PHOTOS,
    GATE_MEDIAN_IOU,
    GATE_WORST_IOU,
    mask_iou,
    model_table,
    segment_input,
)
from idphoto.modelfetch import is_present
from idphoto.samples import SAMPLES, sample_path
from pipeline.runtime import ISNET_FILES, choose_isnet, choose_precision, cpu_flags, session_options
from pipeline.segment import (
    CASCADE_UNSURE_SHARE,
    cascade,
    isnet_input,
    load_segmenter,
    unsure_share,
)

VNNI = frozenset({"avx2", "avx512f", "avx512_vnni"})
AVX2 = frozenset({"avx2", "fma"})


def _photos() -> list[Path]:
    photos = [sample_path(name) for name in SAMPLES]
    try:
        from idphoto.corpus import CI_SUBSET, default_dir
    except ImportError:  # the corpus step is not in this checkout yet
        return photos
    images = default_dir() / "images"
    return photos + [images / n for n in CI_SUBSET if (images / n).is_file()]


@pytest.fixture(scope="module")
def gate_photos(detector) -> list[tuple[str, np.ndarray]]:
    """(name, model input) of every photo the segment stage would be given."""
    regions = [(p.name, segment_input(p.read_bytes(), detector)) for p in _photos()]
    return [(name, isnet_input(r)) for name, r in regions if r is not None]


@pytest.fixture(scope="module")
def inputs(gate_photos: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    assert len(gate_photos) >= 2, "the two test samples reach the model"
    return [x for _, x in gate_photos]


def _outputs(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), session_options(2), providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    return [sess.run([out], {name: x})[0][0, 0] for x in inputs]


@pytest.fixture(scope="module")
def reference(models_dir: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return _outputs(models_dir / ISNET_FILES["fp32"], inputs)


def _ious(path: Path, inputs: list[np.ndarray], reference: list[np.ndarray]) -> list[float]:
    return [mask_iou(p, r) for p, r in zip(_outputs(path, inputs), reference, strict=True)]


def _gate(path: Path, gate_photos, inputs: list[np.ndarray], reference) -> None:
    _gate_ious(path.name, _ious(path, inputs, reference), gate_photos)


def _gate_ious(what: str, ious: list[float], gate_photos) -> None:
    median, worst = float(np.median(ious)), min(ious)
    shown = ", ".join(f"{n}={i:.4f}" for (n, _), i in zip(gate_photos, ious, strict=True))
    assert median >= GATE_MEDIAN_IOU and worst >= GATE_WORST_IOU, (
        f"{what}: median IoU {median:.4f}, worst {worst:.4f} ({shown})"
    )


def _runner(path: Path) -> Any:
    sess = ort.InferenceSession(str(path), session_options(2), providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    return lambda x: sess.run([out], {name: x})[0][0, 0]


def test_derived_models_have_the_recorded_hashes(models_dir: Path) -> None:
    for model in DERIVED.values():
        assert model.sha256, f"{model.name}: no sha256 recorded in config.models"
        assert is_present(models_dir, model), f"{models_dir / model.filename}: hash differs"


def test_selected_model_passes_the_gate(
    models_dir: Path, gate_photos, inputs: list[np.ndarray], reference: list[np.ndarray]
) -> None:
    """What a CPU worker on this machine runs (int8 with VNNI/AMX where it passes, alone or with
    fp32 again on its unsure masks; else fp32), through the same `cascade` the worker runs."""
    choice = choose_isnet(models_dir, device="cpu")
    if choice.fallback is None:
        _gate(choice.path, gate_photos, inputs, reference)
        return
    first, again = _runner(choice.path), _runner(choice.fallback)
    outs = [cascade(first, again, x) for x in inputs]
    ious = [mask_iou(o, r) for (o, _), r in zip(outs, reference, strict=True)]
    _gate_ious(f"{choice.path.name} + {choice.fallback.name}", ious, gate_photos)
    reran = sum(again for _, again in outs)
    assert reran < len(outs) / 2, f"{reran} of {len(outs)} photos made twice: no faster than fp32"


def test_cascade_runs_fp32_again_only_on_unsure_masks() -> None:
    calls: list[str] = []

    def model(name: str, out: np.ndarray) -> Any:
        return lambda x: calls.append(name) or out

    crisp = np.zeros((64, 64), np.float32)
    crisp[16:48, 16:48] = 1.0
    soft = cv2.GaussianBlur(crisp, (0, 0), 8)  # most of its foreground between 0.1 and 0.9
    x = np.zeros((1, 3, 64, 64), np.float32)
    assert unsure_share(crisp) == 0.0 and unsure_share(soft) > CASCADE_UNSURE_SHARE
    assert unsure_share(np.zeros((8, 8), np.float32)) == 1.0  # nobody seen: unsure
    raw, again = cascade(model("int8", crisp), model("fp32", soft), x)
    assert (again, calls) == (False, ["int8"]) and raw is crisp
    calls.clear()
    raw, again = cascade(model("int8", soft), model("fp32", crisp), x)
    assert (again, calls) == (True, ["int8", "fp32"]) and raw is crisp
    calls.clear()
    raw, again = cascade(model("int8", np.zeros((64, 64), np.float32)), model("fp32", crisp), x)
    assert again and raw is crisp


def test_int8_fp32_segmenter_loads_both_files_and_counts_reruns(models_dir: Path) -> None:
    seg = load_segmenter(models_dir=models_dir, device="cpu", threads=1, precision="int8+fp32")
    info = seg.describe()
    assert info["precision"] == "int8+fp32" and info["reason"] == "set: segment_precision=int8+fp32"
    assert info["file"] == DERIVED["isnet-imgly-medium-int8"].filename
    assert info["fallback_file"] == DERIVED["isnet-imgly-medium-fp32"].filename
    rgb = np.full((200, 160, 3), 128, np.uint8)  # a grey card: the int8 mask is unsure of it
    mask = seg.mask(rgb)
    assert mask.shape == (200, 160) and (seg.runs, seg.reruns) == (1, 1)


def test_int8_model_is_close_to_the_reference(
    models_dir: Path, gate_photos, inputs: list[np.ndarray], reference: list[np.ndarray]
) -> None:
    """The int8 file can be chosen by the setting: its median passes the gate here, and where
    `config.models` records that it passes the whole gate (then a worker picks it by itself on
    a VNNI/AMX CPU) its worst photo does too. The record is taken on the corpus (bench.model),
    which has photos harder than these."""
    ious = _ious(models_dir / ISNET_FILES["int8"], inputs, reference)
    shown = ", ".join(f"{n}={i:.4f}" for (n, _), i in zip(gate_photos, ious, strict=True))
    assert float(np.median(ious)) >= GATE_MEDIAN_IOU, shown
    if DERIVED["isnet-imgly-medium-int8"].passes_gate:
        assert min(ious) >= GATE_WORST_IOU, shown


def test_fetched_model_passes_the_gate(
    models_dir: Path, gate_photos, inputs: list[np.ndarray], reference: list[np.ndarray]
) -> None:
    """The fp32 conversion computes what the fetched model does (the reference is sound)."""
    _gate(models_dir / ISNET_FILES["fp16"], gate_photos, inputs, reference)


def test_choice_follows_the_cpu_and_the_setting() -> None:
    assert choose_precision("auto", "CPUExecutionProvider", VNNI, int8_passes_gate=True) == (
        "int8",
        "CPU has avx512_vnni",
    )
    amx = frozenset({"amx_int8"})
    assert choose_precision("auto", "CPUExecutionProvider", amx, int8_passes_gate=True)[0] == "int8"
    # An int8 file that failed the gate is not run by itself, whatever the CPU has; with fp32
    # again on its unsure masks where that pair passed; else fp32.
    assert choose_precision(
        "auto", "CPUExecutionProvider", VNNI, int8_passes_gate=False, cascade_passes_gate=False
    ) == ("fp32", "CPU has avx512_vnni, but the int8 model fails the quality gate")
    assert choose_precision(
        "auto", "CPUExecutionProvider", VNNI, int8_passes_gate=False, cascade_passes_gate=True
    ) == (
        "int8+fp32",
        "CPU has avx512_vnni; the int8 model passes the quality gate only with fp32 again on its "
        "unsure masks",
    )
    assert choose_precision("auto", "CPUExecutionProvider", AVX2, cascade_passes_gate=True)[0] == (
        "fp32"
    )
    assert choose_precision("int8", "CPUExecutionProvider", VNNI, int8_passes_gate=False)[0] == (
        "int8"
    )
    precision, reason = choose_precision("auto", "CPUExecutionProvider", AVX2)
    assert (precision, reason) == ("fp32", "CPU has none of avx512_vnni/amx_int8")
    assert choose_precision("auto", "CUDAExecutionProvider", AVX2)[0] == "fp16"
    # The override: a VNNI machine told to run fp32 (a simulated CPU without VNNI) says so.
    assert choose_precision("fp32", "CPUExecutionProvider", VNNI) == (
        "fp32",
        "set: segment_precision=fp32",
    )
    assert choose_precision("fetched", "CPUExecutionProvider", VNNI)[0] == "fp16"
    with pytest.raises(ValueError):
        choose_precision("int4", "CPUExecutionProvider", VNNI)


def test_cpu_flags_are_read_from_cpuinfo() -> None:
    text = "processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n"
    assert cpu_flags(text) == frozenset({"fpu", "avx2", "avx512_vnni"})
    assert "fpu" in cpu_flags()  # this machine's /proc/cpuinfo


def test_worker_with_fp32_override_loads_fp32(models_dir: Path) -> None:
    seg = load_segmenter(models_dir=models_dir, device="cpu", threads=1, precision="fp32")
    info = seg.describe()
    assert info["file"] == DERIVED["isnet-imgly-medium-fp32"].filename
    assert info["precision"] == "fp32"
    assert info["execution_provider"] == "CPUExecutionProvider"
    assert info["reason"] == "set: segment_precision=fp32"


def test_models_list_marks_what_the_cpu_worker_loads(models_dir: Path) -> None:
    settings = Settings.from_env(models_dir=models_dir, segment_precision="fp32")
    rows = {r["name"]: r for r in model_table(settings)}
    assert set(next(iter(rows.values()))) == {
        "name",
        "path",
        "sha256",
        "precision",
        "execution_provider",
        "selected",
    }
    assert rows["isnet-imgly-medium-fp32"]["selected"] is True
    assert rows["isnet-imgly-medium-int8"]["selected"] is False
    assert rows["isnet-imgly-medium"]["selected"] is False
    assert rows["isnet-imgly-medium"]["precision"] == "fp16"
    assert rows["isnet-imgly-medium-int8"]["precision"] == "int8"
    assert rows["isnet-imgly-medium-fp32"]["precision"] == "fp32"
    both = Settings.from_env(models_dir=models_dir, segment_precision="int8+fp32")
    rows = {r["name"]: r for r in model_table(both)}
    assert rows["isnet-imgly-medium-int8"]["selected"] is True
    assert rows["isnet-imgly-medium-fp32"]["selected"] is True
    assert rows["isnet-imgly-medium"]["selected"] is False


def test_calibration_photos_are_not_evaluation_photos() -> None:
    names = {Path(rel).name for rel in CALIBRATION_PHOTOS}
    assert not names & {Path(rel).name for _, rel in SAMPLES.values()}


def test_fp32_derivation_gives_the_recorded_bytes(models_dir: Path, tmp_path: Path) -> None:
    import onnx

    from idphoto.modelderive import first_output_only, to_fp32
    from idphoto.modelfetch import sha256_file

    out = tmp_path / "fp32.onnx"
    onnx.save(first_output_only(to_fp32(onnx.load(str(models_dir / ISNET_FILES["fp16"])))), out)
    assert sha256_file(out) == DERIVED["isnet-imgly-medium-fp32"].sha256


def test_readyz_shows_the_segment_model(tmp_path: Path) -> None:
    from web import create_app

    settings = Settings(storage_dir=tmp_path, rate_limit="", segment_precision="fp32")
    body = create_app(settings).test_client().get("/readyz").get_json()
    assert body["segment"]["precision"] == "fp32"
    assert body["segment"]["execution_provider"] == "CPUExecutionProvider"
    assert body["segment"]["reason"] == "set: segment_precision=fp32"
