"""build-engine: ONNX export and parity here; TensorRT's own build only where it is installed."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from archivecolor.backends import open_backend
from archivecolor.cli import main
from archivecolor.engine import (
    EngineError,
    EngineProfile,
    build_engine,
    check_compatible,
    engine_name,
    gpu_identity,
    parity,
    parity_passes,
    sample_inputs,
    tensorrt_version,
)
from archivecolor.export import export_onnx, onnx_parity, read_onnx_metadata


def test_onnx_export_is_checked_dynamic_and_self_describing(tiny_weights, tmp_path):
    path = tmp_path / "g.onnx"
    meta = export_onnx(tiny_weights, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    assert read_onnx_metadata(path)["weights_sha256"] == meta["weights_sha256"]
    figures = onnx_parity(tiny_weights, path)
    assert figures["max_abs_ab"] < 1e-5 and len(figures["shapes"]) == 3


def test_fp16_onnx_keeps_fp32_input_and_output_and_stays_close(tiny_weights, tmp_path):
    path = tmp_path / "g16.onnx"
    export_onnx(tiny_weights, path, half=True)
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    assert onnx_parity(tiny_weights, path)["max_abs_ab_lab"] < 1.0


def test_profile_covers_the_render_size_and_refuses_what_it_cannot_run():
    profile = EngineProfile.for_render_size(256, 64)
    lo, opt, hi = profile.shapes()
    assert lo == (1, 1, 64, 64) and opt == (8, 1, 256, 384) and hi == (32, 1, 704, 704)
    assert profile.accepts((8, 1, 256, 640)) and not profile.accepts((8, 1, 256, 768)) and not profile.accepts((33, 1, 256, 256))


def test_sidecar_check_refuses_other_weights_tensorrt_or_gpu_naming_both():
    sidecar = {"weights_sha256": "a" * 64, "tensorrt_version": "10.3.0", "gpu_name": "NVIDIA H100", "compute_capability": "9.0"}
    check_compatible(sidecar, weights_sha256="a" * 64, trt_version="10.3.0", gpu=("NVIDIA H100", "9.0"))
    with pytest.raises(EngineError, match="bbbbbbbbbbbb.*rebuild|Rebuild") as info:
        check_compatible(sidecar, weights_sha256="b" * 64, trt_version="10.3.0", gpu=("NVIDIA H100", "9.0"))
    assert "aaaaaaaaaaaa" in str(info.value)
    with pytest.raises(EngineError, match="TensorRT 10.3.0, this is TensorRT 11.0"):
        check_compatible(sidecar, weights_sha256="a" * 64, trt_version="11.0", gpu=("NVIDIA H100", "9.0"))
    with pytest.raises(EngineError, match="NVIDIA H100 .sm 9.0., this is NVIDIA L4 .sm 8.9."):
        check_compatible(sidecar, weights_sha256="a" * 64, trt_version="10.3.0", gpu=("NVIDIA L4", "8.9"))


def test_engine_name_says_weights_gpu_and_version():
    assert engine_name("0123456789abcdef" * 4, "NVIDIA H100 80GB HBM3", "10.3.0") == "0123456789ab-nvidia-h100-80gb-hbm3-trt10.3.0-fp16.engine"


def test_parity_figures_are_zero_against_itself_and_fail_when_off(tiny_weights):
    torch_backend = open_backend("torch", tiny_weights, device="cpu").backend
    profile = EngineProfile(opt_height=64, opt_width=96)
    x = sample_inputs(profile, count=2)
    same = parity(torch_backend, torch_backend, x)
    assert same["mean_delta_e2000"] == 0 and parity_passes(same)

    class Shifted:
        def run(self, l_net):
            return torch_backend.run(l_net) + 0.2  # 22 Lab units off

    off = parity(Shifted(), torch_backend, x)
    assert off["max_abs_ab"] == pytest.approx(22.0, abs=0.01) and not parity_passes(off)


@pytest.mark.skipif(tensorrt_version() is not None, reason="TensorRT is installed here")
def test_without_tensorrt_build_engine_writes_onnx_and_says_what_is_missing(tiny_weights, tmp_path):
    result = CliRunner().invoke(main, ["build-engine", "--weights", str(tiny_weights), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    assert "engine not built" in result.output and "TensorRT" in result.output
    assert "optional: `--backend auto` already runs onnxruntime on a CPU" in " ".join(result.output.split())
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        build_engine(next(tmp_path.glob("*.onnx")), tmp_path / "x.engine", EngineProfile())
    # the exported file runs in the onnx backend
    onnx_file = sorted(tmp_path.glob("*.onnx"))[-1]
    backend = open_backend("onnx", onnx_file).backend
    assert backend.run(np.zeros((1, 1, 32, 32), np.float32)).shape == (1, 2, 32, 32)


@pytest.mark.tensorrt
def test_tensorrt_engine_builds_verifies_and_runs(tiny_weights, tmp_path):
    if tensorrt_version() is None or gpu_identity() is None:
        pytest.skip("needs TensorRT and a CUDA GPU")
    result = CliRunner().invoke(main, ["build-engine", "--weights", str(tiny_weights), "--out", str(tmp_path), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    engine = next(tmp_path.glob("*.engine"))
    sidecar = json.loads((tmp_path / (engine.name + ".json")).read_text())
    assert sidecar["parity"]["mean_delta_e2000"] < 1.0
    choice = open_backend("tensorrt", tiny_weights, engine=engine)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 64, 96)).astype(np.float32)
    reference = open_backend("torch", tiny_weights, device="cpu", precision="fp32").backend.run(x)
    assert np.abs(choice.backend.run(x) - reference).max() * 110 < 6.0


# --- the TensorRT path against a stand-in (tests/tensorrt_standin.py: what it cannot prove is said there) ---


def _standin(monkeypatch, version="10.3.0", fail_build=False):
    import sys

    from tensorrt_standin import make

    trt = make(version, fail_build)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("archivecolor.engine.gpu_identity", lambda: ("Stand-in GPU", "9.0"))
    return trt


@pytest.mark.parametrize("version", ["10.3.0", "11.0.0"])
def test_build_engine_makes_the_documented_calls_and_reuses_its_timing_cache(tiny_weights, tmp_path, monkeypatch, version):
    """TensorRT 10: the fp32 ONNX with BuilderFlag.FP16; 11 (no such flag): the FP16 ONNX,
    strongly typed. Both: the workspace limit, one profile on the input covering the render
    size, the timing cache created from the last build's and written back; the sidecar says
    what the engine is for."""
    trt = _standin(monkeypatch, version)
    args = ["build-engine", "--weights", str(tiny_weights), "--out", str(tmp_path), "--render-size", "64", "--no-verify",
            "--workspace-gb", "0.5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (engine,) = tmp_path.glob("*.engine")
    assert engine.name.endswith(f"-stand-in-gpu-trt{version}-fp16.engine")
    record = json.loads(engine.read_bytes())
    calls = [c[0] for c in trt.calls]
    assert calls == ["create_network", "parse", "workspace", *(["set_flag"] if version.startswith("10") else []), "set_shape",
                     "create_timing_cache", "set_timing_cache", "build"]
    assert set(trt.calls[1][1]["input_types"].values()) == {onnx.TensorProto.FLOAT}  # fp32 in, whichever export
    if version.startswith("10"):
        assert record["flags"] == ["FP16"] and not record["strongly_typed"]
        assert not trt.calls[1][1]["fp16_inside"]  # the fp32 export, fp16 chosen by the builder
    else:
        assert record["flags"] == [] and record["strongly_typed"]
        assert trt.calls[1][1]["fp16_inside"]  # the FP16 export: precision from the graph
    assert ("workspace", 1 << 29) in trt.calls
    (name, (minimum, opt, maximum)), = [c[1:] for c in trt.calls if c[0] == "set_shape"]
    assert name == "l" and minimum[0] == 1 and opt == (8, 1, 64, 96) and maximum[0] == 32
    assert ("create_timing_cache", b"") in trt.calls and ("set_timing_cache", False) in trt.calls
    assert (tmp_path / "timing.cache").read_bytes() == b"+tuned"
    sidecar = json.loads((tmp_path / (engine.name + ".json")).read_text())
    assert sidecar["tensorrt_version"] == version and sidecar["gpu_name"] == "Stand-in GPU" and sidecar["parity"] is None
    assert sidecar["profile"]["opt_height"] == 64 and sidecar["build"]["strongly_typed"] == version.startswith("11")
    trt.calls.clear()
    assert CliRunner().invoke(main, args).exit_code == 0
    assert ("create_timing_cache", b"+tuned") in trt.calls  # the next build starts from the cache


def test_a_failed_build_or_parity_check_leaves_no_engine_behind(tiny_weights, tmp_path, monkeypatch):
    _standin(monkeypatch, fail_build=True)
    args = ["build-engine", "--weights", str(tiny_weights), "--out", str(tmp_path), "--render-size", "64"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "TensorRT failed to build the engine" in result.output
    assert not list(tmp_path.glob("*.engine*"))
    _standin(monkeypatch)

    class Backend:  # what --verify compares: an "engine" 22 Lab units off the fp32 reference
        def __init__(self, *args, **kwargs):
            self.offset = 0.2 if not kwargs else 0.0

        def run(self, l_net):
            return np.zeros((len(l_net), 2, *l_net.shape[2:]), np.float32) + self.offset

    monkeypatch.setattr("archivecolor.backends.tensorrt_backend.TensorRTBackend", Backend)
    monkeypatch.setattr("archivecolor.backends.torch_backend.TorchBackend", Backend)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "engine parity failed" in result.output
    assert not list(tmp_path.glob("*.engine*"))  # neither the engine nor its sidecar


def test_auto_on_a_gpu_falls_back_to_torch_when_the_engine_is_refused_saying_why(tiny_weights, tmp_path, monkeypatch):
    """An engine built for other weights is refused by its sidecar, and `auto` takes torch on
    the GPU instead, naming the reason (torch's CUDA side is stood in for: no GPU here)."""
    from archivecolor import backends
    from archivecolor.engine import sidecar_facts, write_sidecar

    trt = _standin(monkeypatch)
    monkeypatch.setattr("archivecolor.backends.tensorrt_backend.gpu_identity", lambda: ("Stand-in GPU", "9.0"))
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    monkeypatch.setattr(backends, "_importable", lambda module: True)
    opened = []

    class CudaTorch:
        name, size_multiple, hint_channels = "torch cuda:0 fp16 (stand-in)", 32, 0

        def __init__(self, source, device, precision, threads):
            opened.append(device)

        def run(self, l_net, hints=None):
            return np.zeros((len(l_net), 2, *l_net.shape[2:]), np.float32)

    monkeypatch.setattr("archivecolor.backends.torch_backend.TorchBackend", CudaTorch)
    engine = tmp_path / "other.engine"
    engine.write_bytes(b"{}")
    write_sidecar(engine, {**sidecar_facts(tiny_weights, EngineProfile(), ("Stand-in GPU", "9.0"), trt.__version__, {}, None),
                           "weights_sha256": "0" * 64})
    choice = open_backend("auto", tiny_weights, engine=engine)
    assert opened == ["cuda"] and choice.backend.name.startswith("torch cuda")
    assert "no TensorRT: engine does not fit: built from weights 000000000000" in choice.reason
