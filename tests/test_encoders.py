"""The pretrained-encoder generator: the ImageNet weights map key for key, shapes, hints, export."""

import dataclasses

import numpy as np
import pytest
import torch

from archivecolor.encoders import ENCODERS, EfficientNetLiteEncoder, imagenet_weights_file, load_imagenet_state, stages
from archivecolor.nets import GeneratorConfig, build_generator

# Tests use the real Lite0 network (3.4 M parameters) at 64-128 px, which runs in milliseconds,
# with a decoder of width 4: the tiny variant is the decoder, the encoder is the one that ships.
TINY = GeneratorConfig(encoder="efficientnet-lite0", depth=5, width=4, hint_channels=3)
TINY_SEPARABLE = dataclasses.replace(TINY, decoder="separable")
TINY_CLASSIFY = dataclasses.replace(TINY, decoder="separable", head="classify")
TINY_GLOBAL = dataclasses.replace(TINY, decoder="separable", global_context=True)
EACH_DECODER = pytest.mark.parametrize("config", [TINY, TINY_SEPARABLE, TINY_CLASSIFY, TINY_GLOBAL], ids=["conv", "separable", "classify", "global"])


def _lite0_state():
    return torch.load(imagenet_weights_file("efficientnet-lite0"), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("name", ENCODERS)
def test_each_imagenet_state_dict_maps_onto_its_encoder_with_nothing_missing_or_left_over(name):
    keys = load_imagenet_state(EfficientNetLiteEncoder(name, in_channels=4))
    assert keys == {"missing": [], "unexpected": []}


def test_the_imagenet_tensors_arrive_unchanged():
    encoder = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=4)
    load_imagenet_state(encoder)
    state = _lite0_state()
    # every tensor arrived (the depthwise convs under their padded wrapper), the classifier did not
    ours = encoder.state_dict()
    assert torch.equal(ours["_blocks.15._project_conv.weight"], state["_blocks.15._project_conv.weight"])
    assert torch.equal(ours["_blocks.3._depthwise_conv.conv.weight"], state["_blocks.3._depthwise_conv.weight"])
    assert not any(k.startswith("_fc") for k in ours)


