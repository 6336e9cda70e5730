"""Scene cuts from luminance alone: a change of picture, not of brightness, against the shot's own motion.

Each frame is reduced to a 16 × 16 grid of block means of L* and a histogram of its L* made
independent of exposure (mean and spread removed). Two frames of one shot keep their layout and
their tonal shape even as the light changes, so the change score is the larger of 1 − the
correlation of the two grids (0 for the same layout, about 1 for unrelated pictures) and the
distance of the two normalised histograms (0–2, at TONE_WEIGHT). A plain histogram, which cut detection used
before, cannot tell two shots of one room apart (their histograms match) and takes a flash for
a cut (its histogram moves); this score does neither. A score marks a cut when it passes
`threshold` and is RATIO times the shot's recent scores (as PySceneDetect's adaptive detector
does), so a pan or a shaking camera, whose every frame changes a little, does not cut at every
frame. Frames with next to no structure (black, white, the bottom of a fade) are skipped: the
next picture is compared with the last one seen before them, so a fade out and in is one cut.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

GRID = 16  # blocks per side of the layout a frame is reduced to
TONE_SIDE = 64  # the frame is scaled to this square for its normalised histogram
TONE_BINS, TONE_RANGE = 24, 3.0  # histogram of (L* − mean) / spread over ±3 spreads
# the tone distance counts at this weight: a flash that burns a quarter of the frame to white moves
# it by 0.6 (weighted 0.24, under the threshold); a smooth shot cut to a hard-lit one moves it by 1.5
TONE_WEIGHT = 0.4
FLAT_STD = 2.0  # L* units: a grid whose block means vary less than this has no layout to compare
RATIO = 4.0  # a cut's score is at least this × the mean score of the shot's recent frames
RECENT = 12  # frames whose scores make the shot's recent motion
MOTION_FLOOR = 0.02  # the recent motion taken never below this, so a still shot's noise does not make every change a cut


def layout(L: np.ndarray) -> np.ndarray:
    """(GRID, GRID) float64 block means of L* (any size of L)."""
    return cv2.resize(np.asarray(L, np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA).astype(np.float64)


def tone(L: np.ndarray) -> np.ndarray:
    """The shape of the frame's L* histogram with exposure taken out: (TONE_BINS,) summing to 1."""
    small = cv2.resize(np.asarray(L, np.float32), (TONE_SIDE, TONE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float64)
    z = (small - small.mean()) / max(small.std(), 1e-6)
    hist = np.histogram(np.clip(z, -TONE_RANGE, TONE_RANGE), bins=TONE_BINS, range=(-TONE_RANGE, TONE_RANGE))[0]
    return hist / hist.sum()


def change(a: np.ndarray, b: np.ndarray) -> float:
    """1 − Pearson correlation of two layouts: 0 same picture (whatever its brightness), ~1 unrelated, up to 2."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float(1.0 - (a * b).sum() / denominator) if denominator > 0 else 0.0


class CutDetector:
    """Feed frames in order: detector(L) is True on the first frame of a new shot."""

    def __init__(self, threshold: float = 0.3):
        self.threshold = threshold  # the change score (0–2) a cut must pass
        self.reset()

    def reset(self) -> None:
        self.reference = None  # (layout, tone) of the last frame with structure
        self.recent: deque[float] = deque(maxlen=RECENT)

    def __call__(self, L: np.ndarray) -> bool:
        grid = layout(L)
        if grid.std() < FLAT_STD:
            return False  # nothing to compare: keep the last picture seen as the reference
        signature = (grid, tone(L))
        if self.reference is None:
            self.reference = signature
            return False
        score = max(change(self.reference[0], grid), TONE_WEIGHT * float(np.abs(self.reference[1] - signature[1]).sum()))
        motion = max(MOTION_FLOOR, float(np.mean(self.recent)) if self.recent else MOTION_FLOOR)
        cut = score > self.threshold and score > RATIO * motion
        self.reference = signature
        if cut:
            self.recent.clear()  # a new shot: its own motion from now on
        else:
            self.recent.append(score)
        return cut
