"""ONNX Runtime execution providers and session options, chosen in one place.

CUDA is used when asked for (``device="cuda"``) or when available (``device="auto"``), with the
device id, an optional memory limit, the ``kSameAsRequested`` arena strategy (no power-of-two
over-allocation on a fixed-size model) and the heuristic conv algorithm search (no minutes-long
exhaustive search at start-up). Otherwise the CPU provider, with the intra-op thread count the
worker was given.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort


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
