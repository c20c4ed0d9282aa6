"""The pipeline over the development corpus, judged against its labels and measured again.

    .venv/bin/python -m bench.corpus [--spec ID ...] [--only NAME ...] [--subset ci]
                                     [--dir CORPUS_DIR] [--out bench/results/corpus]
                                     [--reuse-masks]
    idphoto eval [same options]

Fetches the corpus first (``idphoto.corpus``: idempotent, sha256-checked), then runs the whole
pipeline in process for every photo: decode + detect, segment once, refine once, and compose
every spec from that one matte (as ``idphoto make`` does). For each spec it prints produced /
refused by reason against the label (``ok`` / ``refuse`` / ``either``), the disagreements, and
for every produced photo the geometry measured again on the written file (``bench.measure``).

Writes ``<out>/<spec>.png`` (a contact sheet: every output with its label, verdict and reason
under it, refusals as grey tiles), ``<out>/photos/<spec>/`` (the outputs) and ``<out>/eval.json``.
``--reuse-masks`` keeps the segmentation per photo on disk (``<out>/masks``, keyed by the
image's sha256 and the model), so a re-run after a geometry change skips the model.

Targets (issue 12), per spec: >= 97 % of ``ok`` photos produced inside every band; >= 95 % of
photos refused for what the photo is (several people, no person, not a photograph, crown cut,
face too small, profile or back view) refused with a right reason; 0 photos with several people
produced. A benchmark, not a test: it reports, it does not assert.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.measure import BAND_TOL, Measurer
from config.catalogue import get_spec
from config.settings import Settings
from config.specs import PhotoSpec
from idphoto import corpus
from pipeline import stages
from pipeline.composite import parse_background
from pipeline.errors import IdPhotoError

SPECS = (
    "us-passport",
    "icao-35x45",
    "schengen-visa",
    "uk-passport",
    "jp-passport",
    "cn-id-card",
    "cn-1inch",
    "cn-2inch",
)
OUT = Path(__file__).resolve().parent / "results" / "corpus"
OWN = ("crown_y", "chin_y", "eye_y")  # rows the pipeline reports, compared with the measured
TILE_W, TILE_H, TEXT_H, COLS = 180, 230, 76, 8


@dataclass
class Result:
    name: str
    spec: str
    expect: str
    refuse_kind: str
    reasons: list[str]
    flags: list[str]
    status: str  # "produced" | "refused" | "error"
    code: str = ""
    message: str = ""
    verdict: str = ""  # the pipeline's own report verdict, for a produced photo
    failed: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)  # check -> passed, for a produced photo
    values: dict[str, float] = field(default_factory=dict)  # check -> its measured number
    measured: dict[str, Any] | None = None
    own: dict[str, float] | None = None  # the pipeline's own crown/chin/eye rows (its report)
    photo: str = ""
    agree: bool = True
    why: str = ""


def judge(r: Result) -> tuple[bool, str]:
    """Whether the outcome is what the label asks for, and if not, why not."""
    in_bands = r.measured.get("in_bands") if r.measured else None
    produced = r.status == "produced"
    if r.status == "error":
        return False, f"error {r.code}: {r.message}"
    if produced and "multiple" in r.flags:
        return False, "several people, produced a photo"
    if r.expect == "ok":
        if not produced:
            return False, f"ok photo refused {r.code}"
        if in_bands is False:
            return False, "produced outside a band: " + _misses(r)
        return True, ""  # (a verdict 'fail' here is counted apart: ok_verdict_fail)
    if r.expect == "refuse" and r.refuse_kind == "photo":
        if produced:
            return False, "should be refused (" + "|".join(r.reasons) + "), produced"
        if r.code not in r.reasons:
            return False, f"refused {r.code}, right would be " + "|".join(r.reasons)
        return True, ""
    if r.expect == "refuse":  # for what the person wears or does: refused, or a photo not 'pass'
        # (issue 12: its bands are not judged; a hat or a bowed head moves crown and chin)
        if produced and r.verdict == "pass":
            return False, "should not pass (" + ";".join(r.flags) + "), verdict pass"
        return True, ""
    if produced and in_bands is False:  # either: any outcome, but a photo must be in its bands
        return False, "produced outside a band: " + _misses(r)
    return True, ""


def _misses(r: Result) -> str:
    m = r.measured or {}
    out = [k for k, v in (m.get("bands") or {}).items() if v is False]
    if m.get("top_touch"):
        out.append("hair at top edge")
    fr = m.get("fractions") or {}
    return ", ".join(f"{k}={fr[k]:.3f}" if fr.get(k) is not None else k for k in out)


class Runner:
    """Models loaded once; one photo at a time, every spec from one matte."""

    def __init__(self, settings: Settings, out: Path, reuse_masks: bool) -> None:
        from pipeline.detect import FaceDetector
        from pipeline.segment import load_segmenter

        self.settings = settings
        self.detector = FaceDetector.from_dir(settings.models_dir)
        kw = {"models_dir": settings.models_dir, "device": settings.device}
        try:
            self.segmenter = load_segmenter(settings.segment_model, **kw)
        except FileNotFoundError as exc:  # the file this CPU prefers is not derived yet
            print(f"note: {exc}; the fp16 ISNet file is used instead", file=sys.stderr)
            self.segmenter = load_segmenter(settings.segment_model, precision="fp16", **kw)
        self.measurer = Measurer(settings.models_dir, self.detector)
        self.out = out
        self.masks = out / "masks" if reuse_masks else None
        self.seconds: Counter[str] = Counter()

    def _coarse(self, region: np.ndarray, face: Any) -> np.ndarray:
        """The coarse mask; with ``--reuse-masks`` kept on disk keyed by the region's own
        pixels and the model file, so a changed analysis (another region) is segmented anew."""
        path = None
        if self.masks is not None:
            choice = getattr(self.segmenter, "choice", None)
            model = Path(getattr(choice, "path", "") or self.settings.segment_model).stem
            if getattr(choice, "fallback", None) is not None:
                model += "+fp32"  # int8+fp32: another mask than int8's alone
            key = hashlib.sha256(region.tobytes()).hexdigest()[:24]
            level = (
                f"-r{face.roll_deg:.2f}" if abs(face.roll_deg) > stages.LEVEL_FOR_MODEL_DEG else ""
            )
            path = self.masks / f"{key}{level}-{model}.png"
            if path.is_file():
                return np.asarray(Image.open(path))
        t = time.perf_counter()
        coarse = stages.segment(region, self.segmenter, face=face)
        self.seconds["segment"] += time.perf_counter() - t
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(coarse).save(path, compress_level=1)
        return coarse

    def run(self, row: corpus.Row, path: Path, specs: list[PhotoSpec]) -> list[Result]:
        def result(spec: PhotoSpec, status: str, **kw: Any) -> Result:
            r = Result(
                row.out_name,
                spec.id,
                row.expect,
                row.refuse_kind,
                sorted(row.reasons),
                sorted(row.flags),
                status,
                **kw,
            )
            r.agree, r.why = judge(r)
            return r

        data = path.read_bytes()
        try:
            t = time.perf_counter()
            analysis, region = stages.analyse(
                data,
                self.detector,
                max_pixels=self.settings.max_pixels,
                landmarker=self.measurer.landmarker,
            )
            self.seconds["analyse"] += time.perf_counter() - t
            coarse = self._coarse(region, analysis.face)
            t = time.perf_counter()
            matte = stages.refine(region, coarse)
            self.seconds["refine"] += time.perf_counter() - t
        except IdPhotoError as exc:
            return [result(s, "refused", code=exc.code, message=exc.message) for s in specs]
        except Exception as exc:  # a bug: recorded, the run goes on
            text = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return [result(s, "error", code="unexpected", message=text) for s in specs]
        results = []
        for spec in specs:
            bg = parse_background(spec.default_background)
            try:
                t = time.perf_counter()
                comp = stages.compose(matte, analysis, spec, bg, sheet=None)
                self.seconds["compose"] += time.perf_counter() - t
            except IdPhotoError as exc:
                results.append(result(spec, "refused", code=exc.code, message=exc.message))
                continue
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}".splitlines()[0]
                results.append(result(spec, "error", code="unexpected", message=text))
                continue
            ext = "png" if comp.photo.format == "png" else "jpg"
            dest = self.out / "photos" / spec.id / f"{Path(row.out_name).stem}.{ext}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(comp.photo.data)
            t = time.perf_counter()
            colour = bg.top if bg.top is not None else (255, 255, 255)
            m = self.measurer.measure(dest.read_bytes(), spec, tuple(colour))
            self.seconds["measure"] += time.perf_counter() - t
            results.append(
                result(
                    spec,
                    "produced",
                    verdict=comp.report["verdict"],
                    failed=list(comp.report["failed"]),
                    review=list(comp.report.get("review", [])),
                    checks={c["check"]: bool(c["pass"]) for c in comp.report["checks"]},
                    values={
                        c["check"]: float(c["value"])
                        for c in comp.report["checks"]
                        if isinstance(c["value"], int | float) and not isinstance(c["value"], bool)
                    },
                    measured=m.to_dict(),
                    own={k: comp.report["measures"].get(f"{k}_px") for k in OWN},
                    photo=str(dest),
                )
            )
        return results


# --- summary and contact sheets ------------------------------------------------------------


def summarise(results: list[Result]) -> dict[str, Any]:
    ok = [r for r in results if r.expect == "ok"]
    ok_in = [r for r in ok if r.status == "produced" and r.agree]
    ok_unmeasured = [
        r for r in ok_in if r.measured and any(v is None for v in r.measured["bands"].values())
    ]
    kind = [r for r in results if r.expect == "refuse" and r.refuse_kind == "photo"]
    kind_right = [r for r in kind if r.status == "refused" and r.code in r.reasons]
    multi = [r for r in results if "multiple" in r.flags and r.status == "produced"]
    by_label: dict[str, dict[str, int]] = {}
    for r in results:
        key = "produced" if r.status == "produced" else f"{r.status}:{r.code}"
        by_label.setdefault(r.expect, Counter())[key] += 1  # type: ignore[arg-type]
    offsets: dict[str, float | None] = {}
    for key in OWN:  # measured minus the pipeline's own row, in % of H (median, produced photos)
        diffs = [
            100 * (r.measured[key] - r.own[key]) / r.measured["height"]
            for r in results
            if r.measured
            and r.own
            and r.measured.get(key) is not None
            and r.own.get(key) is not None
        ]
        offsets[key] = round(float(np.median(diffs)), 2) if diffs else None
    return {
        "offsets_pct_h": offsets,
        "ok": len(ok),
        "ok_produced": sum(r.status == "produced" for r in ok),
        "ok_in_bands": len(ok_in),
        "ok_in_bands_pct": round(100 * len(ok_in) / len(ok), 1) if ok else None,
        "ok_with_unmeasured_band": len(ok_unmeasured),
        "refuse_photo": len(kind),
        "refuse_photo_right": len(kind_right),
        "refuse_photo_right_pct": round(100 * len(kind_right) / len(kind), 1) if kind else None,
        "multiple_produced": len(multi),
        "ok_verdict_fail": sum(r.verdict == "fail" for r in ok_in),
        "disagreements": sum(not r.agree for r in results),
        "by_label": {k: dict(v) for k, v in by_label.items()},
    }


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(results: list[Result], spec: PhotoSpec, path: Path) -> None:
    """Every output with label, verdict and reason under it; refusals as grey tiles."""
    n = len(results)
    rows = max(1, (n + COLS - 1) // COLS)
    head_h = 28
    sheet = Image.new("RGB", (COLS * TILE_W, head_h + rows * (TILE_H + TEXT_H)), "white")
    d = ImageDraw.Draw(sheet)
    small, title = _font(11), _font(16)
    s = summarise(results)
    d.text(
        (6, 5),
        f"{spec.id}: ok in bands {s['ok_in_bands']}/{s['ok']}, refused right "
        f"{s['refuse_photo_right']}/{s['refuse_photo']}, several people produced "
        f"{s['multiple_produced']}   (green frame: agrees with label, red: disagrees)",
        fill="black",
        font=title,
    )
    for i, r in enumerate(results):
        x = (i % COLS) * TILE_W
        y = head_h + (i // COLS) * (TILE_H + TEXT_H)
        box = (x + 2, y + 2, x + TILE_W - 3, y + TILE_H - 3)
        if r.status == "produced":
            im = Image.open(r.photo).convert("RGB")
            k = min((TILE_W - 8) / im.width, (TILE_H - 8) / im.height)
            im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))))
            ox = x + (TILE_W - im.width) // 2
            oy = y + (TILE_H - im.height) // 2
            sheet.paste(im, (ox, oy))
            m = r.measured or {}
            for key, colour in (("crown_y", "red"), ("eye_y", "lime"), ("chin_y", "blue")):
                if m.get(key) is not None:
                    yy = oy + m[key] * k
                    d.line((ox - 4, yy, ox + 10, yy), fill=colour, width=2)
                    d.line((ox + im.width - 10, yy, ox + im.width + 3, yy), fill=colour, width=2)
        else:
            d.rectangle(box, fill=(170, 170, 170))
            words, line, lines = r.message.split(), "", []
            for w in words:
                if len(line) + len(w) > 26:
                    lines.append(line)
                    line = ""
                line += w + " "
            lines.append(line)
            d.text((x + 8, y + 10), r.code, fill="black", font=title)
            for j, t in enumerate(lines[:9]):
                d.text((x + 8, y + 34 + 14 * j), t, fill=(40, 40, 40), font=small)
        d.rectangle(box, outline="green" if r.agree else "red", width=3)
        if r.status == "produced":
            m = r.measured or {}
            marks = " ".join(
                f"{k[:3]}:{'?' if v is None else ('ok' if v else 'X')}"
                for k, v in (m.get("bands") or {}).items()
            )
            if m.get("top_touch"):
                marks += " TOP"
            out = f"{r.verdict}" + (f": {','.join(r.failed)}" if r.failed else "")
        else:
            marks, out = "", f"{r.status}: {r.code}"
        lines = [r.name[:34], f"label {r.expect} {r.refuse_kind}".strip(), out[:34], marks]
        if not r.agree:
            lines.append(r.why)
        for j, t in enumerate(lines):
            d.text(
                (x + 4, y + TILE_H + 2 + 14 * j),
                t[:34],
                fill="red" if j == 4 else "black",
                font=small,
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def print_report(by_spec: dict[str, list[Result]], summaries: dict[str, Any]) -> None:
    print(
        f"{'spec':<14} {'ok in bands':>13} {'%':>6} {'refused right':>14} {'%':>6} "
        f"{'multi prod':>10} {'ok fail':>7} {'unmeas':>6} {'disagree':>8}"
    )
    for spec_id, s in summaries.items():
        print(
            f"{spec_id:<14} {s['ok_in_bands']:>6}/{s['ok']:<6} {s['ok_in_bands_pct'] or 0:>6.1f} "
            f"{s['refuse_photo_right']:>7}/{s['refuse_photo']:<6} "
            f"{s['refuse_photo_right_pct'] or 0:>6.1f} {s['multiple_produced']:>10} "
            f"{s['ok_verdict_fail']:>7} {s['ok_with_unmeasured_band']:>6} {s['disagreements']:>8}"
        )
    print("targets: ok in bands >= 97 %, refused right >= 95 %, several people produced 0")
    print("(ok fail: ok photos in bands whose own report says fail; unmeas: a band not measured)")
    print("measured minus the pipeline's own row, median % of H (+ = lower in the photo):")
    for spec_id, s in summaries.items():
        o = s["offsets_pct_h"]
        print(
            f"  {spec_id:<14} "
            + "  ".join(f"{k} {'-' if v is None else f'{v:+.2f}'}" for k, v in o.items())
        )
    for spec_id, results in by_spec.items():
        s = summaries[spec_id]
        print(f"\n== {spec_id}")
        for label, counts in sorted(s["by_label"].items()):
            parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            print(f"  {label:<7} {parts}")
        bad = [r for r in results if not r.agree]
        if bad:
            print("  disagreements:")
        for r in bad:
            print(f"    {r.name:<46} {r.expect:<6} {r.why}")


# --- the examiner's checks against the labels (issue 13) ---------------------------------------

FAMILIES = {
    "US (glasses banned, smile allowed)": ("us-passport",),
    "ICAO/Europe/Japan (neutral, mouth closed)": (
        "icao-35x45",
        "schengen-visa",
        "uk-passport",
        "jp-passport",
    ),
    "China (neutral, mouth closed, ears)": ("cn-id-card", "cn-1inch", "cn-2inch"),
}


def _label(row: corpus.Row, column: str) -> str:
    return row.fields.get(column, "")


#: Flags of photos that break a rule every authority has but no column above labels: a hand or
#: an object on the face, a filter or text over the photo, light a face cannot be seen in, a
#: look away. Such a photo is not clean, and a verdict of pass on it is a miss (several of
#: these have no check: the report lists them as not checked).
FLAGS_AGAINST_RULES = frozenset(
    {
        "hand_near_face",
        "hands_on_face",
        "hand_over_mouth",
        "hand_over_face",
        "face_covered",
        "face_mask",
        "ar_filter",
        "cartoon_filter",
        "text_overlay",
        "collage",
        "overexposed",
        "underexposed",
        "backlit",
        "blur",
        "red_eye",
        "expression",
        "gaze_away",
        "looking_up",
        "looking_down",
        "top_down",
    }
)


#: Flags of photos that are not clean for what the photo is, whatever the person does: several
#: people, or the top of the head or the chin cut by the frame (`either` rows: refusing them is
#: right, and no examiner's check is at stake when they are refused).
FLAGS_NOT_CLEAN = frozenset({"multiple", "crown_cut", "crown_touching", "chin_cut"})


def _breaks(row: corpus.Row, spec: PhotoSpec) -> dict[str, bool]:
    """Which of the spec's rules the labelled photo breaks, by the check that should see it."""
    rules = spec.rules
    glasses = _label(row, "glasses") or "none"
    forbidden = rules.glasses == "forbidden"
    teeth = _label(row, "smile_teeth") == "1" and rules.expression == "neutral"
    return {
        "eyes_open": _label(row, "eyes_closed") == "1",
        "mouth_closed": _label(row, "mouth_open") == "1" or teeth,
        "glasses" if forbidden else "tinted_lenses": glasses != "none"
        if forbidden
        else glasses == "sunglasses",
        "head_covering": _label(row, "head_covering") == "1",
        # the label says turned (yaw), looking up or down (pitch) or away: either pose check
        "pose": _label(row, "pose") in ("turned", "profile", "back"),
    }


