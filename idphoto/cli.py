"""The ``idphoto`` command: the embedded default (in-process pipeline, local files).

    idphoto make INPUT... --spec ID [--spec ID ...] [--background COLOUR] [--out DIR]
    idphoto check PHOTO... --spec ID [--json]
    idphoto specs [--json]
    idphoto models fetch

Exit codes (``make``): 0 every photo written and compliant; 1 an unexpected error (a bug: one
line, the traceback with ``--debug``); 2 a usage error or bad parameter (unknown spec, colour);
3 an input could not be used (missing, not an image, too large, too small); 4 the face or
framing rules it out (no face, several faces, face too small, head cut off, too close);
5 a spec limit cannot be met (file size window, bands) or a written photo misses one.
When inputs fail for different reasons the highest of 3, 4 and 5 wins; 1 wins over all.

Subcommands are registered in ``SUBCOMMANDS``: each entry adds its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import outputs
from config.settings import Settings
from pipeline.errors import (
    BadParameter,
    FaceError,
    IdPhotoError,
    InputError,
    SpecUnmet,
)

if TYPE_CHECKING:
    from config.specs import PhotoSpec
    from pipeline.composite import Background
    from tasks.services import Services

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_FACE = 4
EXIT_SPEC = 5

# Files a folder argument expands to (by name; the decoder sniffs the real format).
EXIT_CODES_HELP = (__doc__ or "").split("\n\n")[2]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp", ".gif"}
)


def exit_code_for(exc: BaseException) -> int:
    """The process exit code an error maps to (see the module docstring)."""
    if isinstance(exc, InputError):
        return EXIT_INPUT
    if isinstance(exc, FaceError):
        return EXIT_FACE
    if isinstance(exc, SpecUnmet):
        return EXIT_SPEC
    if isinstance(exc, BadParameter):
        return EXIT_USAGE
    return EXIT_UNEXPECTED


def _worst(codes: Iterable[int]) -> int:
    """One exit code for several failures: 1 (a bug) first, then the highest."""
    codes = [c for c in codes if c != EXIT_OK]
    if not codes:
        return EXIT_OK
    if EXIT_UNEXPECTED in codes:
        return EXIT_UNEXPECTED
    return max(codes)


def _emit(line: str, *, err: bool = False) -> None:
    """Print a line without tearing a progress bar (tqdm.write works with or without one)."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr if err else sys.stdout)


def _threads(settings: Settings) -> int:
    if settings.ort_threads > 0:
        return settings.ort_threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- models fetch ----------------------------------------------------------------------------


def _cmd_models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from idphoto.modelfetch import ModelFetchError, fetch

    try:
        paths = fetch(settings.models_dir)
        from idphoto.modelderive import derive

        paths.update(derive(settings.models_dir))  # fp32 and int8 ISNet, from the fetched one
    except ModelFetchError as exc:
        print(f"error: models: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return EXIT_OK


def _cmd_models_list(args: argparse.Namespace, settings: Settings) -> int:
    from idphoto.modelderive import model_table

    rows = model_table(settings)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        mark = "*" if r["selected"] else " "
        print(
            f"{mark} {r['name']:<30} {r['precision']:<5} {r['execution_provider']:<22} "
            f"{(r['sha256'] or 'missing')[:12]}  {r['path']}"
        )
    return EXIT_OK


def _add_models_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="manage the model files", parents=[common])
    msub = models.add_subparsers(dest="models_command", required=True)
    fetch = msub.add_parser(
        "fetch", help="fetch and checksum the models (idempotent)", parents=[common]
    )
    fetch.set_defaults(func=_cmd_models_fetch)
    listing = msub.add_parser(
        "list",
        help="the models, their hashes, and which ISNet this machine's CPU worker selects",
        parents=[common],
    )
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(func=_cmd_models_list)


# --- specs -----------------------------------------------------------------------------------


def _pct(band: tuple[float, float] | None) -> str:
    return f"{band[0] * 100:.1f}-{band[1] * 100:.1f} %" if band else "-"


