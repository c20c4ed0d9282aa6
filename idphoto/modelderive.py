"""The ISNet models derived at set-up: fp32, then static int8, deterministic and checksummed.

The fetched ISNet keeps fp16 weights that ONNX Runtime casts to fp32 around every convolution
on a CPU, at every run. `to_fp32` makes the initialisers fp32 and removes the Cast nodes (the
fetched graph is fp16 between them, fp32 around the Resizes), so the graph computes what the
fetched one does (to ~4e-4) with no casts. `quantize_int8` then statically quantises that fp32
model with ONNX Runtime's ``quantize_static`` (QDQ, per-channel int8 weights, uint8 activations,
percentile calibration, `CALIBRATION_PERCENTILE`), calibrated on `CALIBRATION_PHOTOS`: photos shipped inside scikit-image
that are in neither the development corpus nor the test samples, each prepared as the segment
stage prepares its input (the face-centred region of `pipeline.stages.analyse` where the photo
has one face, else the whole photo, resized to the model's input).

Both steps are deterministic (same source bytes and library versions, same output bytes), so
their sha256 is recorded in `config.models.DERIVED` and checked like a fetched model's.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from config.models import ARTEFACTS, DERIVED, ISNET_MEDIUM, DerivedModel, ModelArtefact
from config.settings import Settings
from idphoto.modelfetch import ModelFetchError, is_present, sha256_file
from pipeline.decode import decode
from pipeline.detect import FaceDetector
from pipeline.errors import IdPhotoError
from pipeline.runtime import ISNET_FILES, choose_isnet
from pipeline.segment import ISNET_INPUT, isnet_input, isnet_output
from pipeline.stages import analyse

#: scikit-image's bundled photos used to calibrate (fixed, in this order). Not astronaut or
#: camera (test samples), none in the development corpus. camera.png is a person: it goes
#: through the face-centred region; the others are whole photos of things.
CALIBRATION_PHOTOS = (
    "data/camera.png",
    "data/chelsea.png",
    "data/coffee.png",
    "data/rocket.jpg",
    "data/motorcycle_left.png",
    "data/color.png",
)


#: Each activation's range is the 99.99th percentile of its calibration values, not the maximum:
#: ISNet's activations have long tails, and MinMax ranges made uint8 steps so coarse that masks
#: came out speckled (on an AVX-512 VNNI CPU, over the 33 corpus photos the segment stage is
#: given: median IoU vs fp32 0.989, worst 0.774). 99.999: median 0.998, worst 0.930; 99.99:
#: 0.999 / 0.948; 99.995: 0.999 / 0.880; 99.9 clips too much: 0.996 / 0.827 (all six photos
#: in one histogram; one photo at a time, as derived now: 0.999 / 0.944). Calibrating on 12
#: more portraits changed nothing with MinMax; keeping the first convolutions in float,
#: 0.999 / 0.955 for 1.3x the time.
CALIBRATION_PERCENTILE = 99.99


def to_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with fp16 initialisers made fp32 and every Cast removed.

    Only for graphs whose casts convert between float types (the fetched ISNet's do); a Cast
    that feeds a graph output is removed by renaming its input to the output's name.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT16:
            arr = numpy_helper.to_array(init).astype(np.float32)
            g.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT16:
                    arr = numpy_helper.to_array(attr.t).astype(np.float32)
                    attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
    outputs = {o.name for o in g.output}
    inputs = {i.name for i in g.input}
    rename: dict[str, str] = {}
    kept = []
    for node in g.node:
        if node.op_type != "Cast":
            kept.append(node)
            continue
        to = next(a.i for a in node.attribute if a.name == "to")
        if to not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            raise ValueError(f"{node.name}: a cast to type {to} is not a float precision cast")
        src, dst = node.input[0], node.output[0]
        if dst in outputs and src in inputs:  # input straight to output: keep, as fp32
            node.attribute[0].i = TensorProto.FLOAT
            kept.append(node)
        elif dst in outputs:
            rename[src] = dst
        else:
            rename[dst] = src

    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    for node in kept:
        for k, name in enumerate(node.input):
            node.input[k] = resolve(name)
        for k, name in enumerate(node.output):
            node.output[k] = resolve(name)
    del g.node[:]
    g.node.extend(kept)
    for value in list(g.input) + list(g.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    del g.value_info[:]  # fp16 annotations of tensors that are now fp32
    onnx.checker.check_model(m)
    return m


def first_output_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with only its first output and the nodes it needs.

    ONNX Runtime runs every node of a graph whatever outputs are asked for: ISNet's five
    deep-supervision side outputs (each a conv, an upsampling to 1024 and a sigmoid) are work
    no caller uses.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    keep_out = g.output[0]
    del g.output[:]
    g.output.append(keep_out)
    needed = {keep_out.name}
    kept = []
    for node in reversed(g.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del g.node[:]
    g.node.extend(kept)
    used = [init for init in g.initializer if init.name in needed]
    del g.initializer[:]
    g.initializer.extend(used)
    onnx.checker.check_model(m)
    return m


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes kept in float: from the first output back to the last convolution (sigmoid,
    upsampling, conv), and the residual Add that feeds that conv.

    The conv's logits span about [-1400, 14] on photos: at uint8 a step of ~5.4 rounds every
    logit near the mask's edge to one value (sigmoid 0.5 over whole backgrounds; IoU 0.6 on a
    dark portrait). The Add's sum spans [0, ~500]; in float it lifts that portrait's IoU from
    0.87 to 0.95. Keeping the whole last decoder stage in float gained 0.02 more for 1.5x the
    time (measured on this AVX2 machine against five photos).
    """
    prod = {o: n for n in model.graph.node for o in n.output}
    names = []
    node = prod.get(model.graph.output[0].name)
    while node is not None:
        names.append(node.name)
        if node.op_type == "Conv":
            feed = prod.get(node.input[0])
            if feed is not None and feed.op_type == "Add":
                names.append(feed.name)
            break
        node = prod.get(node.input[0])
    return names


