"""The house rules, checked on every run: the layers and their purity (import-linter's
contracts in setup.cfg: idphoto -> web -> tasks -> {pipeline, storage} -> config, pipeline free
of Celery, Flask, boto3 and Redis, no import cycles inside a package, an import inside a
function counting like any other), mypy on every layer (pipeline/, storage/, config/, tasks/,
web/, idphoto/), and ruff's lint and format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout, done.stdout[-2000:]


def test_mypy_on_every_layer() -> None:
    """mypy over all six packages (the [mypy] section of setup.cfg names them)."""
    done = _run(str(BIN / "mypy"), "--config-file", "setup.cfg", "--no-incremental")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout, done.stdout[-2000:]
    checked = int(done.stdout.rsplit(" in ", 1)[1].split()[0])
    assert checked >= 70, done.stdout  # every layer's modules, not only the pure ones


def test_ruff_lint_and_format() -> None:
    lint = _run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-4000:]


def test_bad_parameter_details_name_the_field_one_way() -> None:
    """``BadParameter(..., param=...)`` everywhere: the CLI and API clients read ``param``."""
    import re

    offenders = []
    for folder in ("config", "pipeline", "tasks", "web", "storage", "idphoto"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\bparameter\s*=\s*['\"]", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