def _kb_window(spec: PhotoSpec) -> str:
    if spec.kb is None:
        return "-"
    lo, hi = spec.kb
    if lo and hi:
        return f"{lo}-{hi} KB"
    return f">= {lo} KB" if lo else f"<= {hi} KB"


def _cmd_specs(args: argparse.Namespace, settings: Settings) -> int:
    from config.catalogue import COUNTRY_NAMES, list_specs

    groups: dict[str, list[PhotoSpec]] = {}
    for spec in list_specs():
        groups.setdefault(spec.country, []).append(spec)
    if args.json:
        countries = [
            {
                "code": code,
                "name": COUNTRY_NAMES.get(code, code),
                "specs": [s.to_dict() for s in specs],
            }
            for code, specs in groups.items()
        ]
        print(json.dumps({"countries": countries}, indent=2))
        return EXIT_OK
    for code, specs in groups.items():
        print(f"{COUNTRY_NAMES.get(code, code)} ({code})")
        for s in specs:
            mm = f"{s.width_mm:g}x{s.height_mm:g} mm" if s.size_mm else "digital"
            px = f"{s.width_px}x{s.height_px} px @ {s.dpi} dpi"
            if s.height_px_range:
                px += f" (height {s.height_px_range[0]}-{s.height_px_range[1]})"
            print(f"  {s.id:<22} {s.name}")
            print(
                f"  {'':<22} {mm:<10} {px:<40} head {_pct(s.head):<13} eye {_pct(s.eye):<13} "
                f"KB {_kb_window(s):<10} bg {', '.join(s.backgrounds)}"
            )
        print()
    return EXIT_OK


def _add_specs_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("specs", help="list the photo specifications", parents=[common])
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(func=_cmd_specs)


# --- make ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One photo to process: the path as the user named it, or why it cannot be read."""

    label: str
    path: Path | None
    problem: tuple[str, str] | None = None  # (code, message) when it cannot be read at all


@dataclass
class Outcome:
    label: str
    spec: str | None
    status: str  # "ok" | "unmet" (written, a report check failed) | "failed"
    code: str = ""
    message: str = ""
    exit_code: int = EXIT_OK
    files: dict[str, str] = field(default_factory=dict)


def collect_inputs(names: Iterable[str]) -> list[Input]:
    """Files as given; folders expand to the image files directly inside them, sorted."""
    out: list[Input] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not files:
                out.append(Input(name, None, ("no_images", "the folder holds no image files")))
            out.extend(Input(str(p), p) for p in files)
        elif path.is_file():
            out.append(Input(name, path))
        elif path.exists():
            out.append(Input(name, None, ("unsupported_image", "not a regular file")))
        else:
            out.append(Input(name, None, ("not_found", "no such file")))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "spec"


def _require_models(settings: Settings, model: str) -> None:
    from config.models import ARTEFACTS

    names = ["blazeface-front-128", "blazeface-back-256"]
    if model in ARTEFACTS:
        names.append(model)
    missing = [
        ARTEFACTS[n].filename
        for n in names
        if not (settings.models_dir / ARTEFACTS[n].filename).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"models missing in {settings.models_dir}: {', '.join(missing)}; "
            "run `idphoto models fetch`"
        )


def _models(settings: Settings) -> Services:
    """The models through the same loader a worker uses (`tasks.services.Services`): the
    detector, landmarker and segmenter on first use (a run of bad inputs never loads ISNet),
    with this process's cores for the model."""
    from tasks.services import Services

    _require_models(settings, settings.segment_model)
    models = Services(settings)
    models.ort_threads = _threads(settings)
    return models


def _fmt_band(band: tuple[float, float] | None) -> str:
    return f"  [spec {band[0]:.3f}-{band[1]:.3f}]" if band else ""


def _fmt_mm(value: float | None) -> str:
    return f" = {value:.1f} mm" if value is not None else ""


