"""TensorRT backend: a built FP16 engine fed from and into torch CUDA tensors on a CUDA stream.

No CUDA Python dependency: torch owns the memory and the stream; TensorRT gets raw pointers.
Refuses (clear message, with the fix) an engine built for other weights, another TensorRT
or another GPU. Not run by this project on a GPU yet: see the README.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import BackendError
from ..engine import DEFAULT_ENGINE_DIR, EngineError, EngineProfile, check_compatible, engine_name, gpu_identity, read_sidecar
from ..export import INPUT_NAME, OUTPUT_NAME
from ..netconfig import GeneratorConfig
from ..files import file_sha256
from ..weights import read_metadata


class TensorRTBackend:
    def __init__(self, weights: Path, engine: Path | None = None):
        try:
            import tensorrt as trt
        except ImportError:
            raise BackendError('TensorRT is not installed: pip install "archivecolor[tensorrt]" (NVIDIA GPU needed), or use --backend torch') from None
        import torch

        gpu = gpu_identity()
        if gpu is None:
            raise BackendError("the TensorRT backend needs a CUDA GPU; torch sees none")
        sha = file_sha256(weights)
        engine = Path(engine) if engine else DEFAULT_ENGINE_DIR / engine_name(sha, gpu[0], trt.__version__)
        if not engine.exists():
            raise BackendError(f"no engine at {engine}: build one with `archivecolor build-engine`")
        try:
            sidecar = read_sidecar(engine)
            check_compatible(sidecar, weights_sha256=sha, trt_version=trt.__version__, gpu=gpu)
        except EngineError as exc:
            raise BackendError(str(exc)) from None
        self.profile = EngineProfile(**sidecar["profile"])
        self.size_multiple = GeneratorConfig.from_dict(json.loads(read_metadata(weights)["generator_config"])).size_multiple
        self._torch = torch
        self.device = torch.device("cuda")
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine.read_bytes())
        if self.engine is None:
            raise BackendError(f"{engine}: TensorRT could not load it; rebuild with `archivecolor build-engine`")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.name = f"tensorrt {trt.__version__} fp16 ({gpu[0]})"

    hint_channels = 0  # an engine is built from the L-only export: colour hints need the torch or onnx backend

    def run(self, l_net: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        if hints is not None:
            raise BackendError("colour hints run on the torch or onnx backend, not on a TensorRT engine (built for L alone)")
        torch = self._torch
        results = []
        for start in range(0, len(l_net), self.profile.max_batch):
            chunk = l_net[start : start + self.profile.max_batch]
            if not self.profile.accepts(chunk.shape):
                raise BackendError(f"input {chunk.shape[2]}×{chunk.shape[3]} is outside the engine's profile "
                                   f"({self.profile.min_side}–{self.profile.max_side} px a side): rebuild with a larger --max-aspect or use --backend torch")
            n = len(chunk)
            batch = max(n, self.profile.min_batch)  # pad up to the profile's smallest batch
            x = torch.zeros((batch, 1, *chunk.shape[2:]), dtype=torch.float32, device=self.device)
            x[:n] = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(self.device, non_blocking=True)
            y = torch.empty((batch, 2, *chunk.shape[2:]), dtype=torch.float32, device=self.device)
            self.stream.wait_stream(torch.cuda.current_stream())
            self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
            self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
            self.context.set_tensor_address(OUTPUT_NAME, y.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT failed to run the engine")
            self.stream.synchronize()
            results.append(y[:n].cpu().numpy())
        return np.concatenate(results)