def test_the_grey_stem_sees_a_grey_picture_as_the_rgb_network_does():
    """Summing the stem over R, G, B: the grey encoder on (x) equals the RGB classifier on (x, x, x)."""
    grey = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=4).eval()
    load_imagenet_state(grey)
    rgb = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=3).eval()
    state = {k.replace("._depthwise_conv.weight", "._depthwise_conv.conv.weight").replace("_conv_stem.weight", "_conv_stem.conv.weight"): v
             for k, v in _lite0_state().items() if not k.startswith("_fc")}
    rgb.load_state_dict(state)
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        ours = grey(torch.cat([x, torch.zeros(2, 3, 64, 96)], 1))  # hint channels start at zero weight
        theirs = rgb(x.repeat(1, 3, 1, 1))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_lite1_and_lite2_scale_as_tensorflow_does():
    assert [s.repeats for s in stages("efficientnet-lite0")] == [1, 2, 2, 3, 3, 4, 1]
    assert [s.repeats for s in stages("efficientnet-lite2")] == [1, 3, 3, 4, 4, 5, 1]  # ceil(1.2 × r); first and last fixed
    assert [s.width_out for s in stages("efficientnet-lite2")] == [16, 24, 48, 88, 120, 208, 352]
    assert set(ENCODERS) == {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"}


@EACH_DECODER
@pytest.mark.parametrize("hw", [(32, 32), (64, 96), (96, 64)])
def test_the_generator_gives_full_size_ab_for_any_multiple_of_32(hw, config):
    generator = build_generator(config).eval()
    assert config.size_multiple == 32
    with torch.no_grad():
        ab = generator(torch.rand(2, 1, *hw) * 2 - 1)
    assert ab.shape == (2, 2, *hw) and ab.abs().max() <= 1.0


@EACH_DECODER
def test_in_eval_mode_a_picture_colours_the_same_alone_or_in_a_batch(config):
    torch.manual_seed(0)
    generator = build_generator(config)
    for _ in range(3):  # running statistics away from their start
        generator(torch.rand(4, 1, 64, 64) * 2 - 1)
    generator.eval()
    frames = torch.rand(5, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        alone, together = generator(frames[:1]), generator(frames)
    torch.testing.assert_close(alone, together[:1], atol=1e-5, rtol=1e-5)


def test_no_hints_and_all_zero_hints_are_the_same_and_a_fresh_encoder_ignores_hints():
    """Zero-initialised hint weights keep the pretrained start intact: hints do nothing until trained."""
    torch.manual_seed(0)
    generator = build_generator(TINY).eval()
    load_imagenet_state(generator.encoder)
    l_net = torch.rand(1, 1, 64, 64) * 2 - 1
    hints = torch.zeros(1, 3, 64, 64)
    hints[0, :, 10:13, 10:13] = torch.tensor([0.5, -0.5, 1.0])[:, None, None]
    with torch.no_grad():
        plain = generator(l_net)
        torch.testing.assert_close(generator(l_net, torch.zeros(1, 3, 64, 64)), plain)
        torch.testing.assert_close(generator(l_net, hints), plain)


def test_a_generator_without_hint_channels_refuses_hints():
    generator = build_generator(dataclasses.replace(TINY, hint_channels=0)).eval()
    with pytest.raises(ValueError, match="hints"):
        generator(torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32))


def test_bad_encoder_configs_are_refused():
    with pytest.raises(ValueError, match="encoder"):
        GeneratorConfig(encoder="resnet50")
    with pytest.raises(ValueError, match="depth 5"):
        GeneratorConfig(encoder="efficientnet-lite0", depth=6)
    with pytest.raises(ValueError, match="hint_channels"):
        GeneratorConfig(hint_channels=2)
    with pytest.raises(ValueError, match="decoder must be"):
        dataclasses.replace(TINY, decoder="transformer")
    with pytest.raises(ValueError, match="encoder generators"):
        GeneratorConfig(decoder="separable")
    with pytest.raises(ValueError, match="head must be"):
        dataclasses.replace(TINY, head="diffusion")
    with pytest.raises(ValueError, match="classifying head is for encoder"):
        GeneratorConfig(head="classify")
    with pytest.raises(ValueError, match="temperature"):
        dataclasses.replace(TINY_CLASSIFY, temperature=0.0)
    with pytest.raises(ValueError, match="global context is for encoder"):
        GeneratorConfig(global_context=True)


def test_the_separable_decoder_is_what_its_config_says_and_far_smaller():
    """Depthwise 3×3 (groups = channels) in every level, and about a quarter of the full decoder's weights."""
    wide = dataclasses.replace(TINY, width=32)
    full, separable = build_generator(wide), build_generator(dataclasses.replace(wide, decoder="separable"))
    depthwise = [m for m in separable.decoder.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 4 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert not [m for m in full.decoder.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]

    def decoder_weights(g):
        return sum(p.numel() for p in g.decoder.parameters())

    assert decoder_weights(separable) < 0.3 * decoder_weights(full)


def _bottleneck_cells(generator, l_net):
    """The bottleneck's normalised cells (N, C, h, w), before the decoder."""
    seen = []
    handle = generator.bottleneck[1].register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        generator(l_net)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("global_context", [False, True])
def test_with_global_context_every_bottleneck_cell_sees_the_whole_picture(global_context):
    """A strip's far right changed: without global context the far left's deep cells stay as they
    were (out of the encoder's reach); with it they move, since each cell gets the picture's mean."""
    torch.manual_seed(0)
    generator = build_generator(dataclasses.replace(TINY_SEPARABLE, global_context=global_context)).eval()
    load_imagenet_state(generator.encoder)
    if global_context:  # as after training: its last layer starts at zero
        torch.nn.init.normal_(generator.global_context[2].weight, 0.0, 0.02)
    strip = torch.rand(1, 1, 32, 1536) * 2 - 1
    changed = strip.clone()
    changed[..., -160:] = -changed[..., -160:]
    far_left = (_bottleneck_cells(generator, strip) - _bottleneck_cells(generator, changed))[..., :4].abs().max().item()
    assert (far_left > 1e-6) if global_context else (far_left == 0.0)


def test_global_context_is_saved_with_the_weights_and_an_old_file_has_none(tmp_path):
    from archivecolor.weights import load_generator, read_config, save_generator

    torch.manual_seed(0)
    weights = tmp_path / "g.safetensors"
    generator = build_generator(TINY_GLOBAL).eval()
    torch.nn.init.normal_(generator.global_context[2].weight, 0.0, 0.02)
    save_generator(weights, generator)
    assert read_config(weights).global_context
    loaded = load_generator(weights)
    strip = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(strip), generator(strip))
    old = TINY.to_dict()
    del old["global_context"]  # a file written before the option
    assert not GeneratorConfig.from_dict(old).global_context


def test_a_weights_file_rebuilds_the_decoder_it_was_saved_with_and_an_old_file_the_full_one(tmp_path):
    from archivecolor.weights import load_generator, read_config, save_generator

    torch.manual_seed(0)
    weights = tmp_path / "g.safetensors"
    save_generator(weights, build_generator(TINY_SEPARABLE).eval())
    assert read_config(weights).decoder == "separable"
    assert load_generator(weights).config.decoder == "separable"
    old = TINY.to_dict()
    del old["decoder"], old["head"], old["temperature"]  # a file written before decoders and heads had kinds
    assert GeneratorConfig.from_dict(old).decoder == "conv" and GeneratorConfig.from_dict(old).head == "regress"


def test_a_classifying_head_is_saved_with_its_temperature_and_colours_by_it(tmp_path):
    """The temperature is part of the network (every backend and export colours alike) and
    lower temperatures colour more vividly: the annealed mean moves from the mean to the mode."""
    from archivecolor.weights import load_generator, save_generator

    torch.manual_seed(0)
    generator = build_generator(dataclasses.replace(TINY_CLASSIFY, temperature=0.2)).eval()
    with torch.no_grad():
        generator.head.weight.normal_(0, 2.0)  # a confident head, as training makes it
        generator.head.bias.normal_(0, 2.0)
    weights = tmp_path / "g.safetensors"
    save_generator(weights, generator)
    loaded = load_generator(weights).eval()
    assert (loaded.config.head, loaded.config.temperature) == ("classify", 0.2)
    l_net = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(l_net), generator(l_net))
        warm = build_generator(dataclasses.replace(TINY_CLASSIFY, temperature=1.0)).eval()
        warm.load_state_dict(generator.state_dict())
        assert generator(l_net).abs().mean() > 1.5 * warm(l_net).abs().mean()