def _fmt_check(c: dict[str, Any]) -> str:
    unit = f" {c['unit']}" if c.get("unit") and c["unit"] != "fraction" else ""
    return f"{c['check']} = {c['value']}{unit} (limit {c['limit']}{unit})"


def human_report(label: str, spec: PhotoSpec, report: dict[str, Any], photo_path: str) -> str:
    """The per-photo text the CLI prints: measures beside the spec's bands, and misses."""
    m = report["measures"]
    size = f"{m['width_px']} x {m['height_px']} px @ {m['dpi']} dpi, {m['bytes']:,} bytes"
    size += f" ({m['format']}{' q' + str(m['quality']) if m.get('quality') else ''})"
    lines = [
        f"{label} -> {photo_path}  [{spec.id}: {spec.name}]",
        f"  size      {size}",
        f"  crown     y = {m['crown_y_px']:.1f} px",
        f"  chin      y = {m['chin_y_px']:.1f} px",
        f"  eyes      y = {m['eye_y_px']:.1f} px",
        f"  head      {m['head_height_px']:.1f} px = {m['head_height_fraction']:.3f} H"
        f"{_fmt_mm(m.get('head_height_mm'))}{_fmt_band(spec.head)}",
        f"  eye line  {m['eye_line_from_bottom_px']:.1f} px = "
        f"{m['eye_line_from_bottom_fraction']:.3f} H{_fmt_mm(m.get('eye_line_from_bottom_mm'))}"
        f" from the bottom{_fmt_band(spec.eye)}",
        f"  roll      {m['roll_deg']:.1f} deg, upscale {m['upscale']:.2f}x, "
        f"background {m['background']}",
    ]
    failing = [c for c in report["checks"] if not c["pass"]]
    missed = [c for c in failing if c.get("level", "required") == "required"]
    looks = [c for c in failing if c.get("level") == "review"]
    warned = [c for c in failing if c.get("level") == "advisory"]
    lines.append(f"  verdict   {report['verdict']}")
    for c in missed:
        lines.append(f"  FAIL      {_fmt_check(c)}: {c.get('message', '')}".rstrip(": "))
    for c in looks:
        lines.append(f"  REVIEW    {_fmt_check(c)}: {c.get('message', '')}".rstrip(": "))
    if warned:
        lines.append("  warning   " + "; ".join(_fmt_check(c) for c in warned))
    for item in report.get("not_checked", []):
        lines.append(f"  not checked: {item}")
    return "\n".join(lines)


def _compose(
    matte: Any, analysis: Any, spec: PhotoSpec, bg: Background, args: argparse.Namespace
) -> Any:
    from pipeline import stages

    sheet = None if args.sheet == "none" else args.sheet
    return stages.compose(
        matte,
        analysis,
        spec,
        bg,
        level=not args.no_level,
        sheet=sheet,
        zero_margin=args.zero_margin,
    )


