"""ONNX Runtime execution providers and session options, chosen in one place.

CUDA is used when asked for (``device="cuda"``) or when available (``device="auto"``), with the
device id, an optional memory limit, the ``kSameAsRequested`` arena strategy (no power-of-two
over-allocation on a fixed-size model) and the heuristic conv algorithm search (no minutes-long
exhaustive search at start-up). Otherwise the CPU provider, with the intra-op thread count the
worker was given.

Which precision of a model a worker runs is chosen here too (`choose_precision`): int8 only where
the CPU has the dot-product instructions ONNX Runtime's int8 kernels are fast with (AVX-512 VNNI,
AMX); without them the u8s8 kernels are no win and can saturate, so fp32 there; on CUDA the
fetched fp16 model, which the GPU runs natively. An int8 file that fails the quality gate alone
but passes it with the fp32 file behind it runs as ``int8+fp32``: int8 first, and fp32 again on
the photos whose int8 mask is unsure (`pipeline.segment.cascade`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from config.models import DERIVED, ISNET_MEDIUM

DEFAULT_MODEL = ISNET_MEDIUM.name


def providers_for(
    device: str = "auto", *, cuda_device_id: int = 0, cuda_mem_limit_mb: int = 0
) -> list[Any]:
    available = ort.get_available_providers()
    want_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
    if not want_cuda:
        return ["CPUExecutionProvider"]
    cuda_opts: dict[str, Any] = {
        "device_id": cuda_device_id,
        "arena_extend_strategy": "kSameAsRequested",
        # HEURISTIC asks cuDNN for its pick per shape, once; EXHAUSTIVE (the default) would
        # benchmark every algorithm for every new shape at start-up.
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": True,
    }
    if cuda_mem_limit_mb:
        cuda_opts["gpu_mem_limit"] = cuda_mem_limit_mb * 1024 * 1024
    return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]


def session_options(threads: int = 0, *, spinning: bool = True) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: the models' unused-initialiser warnings are noise
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def active_provider(session: ort.InferenceSession) -> str:
    return session.get_providers()[0]


#: /proc/cpuinfo flags that make ONNX Runtime's int8 convolutions fast (u8s8 dot products).
INT8_CPU_FLAGS = ("avx512_vnni", "amx_int8")
#: int8 first, fp32 again where the int8 mask is unsure (pipeline.segment.cascade)
CASCADE = "int8+fp32"
PRECISIONS = ("auto", "int8", CASCADE, "fp32", "fp16", "fetched")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (from ``cpuinfo`` text, else this machine's /proc/cpuinfo)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:  # not Linux: no flags known, so no int8
            return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def choose_precision(
    requested: str,
    provider: str,
    flags: frozenset[str] | None = None,
    *,
    int8_passes_gate: bool | None = None,
    cascade_passes_gate: bool | None = None,
) -> tuple[str, str]:
    """``(precision, reason)`` a session on ``provider`` runs: ``fp16`` (the fetched model),
    ``fp32``, ``int8`` or ``int8+fp32``. ``requested`` other than ``auto`` is obeyed as it is;
    ``auto`` runs int8 only where the CPU has the instructions and the int8 file passed the
    quality gate, alone (``int8_passes_gate``) or with fp32 again on its unsure masks
    (``cascade_passes_gate``; both default to what `config.models` records)."""
    if requested not in PRECISIONS:
        raise ValueError(f"segment precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "fetched":
        requested = "fp16"
    if requested != "auto":
        return requested, f"set: segment_precision={requested}"
    if provider == "CUDAExecutionProvider":
        return "fp16", "CUDA runs the fetched fp16 model natively"
    have = sorted(set(INT8_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if have:
        int8 = DERIVED["isnet-imgly-medium-int8"]
        if int8_passes_gate is None:
            int8_passes_gate = int8.passes_gate
        if cascade_passes_gate is None:
            cascade_passes_gate = int8.passes_gate_with_fp32
        if int8_passes_gate:
            return "int8", f"CPU has {'+'.join(have)}"
        if cascade_passes_gate:
            return CASCADE, (
                f"CPU has {'+'.join(have)}; the int8 model passes the quality gate only with "
                "fp32 again on its unsure masks"
            )
        return "fp32", f"CPU has {'+'.join(have)}, but the int8 model fails the quality gate"
    return "fp32", f"CPU has none of {'/'.join(INT8_CPU_FLAGS)}"


#: precision -> file name in the models directory
ISNET_FILES = {
    "fp16": ISNET_MEDIUM.filename,
    "fp32": DERIVED["isnet-imgly-medium-fp32"].filename,
    "int8": DERIVED["isnet-imgly-medium-int8"].filename,
}


@dataclass(frozen=True)
class IsnetChoice:
    """Which ISNet file a session runs, and why (shown in logs, /readyz, `models list`)."""

    precision: str  # fp16 (as fetched) | fp32 | int8 | int8+fp32
    path: Path
    provider: str
    reason: str
    fallback: Path | None = None  # int8+fp32: the fp32 file run again on unsure masks

    def as_dict(self) -> dict[str, str]:
        out = {
            "model": DEFAULT_MODEL,
            "file": self.path.name,
            "precision": self.precision,
            "execution_provider": self.provider,
            "reason": self.reason,
        }
        if self.fallback is not None:
            out["fallback_file"] = self.fallback.name
        return out


def choose_isnet(
    models_dir: Path,
    *,
    precision: str = "auto",
    device: str = "auto",
    flags: frozenset[str] | None = None,
) -> IsnetChoice:
    """The ISNet file a session with ``device`` on this CPU (or ``flags``) runs."""
    first = providers_for(device)[0]
    provider = first[0] if isinstance(first, tuple) else first
    chosen, reason = choose_precision(precision, provider, flags)
    models_dir = Path(models_dir)
    if chosen == CASCADE:
        return IsnetChoice(
            chosen,
            models_dir / ISNET_FILES["int8"],
            provider,
            reason,
            fallback=models_dir / ISNET_FILES["fp32"],
        )
    return IsnetChoice(chosen, models_dir / ISNET_FILES[chosen], provider, reason)
