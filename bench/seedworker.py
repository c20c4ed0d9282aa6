"""The seed article's worker, rebuilt for comparison: what `bench.service` measures us against.

Per photo it does what that worker's task body does: open the upload with PIL, create a *new*
rembg session (``rembg.new_session``, i.e. the ONNX model loaded again for every photo), run
``rembg.remove(img, session=session)`` at the photo's full resolution (rembg fixes the EXIF
orientation, resizes to the model's 1024x1024 with LANCZOS, and scales the mask back to full size
with LANCZOS), then PIL-resize the cut-out to the spec's pixel size, paste it on the background
and write a JPEG under /tmp.

The model is the same ISNet file our workers use, through rembg's own ``dis_custom`` session (the
class our `pipeline.segment.IsnetSession` subclasses): rembg 2.0.86 accepts a custom model path
only under its home directory, so the file is symlinked into a temporary ``U2NET_HOME``. Session
options are rembg's defaults (ONNX Runtime picks the thread count: the physical cores), as the
seed article left them.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from config.catalogue import get_spec
from pipeline.composite import parse_background


class SeedWorker:
    """``process(data) -> path``: one photo the seed way. Use as a context manager."""

    def __init__(self, model_file: Path, spec_id: str = "us-passport", background: str = "white"):
        self.spec = get_spec(spec_id)
        top = parse_background(background).top  # a solid colour (the seed had no gradients)
        self.colour = tuple(int(c) for c in top) if top is not None else (255, 255, 255)
        self.home = Path(tempfile.mkdtemp(prefix="idp-seed-home-"))
        self.out = Path(tempfile.mkdtemp(prefix="idp-seed-out-"))
        self.model = self.home / "isnet-imgly-medium.onnx"
        os.symlink(Path(model_file).resolve(), self.model)
        self._old_home = os.environ.get("U2NET_HOME")
        self.count = 0

    def __enter__(self) -> SeedWorker:
        os.environ["U2NET_HOME"] = str(self.home)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old_home is None:
            os.environ.pop("U2NET_HOME", None)
        else:
            os.environ["U2NET_HOME"] = self._old_home
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)

    def process(self, data: bytes) -> dict[str, float]:
        """One photo; returns its timings (session, remove, resize+paste+save, total)."""
        from rembg import new_session, remove

        t0 = time.perf_counter()
        img = Image.open(io.BytesIO(data))
        session = new_session("dis_custom", model_path=str(self.model))  # new per photo
        t1 = time.perf_counter()
        cut = remove(img, session=session)
        t2 = time.perf_counter()
        size = (self.spec.width_px, self.spec.height_px)
        cut = cut.resize(size, Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", size, self.colour)
        canvas.paste(cut, (0, 0), cut)
        self.count += 1
        path = self.out / f"photo-{self.count}.jpg"
        canvas.save(path, "JPEG", quality=95, dpi=(self.spec.dpi, self.spec.dpi))
        t3 = time.perf_counter()
        return {"session_s": t1 - t0, "remove_s": t2 - t1, "compose_s": t3 - t2, "total_s": t3 - t0}
