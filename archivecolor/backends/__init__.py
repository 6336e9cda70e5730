"""Inference backends behind one small interface: float32 NCHW L in, float32 NCHW ab out.

    backend = open_backend("auto", weights=None, device="auto")
    ab_net = backend.run(l_net)   # (N, 1, H, W) -> (N, 2, H, W), network scaling

H and W must be multiples of `backend.size_multiple`. `auto` says what it chose and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

BACKEND_KINDS = ("auto", "torch", "onnx", "tensorrt")


class BackendError(Exception):
    """A backend that cannot run here; the message says what is missing and how to get it."""


class Backend(Protocol):
    name: str  # what runs, e.g. "torch cuda:0 fp16", "onnxruntime CPUExecutionProvider"
    size_multiple: int  # H and W of an input must be multiples of this
    hint_channels: int  # 3 where the model takes colour hints (hints.hint_planes), else 0

    def run(self, l_net: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, H, W) float32 L in [-1, 1] (and (N, 3, H, W) hints) -> (N, 2, H, W) float32 ab in [-1, 1]."""
        ...


@dataclass(frozen=True)
class BackendChoice:
    backend: Backend
    reason: str  # why `auto` picked it (or "requested")


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU. On Linux a machine without NVIDIA's device files has none, and
    is told so without importing torch (seconds on a CPU machine, for a backend that does not need it)."""
    import glob
    import sys

    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia*") and "torch" not in sys.modules:
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def bf16_emulated_warning(device_type: str) -> str | None:
    """Why bfloat16 is a bad choice here, or None: on a CPU without bfloat16 instructions (AVX-512
    BF16, AMX) torch emulates it, and it runs slower than fp32 instead of faster."""
    if device_type != "cpu":
        return None
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not any(checks) or any(check() for check in checks if check is not None):
        return None  # native bfloat16, or a torch that cannot tell: say nothing
    return ("this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX), so torch emulates bf16, which runs slower "
            "than fp32, not faster (1.8× slower to train and 3.5× to colorize on one such CPU): leave out bf16")


def probe(choice: BackendChoice) -> BackendChoice:
    """Run one small grey ramp through the backend: colour that is NaN or infinite (damaged weights, a
    broken engine, fp16 overflow) would make every output white, so such a backend is refused here."""
    side = choice.backend.size_multiple * 2
    ramp = np.linspace(-1, 1, side * side, dtype=np.float32).reshape(1, 1, side, side)
    ab = choice.backend.run(ramp)
    if not np.isfinite(ab).all():
        raise BackendError(f"{choice.backend.name} gives colour that is NaN or infinite on a probe picture "
                           "(damaged weights or a broken engine): nothing was coloured with it")
    return choice


def open_backend(kind: str = "auto", weights: Path | None = None, device: str = "auto", precision: str = "auto",
                 engine: Path | None = None, threads: int | None = None) -> BackendChoice:
    """Open the backend `kind` for `weights` (None: the packaged default model).

    auto: on a CUDA GPU, the TensorRT engine built for these weights, this GPU and this TensorRT
    when there is one (else torch with fp16 and channels_last, saying why); on a CPU, onnxruntime (fp32, equal
    to torch within 1e-5, and the fastest CPU backend measured for this network: see the README).
    `threads` caps the CPU threads (None: every core).
    """
    return probe(_open(kind, weights, device, precision, engine, threads))


def _open(kind, weights, device, precision, engine, threads) -> BackendChoice:
    from ..weights import resolve_weights

    if kind not in BACKEND_KINDS:
        raise BackendError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")
    source = resolve_weights(weights)
    if kind == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        return BackendChoice(TensorRTBackend(source, engine), "requested")
    if kind == "onnx":
        from .onnx_backend import OnnxBackend

        return BackendChoice(OnnxBackend(source, device=device, threads=threads), "requested")
    if kind == "torch":
        from .torch_backend import TorchBackend

        return BackendChoice(TorchBackend(source, device=device, precision=precision, threads=threads), "requested")
    wants_cuda = device.startswith("cuda") or (device == "auto" and cuda_available())
    if wants_cuda:
        why_not_trt = "TensorRT is not installed"
        if _importable("tensorrt") and precision in ("auto", "fp16"):
            from .tensorrt_backend import TensorRTBackend

            try:
                return BackendChoice(TensorRTBackend(source, engine), "a CUDA GPU and a matching TensorRT engine")
            except BackendError as exc:
                why_not_trt = str(exc)
        from .torch_backend import TorchBackend

        return BackendChoice(TorchBackend(source, device=device if device != "auto" else "cuda", precision=precision, threads=threads),
                             f"CUDA GPU: torch fp16 + channels_last (no TensorRT: {why_not_trt})")
    if precision in ("auto", "fp32") and _importable("onnxruntime"):
        from .onnx_backend import OnnxBackend

        return BackendChoice(OnnxBackend(source, device="cpu", threads=threads), "no CUDA GPU: onnxruntime is the fastest fp32 CPU backend measured")
    from .torch_backend import TorchBackend

    return BackendChoice(TorchBackend(source, device="cpu", precision=precision, threads=threads), "no CUDA GPU: torch on the CPU")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
