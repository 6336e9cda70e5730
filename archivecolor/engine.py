"""TensorRT FP16 engines from the exported ONNX, and the sidecar that says what an engine is for.

Written against TensorRT's documented Python API (10.x, and 11.x where the FP16 builder flag is
gone and networks are strongly typed). TensorRT cannot be installed on the machines this
project is built on: everything here that does not need it (profiles, sidecars, the checks
that refuse a foreign engine) is tested there, and the build's calls against a stand-in module
that implements just the documented ones (tests/tensorrt_standin.py); a real build and run only
where TensorRT and a CUDA GPU are present (`pytest -m tensorrt`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__
from .export import INPUT_NAME, OUTPUT_NAME, export_onnx
from .files import atomic_write_bytes, file_sha256

DEFAULT_ENGINE_DIR = Path("engines")
WORKSPACE_BYTES = 4 << 30  # builder scratch memory limit
TIMING_CACHE_NAME = "timing.cache"  # reused between builds on the same GPU and TensorRT
PARITY_MAX_DELTA_E = 1.0  # mean CIEDE2000 against PyTorch fp32 above this fails the build
PARITY_MAX_ABS_AB = 6.0  # Lab units: worst single-pixel a/b difference allowed


class EngineError(Exception):
    """An engine that cannot be built or used here; the message says why and what to do."""


@dataclass(frozen=True)
class EngineProfile:
    """The input shapes an engine accepts: batch and height/width ranges, with the shape it is tuned for."""

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    min_side: int = 64  # pixels, per dimension
    opt_height: int = 256  # the default render size, landscape 3:2 padded to 64
    opt_width: int = 384
    max_side: int = 704  # render size 256 at up to 2.75:1, padded

    def shapes(self) -> tuple[tuple, tuple, tuple]:
        return (
            (self.min_batch, 1, self.min_side, self.min_side),
            (self.opt_batch, 1, self.opt_height, self.opt_width),
            (self.max_batch, 1, self.max_side, self.max_side),
        )

    def accepts(self, shape: tuple[int, int, int, int]) -> bool:
        n, _, h, w = shape
        return n <= self.max_batch and all(self.min_side <= d <= self.max_side for d in (h, w))

    @classmethod
    def for_render_size(cls, render_size: int, multiple: int, opt_batch: int = 8, max_batch: int = 32, max_aspect: float = 2.75):
        def up(x):
            return -(-int(x) // multiple) * multiple

        return cls(min_batch=1, opt_batch=opt_batch, max_batch=max(max_batch, opt_batch), min_side=multiple,
                   opt_height=up(render_size), opt_width=up(render_size * 1.5), max_side=up(render_size * max_aspect))


def tensorrt_version() -> str | None:
    try:
        import tensorrt as trt
    except ImportError:
        return None
    return trt.__version__


def gpu_identity() -> tuple[str, str] | None:
    """(GPU name, compute capability "9.0"), or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}.{minor}"


def engine_name(weights_sha256: str, gpu: str, trt_version: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in gpu.lower()).strip("-")
    return f"{weights_sha256[:12]}-{slug}-trt{trt_version}-fp16.engine"


def sidecar_path(engine: Path) -> Path:
    return Path(str(engine) + ".json")


def check_compatible(sidecar: dict, *, weights_sha256: str, trt_version: str, gpu: tuple[str, str]) -> None:
    """Refuse an engine built for other weights, another TensorRT or another GPU, naming both values."""
    problems = []
    if sidecar.get("weights_sha256") != weights_sha256:
        problems.append(f"built from weights {str(sidecar.get('weights_sha256'))[:12]}…, these are {weights_sha256[:12]}…")
    if sidecar.get("tensorrt_version") != trt_version:
        problems.append(f"built with TensorRT {sidecar.get('tensorrt_version')}, this is TensorRT {trt_version}")
    if sidecar.get("compute_capability") != gpu[1] or sidecar.get("gpu_name") != gpu[0]:
        problems.append(f"built for {sidecar.get('gpu_name')} (sm {sidecar.get('compute_capability')}), this is {gpu[0]} (sm {gpu[1]})")
    if problems:
        raise EngineError("engine does not fit: " + "; ".join(problems) + ". Rebuild it here: archivecolor build-engine")


def read_sidecar(engine: Path) -> dict:
    path = sidecar_path(engine)
    if not path.exists():
        raise EngineError(f"{engine}: no sidecar {path.name}; rebuild with archivecolor build-engine")
    return json.loads(path.read_text())


