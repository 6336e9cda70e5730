import numpy as np
import pytest

from archivecolor.backends import BackendError, open_backend
from archivecolor.colorizer import Colorizer


def test_torch_and_onnx_agree_on_several_shapes(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch_backend = open_backend("torch", tiny_weights, device="cpu").backend
    onnx_backend = open_backend("onnx", tiny_weights, device="cpu").backend
    assert "onnxruntime" in onnx_backend.name and onnx_backend.size_multiple == 16
    rng = np.random.default_rng(0)
    for shape in [(1, 1, 32, 32), (3, 1, 48, 80), (2, 1, 96, 16)]:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        a, b = torch_backend.run(x), onnx_backend.run(x)
        assert a.shape == (shape[0], 2, *shape[2:])
        assert np.abs(a - b).max() < 1e-5


def test_onnx_on_a_cpu_splits_big_batches_and_returns_the_same(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    backend = open_backend("onnx", tiny_weights, device="cpu").backend
    x = np.random.default_rng(1).uniform(-1, 1, (5, 1, 48, 64)).astype(np.float32)
    whole = backend.run(x)
    calls = []
    real_run = backend.session.run
    monkeypatch.setattr(backend.session, "run", lambda out, feed: calls.append(len(feed[backend.input_name])) or real_run(out, feed))
    monkeypatch.setattr(backend, "pixels_per_call", 2 * 48 * 64)  # two pictures a call
    split = backend.run(x)
    assert calls == [2, 2, 1]
    assert np.abs(split - whole).max() < 1e-6


def test_auto_on_a_cpu_machine_says_what_it_picked(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    choice = open_backend("auto", tiny_weights, device="cpu")
    assert choice.backend.name.startswith("onnxruntime")
    assert "onnxruntime" in choice.reason
    bf16 = open_backend("auto", tiny_weights, device="cpu", precision="bf16")
    assert bf16.backend.name == "torch cpu bf16"


def test_bf16_on_cpu_stays_close_to_fp32(tiny_weights):
    fp32 = open_backend("torch", tiny_weights, device="cpu", precision="fp32").backend
    bf16 = open_backend("torch", tiny_weights, device="cpu", precision="bf16").backend
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1, 64, 64)).astype(np.float32)
    assert np.abs(fp32.run(x) - bf16.run(x)).max() < 0.05


@pytest.mark.parametrize("avx512_bf16, amx, warned", [(False, False, True), (True, False, False), (False, True, False)])
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_against(avx512_bf16, amx, warned, colour_folder, tiny_weights, tmp_path,
                                                                   monkeypatch):
    """Emulated bf16 ran 1.8-3.5x slower than fp32 on such a CPU: a user who asks for it must hear so."""
    import torch
    from click.testing import CliRunner

    from archivecolor.backends import bf16_emulated_warning
    from archivecolor.cli import main

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert (bf16_emulated_warning("cpu") is not None) == warned
    assert bf16_emulated_warning("cuda") is None
    result = CliRunner().invoke(main, ["folder", str(colour_folder), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights),
                                       "--backend", "torch", "--device", "cpu", "--precision", "bf16", "--render-size", "32"])
    assert result.exit_code == 0, result.output
    assert ("no bfloat16 instructions" in result.output) == warned


def test_bf16_warning_stays_quiet_where_torch_cannot_tell(monkeypatch):
    import torch

    from archivecolor.backends import bf16_emulated_warning

    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert bf16_emulated_warning("cpu") is None


def test_fp16_on_cpu_and_tensorrt_are_refused_clearly(tiny_weights):
    with pytest.raises(BackendError, match="CUDA"):
        open_backend("torch", tiny_weights, device="cpu", precision="fp16")
    with pytest.raises(BackendError, match="TensorRT|CUDA"):
        open_backend("tensorrt", tiny_weights)


def test_colorizer_batches_mixed_sizes_and_matches_one_by_one(tiny_weights):
    backend = open_backend("torch", tiny_weights, device="cpu").backend
    colorizer = Colorizer(backend, render_size=48)
    rng = np.random.default_rng(2)
    planes = [rng.uniform(0, 100, hw).astype(np.float32) for hw in [(96, 64), (64, 96), (100, 70), (96, 64), (48, 48)]]
    together = [colorizer.prepare(p) for p in planes]
    colorizer.predict(together, batch_size=4)
    for plane, job in zip(planes, together):
        alone = colorizer.prepare(plane)
        colorizer.predict([alone], batch_size=1)
        assert job.ab.shape == (*job.geometry.render_hw, 2)
        assert np.abs(job.ab - alone.ab).max() < 1e-3


@pytest.mark.gpu
def test_cuda_fp16_matches_fp32(tiny_weights):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    fp32 = open_backend("torch", tiny_weights, device="cpu", precision="fp32").backend
    fp16 = open_backend("torch", tiny_weights, device="cuda", precision="fp16").backend
    x = np.random.default_rng(3).uniform(-1, 1, (8, 1, 256, 256)).astype(np.float32)
    a, b = fp32.run(x), fp16.run(x)
    assert np.abs(a - b).max() * 110 < 1.0  # under 1 Lab unit of a/b
    assert np.abs(fp16.run(x[:1]) - b[:1]).max() < 1e-2  # batch 1 vs batch N


def test_a_backend_whose_colour_is_not_finite_is_refused_on_its_probe():
    from archivecolor.backends import BackendChoice, BackendError, probe

    class Broken:
        name, size_multiple = "broken engine", 16
        calls = []

        def run(self, l_net):
            self.calls.append(l_net.shape)
            return np.full((l_net.shape[0], 2, *l_net.shape[2:]), np.nan, np.float32)

    with pytest.raises(BackendError, match="broken engine gives colour that is NaN or infinite"):
        probe(BackendChoice(Broken(), "requested"))
    assert Broken.calls == [(1, 1, 32, 32)]


def test_folder_with_nan_weights_stops_with_one_line_and_writes_nothing(tmp_path, colour_folder):
    import torch
    from click.testing import CliRunner

    from archivecolor.cli import main
    from archivecolor.nets import GeneratorConfig, UNetGenerator
    from archivecolor.weights import save_generator

    g = UNetGenerator(GeneratorConfig(width=4, depth=4)).eval()
    with torch.no_grad():
        g.head[2].bias.fill_(float("nan"))
    save_generator(tmp_path / "nan.safetensors", g)
    result = CliRunner().invoke(main, ["folder", str(colour_folder), "--out", str(tmp_path / "out"), "--weights", str(tmp_path / "nan.safetensors")])
    assert result.exit_code != 0
    assert "nan.safetensors: tensor head.2.bias holds NaN or infinite values" in result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_an_export_cached_by_older_code_is_not_reused(tiny_weights, tmp_path, monkeypatch):
    """The cache is keyed by the weights' hash; a new release that changes the exported graph must not
    run the old file (the classifying head's faster softmax came to no one until this)."""
    from archivecolor import export

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, _ = export.onnx_for(tiny_weights)
    assert export.onnx_for(tiny_weights)[0] == first  # the same code: the cached file
    monkeypatch.setattr(export, "GRAPH_REVISION", export.GRAPH_REVISION + 1)
    second, _ = export.onnx_for(tiny_weights)
    assert second != first and second.exists()
