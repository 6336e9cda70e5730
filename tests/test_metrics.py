import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from archivecolor.metrics import ciede2000, colourfulness, psnr, ssim


def test_psnr_and_ssim_match_skimage():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 40, 50)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    for i in range(2):
        x, y = a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy()
        assert abs(psnr(a, b)[i].item() - peak_signal_noise_ratio(x, y, data_range=1)) < 1e-3
        reference = structural_similarity(x, y, channel_axis=2, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert abs(ssim(a, b)[i].item() - reference) < 1e-4


def test_ciede2000_matches_skimage_including_grey_and_equal_pairs():
    rng = np.random.default_rng(0)
    a, b = rgb2lab(rng.random((3000, 3))), rgb2lab(rng.random((3000, 3)))
    b[:100] = a[:100]
    b[100:200, 1:] = 0
    a[200:300, 1:] = 0
    assert np.abs(ciede2000(a, b) - deltaE_ciede2000(a, b)).max() < 1e-6


def test_colourfulness_is_zero_for_grey_and_grows_with_saturation():
    grey = torch.full((1, 3, 8, 8), 0.5)
    assert colourfulness(grey).item() < 1e-4
    dull = torch.tensor([0.6, 0.5, 0.4]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone()
    dull[..., :4] = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    vivid = (dull - 0.5) * 4 + 0.5
    assert colourfulness(vivid).item() > 3 * colourfulness(dull).item() > 0