def build_engine(onnx_path: Path, engine_path: Path, profile: EngineProfile, fp16_onnx_path: Path | None = None,
                 workspace_bytes: int = WORKSPACE_BYTES, timing_cache: Path | None = None) -> dict:
    """Build a serialized FP16 engine; returns build facts for the sidecar.

    TensorRT 10: parse the fp32 ONNX and set BuilderFlag.FP16 (TensorRT picks fp16 kernels
    where they are faster and keeps fp32 where a layer needs it). TensorRT 11 removed the flag:
    it builds strongly typed networks, so the precision comes from the ONNX itself: the FP16
    export (fp16 inside, fp32 input and output).
    """
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError('TensorRT is not installed: pip install "archivecolor[tensorrt]" on a machine with an NVIDIA GPU') from None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = not hasattr(trt.BuilderFlag, "FP16")
    if strongly_typed:
        if fp16_onnx_path is None:
            raise EngineError("this TensorRT builds strongly typed networks and needs the FP16 ONNX export")
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        source = fp16_onnx_path
    else:
        flags = 0  # explicit batch is the only mode since TensorRT 10
        source = onnx_path
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(source).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT could not parse {source}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(INPUT_NAME, *profile.shapes())
    config.add_optimization_profile(trt_profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)  # positional: the binding's keyword name is not documented; False = refuse a cache from another device
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError("TensorRT failed to build the engine (see its messages above)")
    atomic_write_bytes(engine_path, bytes(serialized))
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return {"build_seconds": round(time.perf_counter() - started, 1), "strongly_typed": strongly_typed, "onnx": Path(source).name}


def write_sidecar(engine_path: Path, facts: dict) -> None:
    atomic_write_bytes(sidecar_path(engine_path), json.dumps(facts, indent=1).encode())


def sidecar_facts(weights: Path, profile: EngineProfile, gpu: tuple[str, str], trt_version: str, build: dict, parity: dict | None) -> dict:
    return {
        "format": "archivecolor.engine",
        "archivecolor_version": __version__,
        "weights_sha256": file_sha256(weights),
        "tensorrt_version": trt_version,
        "gpu_name": gpu[0],
        "compute_capability": gpu[1],
        "precision": "fp16",
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "profile": asdict(profile),
        "build": build,
        "parity": parity,
    }


def export_for_engine(weights: Path, out_dir: Path) -> tuple[Path, Path, dict]:
    """The fp32 ONNX (the onnx backend's input, TensorRT 10's source) and the FP16 one (TensorRT 11's)."""
    sha = file_sha256(weights)
    fp32 = out_dir / f"{sha[:12]}.onnx"
    fp16 = out_dir / f"{sha[:12]}-fp16.onnx"
    meta = export_onnx(weights, fp32)
    export_onnx(weights, fp16, half=True)
    return fp32, fp16, meta


def sample_inputs(profile: EngineProfile, count: int = 4, seed: int = 0):
    """Smooth random L fields at the profile's opt shape: closer to photos than white noise."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    planes = []
    for _ in range(count):
        noise = rng.normal(size=(profile.opt_height, profile.opt_width)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 6)
        smooth = (smooth - smooth.min()) / max(1e-6, float(smooth.max() - smooth.min()))
        planes.append(smooth * 2 - 1)
    return np.stack(planes)[:, None]


def parity(candidate, reference, l_net) -> dict:
    """Difference of a backend from the PyTorch fp32 reference, in Lab units: mean CIEDE2000 and max |Δab|."""
    import numpy as np

    from .lab import denormalize_ab, denormalize_l
    from .metrics import ciede2000

    got, want = candidate.run(l_net), reference.run(l_net)
    L = denormalize_l(l_net[:, 0])
    lab_got = np.stack([L, *denormalize_ab(got).transpose(1, 0, 2, 3)], axis=-1)
    lab_want = np.stack([L, *denormalize_ab(want).transpose(1, 0, 2, 3)], axis=-1)
    return {"mean_delta_e2000": float(ciede2000(lab_got, lab_want).mean()),
            "max_abs_ab": float(np.abs(denormalize_ab(got - want)).max())}


def parity_passes(figures: dict) -> bool:
    return figures["mean_delta_e2000"] <= PARITY_MAX_DELTA_E and figures["max_abs_ab"] <= PARITY_MAX_ABS_AB
