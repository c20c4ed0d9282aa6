"""Model-only time and mask quality of the ISNet files: as fetched, fp32, int8, smaller inputs.

    .venv/bin/python -m bench.model [--images DIR] [--threads 2] [--timed 4] [--runs 2]
                                    [--sizes 768,640] [--out bench/results/model.json]

Every photo in ``--images`` (default: the development corpus, ``/tmp/corpus-ref/images``, else
``idphoto corpus fetch``'s directory) goes through what the segment stage gives the model (the
face-centred region where there is one face, else the whole photo, `modelderive.model_region`).
Quality: each model's mask against the fp32 model's at 1024, IoU per photo, and whether median
and worst pass the gate (`modelderive.GATE_*`) over the photos the segment stage is given
(`modelderive.segment_input`; every photo's numbers are shown too); smaller inputs are the fp32 model run at that
size, its mask compared at 1024. Speed: the first ``--timed`` photos, each model in turn in the
same process with the same intra-op threads, the median of ``--runs`` runs after a warm-up;
``ratio`` is a model's time over the fetched model's. ``int8+fp32`` (what a worker on a VNNI/AMX
CPU runs, `pipeline.segment.cascade`) is int8's mask, or fp32's where int8's is unsure: its IoU
per photo follows, and its time is int8's plus fp32's times the share of photos made again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # `python bench/model.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from config.settings import Settings  # noqa: E402
from idphoto.modelderive import (  # noqa: E402
    mask_iou,
    model_region,
    passes_gate,
    segment_input,
    with_input_size,
)
from pipeline.detect import FaceDetector  # noqa: E402
from pipeline.runtime import (  # noqa: E402
    CASCADE,
    ISNET_FILES,
    choose_isnet,
    cpu_flags,
    session_options,
)
from pipeline.segment import (  # noqa: E402
    CASCADE_UNSURE_SHARE,
    ISNET_INPUT,
    isnet_input,
    isnet_output,
    unsure_share,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "model.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def _default_images() -> Path:
    ref = Path("/tmp/corpus-ref/images")
    if ref.is_dir():
        return ref
    from idphoto.corpus import default_dir

    return default_dir() / "images"


def _session(path: Path, threads: int) -> ort.InferenceSession:
    return ort.InferenceSession(
        str(path), session_options(threads), providers=["CPUExecutionProvider"]
    )


def _run(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    return sess.run([out], {name: x})[0][0, 0]


def _summary(ious: list[float]) -> dict[str, Any]:
    if not ious:
        return {"n": 0}
    arr = np.asarray(ious)
    return {
        "n": len(ious),
        "median": round(float(np.median(arr)), 4),
        "worst": round(float(arr.min()), 4),
        "p10": round(float(np.percentile(arr, 10)), 4),
        "below_0.97": int((arr < 0.97).sum()),
        "passes_gate": passes_gate(ious),
    }


def _cascade_summary(
    per_photo: list[dict[str, Any]], given: set[str], speed: dict[str, float]
) -> dict[str, Any]:
    rows = [r for r in per_photo if r["photo"] in given and CASCADE in r]
    if not rows:
        return {}
    share = sum(r["fp32_again"] for r in rows) / len(rows)
    s_per_photo = speed["int8"] + share * speed["fp32"]
    return {
        "iou_vs_fp32": _summary([r[CASCADE] for r in rows]),
        "fp32_again_share": round(share, 3),
        "model_s_per_photo": round(s_per_photo, 3),
        "ratio_to_fetched": round(s_per_photo / speed["fp16"], 3),
        "ratio_to_fp32": round(s_per_photo / speed["fp32"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timed", type=int, default=4, help="photos timed per model")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--sizes", default="768,640", help="smaller inputs to measure (fp32)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    ap.add_argument(
        "--iou-skip", default="", help="models not compared over every photo (e.g. fp16)"
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    models = settings.models_dir
    images = args.images or _default_images()
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if args.limit:
        paths = paths[: args.limit]
    detector = FaceDetector.from_dir(models, threads=1)
    inputs: list[tuple[str, np.ndarray]] = []
    given: set[str] = set()  # photos the product's segment stage gives the model: the gate's
    for p in paths:
        try:
            data = p.read_bytes()
            region = segment_input(data, detector)  # the product's own region, if it has one
            if region is not None:
                given.add(p.name)
            else:  # refused before the model: the whole photo or its face, for the table
                region = model_region(data, detector)
            inputs.append((p.name, region))
        except Exception as exc:  # an undecodable file is no model input
            print(f"skip {p.name}: {type(exc).__name__}", file=sys.stderr)
    print(f"{len(inputs)} photos from {images}", file=sys.stderr)

    variants = {k: models / ISNET_FILES[k] for k in ("fp16", "fp32", "int8")}
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    tmp = tempfile.TemporaryDirectory(prefix="idphoto-bench-model-")
    fp32_model = onnx.load(str(variants["fp32"]))
    for size in sizes:
        variants[f"fp32@{size}"] = Path(tmp.name) / f"fp32-{size}.onnx"
        onnx.save(with_input_size(fp32_model, size), str(variants[f"fp32@{size}"]))
    del fp32_model

    def size_of(key: str) -> int:
        return int(key.split("@")[1]) if "@" in key else ISNET_INPUT

    sessions = {k: _session(p, args.threads) for k, p in variants.items()}
    # Speed: same process, same threads, models interleaved per photo and run.
    timed = inputs[: args.timed]
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _, region in timed:
        for key, sess in sessions.items():
            x = isnet_input(region, size_of(key))
            _run(sess, x)  # warm-up (and first-run allocations)
            runs = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                _run(sess, x)
                runs.append(time.perf_counter() - t0)
            times[key].append(statistics.median(runs))
    speed = {k: round(statistics.mean(v), 3) for k, v in times.items()}
    ratio = {k: round(v / speed["fp16"], 3) for k, v in speed.items()}

    skip = {k for k in args.iou_skip.split(",") if k}
    ious: dict[str, list[float]] = {k: [] for k in variants if k != "fp32" and k not in skip}

    def write(per_photo: list[dict[str, Any]]) -> dict[str, Any]:
        result = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "int8_flags": sorted({"avx512_vnni", "amx_int8"} & cpu_flags()),
                "onnxruntime": ort.__version__,
                "threads": args.threads,
            },
            "selected_on_this_cpu": choose_isnet(models, device="cpu").as_dict(),
            "photos": len(per_photo),
            "timed_photos": len(timed),
            "model_s_per_photo": speed,
            "ratio_to_fetched": ratio,
            # The gate: over the photos the segment stage is given (the product refuses the
            # others before the model; on those the reference often sees nobody).
            "gate_photos": sum(r["photo"] in given for r in per_photo),
            "iou_vs_fp32": {
                k: _summary([i for i, r in zip(v, per_photo, strict=True) if r["photo"] in given])
                for k, v in ious.items()
                if v
            },
            "iou_vs_fp32_all_photos": {k: _summary(v) for k, v in ious.items() if v},
            # int8+fp32 (pipeline.segment.cascade): its time per photo is int8's plus fp32's
            # on the share of the gate photos whose int8 mask is unsure (made again)
            CASCADE: _cascade_summary(per_photo, given, speed),
            "per_photo": per_photo,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # after every photo
        return result

    # Quality: every photo, every model against fp32 at 1024.
    per_photo: list[dict[str, Any]] = []
    cascade_ious: list[float] = []
    for i, (name, region) in enumerate(inputs):
        ref = _run(sessions["fp32"], isnet_input(region))
        row: dict[str, Any] = {"photo": name, "given_to_model": name in given}
        int8_out = None
        for key in ious:
            out = _run(sessions[key], isnet_input(region, size_of(key)))
            int8_out = out if key == "int8" else int8_out
            iou = mask_iou(out, ref)
            ious[key].append(iou)
            row[key] = round(iou, 4)
        if int8_out is not None:  # int8+fp32: fp32's own mask where int8's is unsure
            unsure = unsure_share(isnet_output(int8_out))
            again = unsure >= CASCADE_UNSURE_SHARE
            row["int8_unsure"] = round(unsure, 4)
            row["fp32_again"] = bool(again)
            cascade_ious.append(1.0 if again else ious["int8"][-1])
            row[CASCADE] = round(cascade_ious[-1], 4)
        per_photo.append(row)
        write(per_photo)
        print(f"[{i + 1}/{len(inputs)}] {row}", file=sys.stderr, flush=True)
    result = write(per_photo)
    summary = {k: v for k, v in result.items() if k != "per_photo"}
    print(json.dumps(summary, indent=2))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
