"""Scene cuts on clips built here: found between shots of one histogram, not on a pan, a flash or within a fade."""

import numpy as np
import pytest

from archivecolor.video.cuts import CutDetector, change, layout
from archivecolor.video.smooth import SmoothingConfig, TemporalSmoother

H, W = 144, 256


def _texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A photo-like L* field: smooth blobs at a few scales, 5-95."""
    import cv2

    rng = np.random.default_rng(seed)
    field = np.zeros((h, w), np.float32)
    for scale in (4, 8, 16, 32):
        noise = rng.standard_normal((h // scale + 2, w // scale + 2)).astype(np.float32)
        field += cv2.resize(noise, (w + 2 * scale, h + 2 * scale), interpolation=cv2.INTER_CUBIC)[scale : scale + h, scale : scale + w] * scale
    field = (field - field.min()) / (field.max() - field.min())
    return 5 + 90 * field


def _shot(still: np.ndarray, frames: int, rng, drift: int = 1) -> list[np.ndarray]:
    """A shot: the picture drifting a pixel a frame (a slow move), with film grain."""
    return [np.clip(np.roll(still, i * drift, axis=1) + rng.normal(0, 1.5, still.shape), 0, 100).astype(np.float32) for i in range(frames)]


def _detect(frames) -> list[int]:
    detector = CutDetector()
    return [i for i, L in enumerate(frames) if detector(L)]


def test_a_hard_cut_between_two_shots_with_the_same_histogram_is_found():
    rng = np.random.default_rng(0)
    first = _texture(1)
    # the second shot is the first one's very pixels, rearranged: an identical histogram
    second = first.reshape(H, W // 16, 16).transpose(1, 0, 2)[rng.permutation(W // 16)].transpose(1, 0, 2).reshape(H, W)
    second = np.ascontiguousarray(np.flipud(second))
    assert np.array_equal(np.sort(first.ravel()), np.sort(second.ravel()))
    frames = _shot(first, 30, rng) + _shot(second, 30, rng)
    assert _detect(frames) == [30]


def test_a_slow_pan_is_not_a_cut():
    rng = np.random.default_rng(1)
    wide = _texture(2, H, 4 * W)
    frames = [np.clip(wide[:, 3 * i : 3 * i + W] + rng.normal(0, 1.5, (H, W)), 0, 100).astype(np.float32) for i in range(200)]
    assert _detect(frames) == []


def test_a_flash_is_not_a_cut():
    rng = np.random.default_rng(2)
    frames = _shot(_texture(3), 40, rng)
    frames[20] = np.clip(frames[20] * 1.5 + 10, 0, 100)  # a flashbulb
    frames[21] = np.clip(frames[21] * 1.2 + 4, 0, 100)  # and its afterglow
    assert _detect(frames) == []


def test_a_fade_out_and_in_is_one_transition_not_twenty():
    rng = np.random.default_rng(3)
    a, b = _shot(_texture(4), 30, rng), _shot(_texture(5), 30, rng)
    fade_out = [a[-1] * (1 - k / 15) for k in range(1, 16)]  # to black over 15 frames
    fade_in = [b[0] * (k / 15) for k in range(1, 16)]
    frames = a + fade_out + fade_in + b
    cuts = _detect(frames)
    assert len(cuts) == 1 and 30 <= cuts[0] <= 75


def test_the_change_score_ignores_brightness_and_sees_the_layout():
    picture = _texture(6)
    assert change(layout(picture), layout(picture * 0.6 + 20)) < 1e-6  # the same picture, darker
    assert change(layout(picture), layout(_texture(7))) > 0.5  # another picture


def test_the_smoother_lists_the_cut_frames_and_restarts_there():
    rng = np.random.default_rng(4)
    frames = _shot(_texture(8), 20, rng) + _shot(_texture(9), 20, rng)
    smoother = TemporalSmoother(SmoothingConfig(mode="ema", strength=0.9))
    outs = []
    for i, L in enumerate(frames):
        ab = np.full((H, W, 2), 30.0 if i < 20 else -30.0, np.float32)
        outs.append(smoother(L, ab))
    assert smoother.cut_frames == [20] and smoother.cuts == 1
    assert np.allclose(outs[20], -30.0)  # the new shot's colour at once, not faded in from the last shot's
