"""PyTorch backend: CPU fp32 (or bf16), CUDA fp16 with channels_last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import BackendError
from ..weights import load_generator

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# On an H100 (benchmarks/bench.py gpu, 2026-11-26) both the width-32 and the width-48 generator ran
# 2.5-3x slower once one call held about 6.3 M pixels (batch 64 at 256x384, 16 at 512x768) than at
# 3.1 M (batch 32 and 8); larger batches are therefore run in calls of at most this many pixels.
CUDA_PIXELS_PER_CALL = 3_200_000


class TorchBackend:
    def __init__(self, weights: Path, device: str = "auto", precision: str = "auto", threads: int | None = None):
        if threads:  # a cluster actor uses the CPUs it was given, not every core of its node
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError("--device cuda was asked for, but torch sees no CUDA GPU (is the CUDA build of torch installed?)")
        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendError("fp16 inference needs a CUDA GPU; on a CPU use fp32 or bf16")
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        model = load_generator(weights, device=self.device)
        self.size_multiple = model.config.size_multiple
        self.channels_last = self.device.type == "cuda" or precision == "bf16"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # fp16 on CUDA: the whole network in half precision (BN folded into convs would be
        # next); bf16 on CPU: autocast keeps the numerically sensitive ops in fp32.
        self.model = model.half() if precision == "fp16" else model
        self.name = f"torch {self.device} {precision}"
        self.pixels_per_call = CUDA_PIXELS_PER_CALL if self.device.type == "cuda" else None

    def run(self, l_net: np.ndarray) -> np.ndarray:
        n, _, h, w = l_net.shape
        per_call = n if self.pixels_per_call is None else max(1, self.pixels_per_call // (h * w))
        if per_call >= n:
            return self._run(l_net)
        return np.concatenate([self._run(l_net[i : i + per_call]) for i in range(0, n, per_call)])

    @torch.inference_mode()
    def _run(self, l_net: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(l_net, dtype=np.float32)).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp16":
            ab = self.model(x.half())
        elif self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                ab = self.model(x)
        else:
            ab = self.model(x)
        return ab.float().contiguous().cpu().numpy()
