"""ONNX Runtime backend: the exported generator on the CPU, or on CUDA where that provider exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import BackendError


class OnnxBackend:
    def __init__(self, source: Path, device: str = "auto", threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError('the onnx backend needs onnxruntime: pip install "archivecolor[onnx]"') from None
        from ..export import onnx_for

        model_path, meta = onnx_for(Path(source))
        available = ort.get_available_providers()
        want_cuda = device.startswith("cuda") or (device == "auto" and "CUDAExecutionProvider" in available)
        if want_cuda and "CUDAExecutionProvider" not in available:
            raise BackendError("--device cuda with the onnx backend needs onnxruntime-gpu (pip install onnxruntime-gpu)")
        providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: the pipelines' decode and encode threads
        # share these cores. Measured (bench.py pipelines' folder run, 2 cores): 0.91 -> 0.92 of
        # model-only, and model-only itself unchanged.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:  # a cluster actor uses the CPUs it was given, not every core of its node
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.size_multiple = int(meta["size_multiple"])
        self.name = f"onnxruntime {self.session.get_providers()[0]}"

    def run(self, l_net: np.ndarray) -> np.ndarray:
        (ab,) = self.session.run(None, {self.input_name: np.ascontiguousarray(l_net, dtype=np.float32)})
        return ab
