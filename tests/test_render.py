import cv2
import numpy as np
import pytest

from archivecolor.lab import srgb_to_lab
from archivecolor.render import (
    ASPECT_SNAP,
    MAX_RENDER_ASPECT,
    _RowInterpolator,
    ab_from_network,
    full_luminance,
    network_input,
    plan,
    recombine_into,
    render_luminance,
)


@pytest.mark.parametrize("full_hw", [(480, 320), (321, 999), (100, 100), (3000, 400), (720, 1280), (480, 640), (1080, 1998)])
def test_plan_keeps_aspect_and_pads_to_the_multiple(full_hw):
    g = plan(full_hw, 256, 64)
    assert min(g.render_hw) == 256
    ratio_in = full_hw[0] / full_hw[1]
    ratio_out = g.render_hw[0] / g.render_hw[1]
    assert abs(ratio_in - ratio_out) / ratio_in <= ASPECT_SNAP + 0.005
    assert all(p % 64 == 0 and p >= r and p - r < 64 for p, r in zip(g.padded_hw, g.render_hw))


@pytest.mark.parametrize("full_hw", [(3000, 40), (12, 5000), (20, 6000), (100_000, 300)])
def test_a_strip_beyond_the_aspect_limit_is_scaled_by_its_long_side(full_hw):
    g = plan(full_hw, 256, 64)
    assert max(g.render_hw) == MAX_RENDER_ASPECT * 256 and min(g.render_hw) < 256  # not 256 × 106 667 for 12 × 5000
    ratio_in = full_hw[0] / full_hw[1]
    ratio_out = g.render_hw[0] / g.render_hw[1]
    assert abs(ratio_in - ratio_out) / ratio_in <= 0.5 / min(g.render_hw) + 0.01  # only the short side's rounding
    assert g.padded_hw[0] * g.padded_hw[1] <= MAX_RENDER_ASPECT * 256 * 64  # padded to one multiple at most


def test_plan_snaps_a_side_near_the_multiple_and_pads_the_rest():
    assert plan((720, 1280), 256, 64).render_hw == (256, 448) == plan((720, 1280), 256, 64).padded_hw  # 455: 1.5 % off
    four_three = plan((480, 640), 256, 64)
    assert four_three.render_hw == (256, 341) and four_three.padded_hw == (256, 384)  # 320 would be 6 % off: padded
    assert plan((1080, 1998), 256, 64).padded_hw == (256, 512)  # 1.85:1, 474: 7 % from 512, 5.5 % from 448


def test_network_input_is_padded_not_stretched_and_cropped_back():
    L = np.tile(np.linspace(0, 100, 300, dtype=np.float32), (200, 1))
    g = plan(L.shape, 128, 64)
    L_render = render_luminance(L, g)
    x = network_input(L_render, g)
    assert x.shape == (1, *g.padded_hw)
    rh, rw = g.render_hw
    assert np.allclose(x[0, :rh, :rw], L_render / 50 - 1, atol=1e-6)
    ab = ab_from_network(np.zeros((2, *g.padded_hw), np.float32) + 0.5, g)
    assert ab.shape == (rh, rw, 2) and np.allclose(ab, 55.0)


def test_strip_upsampling_equals_opencv_bilinear():
    rng = np.random.default_rng(0)
    small = rng.normal(size=(37, 53, 2)).astype(np.float32)
    interp = _RowInterpolator(small, (411, 600))
    strips = np.concatenate([interp.rows(s, min(411, s + 100)) for s in range(0, 411, 100)])
    reference = cv2.resize(small, (600, 411), interpolation=cv2.INTER_LINEAR)
    assert np.abs(strips - reference).max() < 1e-4


def test_recombine_keeps_full_resolution_luminance():
    rng = np.random.default_rng(1)
    grey = (rng.random((300, 200)) * 200 + 30).astype(np.uint8)
    L = full_luminance(grey)
    ab = np.full((30, 20, 2), 8.0, np.float32)  # mild, in-gamut colour
    out = np.empty((300, 200, 3), np.uint8)
    recombine_into(out, L, ab, strip_rows=64)
    L_out = srgb_to_lab(out)[..., 0]
    assert np.abs(L_out - L).mean() < 0.3  # every pixel's own L survives (8-bit quantisation aside)


