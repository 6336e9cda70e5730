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
from .weights import atomic_write_bytes, file_sha256, load_generator

ONNX_OPSET = 17  # TensorRT 10's parser and onnxruntime both take it
INPUT_NAME, OUTPUT_NAME = "l", "ab"


def export_onnx(weights: Path, out: Path, opset: int = ONNX_OPSET) -> dict:
    """Export `weights` to `out` (atomically) and return the metadata written into it."""
    import onnx
    import torch

    generator = load_generator(weights).eval()
    config = generator.config
    probe = torch.zeros(1, 1, config.size_multiple * 2, config.size_multiple * 2)
    buf = io.BytesIO()
    # The TorchScript exporter: stable for this plain conv net and needs no onnxscript; its
    # deprecation notice is not for users of archivecolor.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            generator, (probe,), buf, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
        )
    model = onnx.load_from_string(buf.getvalue())
    meta = {
        "format": "archivecolor.generator.onnx",
        "generator_config": json.dumps(config.to_dict()),
        "size_multiple": str(config.size_multiple),
        "ab_scale": str(AB_SCALE),
        "weights_sha256": file_sha256(weights),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    atomic_write_bytes(Path(out), model.SerializeToString())
    return meta


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


def onnx_for(source: Path) -> tuple[Path, dict]:
    """An ONNX file for `source`: itself if it is one, else an export cached by the weights' hash."""
    source = Path(source)
    if source.suffix == ".onnx":
        return source, read_onnx_metadata(source)
    name = f"{file_sha256(source)[:16]}.onnx"
    cached = cache_dir() / name
    if cached.exists():
        return cached, read_onnx_metadata(cached)
    try:
        return cached, export_onnx(source, cached)
    except OSError:  # a read-only home: export next to the other temporary files instead
        import tempfile

        fallback = Path(tempfile.gettempdir()) / "archivecolor-onnx" / name
        return fallback, export_onnx(source, fallback)
