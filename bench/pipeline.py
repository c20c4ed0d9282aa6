"""Per-stage times of the in-process pipeline, against segmentation alone.

    .venv/bin/python -m bench.pipeline [--runs N] [--spec ID] [--out bench/results/pipeline.json]

Inputs: the two test portraits (~0.3 MP) and a synthetic phone photo (grace_hopper enlarged into
a 4000x6000 = 24 MP frame with sensor-like noise, JPEG quality 90), because users upload 8-24 MP
phone photos and a pipeline that works at full resolution looks fine on small portraits only.

Stages are timed one by one, calling what ``stages.analyse`` and ``stages.compose`` call:
decode, detect, segment, refine, geometry (measure_head + place + warp), composite (photo and
cut-out), encode (JPEG in the KB window + cut-out PNG) and report. ``end_to_end`` is the chain
analyse -> segment -> refine -> compose run as a user's request runs it (no print sheet), and
``ratio`` is end_to_end / segment: how much the pipeline costs beyond the model. Each figure is
the median of N runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # `python bench/pipeline.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.catalogue import get_spec  # noqa: E402
from config.settings import Settings  # noqa: E402
from idphoto.samples import sample_path  # noqa: E402
from pipeline import stages  # noqa: E402
from pipeline.composite import Background, composite, parse_background  # noqa: E402
from pipeline.decode import decode  # noqa: E402
from pipeline.detect import FaceDetector  # noqa: E402
from pipeline.encode import encode, encode_png  # noqa: E402
from pipeline.report import build_report  # noqa: E402
from pipeline.segment import Segmenter, load_segmenter  # noqa: E402

STAGES = ("decode", "detect", "segment", "refine", "geometry", "composite", "encode", "report")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pipeline.json"


def phone_photo(seed: int = 0) -> bytes:
    """grace_hopper enlarged into a 4000x6000 portrait frame, with noise, as a q90 JPEG."""
    with Image.open(sample_path("grace_hopper")) as im:
        src = im.convert("RGB")
    W, H = 4000, 6000
    scaled = src.resize((W, round(src.height * W / src.width)), Image.Resampling.BICUBIC)
    # Wall above the portrait: the portrait's own top-left colour, fading slightly downwards.
    wall = np.asarray(src)[:8, :8].reshape(-1, 3).mean(0)
    canvas = np.empty((H, W, 3), np.float32)
    canvas[:] = wall * np.linspace(0.92, 1.0, H, dtype=np.float32)[:, None, None]
    canvas[H - scaled.height :] = np.asarray(scaled, np.float32)
    canvas += np.random.default_rng(seed).normal(0.0, 3.0, canvas.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _compose(matte: Image.Image, analysis: Any, spec: Any, bg: Background) -> Any:
    return stages.compose(matte, analysis, spec, bg, sheet=None)


def run_once(
    data: bytes, detector: FaceDetector, segmenter: Segmenter, spec: Any, bg: Background
) -> dict[str, float]:
    """One pass, stage by stage, then the same chain end to end."""
    t: dict[str, float] = {}
    t["decode"], decoded = _timed(lambda: decode(data, max_side=stages.WORK_SIDE, exact=False))
    rgb = np.asarray(decoded.image)
    t["detect"], _ = _timed(lambda: detector.detect(rgb))
    analysis, region = stages.analyse(data, detector)  # the same again, for its outputs
    t["segment"], coarse = _timed(lambda: stages.segment(region, segmenter, face=analysis.face))
    t["refine"], matte = _timed(lambda: stages.refine(region, coarse))

    # compose, broken down into the calls stages.compose makes
    def geo() -> tuple[Any, np.ndarray, np.ndarray]:
        return stages.place_and_warp(matte, analysis, spec, level=True)

    t["geometry"], (place, fg, a) = _timed(geo)
    t["composite"], (image, cut) = _timed(
        lambda: (composite(fg, a, bg), composite(fg, a, Background.transparent()))
    )
    t["encode"], (photo, _) = _timed(lambda: (encode(image, spec), encode_png(cut, spec.dpi)))
    t["report"], _ = _timed(
        lambda: build_report(
            spec,
            place,
            photo,
            bg,
            face_count=analysis.face_count,
            residual_roll_deg=analysis.face.roll_deg - place.roll_deg,
            eye_distance_px=analysis.face.eye_distance * place.scale,
            upscale=place.scale / analysis.px_per_original,
        )
    )

    def end_to_end() -> Any:
        an, reg = stages.analyse(data, detector)
        m = stages.refine(reg, stages.segment(reg, segmenter, face=an.face))
        return _compose(m, an, spec, bg)

    t["end_to_end"], _ = _timed(end_to_end)
    return t


def bench_input(
    name: str, data: bytes, detector: FaceDetector, segmenter: Segmenter, spec: Any, runs: int
) -> dict[str, Any]:
    bg = parse_background(spec.default_background)
    run_once(data, detector, segmenter, spec, bg)  # warm-up: first inference, numba caches
    samples = [run_once(data, detector, segmenter, spec, bg) for _ in range(runs)]
    median = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    total = sum(median[k] for k in STAGES)
    return {
        "input": name,
        "width": size[0],
        "height": size[1],
        "megapixels": round(size[0] * size[1] / 1e6, 2),
        "bytes": len(data),
        "median_s": {k: round(v, 4) for k, v in median.items()},
        "stage_sum_s": round(total, 4),
        "ratio_end_to_end_to_segment": round(median["end_to_end"] / median["segment"], 2),
        "ratio_stage_sum_to_segment": round(total / median["segment"], 2),
        "runs": [{k: round(v, 4) for k, v in s.items()} for s in samples],
    }


def table(results: list[dict[str, Any]]) -> str:
    cols = [*STAGES, "end_to_end"]
    head = f"{'input':<14}{'MP':>6} " + "".join(f"{c:>11}" for c in cols) + f"{'e2e/seg':>9}"
    lines = [head, "-" * len(head)]
    for r in results:
        m = r["median_s"]
        lines.append(
            f"{r['input']:<14}{r['megapixels']:>6.2f} "
            + "".join(f"{m[c] * 1000:>9.0f}ms" for c in cols)
            + f"{r['ratio_end_to_end_to_segment']:>8.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per input (median)")
    parser.add_argument("--spec", default="us-passport")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    threads = settings.ort_threads or len(os.sched_getaffinity(0))
    detector = FaceDetector.from_dir(settings.models_dir, threads=threads)
    segmenter = load_segmenter(
        settings.segment_model,
        models_dir=settings.models_dir,
        device=settings.device,
        threads=threads,
    )
    spec = get_spec(args.spec)
    inputs = [
        ("grace_hopper", sample_path("grace_hopper").read_bytes()),
        ("astronaut", sample_path("astronaut").read_bytes()),
        ("phone_24mp", phone_photo()),
    ]
    results = []
    for name, data in inputs:
        print(f"... {name}", file=sys.stderr, flush=True)
        results.append(bench_input(name, data, detector, segmenter, spec, args.runs))
    print(table(results))
    record = {
        "spec": spec.id,
        "runs": args.runs,
        "threads": threads,
        "provider": segmenter.provider,
        "segment_model": segmenter.model,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