def _process(
    item: Input,
    specs: list[PhotoSpec],
    background: Background | None,
    models: Services,
    args: argparse.Namespace,
    stems: dict[str, str],
) -> list[Outcome]:
    """Every spec for one input; one Outcome per spec (or one for an unusable input)."""
    from pipeline import stages
    from pipeline.composite import parse_background

    assert item.path is not None
    data = item.path.read_bytes()
    analysis, region = stages.analyse(
        data,
        models.detector,
        max_pixels=models.settings.max_pixels,
        landmarker=models.landmarker,
    )
    coarse = stages.segment(region, models.segmenter, face=analysis.face)
    matte = stages.refine(region, coarse)

    stem = item.path.stem
    n = 2
    while stems.setdefault(stem, item.label) != item.label:  # two inputs named alike
        stem = f"{item.path.stem}-{n}"
        n += 1
    out_dir: Path = args.out
    outcomes: list[Outcome] = []
    for spec in specs:
        try:
            bg = background or parse_background(spec.default_background)
            comp = _compose(matte, analysis, spec, bg, args)
        except IdPhotoError as exc:
            outcomes.append(_failure(item.label, spec.id if len(specs) > 1 else None, exc))
            continue
        base = f"{stem}-{_slug(spec.id)}"
        files: dict[str, str] = {}
        for name, ext, data in comp.files():
            suffix = outputs.BY_NAME[name].file_suffix
            if name == "sheet":
                suffix += f"-{args.sheet}"  # the paper, e.g. -sheet-4x6
            path = out_dir / f"{base}{suffix}.{ext}"
            files[name] = str(path)
            if name != "report":  # written below, with the input and the file names
                path.write_bytes(data)
        record = {"input": item.label, "files": files, **comp.report}
        Path(files["report"]).write_text(json.dumps(record, indent=2, default=str) + "\n")
        ok = comp.report["verdict"] == "pass"
        outcome = Outcome(
            item.label,
            spec.id,
            "ok" if ok else "unmet",
            "" if ok else "spec_unmet",
            ""
            if ok
            else "missed: " + ", ".join(comp.report["failed"])
            if comp.report["failed"]
            else "needs review: " + ", ".join(comp.report["review"]),
            EXIT_OK if ok else EXIT_SPEC,
            files,
        )
        outcomes.append(outcome)
        if args.json:
            _emit(json.dumps({"input": item.label, "ok": ok, "files": files, **comp.report}))
        else:
            _emit(human_report(item.label, spec, comp.report, files["photo"]))
    return outcomes


def _failure(label: str, spec_id: str | None, exc: IdPhotoError) -> Outcome:
    message = f"[{spec_id}] {exc.message}" if spec_id else exc.message
    return Outcome(label, spec_id, "failed", exc.code, message, exit_code_for(exc))


def _report_failure(outcome: Outcome, args: argparse.Namespace, details: Any = None) -> None:
    _emit(f"error: {outcome.label}: {outcome.code}: {outcome.message}", err=True)
    if args.json:
        record = {
            "input": outcome.label,
            "ok": False,
            "spec": outcome.spec,
            "error": outcome.code,
            "message": outcome.message,
            "details": details or {},
        }
        _emit(json.dumps(record, default=str))


def _summary(outcomes: list[Outcome]) -> str:
    ok = sum(o.status == "ok" for o in outcomes)
    unmet = [o for o in outcomes if o.status == "unmet"]
    failed = [o for o in outcomes if o.status == "failed"]
    parts = [f"{ok} ok"]
    if unmet:
        parts.append(f"{len(unmet)} written but missing spec limits")
    reasons = Counter(o.code for o in failed)
    why = ", ".join(f"{code} x{n}" for code, n in sorted(reasons.items()))
    parts.append(f"{len(failed)} failed" + (f" ({why})" if why else ""))
    return "summary: " + ", ".join(parts)