def calibration_photos() -> list[Path]:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFetchError("scikit-image is needed to calibrate the int8 model")
    root = Path(list(spec.submodule_search_locations)[0])
    paths = [root / rel for rel in CALIBRATION_PHOTOS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ModelFetchError(f"calibration photos missing: {', '.join(missing)}")
    return paths


def model_region(data: bytes, detector: FaceDetector) -> np.ndarray:
    """What the segment stage gives the model for a photo: its face-centred region, or the
    whole photo where the photo has no single usable face (RGB uint8)."""
    try:
        return analyse(data, detector, min_eye_distance_px=0)[1]
    except IdPhotoError:
        return np.asarray(decode(data, max_side=2048, exact=False).image)


def segment_input(data: bytes, detector: FaceDetector) -> np.ndarray | None:
    """The region the product's segment stage gives the model for a photo, or None where the
    product refuses the photo before it reaches the model (no face, several, a face too small
    or turned away: `pipeline.stages.analyse` with its defaults). The quality gate is taken on
    the photos the model is given: on a refused photo the fp32 reference often sees nobody
    (its output peaks at 0.02 on a 130x97 baby photo), and an IoU of two min-max normalised
    "nobody" outputs compares their noise."""
    try:
        return analyse(data, detector)[1]
    except IdPhotoError:
        return None


def calibration_inputs(detector: FaceDetector, size: int = ISNET_INPUT) -> list[np.ndarray]:
    return [isnet_input(model_region(p.read_bytes(), detector), size) for p in calibration_photos()]


class _Reader:
    """``CalibrationDataReader`` over fixed tensors (duck-typed: get_next / rewind)."""

    def __init__(self, name: str, tensors: list[np.ndarray]) -> None:
        self.name, self.tensors = name, tensors
        self._it: Iterator[np.ndarray] = iter(tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.name: x}

    def rewind(self) -> None:
        self._it = iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Read only ``tensors[start_index:end_index]`` (calibration one photo at a time)."""
        self._it = iter(self.tensors[start_index:end_index])


def quantize_int8(fp32_path: Path, out_path: Path, tensors: list[np.ndarray]) -> None:
    """Static QDQ quantisation of ``fp32_path``, calibrated on ``tensors``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_Reader, CalibrationDataReader):
        pass

    name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    quantize_static(
        str(fp32_path),
        str(out_path),
        Reader(name, tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        calibration_providers=["CPUExecutionProvider"],
        nodes_to_exclude=head_nodes(onnx.load(str(fp32_path), load_external_data=False)),
        # One photo at a time into the histograms: all six photos' activations at once peak
        # at 16 GB of memory, one at a time at a few GB (the ranges merge across photos).
        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE, "CalibStridedMinMax": 1},
    )


def _write_checked(model: DerivedModel, models_dir: Path, make: Callable[[Path], None]) -> Path:
    dest = models_dir / model.filename
    part = models_dir / (model.filename + ".part")
    make(part)
    digest = sha256_file(part)
    if model.sha256 and digest != model.sha256:
        part.unlink(missing_ok=True)
        raise ModelFetchError(
            f"{model.name}: derived sha256 {digest}, expected {model.sha256} (made with "
            f"{model.made_with}; other onnx/onnxruntime versions may write other bytes)"
        )
    os.replace(part, dest)
    if model.sha256:
        is_present(models_dir, model)  # writes the verification stamp
    return dest