def _fired(r: Result, check: str) -> bool | None:
    """Whether the check behind a label did not pass (None: the report has no such check)."""
    names = ("yaw", "pitch") if check == "pose" else (check,)
    found = [r.checks[n] for n in names if n in r.checks]
    return None if not found else not all(found)


def print_examiner(by_spec: dict[str, list[Result]], rows: dict[str, corpus.Row]) -> dict:
    """Per spec family: the verdict on rule-breaking vs clean photos, and each check's
    sensitivity and specificity (a check 'fires' when it does not pass: fail or review)."""
    out: dict[str, Any] = {}
    print("\nexaminer checks against the labels (produced photos; a refusal counts as not pass)")
    for family, spec_ids in FAMILIES.items():
        bad_total = bad_not_pass = clean_total = clean_pass = 0
        stats: dict[str, list[int]] = {}  # check -> [tp, fn, tn, fp]
        for sid in spec_ids:
            if sid not in by_spec:
                continue
            spec = get_spec(sid)
            for r in by_spec[sid]:
                row = rows[r.name]
                if row.expect == "refuse" and row.refuse_kind == "photo":
                    continue  # not a photo of one person: issue 12's table
                breaks = _breaks(row, spec)
                broken = any(breaks.values()) or bool(row.flags & FLAGS_AGAINST_RULES)
                clean = (
                    not broken
                    and _label(row, "pose") == "frontal"
                    and not row.flags & FLAGS_NOT_CLEAN
                )
                passed = r.status == "produced" and r.verdict == "pass"
                if broken:
                    bad_total += 1
                    bad_not_pass += not passed
                elif clean:
                    clean_total += 1
                    clean_pass += passed
                if r.status != "produced":
                    continue
                for check, positive in breaks.items():
                    fired = _fired(r, check)
                    if fired is None:
                        continue
                    s = stats.setdefault(check, [0, 0, 0, 0])
                    s[0 if positive and fired else 1 if positive else 3 if fired else 2] += 1
        fam = {
            "rule_breaking_not_pass": [bad_not_pass, bad_total],
            "clean_pass": [clean_pass, clean_total],
            "checks": {},
        }
        print(
            f"  {family}: rule-breaking photos not called pass {bad_not_pass}/{bad_total}"
            f" ({100 * bad_not_pass / max(1, bad_total):.0f} %), clean photos called pass "
            f"{clean_pass}/{clean_total} ({100 * clean_pass / max(1, clean_total):.0f} %)"
        )
        for check, (tp, fn, tn, fp) in sorted(stats.items()):
            sens = tp / (tp + fn) if tp + fn else None
            spec_ = tn / (tn + fp) if tn + fp else None
            fam["checks"][check] = {"tp": tp, "fn": fn, "tn": tn, "fp": fp}
            print(
                f"    {check:14} positives {tp + fn:3}  sensitivity "
                + (f"{sens:.2f}" if sens is not None else "  - ")
                + "  specificity "
                + (f"{spec_:.2f}" if spec_ is not None else "  - ")
            )
        out[family] = fam
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", action="append", help="spec id (repeatable; default: the 8)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these corpus rows")
    ap.add_argument("--subset", choices=sorted(corpus.SUBSETS), default=None)
    ap.add_argument("--dir", type=Path, default=None, help="corpus dir (default: cache)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--reuse-masks", action="store_true", help="keep segmentation on disk")
    ap.add_argument("--no-sheets", action="store_true", help="skip the contact sheets")
    args = ap.parse_args(argv)

    specs = [get_spec(s) for s in (args.spec or SPECS)]
    try:
        rows = corpus.select(corpus.load_manifest(), args.only or (), args.subset)
        paths = corpus.fetch(rows, args.dir, log=lambda line: print(line, file=sys.stderr))
    except corpus.CorpusError as exc:
        print(f"error: corpus: {exc}", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = Runner(settings, args.out, args.reuse_masks)
    by_spec: dict[str, list[Result]] = {s.id: [] for s in specs}
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row.out_name}", file=sys.stderr, flush=True)
        for r in runner.run(row, paths[row.out_name], specs):
            by_spec[r.spec].append(r)
    summaries = {k: summarise(v) for k, v in by_spec.items()}
    if not args.no_sheets:
        for spec in specs:
            contact_sheet(by_spec[spec.id], spec, args.out / f"{spec.id}.png")
    wall = time.perf_counter() - t0
    record = {
        "specs": [s.id for s in specs],
        "photos": len(rows),
        "measure_method": runner.measurer.method,
        "band_tolerance_h": BAND_TOL,
        "seconds": {"wall": round(wall, 1), **{k: round(v, 1) for k, v in runner.seconds.items()}},
        "summary": summaries,
        "results": {k: [asdict(r) for r in v] for k, v in by_spec.items()},
    }
    (args.out / "eval.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    print_report(by_spec, summaries)
    record["examiner"] = print_examiner(by_spec, {r.out_name: r for r in rows})
    (args.out / "eval.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(
        f"\nmeasured by {runner.measurer.method} (band tolerance {BAND_TOL} H); "
        f"{len(rows)} photos x {len(specs)} specs in {wall:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in runner.seconds.items())})"
    )
    seg = runner.segmenter
    print(
        f"segmentation: {seg.precision} ({seg.describe().get('file', seg.model)}), "
        f"{seg.runs} masks made, {seg.reruns} of them again in fp32"
    )
    print(f"contact sheets and eval.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
