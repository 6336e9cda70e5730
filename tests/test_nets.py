import pytest
import torch

from archivecolor.nets import DiscriminatorConfig, GeneratorConfig, PatchDiscriminator, UNetGenerator


def test_design_generator_shapes_at_256():
    g = UNetGenerator(GeneratorConfig(width=4))  # the design's depth, tiny width
    assert g.config.level_widths() == [4, 8, 16, 32, 32, 32]
    out = g(torch.randn(2, 1, 256, 256))
    assert out.shape == (2, 2, 256, 256)
    assert out.abs().max() <= 1.0  # tanh


def test_design_widths_match_the_card():
    assert GeneratorConfig().level_widths() == [64, 128, 256, 512, 512, 512]


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize("hw", [(32, 48), (64, 16)])
def test_any_multiple_of_the_size_multiple_works(upsample, hw):
    g = UNetGenerator(GeneratorConfig(width=4, depth=4, upsample=upsample)).eval()
    assert g.config.size_multiple == 16
    assert g(torch.randn(1, 1, *hw)).shape == (1, 2, *hw)


def test_patchgan_outputs_30x30_at_256():
    d = PatchDiscriminator(DiscriminatorConfig(width=4))
    assert d(torch.randn(2, 3, 256, 256)).shape == (2, 1, 30, 30)


def test_patchgan_receptive_field_is_70():
    torch.manual_seed(0)
    d = PatchDiscriminator(DiscriminatorConfig(width=4)).eval()
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    out = d(x)
    out[0, 0, 15, 15].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero().flatten()
    cols = touched.any(dim=0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_eval_mode_output_is_independent_of_batch_mates(norm):
    torch.manual_seed(0)
    g = UNetGenerator(GeneratorConfig(width=8, depth=4, norm=norm))
    g.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        g(torch.randn(4, 1, 32, 32))
    g.eval()
    frames = torch.randn(5, 1, 32, 32)
    with torch.no_grad():
        alone = g(frames[:1])
        together = g(frames)
        other_mates = g(torch.cat([frames[:1], torch.randn(3, 1, 32, 32) * 3]))
    assert torch.allclose(alone, together[:1], atol=1e-5)
    assert torch.allclose(alone, other_mates[:1], atol=1e-5)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="upsample"):
        GeneratorConfig(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="norm"):
        GeneratorConfig(norm="layer")
