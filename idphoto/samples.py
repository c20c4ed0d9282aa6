"""Real test portraits that ship inside registry packages (no download needed).

``python -m idphoto.samples NAME`` prints the file's path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SAMPLES = {
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "astronaut": ("skimage", "data/astronaut.png"),
}


def sample_path(name: str) -> Path:
    package, rel = SAMPLES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name}: install {package} to get this sample")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


if __name__ == "__main__":
    print(sample_path(sys.argv[1] if len(sys.argv) > 1 else "grace_hopper"))
