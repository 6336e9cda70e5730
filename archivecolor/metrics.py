"""Image-quality figures on RGB batches (N, 3, H, W) in [0, 1]: PSNR, SSIM, colourfulness."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0), shape (N,)."""
    mse = ((pred - truth) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10.0 * torch.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: Gaussian 11×11, σ 1.5, K1 0.01, K2 0.03), mean over channels, (N,)."""
    c1, c2 = 0.01**2, 0.03**2
    n, c = pred.shape[:2]
    window = _gaussian_window(device=pred.device).expand(c, 1, -1, -1)

    def blur(x):
        return F.conv2d(x, window, groups=c)  # valid region only, as skimage with gaussian weights crops

    mu_p, mu_t = blur(pred), blur(truth)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(truth * truth) - mu_t**2
    cov = blur(pred * truth) - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(1)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness on the 0–255 scale, (N,). Grey is 0; vivid photos ~40–100."""
    r, g, b = (rgb * 255.0).unbind(1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    sigma = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mu = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return sigma + 0.3 * mu
