"""Colour as a choice among ab bins (Zhang, Isola & Efros 2016), against L1's "plays it safe".

L1 averages the plausible colours of a thing into a brownish median: a red or a blue car becomes
grey-brown. Predicting a distribution over a grid of a/b bins keeps both answers; the network's
output is then their annealed mean (softmax of logits / T, T < 1, times the bin centres), which
sits near the most likely colour without the mode's patchiness. That output is still ab, so every
backend, export and render path is unchanged; only training needs the logits. Rare, saturated
colours are weighted up in the loss (class rebalancing), as the paper does.

The bins: a 10-unit grid over a*, b* in ±110, kept where some lightness makes the centre an sRGB
colour: 252 bins (the paper's 313 also keeps cells whose
centre is out of gamut but whose edge is not). Everything here is derived from lab.py's formulas, so no
table is stored.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .lab import AB_SCALE

BIN_SPACING = 10.0  # Lab units between bin centres (the paper's grid)
SOFT_NEIGHBOURS = 5  # a target colour is spread over its 5 nearest bins ...
SOFT_SIGMA = 5.0  # ... with Gaussian weights of this width, Lab units
PRIOR_SIGMA = 5.0  # the colour histogram is smoothed this much before it is rebalanced
GAMUT_MARGIN = 0.02  # a centre this far outside [0, 1] in linear RGB still counts as in gamut


def _centre_in_gamut(a: float, b: float) -> bool:
    """Whether some L* in 5..95 makes (L, a, b) an sRGB colour (linear RGB within [0, 1], a small margin).
    Its own Lab -> XYZ -> linear RGB: lab.py's clips to [0, 1], which is what must be seen here."""
    L = np.arange(5.0, 96.0, 1.0)
    fy = (L + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0

    def finv(f):
        return np.where(f > 6.0 / 29.0, f**3, (f - 16.0 / 116.0) * 3 * (6.0 / 29.0) ** 2)

    xyz = np.stack([0.95047 * finv(fx), finv(fy), 1.08883 * finv(fz)])
    from .lab import _RGB_FROM_XYZ

    rgb = _RGB_FROM_XYZ @ xyz
    ok = np.all((rgb >= -GAMUT_MARGIN) & (rgb <= 1.0 + GAMUT_MARGIN), axis=0)
    return bool(ok.any())


@lru_cache(maxsize=1)
def _bins_lab() -> np.ndarray:
    grid = np.arange(-110.0, 110.0 + 1e-9, BIN_SPACING)
    return np.array([(a, b) for a in grid for b in grid if _centre_in_gamut(a, b)], dtype=np.float32)


def bin_count() -> int:
    """How many ab bins a classifying head predicts over (its output channels)."""
    return len(_bins_lab())


def bin_centres() -> torch.Tensor:
    """(Q, 2) bin centres in network units (a/b divided by AB_SCALE)."""
    return torch.from_numpy(_bins_lab() / AB_SCALE)


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits (N, Q, h, w) -> ab (N, 2, h, w): the mean of softmax(logits / T) over the bin centres (Q, 2).
    T = 1 is the plain mean (L2's answer, brownish); T → 0 the mode (vivid, patchy); the paper's 0.38 between."""
    # Bins last: a softmax over the innermost axis and a (Q, 2) matrix product. Over the channel axis
    # (softmax dim 1, then a 1×1 convolution) onnxruntime took 100 ms of the model's 130 at 256×384 on
    # 2 CPU cores; this way about 15 ms (docs/performance.md).
    p = torch.softmax(logits.float().permute(0, 2, 3, 1) / temperature, dim=-1)
    return torch.matmul(p, centres.to(p)).permute(0, 3, 1, 2).to(logits.dtype)


def nearest_bins(ab_net: torch.Tensor, centres: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel of ab (N, 2, h, w): the squared distances (Lab units²) and indices of its k nearest bins, (N, k, h, w) each."""
    n, _, h, w = ab_net.shape
    pixels = ab_net.permute(0, 2, 3, 1).reshape(-1, 2).float() * AB_SCALE
    d2 = torch.cdist(pixels, centres.to(pixels) * AB_SCALE).square()
    dist, index = d2.topk(k, dim=1, largest=False)
    return (dist.reshape(n, h, w, k).permute(0, 3, 1, 2), index.reshape(n, h, w, k).permute(0, 3, 1, 2))


def soft_targets(ab_net: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The true colour as a distribution over its nearest bins: (indices, weights), (N, k, h, w) each, weights summing to 1."""
    dist2, index = nearest_bins(ab_net, centres, SOFT_NEIGHBOURS)
    weights = torch.softmax(-dist2 / (2 * SOFT_SIGMA**2), dim=1)
    return index, weights


def rebalancing_weights(counts: torch.Tensor, centres: torch.Tensor, strength: float) -> torch.Tensor:
    """(Q,) loss weights per bin: w ∝ 1 / ((1 − λ)·p + λ/Q) with p the smoothed colour histogram and
    λ = 1 − strength (the paper's λ; its 0.5 is strength 0.5), scaled so that a pixel's expected
    weight is 1. strength 0: all 1 (no rebalancing); 1: each colour weighted by 1/p alone."""
    q = len(centres)
    if strength <= 0 or counts.sum() <= 0:
        return torch.ones(q, dtype=torch.float64)
    lab = centres.double() * AB_SCALE
    kernel = torch.exp(-torch.cdist(lab, lab).square() / (2 * PRIOR_SIGMA**2))
    p = kernel @ (counts.double() / counts.sum())
    p = p / p.sum()
    w = 1.0 / (strength * p + (1.0 - strength) / q)
    return w / (p * w).sum()


class ClassLoss:
    """The rebalanced cross-entropy of logits (N, Q, h, w) against the true ab (N, 2, H, W), brought to
    h × w by averaging. It counts the colours it is shown, bin by bin, and weights each pixel by the
    rarity of its colour among all seen so far (`counts` goes into the checkpoint: a resume goes on)."""

    def __init__(self, centres: torch.Tensor, strength: float, counts: torch.Tensor | None = None):
        self.centres, self.strength = centres, strength
        self.counts = counts if counts is not None else torch.zeros(len(centres), dtype=torch.float64)
        # soft targets for every whole Lab unit of a* and b* in ±110, looked up per pixel (a search of all
        # bins for each of a batch's pixels took a third of a CPU step)
        grid = torch.arange(-AB_SCALE, AB_SCALE + 1) / AB_SCALE
        side = len(grid)
        ab = torch.stack(torch.meshgrid(grid, grid, indexing="ij")).reshape(1, 2, side, side)
        index, weights = soft_targets(ab, centres.cpu())
        self._side = side
        self._index = index[0].reshape(SOFT_NEIGHBOURS, -1).to(centres.device)
        self._weights = weights[0].reshape(SOFT_NEIGHBOURS, -1).to(centres.device)

    def __call__(self, logits: torch.Tensor, ab_real: torch.Tensor) -> torch.Tensor:
        target = F.adaptive_avg_pool2d(ab_real.float(), logits.shape[-2:]) if ab_real.shape[-2:] != logits.shape[-2:] else ab_real.float()
        cell = (target * AB_SCALE).round().clamp(-AB_SCALE, AB_SCALE).long() + int(AB_SCALE)  # (N, 2, h, w)
        flat = cell[:, 0] * self._side + cell[:, 1]  # (N, h, w)
        index = self._index[:, flat].permute(1, 0, 2, 3)  # (N, k, h, w)
        weights = self._weights[:, flat].permute(1, 0, 2, 3)
        nearest = index[:, 0]
        self.counts += torch.bincount(nearest.reshape(-1), minlength=len(self.centres)).double().cpu()
        bin_weights = rebalancing_weights(self.counts, self.centres.cpu(), self.strength)
        log_p = torch.log_softmax(logits.float(), dim=1)
        ce = -(log_p.gather(1, index) * weights).sum(dim=1)  # (N, h, w)
        return (ce * bin_weights.to(ce)[nearest]).mean()
