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


def _rewrite_header(src, dst, **changes):
    """A copy of the weights file `src` with metadata entries replaced (tensors unchanged)."""
    from safetensors.torch import load_file, save_file

    meta = dict(read_metadata(src))
    meta.update(changes)
    save_file(load_file(str(src)), str(dst), metadata=meta)
    return dst


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused_naming_the_tensor(tmp_path, value):
    g = UNetGenerator(GeneratorConfig(width=4, depth=3)).eval()
    with torch.no_grad():
        g.head[2].weight[0, 0, 0, 0] = value
    save_generator(tmp_path / "nan.safetensors", g)
    with pytest.raises(WeightsError, match=r"nan.safetensors: tensor head.2.weight holds NaN or infinite values"):
        load_generator(tmp_path / "nan.safetensors")


def test_a_header_asking_for_a_huge_network_is_refused_before_anything_is_built(tmp_path):
    import time

    src = tmp_path / "small.safetensors"
    save_generator(src, UNetGenerator(GeneratorConfig(width=4, depth=3)).eval())
    huge = _rewrite_header(src, tmp_path / "huge.safetensors", generator_config=json.dumps({"width": 2048, "depth": 7}))
    started = time.perf_counter()
    with pytest.raises(WeightsError, match="huge.safetensors: .*width ≤ 256"):
        load_generator(huge)
    assert time.perf_counter() - started < 5  # refused from the header: nothing of 2.9 GB was built
    # within the bounds but not these tensors: named, shapes given, before the network is built
    other = _rewrite_header(src, tmp_path / "other.safetensors", generator_config=json.dumps({"width": 8, "depth": 3}))
    with pytest.raises(WeightsError, match=r"other.safetensors: tensor \S+ has shape \(\d+, \d+, 4, 4\), its config needs"):
        load_generator(other)


@pytest.mark.parametrize("config, reason", [
    ("{not json", "not valid"),
    (json.dumps([1, 2]), "not a JSON object"),
    (json.dumps({"width": "wide"}), "integers"),
    (json.dumps({"encoder": "vgg"}), "encoder must be one of"),
])
def test_a_broken_config_header_is_one_line_naming_the_file(tmp_path, config, reason):
    src = tmp_path / "g.safetensors"
    save_generator(src, UNetGenerator(GeneratorConfig(width=4, depth=3)).eval())
    bad = _rewrite_header(src, tmp_path / "bad.safetensors", generator_config=config)
    with pytest.raises(WeightsError, match="bad.safetensors: ") as info:
        load_generator(bad)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_a_header_without_its_config_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    src = tmp_path / "g.safetensors"
    save_generator(src, UNetGenerator(GeneratorConfig(width=4, depth=3)).eval())
    meta = {k: v for k, v in read_metadata(src).items() if k != "generator_config"}
    save_file(load_file(str(src)), str(tmp_path / "noconf.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="noconf.safetensors: its header has no 'generator_config' entry"):
        load_generator(tmp_path / "noconf.safetensors")


def test_the_encoder_generator_round_trips_through_its_file(tmp_path):
    from archivecolor.nets import build_generator

    config = GeneratorConfig(encoder="efficientnet-lite0", depth=5, width=4, hint_channels=3)
    torch.manual_seed(0)
    g = build_generator(config)
    g(torch.randn(2, 1, 32, 32))
    g.eval()
    save_generator(tmp_path / "enc.safetensors", g)
    loaded = load_generator(tmp_path / "enc.safetensors")
    assert loaded.config == config
    x, hints = torch.randn(1, 1, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(g(x), loaded(x)) and torch.equal(g(x, hints), loaded(x, hints))
