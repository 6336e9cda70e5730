"""Temporal a/b smoothing at render size: pure array code, one frame at a time.

Only a/b are smoothed (L stays the source's). The state resets at scene cuts, detected from
L alone (so black-and-white footage works; see cuts.py). After blending, each frame's mean chroma is
brought back to that of the blended chroma magnitudes, so averaging disagreeing hues cannot win
by desaturating. Last, a frame's step from the one before is
shortened where it would change more than the raw predictions did (on the pixels whose L held
still, and in its a/b histograms): smoothing never adds flicker that the model did not make,
on either figure of temporal.py between consecutive frames.
`flow` warps the previous a/b along the optical flow (OpenCV Farnebäck) before blending, and
ignores it where the warped previous L disagrees with the current L (occlusion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .cuts import CutDetector
from .temporal import STATIC_L_DELTA, ab_histograms, js_divergence

SMOOTHING_MODES = ("none", "ema", "flow")
# Farnebäck's settings after the images: pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags
FARNEBACK_ARGS = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
SETTLED_WEIGHT = 0.01  # the smoothing has settled once frames older than this hold less weight
MAX_SETTLE_FRAMES = 120  # frames of priming at most, however strong the smoothing


@dataclass(frozen=True)
class SmoothingConfig:
    mode: str = "ema"  # "none", "ema" (exponential moving average) or "flow" (motion-compensated)
    strength: float = 0.7  # weight of the past in [0, 1): higher is steadier, slower to follow real change
    # the change of picture (0–2: 1 − correlation of the frames' 16 × 16 luminance layouts; unrelated
    # pictures score about 1) a scene cut must pass, besides 4 × the shot's recent motion (cuts.py)
    cut_threshold: float = 0.3
    occlusion_threshold: float = 6.0  # L* units: warped previous frame differing more is not trusted (flow)

    def __post_init__(self):
        if self.mode not in SMOOTHING_MODES:
            raise ValueError(f"smoothing must be one of {SMOOTHING_MODES}")
        if not 0.0 <= self.strength < 1.0:
            raise ValueError("smoothing strength must be in [0, 1)")

    def settle_frames(self) -> int:
        """Frames after which the state no longer depends on where smoothing started (past weight < 1 %):
        a chunk is primed with this many frames before it, so its colour continues the chunk before."""
        if self.mode == "none" or self.strength == 0:
            return 0
        return min(MAX_SETTLE_FRAMES, math.ceil(math.log(SETTLED_WEIGHT) / math.log(self.strength)))


def luminance_8bit(L: np.ndarray) -> np.ndarray:
    """L* (0–100) as the 8-bit picture optical flow takes."""
    return np.clip(L * 2.55, 0, 255).astype(np.uint8)


def chroma(ab: np.ndarray) -> np.ndarray:
    """C* per pixel: (h, w, 2) -> (h, w)."""
    return np.sqrt(np.einsum("hwc,hwc->hw", ab, ab))


def mean_chroma(ab: np.ndarray) -> float:
    return float(chroma(ab).mean())


class TemporalSmoother:
    """Feed frames in order: smoothed_ab = smoother(L_render, ab). Call reset() between films."""

    def __init__(self, config: SmoothingConfig = SmoothingConfig()):
        self.config = config
        self.cuts = 0
        self.cut_frames: list[int] = []  # frame numbers (counted from the first frame fed) where a new shot began
        self.frame = 0
        self.detector = CutDetector(config.cut_threshold)
        self.reset()

    def reset(self) -> None:
        self.prev_L = None
        self.prev_ab = None
        self.prev_raw = None  # the previous frame's prediction, before smoothing
        self.hists = None  # (raw, output) a/b histograms of the previous frame
        self.target_chroma = 0.0
        self.detector.reset()

    def __call__(self, L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """L: (h, w) L* at render size; ab: (h, w, 2) predicted a*, b*. Returns the smoothed ab."""
        self.frame += 1
        if self.config.mode == "none" or self.config.strength == 0:
            return ab
        cut = self.detector(L)
        fresh = self.prev_ab is None or self.prev_ab.shape != ab.shape
        if not fresh and cut:
            self.cuts += 1
            self.cut_frames.append(self.frame - 1)
            fresh = True
        if fresh:
            out = ab
            self.target_chroma = mean_chroma(ab)
            self.hists = None
        else:
            past, trust = self.prev_ab, np.ones(L.shape, np.float32)
            if self.config.mode == "flow":
                past, trust = self._warp_previous(L)
            weight = (self.config.strength * trust)[..., None]
            out = weight * past + (1.0 - weight) * ab
            # The blend of the two chroma magnitudes is what the frame would hold had the hues
            # agreed: where they disagree the blend of the vectors is greyer, and is scaled back.
            # Where they agree (or the past is not trusted) the factor is 1, so a steady shot or
            # a thing just come into view keeps its colour exactly, with no lag.
            self.target_chroma = float((weight[..., 0] * chroma(past) + (1.0 - weight[..., 0]) * chroma(ab)).mean())
            now = mean_chroma(out)
            if now > 1e-3:
                out = out * min(self.target_chroma / now, 2.0)  # keep the predictions' colourfulness
            out = self._no_more_change_than_raw(L, ab, out)
        self.prev_L, self.prev_ab, self.prev_raw = L, out.astype(np.float32), ab
        return self.prev_ab

    def _no_more_change_than_raw(self, L: np.ndarray, ab: np.ndarray, out: np.ndarray) -> np.ndarray:
        """`out`, its step from the previous output shortened (toward no step) until it changes
        no more than the raw predictions did: in mean |Δab| over the pixels whose L held still
        (temporal.py's static Δab) and in the a/b histograms' divergence (CDC at one frame).
        The blend and the colourfulness hold can each add change where the model made little."""
        step = out - self.prev_ab
        alpha = 1.0
        static = np.abs(L - self.prev_L) < STATIC_L_DELTA
        if static.any():
            raw_step = ab - self.prev_raw
            moved = float(np.sqrt(np.einsum("hwc,hwc->hw", step, step))[static].mean())
            allowed = float(np.sqrt(np.einsum("hwc,hwc->hw", raw_step, raw_step))[static].mean())
            if moved > allowed:
                alpha = 0.999 * allowed / moved
        before, previous = self.hists or (ab_histograms(self.prev_raw), ab_histograms(self.prev_ab))
        raw_hists = ab_histograms(ab)
        allowed_js = 0.5 * (js_divergence(before[0], raw_hists[0]) + js_divergence(before[1], raw_hists[1]))
        for _ in range(8):
            hists = ab_histograms(self.prev_ab + alpha * step)
            if 0.5 * (js_divergence(previous[0], hists[0]) + js_divergence(previous[1], hists[1])) <= allowed_js:
                break
            alpha *= 0.5
        else:
            alpha, hists = 0.0, previous
        self.hists = (raw_hists, hists)
        return out if alpha == 1.0 else self.prev_ab + alpha * step

    def prime(self, L: np.ndarray, ab: np.ndarray) -> None:
        """Carry the state through a frame that is not written now (before a chunk, or done in an
        earlier run): its scene cut was counted where it was written."""
        cuts, cut_frames = self.cuts, list(self.cut_frames)
        self(L, ab)
        self.cuts, self.cut_frames = cuts, cut_frames

    def _warp_previous(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous a/b moved to where its pixels are now, and where that can be trusted."""
        # flow from the current frame to the previous one: for each current pixel, where it was
        flow = cv2.calcOpticalFlowFarneback(luminance_8bit(L), luminance_8bit(self.prev_L), *FARNEBACK_ARGS)
        h, w = L.shape
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        warped_ab = cv2.remap(self.prev_ab, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_L = cv2.remap(self.prev_L.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        trust = (np.abs(warped_L - L) < self.config.occlusion_threshold).astype(np.float32)
        return warped_ab, trust
