"""ONNX Runtime backend: the exported generator on the CPU, or on CUDA where that provider exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import BackendError

# Network pixels (batch × height × width) per onnxruntime call on a CPU. Measured (2 cores,
# width-32 model): 512×768 inputs run at 4.4 / 4.2 / 4.0 img/s at batch 1 / 2 / 4 (≤ 1.6 M
# pixels) and fall to 1.6 img/s at batch 8 (3.1 M); 384×576 at batch 8 (1.8 M) keeps 7.9.
# Larger batches are split into calls under this budget; on a GPU they are not.
CPU_PIXELS_PER_CALL = 2_000_000


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
        self.hint_channels = int(json.loads(meta["generator_config"]).get("hint_channels", 0))
        self._source, self._options, self._providers, self._hint_session = Path(source), options, providers, None
        self.name = f"onnxruntime {self.session.get_providers()[0]}"
        self.pixels_per_call = CPU_PIXELS_PER_CALL if self.session.get_providers()[0] == "CPUExecutionProvider" else None

    def run(self, l_net: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, H, W) L (and (N, 3, H, W) hints) in, (N, 2, H, W) ab out; on a CPU in calls of at
        most pixels_per_call. Hints run on a second export that takes them, made when first needed."""
        inputs = {self.input_name: np.ascontiguousarray(l_net, dtype=np.float32)}
        session = self.session
        if hints is not None:
            session = self._hints_session()
            inputs["hints"] = np.ascontiguousarray(hints, dtype=np.float32)
        n, _, h, w = l_net.shape
        step = n if self.pixels_per_call is None else max(1, self.pixels_per_call // (h * w))
        if step >= n:
            return session.run(None, inputs)[0]
        return np.concatenate([session.run(None, {k: v[i : i + step] for k, v in inputs.items()})[0] for i in range(0, n, step)])

    def _hints_session(self):
        import onnxruntime as ort

        from ..export import onnx_for

        if self._hint_session is None:
            if not self.hint_channels:
                raise BackendError("this model was not trained with colour hints")
            path, _ = onnx_for(self._source, hints=True)
            self._hint_session = ort.InferenceSession(str(path), sess_options=self._options, providers=self._providers)
        return self._hint_session
