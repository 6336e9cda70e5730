"""Self-describing generator weights: safetensors tensors + the config in the metadata.

safetensors stores raw tensors and a JSON header, so loading never unpickles anything:
a weights file from a stranger cannot run code. The header carries the generator config
and the L/ab scaling, so loading never needs flags repeated. Reading a header needs no torch
(read_metadata, read_config); building the network does, and imports it then.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

from .files import atomic_write_bytes, file_sha256
from .lab import AB_SCALE, L_MAX
from .netconfig import GeneratorConfig

if TYPE_CHECKING:
    import torch

FORMAT = "archivecolor.generator"
FORMAT_VERSION = "1"
DEFAULT_WEIGHTS_NAME = "default.safetensors"


class WeightsError(Exception):
    """A weights file that is missing, unreadable or not an archivecolor generator."""


def save_generator(path: Path, generator: "torch.nn.Module", *, dtype: "torch.dtype | None" = None, info: dict | None = None) -> None:
    """Save `generator` (its state and config) as a safetensors file, atomically (float32 unless `dtype`)."""
    import torch

    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    # Floating tensors in the requested storage dtype; integer buffers (BN's counter) stay as they are.
    tensors = {k: (v.to(dtype or torch.float32) if v.is_floating_point() else v) for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator_config": json.dumps(generator.config.to_dict()),
        "normalization": json.dumps({"l": f"L/{L_MAX / 2:g} - 1", "ab": f"ab/{AB_SCALE:g}", "ab_scale": AB_SCALE}),
        "info": json.dumps(info or {}),
    }
    atomic_write_bytes(Path(path), save(tensors, metadata=metadata))


def read_metadata(path: Path) -> dict:
    """The metadata header of a weights file, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch needed
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file") from None
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise WeightsError(f"{path}: not a safetensors file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an archivecolor generator (format {meta.get('format')!r})")
    return meta


def read_config(path: Path) -> GeneratorConfig:
    """The generator config a weights file names, checked (fields, types, size bounds) before anything is built."""
    meta = read_metadata(path)
    try:
        scale = json.loads(meta.get("normalization", "{}")).get("ab_scale", AB_SCALE)
        raw = json.loads(meta["generator_config"])
        if not isinstance(raw, dict):
            raise TypeError("generator_config is not a JSON object")
        config = GeneratorConfig.from_dict(raw)
    except KeyError as exc:
        raise WeightsError(f"{path}: its header has no {exc} entry") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{path}: its header's generator config is not valid ({exc})") from None
    if float(scale) != AB_SCALE:
        raise WeightsError(f"{path}: trained with ab scale {scale}, this archivecolor uses {AB_SCALE}")
    return config


def load_generator(path: Path, device: "str | torch.device" = "cpu") -> "torch.nn.Module":
    """Build the generator its file describes, load the tensors in float32, eval mode.

    Refused with a WeightsError naming the file: a config out of bounds or not matching the
    tensors' shapes (checked before the network is built), and tensors that are not all finite
    (NaN or Inf weights colour every picture white).
    """
    import torch
    from safetensors.torch import load_file

    from .nets import build_generator

    config = read_config(path)
    state = load_file(str(path))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"{path}: tensor {name} holds NaN or infinite values; these weights are damaged")
    expected = _expected_shapes(config)
    for name, shape in expected.items():
        if name not in state:
            raise WeightsError(f"{path}: tensor {name} is missing for the network its config describes")
        if tuple(state[name].shape) != shape:
            raise WeightsError(f"{path}: tensor {name} has shape {tuple(state[name].shape)}, its config needs {shape}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise WeightsError(f"{path}: tensor {extra[0]} is not part of the network its config describes")
    generator = build_generator(config)
    generator.load_state_dict(state)
    return generator.to(device).eval()


def _expected_shapes(config: GeneratorConfig) -> dict[str, tuple]:
    """Tensor names and shapes of the network `config` describes, without allocating it (meta device)."""
    import torch

    from .nets import build_generator

    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build_generator(config).state_dict().items()}


def average_generators(paths: list[Path]) -> "torch.nn.Module":
    """One generator whose every weight is the mean over `paths` (epochs of one run), as in SWA.

    BatchNorm's running statistics are averaged too (on the default run this scored the same
    as re-estimating them on training photos, and needs no data); step counters come from the
    last file. Measured on the default run: the mean of epochs 13-17 scored higher PSNR and lower
    CIEDE2000 than any one epoch, but mostly by being less colourful; compare candidates at
    equal colourfulness (`archivecolor evaluate --chroma-gain`) before preferring the mean.
    """
    import torch

    from .nets import build_generator

    if not paths:
        raise WeightsError("nothing to average: no weights files given")
    generators = [load_generator(Path(p)) for p in paths]
    config = generators[0].config
    for path, generator in zip(paths, generators):
        if generator.config != config:
            raise WeightsError(f"{path}: a different network ({generator.config.to_dict()}) than {paths[0]} ({config.to_dict()})")
    states = [g.state_dict() for g in generators]
    mean = {
        name: (torch.stack([s[name] for s in states]).mean(0) if tensor.is_floating_point() else states[-1][name])
        for name, tensor in states[0].items()
    }
    averaged = build_generator(config)
    averaged.load_state_dict(mean)
    return averaged.eval()


def describe(path: Path) -> dict:
    """What a weights file is, for the record of what made an archive's colours: its name and
    SHA-256, the network, and the recipe it names."""
    config, info = read_config(path), json.loads(read_metadata(path).get("info", "{}") or "{}")
    default = default_weights_path()
    return {"weights": "default" if default is not None and Path(path).resolve() == default.resolve() else str(path),
            "weights_sha256": file_sha256(path), "encoder": config.encoder, "hint_channels": config.hint_channels,
            "chroma_gain": config.chroma_gain, "recipe": info.get("recipe")}


def default_weights_path() -> Path | None:
    """The generator shipped inside the package, or None if this build carries none."""
    candidate = resources.files("archivecolor").joinpath("models", DEFAULT_WEIGHTS_NAME)
    path = Path(str(candidate))
    return path if path.is_file() else None


def resolve_weights(path: Path | None) -> Path:
    """`path` if given, else the packaged default; a clear error if neither exists."""
    if path is not None:
        return Path(path)
    default = default_weights_path()
    if default is None:
        raise WeightsError(
            "no weights given and this installation carries no default model: "
            "pass --weights FILE (a .safetensors file written by `archivecolor train`)"
        )
    return default