def test_fast_8_bit_recombination_matches_the_exact_formulas():
    """8-bit frames go through OpenCV's Lab -> RGB: within one level of lab.lab_to_srgb, out-of-gamut colour included."""
    from archivecolor.lab import lab_to_srgb

    rng = np.random.default_rng(3)
    L = rng.uniform(0, 100, (240, 320)).astype(np.float32)
    ab_small = rng.uniform(-90, 90, (24, 32, 2)).astype(np.float32)  # far outside sRGB in places
    out = np.empty((240, 320, 3), np.uint8)
    recombine_into(out, L, ab_small, strip_rows=100)
    ab = cv2.resize(ab_small, (320, 240), interpolation=cv2.INTER_LINEAR)
    exact = (lab_to_srgb(np.dstack([L, ab])) * 255 + 0.5).astype(np.uint8)
    diff = np.abs(out.astype(int) - exact)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_fast_16_bit_recombination_matches_the_exact_formulas():
    """16-bit outputs take lab.lab_to_srgb16_into: within one code of lab.lab_to_srgb, out-of-gamut colour
    and the dark (linear) segment of the sRGB curve included."""
    from archivecolor.lab import lab_to_srgb

    rng = np.random.default_rng(4)
    L = np.concatenate([rng.uniform(0, 100, (200, 320)), rng.uniform(0, 3, (40, 320))]).astype(np.float32)
    ab_small = rng.uniform(-90, 90, (24, 32, 2)).astype(np.float32)
    out = np.empty((240, 320, 4), np.uint16)
    out[..., 3] = 7  # alpha, left as it is
    recombine_into(out, L, ab_small, strip_rows=100)
    ab = cv2.resize(ab_small, (320, 240), interpolation=cv2.INTER_LINEAR)
    exact = (lab_to_srgb(np.dstack([L, ab])) * 65535 + 0.5).astype(np.uint16)
    diff = np.abs(out[..., :3].astype(int) - exact)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01 and (out[..., 3] == 7).all()
    assert (exact < 60).mean() > 0.01  # the dark segment was exercised


def test_recombine_writes_16_bit():
    L = np.full((50, 60), 50.0, np.float32)
    out = np.empty((50, 60, 3), np.uint16)
    recombine_into(out, L, np.zeros((5, 6, 2), np.float32))
    assert out.dtype == np.uint16 and abs(int(out[0, 0, 0]) - int(0.4663 * 65535)) < 100


def test_guided_upsampling_bleeds_less_across_an_edge():
    # Left half dark, right half bright; truth: left red-ish, right blue-ish. The prediction is
    # made at 1/8 resolution, so plain bilinear smears colour across the edge.
    H, W = 256, 256
    L = np.where(np.arange(W) < 131, 30.0, 80.0).astype(np.float32)[None].repeat(H, 0)
    truth_ab = np.where(np.arange(W) < 131, 40.0, -40.0).astype(np.float32)[None, :, None].repeat(H, 0).repeat(2, 2)
    small_L = cv2.resize(L, (32, 32), interpolation=cv2.INTER_AREA)
    small_ab = cv2.resize(truth_ab, (32, 32), interpolation=cv2.INTER_AREA)

    def ab_error(mode):
        out = np.empty((H, W, 3), np.uint8)
        recombine_into(out, L, small_ab, small_L, mode=mode)
        ab = srgb_to_lab(out)[..., 1:]
        return np.abs(ab - truth_ab)[:, 110:150].mean()

    assert ab_error("guided") < 0.6 * ab_error("bilinear")


def test_full_luminance_grey_and_rgb_agree():
    grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    rgb = np.dstack([grey] * 3)
    assert np.abs(full_luminance(grey, strip_rows=5) - full_luminance(rgb, strip_rows=7)).max() < 1e-3
