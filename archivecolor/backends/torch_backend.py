"""PyTorch backend: CPU fp32 (or bf16), CUDA fp16 with channels_last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import BackendError
from ..weights import load_generator

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


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
        self.hint_channels = model.config.hint_channels  # 3: the model takes colour hints beside L
        self.channels_last = self.device.type == "cuda" or precision == "bf16"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # fp16 on CUDA: the whole network in half precision (BN folded into convs would be
        # next); bf16 on CPU: autocast keeps the numerically sensitive ops in fp32.
        self.model = model.half() if precision == "fp16" else model
        self.name = f"torch {self.device} {precision}"

    @torch.inference_mode()
    def run(self, l_net: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        x = self._tensor(l_net)
        h = None if hints is None else self._tensor(hints)
        if self.precision == "fp16":
            ab = self.model(x.half(), None if h is None else h.half())
        elif self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                ab = self.model(x, h)
        else:
            ab = self.model(x, h)
        return ab.float().contiguous().cpu().numpy()

    def _tensor(self, array: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
