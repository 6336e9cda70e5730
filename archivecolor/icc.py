"""What a scan's ICC profile says its numbers mean, for the two kinds of profile scans carry.

Archives scan black-and-white prints as grey with "Dot Gain 20%" or "Gray Gamma 2.2" (a tone
curve, `kTRC`) or as RGB in Adobe RGB or ProPhoto, and phones save Display P3 (three tone curves
and a matrix). Read as sRGB,
their numbers give the wrong lightness: a Dot Gain 20% scan comes out with lighter midtones than
Photoshop shows it. These profiles are small enough to evaluate here, at full 16-bit precision,
without a colour-management engine: `tone_of` gives the curves, `output_profile` the profile that
fits the colorized (sRGB) pixels. Profiles built on lookup tables, and damaged ones, are not
evaluated: their numbers are read as sRGB and an RGB one is carried, as before (for neutral
tones that keeps what a viewer shows).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# sRGB as an ICC profile states it (D50-adapted colorants, the PCS white): its luminance row
SRGB_Y_D50 = (0.2225, 0.7169, 0.0606)
SRGB_TOLERANCE = 0.002  # linear-light and colorant-Y difference under which a profile is sRGB


class Curve:
    """One ICC tone curve (`curv` or `para`): encoded level in [0, 1] -> linear light in [0, 1]."""

    def __init__(self, kind: str, values: tuple[float, ...] | np.ndarray, function: int = 0):
        self.kind, self.values, self.function = kind, values, function

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        if self.kind == "table":
            table = np.asarray(self.values, dtype=np.float64)
            return np.interp(x, np.linspace(0.0, 1.0, len(table)), table)
        return np.clip(_parametric(x, self.function, self.values), 0.0, 1.0)


def _parametric(x: np.ndarray, function: int, p: tuple[float, ...]) -> np.ndarray:
    """ICC.1 parametricCurveType, functions 0–4 (parameters g, a, b, c, d, e, f)."""
    g = p[0]
    if function == 0:
        return x**g
    a, b = p[1], p[2]
    power = lambda t: np.clip(a * t + b, 0.0, None) ** g  # noqa: E731
    if function == 1:
        return np.where(x >= -b / a, power(x), 0.0)
    if function == 2:
        return np.where(x >= -b / a, power(x) + p[3], p[3])
    if function == 3:
        return np.where(x >= p[4], power(x), p[3] * x)
    return np.where(x >= p[4], power(x) + p[5], p[3] * x + p[6])


@dataclass(frozen=True)
class Tone:
    """How a profile's numbers become relative luminance Y: a curve per channel (one for grey)
    and, for RGB, each channel's share of Y (the Y row of its D50 colorants)."""

    curves: tuple[Curve, ...]
    y_weights: tuple[float, ...] = (1.0,)

    def linear_tables(self, dtype: str) -> tuple[np.ndarray, ...]:
        """Linear light of every level of `dtype`, per channel, already weighted by its Y share."""
        with np.errstate(all="ignore"):
            return _tables(self, dtype)

    @property
    def is_srgb(self) -> bool:
        """Whether this profile's numbers mean what sRGB's do (within SRGB_TOLERANCE)."""
        levels = np.linspace(0.0, 1.0, 1024)
        srgb = np.where(levels <= 0.04045, levels / 12.92, ((levels + 0.055) / 1.055) ** 2.4)
        curves_match = all(np.abs(curve(levels) - srgb).max() < SRGB_TOLERANCE for curve in self.curves)
        weights_match = len(self.curves) == 1 or all(abs(w - s) < SRGB_TOLERANCE for w, s in zip(self.y_weights, SRGB_Y_D50))
        return curves_match and weights_match


@lru_cache(maxsize=8)
def _tables(tone: Tone, dtype: str) -> tuple[np.ndarray, ...]:
    peak = 255 if dtype == "uint8" else 65535
    levels = np.arange(peak + 1, dtype=np.float64) / peak
    return tuple((weight * curve(levels)).astype(np.float32) for curve, weight in zip(tone.curves, tone.y_weights))


