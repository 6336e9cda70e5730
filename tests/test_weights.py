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
