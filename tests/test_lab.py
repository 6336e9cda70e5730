import numpy as np
import pytest
import torch
from skimage import color as skcolor

from archivecolor import lab

CORNERS = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=np.uint8)


def test_srgb_to_lab_matches_skimage_uint8_random_and_corners():
    rng = np.random.default_rng(1)
    rgb = np.concatenate([rng.integers(0, 256, (5000, 3), dtype=np.uint8), CORNERS])
    ours = lab.srgb_to_lab(rgb)
    assert ours.dtype == np.float32
    assert np.abs(ours - skcolor.rgb2lab(rgb)).max() < 0.01


def test_srgb_to_lab_uint16_keeps_full_depth():
    rng = np.random.default_rng(2)
    rgb16 = rng.integers(0, 65536, (5000, 3), dtype=np.uint16)
    ref = skcolor.rgb2lab(rgb16.astype(np.float64) / 65535.0)
    assert np.abs(lab.srgb_to_lab(rgb16) - ref).max() < 0.01
    # Two 16-bit levels that share one 8-bit level still get different L.
    a = lab.srgb_to_lab(np.array([[30000] * 3], np.uint16))[0, 0]
    b = lab.srgb_to_lab(np.array([[30100] * 3], np.uint16))[0, 0]
    assert b - a > 0.05


def test_lab_to_srgb_matches_skimage_and_round_trips():
    rng = np.random.default_rng(3)
    rgb = np.concatenate([rng.integers(0, 256, (5000, 3), dtype=np.uint8), CORNERS])
    lab_ref = skcolor.rgb2lab(rgb)
    assert np.abs(lab.lab_to_srgb(lab_ref) - skcolor.lab2rgb(lab_ref)).max() * 100 < 0.01
    back = lab.lab_to_srgb(lab.srgb_to_lab(rgb)) * 255.0
    assert np.abs(back - rgb).max() < 0.01  # far below one 8-bit level


def test_torch_matches_numpy():
    rng = np.random.default_rng(4)
    rgb = rng.random((2, 3, 16, 16), dtype=np.float32)
    t = lab.srgb_to_lab_torch(torch.from_numpy(rgb))
    n = lab.srgb_to_lab(rgb.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert np.abs(t.numpy() - n).max() < 1e-3
    back = lab.lab_to_srgb_torch(t).numpy()
    assert np.abs(back - rgb).max() < 1e-4


def test_grey_luminance_equals_lab_of_grey_rgb():
    g8 = np.arange(256, dtype=np.uint8)
    assert np.abs(lab.grey_to_luminance(g8) - lab.srgb_to_lab(np.stack([g8] * 3, -1))[:, 0]).max() < 1e-3
    g16 = np.arange(0, 65536, 97, dtype=np.uint16)
    assert np.abs(lab.grey_to_luminance(g16) - skcolor.rgb2lab(np.stack([g16 / 65535.0] * 3, -1))[:, 0]).max() < 0.01


@pytest.mark.parametrize("value", [0.0, 37.5, 100.0])
def test_l_scaling_round_trip_and_range(value):
    n = lab.normalize_l(np.float32(value))
    assert -1.0 <= n <= 1.0
    assert abs(lab.denormalize_l(n) - value) < 1e-5


def test_ab_scaling_covers_the_srgb_gamut():
    rgb = np.stack(np.meshgrid(*[np.arange(0, 256, 15, dtype=np.uint8)] * 3), -1).reshape(-1, 3)
    ab = lab.normalize_ab(lab.srgb_to_lab(np.concatenate([rgb, CORNERS]))[:, 1:])
    assert np.abs(ab).max() <= 1.0
    assert np.abs(ab).max() > 0.9  # the scale is not wastefully loose


def test_integer_fast_paths_equal_the_reference():
    rng = np.random.default_rng(6)
    rgb8 = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb16 = rng.integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    assert np.abs(lab.srgb_to_luminance(rgb8) - skcolor.rgb2lab(rgb8)[..., 0]).max() < 0.01
    assert np.abs(lab.srgb_to_luminance(rgb16) - skcolor.rgb2lab(rgb16 / 65535.0)[..., 0]).max() < 0.01
    grey16 = rgb16[..., 0]
    assert np.abs(lab.grey_to_luminance(grey16) - skcolor.rgb2lab(np.stack([grey16 / 65535.0] * 3, -1))[..., 0]).max() < 0.01


def test_integer_lab_path_equals_the_float_path_for_every_shape():
    """Integer samples take a table + cv2 path (training's data loading); floats the general one."""
    rng = np.random.default_rng(7)
    big = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    crop = big[3:35, 5:45][:, ::-1]  # a flipped crop: not contiguous
    for rgb in (crop, big[0], rng.integers(0, 65536, (2, 3, 4, 3), dtype=np.uint16), np.zeros((0, 3), np.uint8)):
        fast = lab.srgb_to_lab(rgb)
        peak = 255.0 if rgb.dtype == np.uint8 else 65535.0
        reference = lab.srgb_to_lab((rgb / peak).astype(np.float32))
        assert fast.shape == rgb.shape and fast.dtype == np.float32
        assert np.allclose(fast, reference, rtol=0, atol=1e-3)


def test_float32_planes_stay_float32_and_exact():
    """The formulas' coefficients must not promote float32 planes to float64 (NumPy 2 keeps a
    NumPy scalar's float64): that cost 2.7× the time of Lab -> sRGB on a 720p frame."""
    rng = np.random.default_rng(8)
    L = rng.uniform(0, 100, (40, 50)).astype(np.float32)
    a, b = (rng.uniform(-80, 80, (40, 50)).astype(np.float32) for _ in range(2))
    rgb32 = lab._lab_to_rgb(L, a, b, lab._NumpyOps)
    rgb64 = lab._lab_to_rgb(L.astype(np.float64), a.astype(np.float64), b.astype(np.float64), lab._NumpyOps)
    for c32, c64 in zip(rgb32, rgb64):
        assert c32.dtype == np.float32
        assert np.abs(c32 - c64).max() < 2e-6  # an eighth of a 16-bit level
    lab32 = lab._rgb_to_lab(*(np.clip(c, 0, 1) for c in rgb32), lab._NumpyOps)
    assert all(p.dtype == np.float32 for p in lab32)
