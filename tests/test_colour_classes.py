"""Colour as a choice among ab bins: the bins, soft targets, rebalancing, the annealed mean, the loss."""

import numpy as np
import pytest
import torch

from archivecolor import colour_classes as cc
from archivecolor.lab import AB_SCALE, lab_to_srgb


def test_the_bins_are_a_ten_unit_grid_of_in_gamut_colours_around_grey():
    lab = cc.bin_centres().numpy() * AB_SCALE
    assert cc.bin_count() == len(lab) == 252  # pinned: a weights file's head has this many outputs
    np.testing.assert_allclose(lab % cc.BIN_SPACING, 0, atol=1e-4)
    assert [0.0, 0.0] in lab.round().tolist()
    # every centre is an sRGB colour at some lightness (within the small margin)
    best = []
    for a, b in lab:
        rgb = lab_to_srgb(np.array([[[L, a, b] for L in range(5, 96)]], np.float32))
        best.append(rgb.min() >= 0 or rgb.max() <= 1)
    assert all(best)
    assert not cc._centre_in_gamut(110.0, 110.0)  # a saturated red-yellow no screen shows


def test_soft_targets_put_most_weight_on_the_nearest_bin():
    centres = cc.bin_centres()
    ab = torch.tensor([20.0, -30.0]).reshape(1, 2, 1, 1) / AB_SCALE  # exactly a centre
    index, weights = cc.soft_targets(ab, centres)
    assert index.shape == weights.shape == (1, cc.SOFT_NEIGHBOURS, 1, 1)
    assert weights.sum().item() == pytest.approx(1.0)
    assert (centres[index[0, 0, 0, 0]] * AB_SCALE).tolist() == pytest.approx([20.0, -30.0], abs=1e-3)
    assert weights[0, 0].item() > 0.5


def test_rebalancing_weights_rare_colours_up_and_keep_the_expected_weight_at_one():
    centres = cc.bin_centres()
    counts = torch.ones(len(centres), dtype=torch.float64)
    grey = int(np.argmin((centres ** 2).sum(1)))
    counts[grey] = 10_000  # most pixels near grey, as in photos
    assert torch.equal(cc.rebalancing_weights(counts, centres, 0.0), torch.ones(len(centres), dtype=torch.float64))
    w = cc.rebalancing_weights(counts, centres, 0.5)
    assert w[grey] < 0.5 < 1.5 < w.max()
    kernel = torch.exp(-torch.cdist(centres.double() * AB_SCALE, centres.double() * AB_SCALE).square() / (2 * cc.PRIOR_SIGMA ** 2))
    p = kernel @ (counts / counts.sum())
    p = p / p.sum()
    assert (p * w).sum().item() == pytest.approx(1.0)
    assert cc.rebalancing_weights(counts, centres, 1.0).max() > w.max()  # stronger rebalancing, rarer colours count more


def test_the_annealed_mean_goes_from_the_mean_to_the_mode_as_the_temperature_falls():
    centres = cc.bin_centres()
    red, blue = (int(np.argmin(((centres * AB_SCALE - torch.tensor(c)) ** 2).sum(1))) for c in ([60.0, 40.0], [10.0, -60.0]))
    logits = torch.full((1, len(centres), 1, 1), -30.0)
    logits[0, red], logits[0, blue] = np.log(0.6), np.log(0.4)
    mean = cc.annealed_mean(logits, centres, 1.0)[0, :, 0, 0] * AB_SCALE
    vivid = cc.annealed_mean(logits, centres, 0.2)[0, :, 0, 0] * AB_SCALE
    expected = 0.6 * centres[red] * AB_SCALE + 0.4 * centres[blue] * AB_SCALE
    assert mean.tolist() == pytest.approx(expected.tolist(), abs=1e-3)
    assert torch.dist(vivid, centres[red] * AB_SCALE) < 0.3 * torch.dist(mean, centres[red] * AB_SCALE)


def test_the_class_loss_learns_rival_colours_as_a_distribution():
    """One pixel position, its truth red in 60 % of the pictures and blue in 40 %: the cross-entropy
    learns both colours with their shares (a regression learns one answer), and the temperature then
    chooses between their blend (T = 1) and the likelier one, at the truth's saturation (T low)."""
    torch.manual_seed(0)
    centres = cc.bin_centres()
    red, blue = torch.tensor([60.0, 40.0]), torch.tensor([10.0, -60.0])
    truth = torch.zeros(10, 2, 4, 4)
    truth[:6] = (red / AB_SCALE)[:, None, None]
    truth[6:] = (blue / AB_SCALE)[:, None, None]
    logits = torch.zeros(1, len(centres), 1, 1, requires_grad=True)
    loss = cc.ClassLoss(centres, strength=0.0)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss(logits.expand(10, -1, 4, 4), truth).backward()
        opt.step()
    assert loss.counts.sum().item() == 300 * 10 * 16  # every pixel counted
    p = torch.softmax(logits.detach()[0, :, 0, 0], 0)
    lab = centres * AB_SCALE
    assert p[(lab - red).norm(dim=1) < 12].sum().item() == pytest.approx(0.6, abs=0.05)
    assert p[(lab - blue).norm(dim=1) < 12].sum().item() == pytest.approx(0.4, abs=0.05)
    blend = cc.annealed_mean(logits.detach(), centres, 1.0)[0, :, 0, 0] * AB_SCALE
    vivid = cc.annealed_mean(logits.detach(), centres, 0.1)[0, :, 0, 0] * AB_SCALE
    assert torch.dist(blend, 0.6 * red + 0.4 * blue) < 5
    assert torch.dist(vivid, red) < cc.BIN_SPACING + 2 and vivid.norm() > 0.85 * red.norm()  # within a bin of red


def test_the_class_loss_looks_up_the_soft_targets_it_would_compute():
    """The per-unit lookup table gives the same nearest bin as searching every bin, for colours off the rounding edges."""
    centres = cc.bin_centres()
    loss = cc.ClassLoss(centres, strength=0.5)
    torch.manual_seed(0)  # in-gamut colours a few units from a bin, where rounding cannot change the nearest
    ab = centres[torch.randint(0, len(centres), (8, 8))].permute(2, 0, 1)[None] + (torch.rand(1, 2, 8, 8) * 6 - 3) / AB_SCALE
    index, weights = cc.soft_targets(ab, centres)
    cell = (ab * AB_SCALE).round().long() + int(AB_SCALE)
    looked_up = loss._index[:, cell[:, 0] * loss._side + cell[:, 1]].permute(1, 0, 2, 3)
    assert torch.equal(looked_up[:, 0], index[:, 0])
    right = torch.full((1, len(centres), 8, 8), -30.0).scatter(1, index, weights.log())  # the targets themselves
    uniform, mode_only = torch.zeros_like(right), torch.full_like(right, -30.0).scatter(1, index[:, :1], 0.0)
    assert loss(right, ab) < loss(uniform, ab) and loss(right, ab) < loss(mode_only, ab)
