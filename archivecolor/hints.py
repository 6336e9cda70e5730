"""Colour hints as the generator sees them: a/b planes and a mask beside L (N, 3, H, W).

A hint says "the colour here is this": its a/b (network scaling) fill a small patch of the two
colour planes and the mask is 1 there, 0 elsewhere; all zeros is "no hints". Training draws hints
from the true colours (`sample_hints`, after Zhang et al. 2017, "Real-Time User-Guided Image
Colorization"), so one generator colours automatically and follows an archivist's hints.
"""

from __future__ import annotations

import math

import torch

MAX_POINTS = 24  # hints drawn per picture at most
POINTS_P = 1 / 6  # the number of hints per picture is geometric with this p (mean 6)
MAX_HALF_SIDE = 2  # a drawn hint is a square patch of side 1, 3 or 5 pixels (at the crop's scale)


def empty_hints(n: int, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.zeros((n, 3, height, width), device=device, dtype=dtype)


def sample_hints(ab: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Hints drawn from the true `ab` (N, 2, H, W): for each picture 1–24 patches, each hint the
    mean a/b of its patch. Draws come from `generator` (on the CPU) so a resumed run draws alike."""
    n, _, height, width = ab.shape
    planes = empty_hints(n, height, width, device=ab.device, dtype=ab.dtype)
    for i in range(n):
        # geometric by inversion with the seeded generator: P(k) = p (1 − p)^(k−1), k ≥ 1
        u = torch.rand((), generator=generator).item()
        points = min(MAX_POINTS, 1 + int(math.log(1.0 - u) / math.log(1.0 - POINTS_P)))
        ys = torch.randint(0, height, (points,), generator=generator).tolist()
        xs = torch.randint(0, width, (points,), generator=generator).tolist()
        halves = torch.randint(0, MAX_HALF_SIDE + 1, (points,), generator=generator).tolist()
        for y, x, r in zip(ys, xs, halves):
            top, bottom, left, right = max(0, y - r), min(height, y + r + 1), max(0, x - r), min(width, x + r + 1)
            colour = ab[i, :, top:bottom, left:right].mean(dim=(1, 2))
            planes[i, :2, top:bottom, left:right] = colour[:, None, None]
            planes[i, 2, top:bottom, left:right] = 1.0
    return planes