@lru_cache(maxsize=16)
def tone_of(icc: bytes | None) -> Tone | None:
    """The tone of a grey (`kTRC`) or RGB matrix/TRC profile; None where the numbers are to be
    read as sRGB (no profile, an sRGB one, one built on lookup tables, or one that does not parse)."""
    if not icc:
        return None
    try:
        with np.errstate(all="ignore"):
            tone = _parse(icc)
            if tone is None or not _sane(tone) or tone.is_srgb:
                return None
    except Exception:  # a damaged profile is read as none: the profile is a courtesy, the pixels decide
        return None
    return tone


def _sane(tone: Tone) -> bool:
    """Curves that give finite light from black to white, rising overall: a damaged profile does not."""
    levels = np.linspace(0.0, 1.0, 256)
    for curve in tone.curves:
        light = curve(levels)
        if not np.isfinite(light).all() or light[-1] <= light[0]:
            return False
    return all(np.isfinite(w) for w in tone.y_weights)


def _parse(icc: bytes) -> Tone | None:
    space = icc[16:20]
    tags = _tag_table(icc)
    if space == b"GRAY" and b"kTRC" in tags:
        return Tone((_curve(tags[b"kTRC"]),))
    needed = (b"rTRC", b"gTRC", b"bTRC", b"rXYZ", b"gXYZ", b"bXYZ")
    if space == b"RGB " and all(tag in tags for tag in needed):
        curves = tuple(_curve(tags[tag]) for tag in needed[:3])
        weights = tuple(_xyz(tags[tag])[1] for tag in needed[3:])
        if not 0.98 < sum(weights) < 1.02:  # colorants that do not add up to the PCS white's Y
            return None
        return Tone(curves, weights)
    return None


def _tag_table(icc: bytes) -> dict[bytes, bytes]:
    (count,) = struct.unpack_from(">I", icc, 128)
    tags = {}
    for index in range(min(count, 256)):
        signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * index)
        tags[signature] = icc[offset : offset + size]
    return tags


def _curve(data: bytes) -> Curve:
    kind = data[:4]
    if kind == b"curv":
        (count,) = struct.unpack_from(">I", data, 8)
        if count == 0:
            return Curve("parametric", (1.0,))
        if count == 1:
            (gamma,) = struct.unpack_from(">H", data, 12)
            return Curve("parametric", (gamma / 256.0,))
        table = np.frombuffer(data, dtype=">u2", count=count, offset=12).astype(np.float64) / 65535.0
        return Curve("table", table)
    if kind == b"para":
        (function,) = struct.unpack_from(">H", data, 8)
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[function]
        params = tuple(v / 65536.0 for v in struct.unpack_from(f">{count}i", data, 12))
        return Curve("parametric", params, function)
    raise ValueError(f"tone curve of type {kind!r}")


def _xyz(data: bytes) -> tuple[float, float, float]:
    if data[:4] != b"XYZ ":
        raise ValueError("colorant is not an XYZ tag")
    return tuple(v / 65536.0 for v in struct.unpack_from(">3i", data, 8))


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """An sRGB profile (littlecms's, via Pillow) to tag outputs whose source profile no longer fits."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def output_profile(icc: bytes | None) -> bytes | None:
    """The profile for the colorized RGB pixels, which are sRGB: sRGB where the source's profile
    was evaluated (its numbers were converted), the source's own where it was read as sRGB and is
    an RGB one, none where it is grey or CMYK and was not evaluated."""
    if not icc:
        return None
    if tone_of(icc) is not None:
        return srgb_profile()
    return icc if icc[16:20] == b"RGB " else None


def luminance(pixels: np.ndarray, tone: Tone) -> np.ndarray:
    """L* (float32) of uint8/uint16 grey (H, W) or RGB(A) (H, W, 3|4) pixels whose numbers `tone` describes."""
    from .lab import _l_from_y

    tables = tone.linear_tables(pixels.dtype.name)
    if len(tables) == 1:  # a grey profile (grey + alpha pages arrive as RGB(A) with R = G = B)
        y = tables[0][pixels if pixels.ndim == 2 else pixels[..., 0]]
    elif pixels.ndim == 2:
        y = tables[0][pixels] + tables[1][pixels] + tables[2][pixels]
    else:
        y = tables[0][pixels[..., 0]] + tables[1][pixels[..., 1]] + tables[2][pixels[..., 2]]
    return _l_from_y(y).astype(np.float32, copy=False)