def derive(models_dir: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Make sure the derived ISNet models are in ``models_dir`` (from the fetched one, which
    must be there); return name -> path. Present files with the right hash are left alone."""
    src = models_dir / ISNET_MEDIUM.filename
    if not is_present(models_dir, ISNET_MEDIUM):
        raise ModelFetchError(f"{src} is missing or corrupt: fetch it first")
    fp32, int8 = DERIVED["isnet-imgly-medium-fp32"], DERIVED["isnet-imgly-medium-int8"]
    paths = {m.name: models_dir / m.filename for m in (fp32, int8)}
    if not is_present(models_dir, fp32):
        log(f"deriving {fp32.name} ...")
        _write_checked(
            fp32,
            models_dir,
            lambda out: onnx.save(first_output_only(to_fp32(onnx.load(str(src)))), str(out)),
        )
        log(f"{fp32.name}: {paths[fp32.name]} (sha256 {sha256_file(paths[fp32.name])})")
    if not is_present(models_dir, int8):
        log(f"deriving {int8.name} (calibrating on {len(CALIBRATION_PHOTOS)} photos) ...")
        detector = FaceDetector.from_dir(models_dir, threads=1)
        tensors = calibration_inputs(detector)
        with tempfile.TemporaryDirectory(prefix="idphoto-quant-") as tmp:
            # quantize_static writes its augmented model beside the output's directory
            # otherwise; a private copy of the source keeps the models directory clean.
            def make(out: Path) -> None:
                quantize_int8(paths[fp32.name], Path(tmp) / "int8.onnx", tensors)
                os.replace(Path(tmp) / "int8.onnx", out)

            _write_checked(int8, models_dir, make)
        log(f"{int8.name}: {paths[int8.name]} (sha256 {sha256_file(paths[int8.name])})")
    return paths


def file_precision(path: Path) -> str:
    """fp16, fp32 or int8, from an ONNX file's initialisers (what its weights are stored as)."""
    model = onnx.load(str(path), load_external_data=False)
    if any(n.op_type in ("QuantizeLinear", "QLinearConv") for n in model.graph.node):
        return "int8"
    counts: dict[int, int] = {}
    for init in model.graph.initializer:
        counts[init.data_type] = counts.get(init.data_type, 0) + 1
    halves = counts.get(TensorProto.FLOAT16, 0)
    return "fp16" if halves > counts.get(TensorProto.FLOAT, 0) else "fp32"


def model_table(settings: Settings) -> list[dict[str, Any]]:
    """Every model (fetched and derived): name, path, sha256 (None where the file is missing or
    does not match), precision, execution provider, and ``selected``: loaded by a CPU segment
    worker on this machine with these settings (the detectors always; one ISNet file, or the
    int8 and fp32 files for ``int8+fp32``)."""
    cpu_choice = choose_isnet(
        settings.models_dir, precision=settings.segment_precision, device="cpu"
    )
    isnet_provider = choose_isnet(settings.models_dir, device=settings.device).provider
    rows: list[dict[str, Any]] = []
    items: list[ModelArtefact | DerivedModel] = [*ARTEFACTS.values(), *DERIVED.values()]
    for item in items:
        path = settings.models_dir / item.filename
        ok = path.is_file() and is_present(settings.models_dir, item)
        is_isnet = item.filename in ISNET_FILES.values()
        rows.append(
            {
                "name": item.name,
                "path": str(path),
                "sha256": item.sha256 if ok else None,
                "precision": file_precision(path) if path.is_file() else None,
                "execution_provider": (
                    isnet_provider
                    if is_isnet and item.filename == ISNET_FILES["fp16"]
                    else "CPUExecutionProvider"
                ),
                "selected": (path in (cpu_choice.path, cpu_choice.fallback)) if is_isnet else True,
            }
        )
    return rows


# --- the quality gate (tests/pipeline/test_model_quality.py, bench/model.py) -------------------

#: A model may replace the fp32 reference when its masks' IoU against the reference's, over
#: real photos at the model's resolution, has at least this median and this minimum.
GATE_MEDIAN_IOU = 0.99
GATE_WORST_IOU = 0.97


def mask_iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """IoU of two raw model outputs, each min-max normalised and cut at 0.5 (as the stages
    read the mask); the larger one is resized to the other's size if they differ."""
    if pred.shape != ref.shape:
        pred = cv2.resize(pred, ref.shape[::-1], interpolation=cv2.INTER_LINEAR)
    a = isnet_output(pred) > 0.5
    b = isnet_output(ref) > 0.5
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def passes_gate(ious: list[float]) -> bool:
    return bool(ious) and float(np.median(ious)) >= GATE_MEDIAN_IOU and min(ious) >= GATE_WORST_IOU


def with_input_size(model: onnx.ModelProto, size: int) -> onnx.ModelProto:
    """``model`` with a square ``size`` input, to measure smaller inputs: the export baked each
    upsampling's target (H, W) in as constants for 1024, so they are scaled with it (rounded
    up, as the ceil-mode poolings round)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    scale = size / g.input[0].type.tensor_type.shape.dim[2].dim_value
    for value in (g.input[0], *g.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_value = dims[3].dim_value = size
    prod = {o: n for n in g.node for o in n.output}
    for node in g.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        concat = prod.get(node.input[3])
        for name in concat.input if concat is not None and concat.op_type == "Concat" else ():
            const = prod.get(name)
            if const is None or const.op_type != "Constant":
                continue
            attr = const.attribute[0]
            hw = numpy_helper.to_array(attr.t)
            scaled = np.ceil(hw * scale).astype(hw.dtype)
            attr.t.CopyFrom(numpy_helper.from_array(scaled, attr.t.name))
    del g.value_info[:]
    return m
