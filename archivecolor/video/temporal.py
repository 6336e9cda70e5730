"""Temporal-consistency figures for colorized video, from a/b at render size.

CDC (colour distribution consistency): Jensen–Shannon divergence between the a (and b)
histograms of frames t and t+k, for k = 1, 2, 4, averaged. Static Δab: mean |Δab| between
consecutive frames over pixels whose L barely changed (nothing moved, so colour should not).
Lower is steadier for both.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

CDC_OFFSETS = (1, 2, 4)
AB_HIST_BINS = 64
AB_RANGE = (-110.0, 110.0)
STATIC_L_DELTA = 1.0  # L* units: a pixel this steady counts as static


def uniform_histogram(values: np.ndarray, bins: int, low: float, high: float) -> np.ndarray:
    """Counts in `bins` equal bins over [low, high] (values beyond it in the end bins).

    Bin index + bincount: np.histogram's counts (up to float rounding at a bin edge) at 40 % of
    its time; the meters and the smoother run on the video pipeline's main thread, per frame.
    """
    index = ((values - low) * (bins / (high - low))).astype(np.int32)
    np.clip(index, 0, bins - 1, out=index)
    return np.bincount(index.ravel(), minlength=bins)


def ab_histograms(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised a and b histograms, AB_HIST_BINS equal bins over AB_RANGE."""
    ha = uniform_histogram(ab[..., 0], AB_HIST_BINS, *AB_RANGE)
    hb = uniform_histogram(ab[..., 1], AB_HIST_BINS, *AB_RANGE)
    return ha / max(1, ha.sum()), hb / max(1, hb.sum())


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0 = equal, 1 = disjoint)."""
    m = 0.5 * (p + q)

    def kl(x, y):
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def smoothing_note(temporal: dict) -> str | None:
    """What to say where smoothing left a film less steady than per-frame colour on a figure
    (the step limit rules it out between neighbouring frames; CDC also compares frames 2 and 4
    apart); None where it helped or held on both."""
    if not temporal or "smoothed" not in temporal or "per_frame" not in temporal:
        return None
    before, after = temporal["per_frame"], temporal["smoothed"]
    worse = [f"{label} {before[key]:.4g} → {after[key]:.4g}" for key, label in (("cdc", "CDC"), ("static_delta_ab", "static Δab"))
             if after[key] > before[key]]
    if not worse:
        return None
    return f"smoothing left its colour less steady than per-frame ({', '.join(worse)}): --smoothing none keeps the model's own"


@dataclass
class TemporalMeter:
    """Accumulates the figures frame by frame; memory is a few histograms, whatever the film's length."""

    history: deque = field(default_factory=lambda: deque(maxlen=max(CDC_OFFSETS)))
    sums: dict = field(default_factory=lambda: {k: 0.0 for k in CDC_OFFSETS})
    counts: dict = field(default_factory=lambda: {k: 0 for k in CDC_OFFSETS})
    prev: tuple | None = None
    static_sum: float = 0.0
    static_pixels: int = 0

    def add(self, L: np.ndarray, ab: np.ndarray) -> None:
        hists = ab_histograms(ab)
        for k in CDC_OFFSETS:
            if len(self.history) >= k:
                ha, hb = self.history[-k]
                self.sums[k] += 0.5 * (js_divergence(ha, hists[0]) + js_divergence(hb, hists[1]))
                self.counts[k] += 1
        self.history.append(hists)
        if self.prev is not None and self.prev[0].shape == L.shape:
            prev_L, prev_ab = self.prev
            static = np.abs(L - prev_L) < STATIC_L_DELTA
            if static.any():
                delta = ab - prev_ab
                self.static_sum += float(np.sqrt(np.einsum("hwc,hwc->hw", delta, delta))[static].sum())
                self.static_pixels += int(np.count_nonzero(static))
        self.prev = (L, ab)

    def sums_only(self) -> "TemporalMeter":
        """This meter without the frames it holds for the next one: what a finished piece of a film sends back."""
        return TemporalMeter(sums=dict(self.sums), counts=dict(self.counts), static_sum=self.static_sum, static_pixels=self.static_pixels)

    @classmethod
    def combined(cls, meters: list) -> "TemporalMeter":
        """The figures of a film's pieces together (the frame pairs across a join are not measured)."""
        total = cls()
        for meter in meters:
            for k in CDC_OFFSETS:
                total.sums[k] += meter.sums[k]
                total.counts[k] += meter.counts[k]
            total.static_sum += meter.static_sum
            total.static_pixels += meter.static_pixels
        return total

    def result(self) -> dict:
        cdc = {f"cdc_{k}": (self.sums[k] / self.counts[k] if self.counts[k] else 0.0) for k in CDC_OFFSETS}
        cdc["cdc"] = float(np.mean(list(cdc.values())))
        cdc["static_delta_ab"] = self.static_sum / self.static_pixels if self.static_pixels else 0.0
        return cdc