def _cmd_make(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from config.catalogue import parse_spec_arg
    from pipeline.composite import parse_background

    # Parameters first: a typo costs no model loading.
    specs = []
    for text in args.spec:
        spec = parse_spec_arg(text)
        if args.format:
            spec = replace(spec, format="png" if args.format == "png" else "jpeg")
        specs.append(spec)
    background = parse_background(args.background) if args.background else None
    items = collect_inputs(args.inputs)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: --out: bad_parameter: cannot create {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        models = _models(settings)
    except FileNotFoundError as exc:
        print(f"error: models: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED
    outcomes: list[Outcome] = []
    stems: dict[str, str] = {}
    bar = tqdm(
        items,
        desc="idphoto",
        unit="photo",
        file=sys.stderr,
        disable=len(items) <= 1 or args.quiet,
        leave=False,
    )
    for item in bar:
        if item.problem is not None:
            code, message = item.problem
            outcome = Outcome(item.label, None, "failed", code, message, EXIT_INPUT)
            _report_failure(outcome, args)
            outcomes.append(outcome)
            continue
        try:
            done = _process(item, specs, background, models, args, stems)
        except IdPhotoError as exc:
            outcome = _failure(item.label, None, exc)
            _report_failure(outcome, args, exc.details)
            outcomes.append(outcome)
            continue
        except OSError as exc:  # unreadable (permissions, I/O error) or unwritable output
            outcome = Outcome(item.label, None, "failed", "unreadable", str(exc), EXIT_INPUT)
            if args.debug:
                traceback.print_exc()
            _report_failure(outcome, args)
            outcomes.append(outcome)
            continue
        except Exception as exc:  # a bug: keep going with the next photo
            if args.debug:
                traceback.print_exc()
            text = f"{type(exc).__name__}: {exc}".splitlines()[0]
            outcome = Outcome(item.label, None, "failed", "unexpected", text, EXIT_UNEXPECTED)
            _report_failure(outcome, args)
            outcomes.append(outcome)
            continue
        for outcome in done:
            if outcome.status == "failed":
                _report_failure(outcome, args)
        outcomes.extend(done)
    bar.close()
    if not args.quiet:
        print(_summary(outcomes), file=sys.stderr)
    return _worst(o.exit_code for o in outcomes)


def _add_make_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "make",
        help="make ID photos from portraits",
        description="Make ID photos: <stem>-<spec>.jpg|png, <stem>-<spec>-cutout.png and "
        "<stem>-<spec>-report.json per input and spec.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="photo files or folders of photos")
    p.add_argument(
        "--spec",
        action="append",
        required=True,
        metavar="ID",
        help="spec id, alias or custom:... form (repeat for several); see `idphoto specs`",
    )
    p.add_argument(
        "--background",
        "--bg",
        metavar="COLOUR",
        help="name, #hex, gradient:<top>,<bottom> or transparent (default: the spec's)",
    )
    p.add_argument("--out", "-o", type=Path, default=Path("."), metavar="DIR", help="output folder")
    p.add_argument("--format", choices=("jpg", "png"), help="force the photo's file format")
    p.add_argument("--json", action="store_true", help="one JSON object per photo (JSON lines)")
    p.add_argument("--no-level", action="store_true", help="do not level the eye line")
    p.add_argument(
        "--sheet",
        choices=("none", "4x6", "5x7", "a4"),
        default="none",
        help="also write a print sheet of this size (300 dpi, true print size)",
    )
    p.add_argument(
        "--zero-margin",
        action="store_true",
        help="lay the sheet out edge to edge (six US 2x2 in photos on 4x6 in)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=_cmd_make)


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Check photos made elsewhere against a spec; exit 0 pass, 5 fail or review, 3/4 as make."""
    from config.catalogue import parse_spec_arg
    from pipeline.check import check_photo
    from pipeline.examine import Declared

    spec = parse_spec_arg(args.spec)
    declared = Declared(
        religious_head_covering=args.head_covering == "religious",
        medical_head_covering=args.head_covering == "medical",
        medical_glasses=args.medical_glasses,
    )
    try:
        models = _models(settings)
    except FileNotFoundError as exc:
        print(f"error: models: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED
    codes = []
    for path in args.photos:
        try:
            report = check_photo(
                path.read_bytes(),
                spec,
                models.detector,
                models.landmarker,
                max_pixels=settings.max_pixels,
                declared=declared,
            )
        except IdPhotoError as exc:
            codes.append(exit_code_for(exc))
            if args.json:
                print(json.dumps({"input": str(path), **exc.to_dict()}))
            else:
                print(f"{path}: {exc.code}: {exc.message}", file=sys.stderr)
            continue
        except OSError as exc:
            codes.append(EXIT_INPUT)
            print(f"{path}: unreadable: {exc}", file=sys.stderr)
            continue
        codes.append(EXIT_OK if report["verdict"] == "pass" else EXIT_SPEC)
        if args.json:
            print(json.dumps({"input": str(path), **report}))
            continue
        print(f"{path}: {report['verdict']} for {spec.name} ({spec.id})")
        for c in report["checks"]:
            mark = "ok  " if c["pass"] else ("FAIL" if c["level"] == "required" else c["level"])
            words = c.get("message") or ""
            print(f"  {mark:8} {c['check']:22} {c['value']!s:>12}  limit {c['limit']!s:14} {words}")
        for item in report["not_checked"]:
            print(f"  not checked: {item}")
    return _worst(codes)


def _add_check_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check",
        help="check photos made elsewhere against a spec (nothing is changed)",
        description="Measure existing ID photos against a spec: size, dpi, KB, head height, "
        "eye line, top margin, centring, background, and the examiner's checks. Exit 0: every "
        "photo passes; 5: one fails or needs review; 3/4 as for make.",
        parents=[common],
    )
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    p.add_argument("--spec", required=True, metavar="ID", help="spec id, alias or custom:...")
    p.add_argument("--json", action="store_true", help="one JSON report per photo (JSON lines)")
    p.add_argument(
        "--head-covering",
        choices=("religious", "medical"),
        help="a head covering worn for this reason (the rule is then a review item)",
    )
    p.add_argument(
        "--medical-glasses",
        action="store_true",
        help="glasses worn for medical reasons with a signed statement (US)",
    )
    p.set_defaults(func=_cmd_check)


# --- service processes -------------------------------------------------------------------------


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from tasks.worker import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    run_worker(settings, queues, args.concurrency, args.hostname, loglevel=args.loglevel)
    return EXIT_OK


def _add_worker_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "worker",
        help="run a Celery worker for the gpu (segment) or cpu (refine, composite, store) queue",
        parents=[common],
    )
    p.add_argument("--queues", "-Q", default="gpu,cpu", help="gpu, cpu or gpu,cpu")
    p.add_argument("--concurrency", "-c", type=int, default=1, help="worker processes")
    p.add_argument("--hostname", "-n", default=None, help="node name, e.g. gpu@%%h")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=_cmd_worker)


def _cmd_storage_init(args: argparse.Namespace, settings: Settings) -> int:
    """Set up the object store once per deployment (compose runs it before anything else;
    `serve` at its start): the bucket, private, with its lifecycle rules. Idempotent."""
    from storage import make_store

    store = make_store(settings)
    store.ensure_ready()
    print(f"storage ready: {store!r}")
    for label, prefixes, days in (
        ("inputs and intermediates", "intermediate_prefixes", "intermediate_expiry_days"),
        ("outputs", "output_prefixes", "output_expiry_days"),
    ):
        if hasattr(store, prefixes):
            after = getattr(store, days)
            when = f"after {after} day(s)" if after > 0 else "never (no rule)"
            print(f"  {label} ({', '.join(getattr(store, prefixes))}) expire {when}")
    return EXIT_OK


def _add_storage_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("storage", help="set up the object store", parents=[common])
    ssub = p.add_subparsers(dest="storage_command", required=True)
    init = ssub.add_parser(
        "init",
        help="create the bucket (or folder), make it private, set its lifecycle rules",
        parents=[common],
    )
    init.set_defaults(func=_cmd_storage_init)


def _cmd_flower(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from idphoto.serve import flower_argv, flower_env, settings_environ

    settings = replace(settings, flower_port=args.port) if args.port else settings
    argv = flower_argv(settings, args.address)
    env = {**os.environ, **settings_environ(settings), **flower_env(settings)}
    os.execvpe(argv[0], argv, env)
    return EXIT_OK  # not reached


def _add_flower_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "flower", help="run Flower (basic auth and URL prefix from settings)", parents=[common]
    )
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--address",
        default="127.0.0.1",
        help="interface to listen on (default: loopback; its /metrics and /healthcheck need no "
        "login, so publish it through a proxy or an internal network only)",
    )
    p.set_defaults(func=_cmd_flower)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from idphoto.serve import run_topology

    return run_topology(
        settings,
        port=args.port,
        host=args.host,
        with_flower=not args.no_flower,
        cpu_concurrency=args.cpu_concurrency,
    )


def _add_serve_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        help="the whole topology on this machine: web, a gpu worker, a cpu worker and Flower",
        parents=[common],
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cpu-concurrency", type=int, default=1)
    p.add_argument("--no-flower", action="store_true")
    p.set_defaults(func=_cmd_serve)


def _cmd_corpus_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from idphoto import corpus

    try:
        rows = corpus.select(corpus.load_manifest(), args.only or (), args.subset)
        corpus.fetch(rows, args.dir, log=lambda line: print(line, file=sys.stderr))
    except corpus.CorpusError as exc:
        print(f"error: corpus: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED
    return EXIT_OK


def _add_corpus_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "corpus", help="the development corpus of real photos (test use only)", parents=[common]
    )
    csub = p.add_subparsers(dest="corpus_command", required=True)
    fetch = csub.add_parser(
        "fetch",
        help="download the corpus images (sha256-checked) into the cache directory",
        parents=[common],
    )
    fetch.add_argument("--dir", type=Path, default=None, help="default ~/.cache/idphoto/corpus")
    fetch.add_argument("--only", nargs="+", metavar="NAME", help="only these out_name rows")
    fetch.add_argument("--subset", choices=["ci"], default=None, help="a named subset")
    fetch.set_defaults(func=_cmd_corpus_fetch)


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    # The evaluation is a bench (bench/corpus.py), outside the installed packages: run as its
    # own process from the repository, so the CLI does not import upward into bench/.
    import subprocess

    from idphoto.corpus import REPO

    argv = [sys.executable, "-m", "bench.corpus"]
    for spec in args.spec or ():
        argv += ["--spec", spec]
    if args.only:
        argv += ["--only", *args.only]
    for flag, value in (("--subset", args.subset), ("--dir", args.dir), ("--out", args.out)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--reuse-masks"] if args.reuse_masks else []
    argv += ["--no-sheets"] if args.no_sheets else []
    return subprocess.call(argv, cwd=REPO)


def _add_eval_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate the pipeline on the corpus (runs python -m bench.corpus)",
        parents=[common],
    )
    p.add_argument("--spec", action="append", help="spec id (repeatable; default: the 8)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these corpus rows")
    p.add_argument("--subset", choices=["ci"], default=None)
    p.add_argument("--dir", type=Path, default=None, help="corpus dir (default: the cache)")
    p.add_argument("--out", type=Path, default=None, help="default bench/results/corpus")
    p.add_argument("--reuse-masks", action="store_true", help="keep segmentation on disk")
    p.add_argument("--no-sheets", action="store_true", help="skip the contact sheets")
    p.set_defaults(func=_cmd_eval)


# --- the command -----------------------------------------------------------------------------

# Each adds one subcommand to the parser (``idphoto worker`` goes here too).
SUBCOMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [
    _add_make_parser,
    _add_check_parser,
    _add_specs_parser,
    _add_models_parser,
    _add_worker_parser,
    _add_storage_parser,
    _add_flower_parser,
    _add_serve_parser,
    _add_corpus_parser,
    _add_eval_parser,
]


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before or after the subcommand; SUPPRESS keeps a subparser's default
    # from overwriting a value given at the top.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    parser = argparse.ArgumentParser(
        prog="idphoto",
        description="Official ID photos from ordinary portraits.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    try:
        settings = Settings.from_env()
    except (TypeError, ValueError) as exc:
        print(f"error: settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args, settings))
    except IdPhotoError as exc:  # a bad parameter, before any input was touched
        where = {"unknown_spec": "--spec"}.get(exc.code, str(exc.details.get("param", "")))
        prefix = f"{where}: " if where else ""
        print(f"error: {prefix}{exc.code}: {exc.message}", file=sys.stderr)
        if exc.code == "unknown_spec":
            print("hint: `idphoto specs` lists every spec id", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `idphoto specs | head`: the reader left, nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        hint = "" if args.debug else " (--debug shows the traceback)"
        print(f"error: {text}{hint}", file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
