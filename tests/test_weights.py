import json

import pytest
import torch

from archivecolor.nets import GeneratorConfig, UNetGenerator
from archivecolor.weights import WeightsError, load_generator, read_metadata, resolve_weights, save_generator


def test_export_load_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    config = GeneratorConfig(width=8, depth=4, upsample="resize", norm="instance")
    g = UNetGenerator(config)
    g.train()
    g(torch.randn(4, 1, 32, 32))  # move running statistics away from their initial values
    g.eval()
    path = tmp_path / "g.safetensors"
    save_generator(path, g, info={"epoch": 3})
    loaded = load_generator(path)
    assert loaded.config == config
    assert not loaded.training
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(x), loaded(x))
    meta = read_metadata(path)
    assert json.loads(meta["info"]) == {"epoch": 3}


def test_fp16_storage_is_close(tmp_path):
    g = UNetGenerator(GeneratorConfig(width=8, depth=4)).eval()
    path = tmp_path / "g16.safetensors"
    save_generator(path, g, dtype=torch.float16)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert (g(x) - load_generator(path)(x)).abs().max() < 1e-2


def test_a_file_that_is_not_ours_is_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="junk.safetensors"):
        load_generator(junk)
    with pytest.raises(WeightsError, match="no such"):
        load_generator(tmp_path / "missing.safetensors")


def test_a_pickle_is_never_loaded(tmp_path):
    evil = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, evil)  # a pickle under a safetensors name
    with pytest.raises(WeightsError):
        load_generator(evil)


def test_resolve_weights_prefers_the_given_file(tmp_path):
    assert resolve_weights(tmp_path / "x.safetensors") == tmp_path / "x.safetensors"


def _random_generator(seed: int, width: int = 4) -> UNetGenerator:
    torch.manual_seed(seed)
    generator = UNetGenerator(GeneratorConfig(width=width, depth=3, dropout=0.0))
    generator.train()
    with torch.no_grad():  # BatchNorm running statistics that differ between the seeds
        generator(torch.randn(2, 1, 16, 16) * (seed + 1))
    return generator.eval()


def test_averaging_gives_the_mean_of_every_weight_and_running_statistic(tmp_path):
    from archivecolor.weights import average_generators

    generators = [_random_generator(seed) for seed in range(3)]
    paths = []
    for i, generator in enumerate(generators):
        paths.append(tmp_path / f"epoch{i}.safetensors")
        save_generator(paths[-1], generator)
    averaged = average_generators(paths).state_dict()
    states = [g.state_dict() for g in generators]
    floating = [name for name, t in states[0].items() if t.is_floating_point()]
    assert any("running_var" in name for name in floating)
    assert not torch.allclose(states[0]["head.0.weight"], states[1]["head.0.weight"])  # the mean is not any one of them
    for name in floating:
        expected = (states[0][name] + states[1][name] + states[2][name]) / 3
        assert torch.allclose(averaged[name], expected, atol=1e-6), name


def test_averaging_different_networks_is_a_clear_error(tmp_path):
    from archivecolor.weights import average_generators

    save_generator(tmp_path / "a.safetensors", _random_generator(0, width=4))
    save_generator(tmp_path / "b.safetensors", _random_generator(0, width=8))
    with pytest.raises(WeightsError, match="b.safetensors: a different network"):
        average_generators([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])


def test_average_weights_command_writes_a_loadable_mean_and_never_overwrites_an_input(tmp_path):
    from click.testing import CliRunner

    from archivecolor.cli import main

    paths = []
    for seed in range(2):
        paths.append(tmp_path / f"epoch{seed}.safetensors")
        save_generator(paths[-1], _random_generator(seed))
    before = [p.read_bytes() for p in paths]
    out = tmp_path / "mean.safetensors"
    result = CliRunner().invoke(main, ["average-weights", *map(str, paths), "--out", str(out)])
    assert result.exit_code == 0, result.output
    mean = load_generator(out).state_dict()
    first, second = load_generator(paths[0]).state_dict(), load_generator(paths[1]).state_dict()
    for name, tensor in mean.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (first[name] + second[name]) / 2, atol=1e-6), name
    again = CliRunner().invoke(main, ["average-weights", *map(str, paths), "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    onto_input = CliRunner().invoke(main, ["average-weights", *map(str, paths), "--out", str(paths[0]), "--overwrite"])
    assert onto_input.exit_code == 2 and "one of the inputs" in onto_input.output
    assert [p.read_bytes() for p in paths] == before


def test_a_shipped_chroma_gain_scales_every_backend_alike(tmp_path):
    """The gain lives in the network (after its tanh), so the file, the ONNX export and onnxruntime carry it."""
    import dataclasses

    import numpy as np

    from archivecolor.backends import open_backend

    torch.manual_seed(1)
    plain = UNetGenerator(GeneratorConfig(width=8, depth=4, upsample="resize")).eval()
    gained = UNetGenerator(dataclasses.replace(plain.config, chroma_gain=1.35)).eval()
    gained.load_state_dict(plain.state_dict())
    save_generator(tmp_path / "plain.safetensors", plain)
    save_generator(tmp_path / "gained.safetensors", gained)
    assert load_generator(tmp_path / "gained.safetensors").config.chroma_gain == 1.35
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 48)).astype(np.float32)
    for kind in ("torch", "onnx"):
        base = open_backend(kind, tmp_path / "plain.safetensors", device="cpu").backend.run(x)
        scaled = open_backend(kind, tmp_path / "gained.safetensors", device="cpu").backend.run(x)
        assert np.abs(base).max() > 1e-4  # a fresh network's colour is faint, but not nothing
        np.testing.assert_allclose(scaled, base * 1.35, rtol=1e-3, atol=1e-8)
    with pytest.raises(ValueError, match="chroma_gain"):
        GeneratorConfig(chroma_gain=0)
