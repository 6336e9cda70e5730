"""Hints made to hold: each hint's colour spread over the region it belongs to, from the automatic colour.

A generator trained with hints uses them as far as its training taught it; on 2 CPU cores that
is not far, and spreading what it made of them did worse than spreading from its automatic
colour (Colorizer._hints). So each hint's difference from the automatic colour under it is
carried out from the hint along the picture's luminance, edge-aware: it fades with distance and
stops at edges, as scribble propagation does (Levin et al. 2004, "Colorization using
Optimization"), here with the recursive edge-aware filter of Gastal and Oliveira (2011, "Domain
Transform for Edge-Aware Image and Video Processing"). At a hint the colour is the hint's; far
from every hint, or across a strong edge, it is the network's. L is never changed.
"""

from __future__ import annotations

import math

# How far a hint reaches along even luminance, in render pixels (the filter's spatial sigma: a
# hint's weight is half at about a quarter of it, 0.02 at it), and the L* step that counts as an
# edge (its range sigma: a step of EDGE_L costs as much as SPREAD_PIXELS of distance). Chosen on
# 60 of the 200 held-out validation photos of the default model's run with 10 hints from the
# truth: CIEDE2000 10.03 without spreading; reach 120: 8.35, 300: 8.07, 600: 7.98 (edge 16); a
# weaker edge (30 L*) scored 7.46 and reaching across the whole picture 7.3, but they tint far
# beyond the thing a hint is on, where an archivist's hint is about one thing.
# Guiding the edges by the predicted a/b as well as L (the network's sense of where objects
# end) scored worse on the same photos: 8.73 with a/b weighted as L, 9.09 at twice (2026-12-02).
# Edges are measured on L blurred by TEXTURE_PIXELS (a Gaussian's sigma, render pixels): a blur
# keeps a real edge's whole step (the filter adds up |ΔL| along its path, and a ramp adds up to
# the step) but flattens texture, whose many small steps had stopped a hint inside grass, fabric
# or foliage. Spreading from the automatic colour, 10 truth hints, the shipped model: on the
# first 40 validation photos CIEDE2000 7.84 unblurred; sigma 2.8 / 4 / 6 / 8 / 10 / 16 / 24 px:
# 7.35 / 7.11 / 6.86 / 6.73 / 6.70 / 6.90 / 7.15; no edges at all 7.87; then checked on the other
# 160: 7.70 unblurred, 6.84 at 8 px (2026-12-02). 8 rather than 10: the smaller blur keeps
# smaller things apart, for 0.03.
SPREAD_PIXELS = 300.0
EDGE_L = 16.0
TEXTURE_PIXELS = 8.0
ITERATIONS = 2
GRID = 4  # the spread is computed at 1/GRID of the render size, then resized: colour is smooth


def recursive_filter(planes, L, sigma_s: float, sigma_r: float, iterations: int = ITERATIONS):
    """Edge-aware smoothing of `planes` (N, H, W) guided by `L` (H, W): the domain transform's
    recursive filter, separable passes left, right, down and up, `iterations` times."""
    import numpy as np

    out = planes.astype(np.float32, copy=True)
    ratio = sigma_s / sigma_r
    dx = 1.0 + ratio * np.abs(np.diff(L, axis=1))  # (H, W-1) distances in the transformed domain
    dy = 1.0 + ratio * np.abs(np.diff(L, axis=0))  # (H-1, W)
    for k in range(iterations):
        sigma_k = sigma_s * math.sqrt(3.0) * 2 ** (iterations - k - 1) / math.sqrt(4**iterations - 1)
        a = math.exp(-math.sqrt(2.0) / sigma_k)
        wx, wy = (a**dx).astype(np.float32), (a**dy).astype(np.float32)
        for x in range(1, out.shape[2]):
            out[:, :, x] += wx[:, x - 1] * (out[:, :, x - 1] - out[:, :, x])
        for x in range(out.shape[2] - 2, -1, -1):
            out[:, :, x] += wx[:, x] * (out[:, :, x + 1] - out[:, :, x])
        for y in range(1, out.shape[1]):
            out[:, y, :] += wy[y - 1] * (out[:, y - 1, :] - out[:, y, :])
        for y in range(out.shape[1] - 2, -1, -1):
            out[:, y, :] += wy[y] * (out[:, y + 1, :] - out[:, y, :])
    return out


def spread_hints(L_render, ab, boxes: list, spread: float = SPREAD_PIXELS, edge: float = EDGE_L):
    """`ab` (rh, rw, 2) with each hint's colour carried over its region. `boxes`: per hint
    (top, bottom, left, right, a, b) at render size (hints.hint_boxes)."""
    import cv2
    import numpy as np

    if not boxes:
        return ab
    h, w = L_render.shape
    gh, gw = max(1, round(h / GRID)), max(1, round(w / GRID))
    L_small = cv2.resize(L_render.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    L_small = cv2.GaussianBlur(L_small, (0, 0), TEXTURE_PIXELS / GRID)  # texture flattened, edges' steps kept
    masks = np.zeros((len(boxes), gh, gw), np.float32)
    deltas = np.zeros((len(boxes), 2), np.float32)
    centres = []
    for i, (top, bottom, left, right, a, b) in enumerate(boxes):
        deltas[i] = (a - ab[top:bottom, left:right, 0].mean(), b - ab[top:bottom, left:right, 1].mean())
        y0, x0 = min(gh - 1, int(top / GRID)), min(gw - 1, int(left / GRID))
        y1, x1 = max(y0 + 1, min(gh, math.ceil(bottom / GRID))), max(x0 + 1, min(gw, math.ceil(right / GRID)))
        masks[i, y0:y1, x0:x1] = 1.0
        centres.append(((y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2))
    reach = recursive_filter(masks, L_small, spread / GRID, edge)
    for i, (cy, cx) in enumerate(centres):  # 1 at the hint, fading with distance along the picture
        reach[i] /= max(float(reach[i, cy, cx]), 1e-6)
    np.clip(reach, 0.0, 1.0, out=reach)
    total = reach.sum(axis=0)
    correction = np.einsum("nhw,nc->hwc", reach, deltas) / np.maximum(total, 1.0)[..., None]
    correction = cv2.resize(correction, (w, h), interpolation=cv2.INTER_LINEAR)
    return (ab + correction).astype(np.float32)
