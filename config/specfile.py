"""The raw spec data file, ``config/specs.toml``, read once.

A module of its own, below ``config.specs``, because two readers need the same parsed file: the
catalogue loader (``config.specdata``) and ``config.specs``, whose ``PhotoSpec.rules`` default is
the ICAO rule set written in that file.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).with_name("specs.toml")


def read_spec_file(path: Path = SPEC_FILE) -> dict[str, Any]:
    """The parsed TOML of ``path``; the shipped file is parsed once per process."""
    if path == SPEC_FILE:
        return _shipped()
    with path.open("rb") as fh:
        return tomllib.load(fh)


@functools.cache
def _shipped() -> dict[str, Any]:
    with SPEC_FILE.open("rb") as fh:
        return tomllib.load(fh)
