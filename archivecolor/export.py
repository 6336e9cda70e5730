"""ONNX export of the generator (eval mode, dynamic batch/height/width), self-describing.

The ONNX file carries the generator config, the source weights' SHA-256 and the L/ab scaling
in its metadata, so a runtime never needs flags repeated.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

from .lab import AB_SCALE
from .files import atomic_write_bytes, file_sha256
from .weights import load_generator

ONNX_OPSET = 17  # TensorRT 10's parser and onnxruntime both take it
INPUT_NAME, HINTS_NAME, OUTPUT_NAME = "l", "hints", "ab"
# Part of a cached export's name, with the weights' hash: raise it whenever the exported graph changes
# for the same weights (2: the classifying head's softmax over the last axis), so an upgrade never runs
# an export made by the code before it.
GRAPH_REVISION = 2


def _inputs_only(generator):
    """The generator with the export's inputs as its only arguments. The exporter fills in a
    forward's missing defaults and traces them as tensors: `with_logits=False` became one, and
    every first run printed a TracerWarning for a flag the graph never uses."""
    import torch

    class InputsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.generator = inner

        def forward(self, l_net, hints=None):
            return self.generator(l_net, hints)

    return InputsOnly(generator).eval()


def _half_inside(generator):
    """fp32 in and out, fp16 inside: the FP16 ONNX a strongly typed TensorRT (11+) builds from.

    BatchNorm runs in eval mode on running statistics, so it folds into the convolutions and
    needs no fp32 island; the input normalisation and the tanh output stay exact in fp32.
    (Defined here, not at import: the onnxruntime path reads cached exports without torch.)
    """
    import torch

    class HalfInside(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.generator = inner.half()

        def forward(self, l_net, hints=None):
            return self.generator(l_net.half(), None if hints is None else hints.half()).float()

    return HalfInside(generator)


def export_onnx(weights: Path, out: Path, opset: int = ONNX_OPSET, half: bool = False, hints: bool = False) -> dict:
    """Export `weights` to `out` (atomically) and return the metadata written into it.

    half=True writes fp16 weights and arithmetic with fp32 input and output. hints=True (a model
    trained with hints) adds a second input, "hints" (N, 3, H, W); without it hints are zeros inside.
    """
    import onnx
    import torch

    generator = load_generator(weights).eval()
    config = generator.config
    module = _half_inside(generator).eval() if half else _inputs_only(generator)
    if hints and not config.hint_channels:
        raise ValueError(f"{weights}: this model was not trained with colour hints")
    side = config.size_multiple * 2
    probe = (torch.zeros(1, 1, side, side),) + ((torch.zeros(1, config.hint_channels, side, side),) if hints else ())
    names = [INPUT_NAME] + ([HINTS_NAME] if hints else [])
    buf = io.BytesIO()
    # The TorchScript exporter: stable for this plain conv net and needs no onnxscript; its
    # deprecation notice is not for users of archivecolor.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # the exporter's notes on constant folding, not for users
        torch.onnx.export(
            module, probe, buf, dynamo=False, opset_version=opset,
            input_names=names, output_names=[OUTPUT_NAME],
            dynamic_axes={name: {0: "batch", 2: "height", 3: "width"} for name in names + [OUTPUT_NAME]},
        )
    model = onnx.load_from_string(buf.getvalue())
    meta = {
        "format": "archivecolor.generator.onnx",
        "generator_config": json.dumps(config.to_dict()),
        "size_multiple": str(config.size_multiple),
        "ab_scale": str(AB_SCALE),
        "weights_sha256": file_sha256(weights),
        "precision": "fp16" if half else "fp32",
        "inputs": ",".join(names),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    atomic_write_bytes(Path(out), model.SerializeToString())
    return meta


def onnx_parity(weights: Path, onnx_path: Path, shapes=((1, 64, 64), (2, 128, 192), (3, 256, 256)), seed: int = 0) -> dict:
    """Run the ONNX file in onnxruntime (CPU) and PyTorch fp32 on the same random L; max |Δab| per shape.

    Returns {"max_abs_ab": worst over shapes (network units), "max_abs_ab_lab": the same in Lab units,
    "shapes": {"NxHxW": max |Δab|}}.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    generator = load_generator(weights).eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    per_shape = {}
    for n, h, w in shapes:
        x = rng.uniform(-1, 1, (n, 1, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = generator(torch.from_numpy(x)).numpy()
        (got,) = session.run(None, {INPUT_NAME: x})
        per_shape[f"{n}x{h}x{w}"] = float(np.abs(got - ref).max())
    worst = max(per_shape.values())
    return {"max_abs_ab": worst, "max_abs_ab_lab": worst * AB_SCALE, "shapes": per_shape}


def read_onnx_metadata(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("format") != "archivecolor.generator.onnx":
        raise ValueError(f"{path}: not an archivecolor ONNX generator")
    return meta


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "archivecolor" / "onnx"


def onnx_for(source: Path, hints: bool = False) -> tuple[Path, dict]:
    """An ONNX file for `source`: itself if it is one, else an export cached by the weights' hash and
    GRAPH_REVISION (with `hints`, the export that takes them as a second input)."""
    source = Path(source)
    if source.suffix == ".onnx":
        if hints:
            raise ValueError(f"{source}: colour hints need the .safetensors weights (an .onnx file takes L alone)")
        return source, read_onnx_metadata(source)
    name = f"{file_sha256(source)[:16]}-g{GRAPH_REVISION}{'-hints' if hints else ''}.onnx"
    cached = cache_dir() / name
    if cached.exists():
        return cached, read_onnx_metadata(cached)
    try:
        return cached, export_onnx(source, cached, hints=hints)
    except OSError:  # a read-only home: export next to the other temporary files instead
        import tempfile

        fallback = Path(tempfile.gettempdir()) / "archivecolor-onnx" / name
        return fallback, export_onnx(source, fallback, hints=hints)