def test_a_fresh_classifying_head_starts_near_grey():
    """Its bias favours the bins near a = b = 0, so training starts from grey, not from the bins' off-centre mean."""
    generator = build_generator(TINY_CLASSIFY).eval()
    with torch.no_grad():
        ab = generator(torch.rand(2, 1, 64, 64) * 2 - 1)
    assert ab.abs().max() * 110 < 3.0  # Lab units


def test_a_pth_that_is_not_the_network_is_one_clear_error(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"_conv_stem.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(ValueError, match="resnet.pth: not the efficientnet-lite0 network"):
        load_imagenet_state(EfficientNetLiteEncoder("efficientnet-lite0"), other)


def test_a_pth_is_read_without_running_its_pickle(tmp_path):
    """weights_only=True: a pickle whose __reduce__ would create a file is refused, and the file never appears."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, evil)
    assert not marker.exists()
    with pytest.raises(ValueError, match="evil.pth: not a plain PyTorch state_dict"):
        load_imagenet_state(EfficientNetLiteEncoder("efficientnet-lite0"), evil)
    assert not marker.exists()


@EACH_DECODER
def test_the_encoder_generator_exports_to_onnx_with_parity(tmp_path, config):
    from archivecolor.export import export_onnx, onnx_parity
    from archivecolor.weights import save_generator

    torch.manual_seed(0)
    generator = build_generator(config)
    generator(torch.rand(4, 1, 64, 64) * 2 - 1)  # non-trivial running statistics
    weights = tmp_path / "g.safetensors"
    save_generator(weights, generator.eval())
    import warnings

    with warnings.catch_warnings():  # a user's first run exports the model: nothing for them to read
        warnings.simplefilter("error", torch.jit.TracerWarning)
        meta = export_onnx(weights, tmp_path / "g.onnx")
        export_onnx(weights, tmp_path / "g-hints.onnx", hints=bool(config.hint_channels))
    assert meta["size_multiple"] == "32"
    parity = onnx_parity(weights, tmp_path / "g.onnx", shapes=((1, 64, 64), (2, 96, 160)))
    assert parity["max_abs_ab_lab"] < 1e-3


@EACH_DECODER
def test_torch_and_onnx_backends_colour_alike_with_the_encoder_generator(tmp_path, config):
    from archivecolor.backends import open_backend
    from archivecolor.weights import save_generator

    torch.manual_seed(1)
    weights = tmp_path / "g.safetensors"
    save_generator(weights, build_generator(config).eval())
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 64, 96)).astype(np.float32)
    a = open_backend("torch", weights, device="cpu").backend.run(x)
    b = open_backend("onnx", weights, device="cpu").backend.run(x)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "normalised"])
def test_decoder_hint_taps_start_at_zero_and_then_carry_hints_to_the_decoder(tmp_path, pooling):
    """--hint-decoder: the hint planes also enter each decoder level through zero-initialised
    convolutions. At the start the network colours exactly as without them (so a shipped model
    fine-tuned with them starts where it was); once trained (here: set by hand) a hint moves the
    colour at its point and not far from it; the ONNX export follows."""
    import numpy as np
    import torch

    from archivecolor.nets import EncoderUNetGenerator
    from archivecolor.netconfig import GeneratorConfig

    torch.manual_seed(0)
    plain = EncoderUNetGenerator(GeneratorConfig(width=4, depth=5, encoder="efficientnet-lite0", hint_channels=3)).eval()
    tapped = EncoderUNetGenerator(GeneratorConfig(width=4, depth=5, encoder="efficientnet-lite0", hint_channels=3, hint_decoder=True,
                                                  hint_pooling=pooling)).eval()
    missing, unexpected = tapped.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("hint_taps.") for key in missing)
    l_net = torch.rand(1, 1, 64, 64) * 2 - 1
    hints = torch.zeros(1, 3, 64, 64)
    hints[0, 0, 8:12, 8:12], hints[0, 2, 8:12, 8:12] = 0.5, 1.0  # a hint: strong +a at the top left
    with torch.no_grad():
        assert torch.equal(plain(l_net, hints), tapped(l_net, hints))  # zero taps: nothing changed
        for tap in tapped.hint_taps:
            tap.weight[:, 2] = 0.5  # as training might: the mask raises the features where a hint is
        moved = (tapped(l_net, hints) - plain(l_net, hints)).abs()[0].sum(0)
    assert moved[6:14, 6:14].mean() > 10 * moved[48:, 48:].mean()  # at the hint, not far from it
    from archivecolor.backends import open_backend
    from archivecolor.weights import save_generator

    save_generator(tmp_path / "tapped.safetensors", tapped)
    onnx = open_backend("onnx", tmp_path / "tapped.safetensors").backend
    with torch.no_grad():
        want = tapped(l_net, hints).numpy()
    assert np.abs(onnx.run(l_net.numpy(), hints.numpy()) - want).max() < 1e-4
    with pytest.raises(ValueError, match="hint_decoder needs"):
        GeneratorConfig(width=4, depth=5, encoder="efficientnet-lite0", hint_decoder=True)


def test_normalised_hint_pooling_keeps_a_small_hint_whole_at_coarse_levels():
    """Averaged, a 2 × 2 hint is a sixty-fourth of a stride-16 cell; normalised, the cell carries
    the hint's own colour and is marked hinted, and cells without a hint stay zero."""
    import torch

    from archivecolor.nets import pool_hints

    hints = torch.zeros(1, 3, 32, 32)
    hints[0, 0, 2:4, 2:4], hints[0, 1, 2:4, 2:4], hints[0, 2, 2:4, 2:4] = 0.4, -0.2, 1.0
    mean = pool_hints(hints, 16, "mean")
    whole = pool_hints(hints, 16, "normalised")
    assert mean[0, 0, 0, 0].item() == pytest.approx(0.4 / 64)
    assert whole[0, :, 0, 0].tolist() == pytest.approx([0.4, -0.2, 1.0])
    assert whole[0, :, 1, 1].abs().max().item() == 0.0 and whole[0, :, 0, 1].abs().max().item() == 0.0
    with pytest.raises(ValueError, match="hint_pooling"):
        from archivecolor.netconfig import GeneratorConfig

        GeneratorConfig(width=4, depth=5, encoder="efficientnet-lite0", hint_channels=3, hint_decoder=True, hint_pooling="max")


def test_near_hint_weights_weigh_the_pixels_around_a_hint_and_keep_the_loss_size():
    """--hint-loss-weight: within NEAR_HINT_PIXELS of a hint the error counts 1 + w times more than
    far away; the weights average 1, so the loss and the learning-rate schedule keep their scale."""
    import torch

    from archivecolor.train import NEAR_HINT_PIXELS, generator_loss, near_hint_weights

    hints = torch.zeros(2, 3, 64, 64)
    hints[0, 2, 30, 30] = 1.0
    weights = near_hint_weights(hints, 4.0)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[0, 0, 30, 30 + NEAR_HINT_PIXELS] / weights[0, 0, 30, 30 + NEAR_HINT_PIXELS + 1] == pytest.approx(5.0)
    fake, real = torch.zeros(2, 2, 64, 64), torch.zeros(2, 2, 64, 64)
    real[0, :, 28:33, 28:33] = 1.0  # an error only near the hint counts more with the weights than without
    assert generator_loss(fake, real, None, 1.0, 0.0, weights)[2] > 3 * generator_loss(fake, real, None, 1.0, 0.0)[2]
