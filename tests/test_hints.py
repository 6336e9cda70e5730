"""Colour hints: drawn from the truth for training, and a generator trained with them follows them."""

import torch

from archivecolor.hints import MAX_POINTS, sample_hints
from archivecolor.nets import GeneratorConfig, UNetGenerator


def test_drawn_hints_carry_the_true_colour_where_the_mask_is_set():
    ab = torch.rand(6, 2, 40, 40) * 2 - 1
    planes = sample_hints(ab, torch.Generator().manual_seed(3))
    mask = planes[:, 2] > 0
    assert planes.shape == (6, 3, 40, 40)
    assert all(1 <= m.sum() <= MAX_POINTS * 25 for m in mask)  # each picture 1-24 patches of at most 5×5
    assert torch.all(planes[:, :2][~mask[:, None].expand(-1, 2, -1, -1)] == 0)  # no colour where no hint
    # a 1×1 hint is the pixel's own colour; a larger one its patch's mean, so it stays within the patch's range
    assert torch.all(planes[:, :2].abs() <= 1)


def test_drawn_hints_follow_the_seed():
    ab = torch.rand(4, 2, 32, 32)
    a = sample_hints(ab, torch.Generator().manual_seed(7))
    b = sample_hints(ab, torch.Generator().manual_seed(7))
    c = sample_hints(ab, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_share_of_batches_carries_hints_the_same_on_every_run():
    from dataclasses import replace

    from archivecolor.train import TrainConfig, _batch_hints

    config = replace(TrainConfig(), hint_fraction=0.3)
    ab = torch.rand(2, 2, 16, 16)
    drawn = [_batch_hints(config, step, ab, lambda x: x) for step in range(400)]
    share = sum(h is not None for h in drawn) / len(drawn)
    assert 0.24 < share < 0.36
    again = [_batch_hints(config, step, ab, lambda x: x) for step in range(400)]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(drawn, again))
    assert all(_batch_hints(TrainConfig(), step, ab, lambda x: x) is None for step in range(50))


def _tiles(n: int, generator: torch.Generator, side: int = 32, tile: int = 16):
    """Pictures of 2×2 tiles, each of one random colour; L tells the tiles apart but not their colour."""
    tiles = side // tile
    colour = torch.rand(n, 2, tiles, tiles, generator=generator) * 1.2 - 0.6
    ab = colour.repeat_interleave(tile, 2).repeat_interleave(tile, 3)
    l_net = torch.tensor([[-0.4, 0.2], [0.5, -0.1]]).repeat_interleave(tile, 0).repeat_interleave(tile, 1).expand(n, 1, side, side)
    return l_net.contiguous(), ab


def test_a_generator_trained_with_hints_colours_at_the_hint_and_leaves_far_tiles_alone():
    """No picture says its tiles' colours, so only a hint can: after a short training with hints on half
    the batches, a hint in the top-left tile moves that tile to its colour, and the far tile does not move."""
    torch.manual_seed(0)
    draws = torch.Generator().manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(width=8, depth=3, upsample="resize", dropout=0.0, hint_channels=3))
    optimiser = torch.optim.Adam(generator.parameters(), lr=1e-3)
    for step in range(300):
        l_net, ab = _tiles(16, draws)
        hints = sample_hints(ab, draws) if step % 2 else None
        loss = (generator(l_net, hints) - ab).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    generator.eval()
    l_net, ab = _tiles(8, torch.Generator().manual_seed(99))
    hints = torch.zeros(8, 3, 32, 32)
    hints[:, :2, 6:9, 6:9] = ab[:, :, 6:9, 6:9]  # one 3×3 hint in the top-left tile
    hints[:, 2, 6:9, 6:9] = 1
    with torch.no_grad():
        plain, hinted = generator(l_net), generator(l_net, hints)
    near = (slice(4, 11), slice(4, 11))  # around the hint, inside its tile
    far = (slice(18, 30), slice(18, 30))  # the opposite tile
    error = lambda pred, where: (pred[:, :, where[0], where[1]] - ab[:, :, where[0], where[1]]).abs().mean().item()
    assert error(hinted, near) < 0.5 * error(plain, near)  # the hint's colour is taken up where it was placed
    far_change = (hinted - plain)[:, :, far[0], far[1]].abs().mean().item()
    near_change = (hinted - plain)[:, :, near[0], near[1]].abs().mean().item()
    assert far_change < 0.1 * near_change  # and does not spread to a tile it says nothing about
