"""sRGB <-> CIE Lab (D65, 2° observer) for numpy and torch, and the one network scaling.

Every pipeline (training, export, inference) goes through this module, so the scaling of
L and ab is defined exactly once. The conversion follows the standard sRGB formulas with
the same constants as scikit-image, which the tests use as the reference.

Conversions run in float32 from uint8, uint16 or float [0, 1] input. There is deliberately
no uint8 Lab representation: quantising Lab to bytes loses up to 26 RGB levels.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# --- Network scaling (used everywhere) --------------------------------------------------
L_MAX = 100.0  # L* is in [0, 100]
AB_SCALE = 110.0  # Lab units per network unit: sRGB's a*, b* lie within ±110 (a ∈ [-86, 98], b ∈ [-108, 95])

# --- Colourimetry ------------------------------------------------------------------------
# Linear sRGB -> XYZ (rows X, Y, Z), as in scikit-image.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
# The formulas take their coefficients as Python floats: NumPy's own float64 scalars would turn
# every float32 plane into float64 (NEP 50), costing time and memory for precision no output keeps.
_XYZ_FROM_RGB_ROWS, _RGB_FROM_XYZ_ROWS = _XYZ_FROM_RGB.tolist(), _RGB_FROM_XYZ.tolist()
_WHITE_D65 = (0.95047, 1.0, 1.08883)  # reference white, Y = 1
_EPS = 0.008856  # (6/29)^3
_KAPPA = 7.787  # slope of the linear segment of f(t)
_F_EPS = 0.2068966  # f(_EPS) = 6/29


class _NumpyOps:
    where = staticmethod(np.where)

    @staticmethod
    def clamp(x, lo=None, hi=None):
        return np.clip(x, lo, hi)

    @staticmethod
    def stack(xs, axis):
        return np.stack(xs, axis=axis)


class _TorchOps:
    @staticmethod
    def where(cond, a, b):
        import torch

        return torch.where(cond, a, b)

    @staticmethod
    def clamp(x, lo=None, hi=None):
        return x.clamp(min=lo, max=hi)

    @staticmethod
    def stack(xs, axis):
        import torch

        return torch.stack(xs, dim=axis)


GREY_LEVEL_THRESHOLD = 3.0  # mean |R−G| and |G−B| below this (8-bit levels): near-grey, no useful ab target


def chroma_level(rgb: np.ndarray) -> float:
    """How colourful an image is: max of mean |R−G| and mean |G−B|, in 8-bit levels."""
    x = rgb.astype(np.float32) * (255.0 / 65535.0 if rgb.dtype == np.uint16 else 1.0)
    return float(max(np.abs(x[..., 0] - x[..., 1]).mean(), np.abs(x[..., 1] - x[..., 2]).mean()))


def _rgb_to_lab(r, g, b, ops):
    """Per-channel sRGB [0, 1] -> (L, a, b); works on numpy arrays and torch tensors alike."""

    def linearize(c):
        return ops.where(c <= 0.04045, c / 12.92, ops.clamp((c + 0.055) / 1.055, 0.0) ** 2.4)

    r, g, b = linearize(r), linearize(g), linearize(b)
    m = _XYZ_FROM_RGB_ROWS
    x = (m[0][0] * r + m[0][1] * g + m[0][2] * b) / _WHITE_D65[0]
    y = (m[1][0] * r + m[1][1] * g + m[1][2] * b) / _WHITE_D65[1]
    z = (m[2][0] * r + m[2][1] * g + m[2][2] * b) / _WHITE_D65[2]

    def f(t):
        return ops.where(t > _EPS, ops.clamp(t, _EPS) ** (1.0 / 3.0), _KAPPA * t + 16.0 / 116.0)

    fx, fy, fz = f(x), f(y), f(z)
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


def _lab_to_rgb(L, a, b, ops):
    """Per-channel (L, a, b) -> sRGB clipped to [0, 1]."""
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = ops.clamp(fy - b / 200.0, 0.0)

    def finv(t):
        return ops.where(t > _F_EPS, t**3, (t - 16.0 / 116.0) / _KAPPA)

    x = finv(fx) * _WHITE_D65[0]
    y = finv(fy) * _WHITE_D65[1]
    z = finv(fz) * _WHITE_D65[2]
    m = _RGB_FROM_XYZ_ROWS

    def gamma(c):
        c = ops.clamp(c, 0.0, 1.0)
        return ops.where(c > 0.0031308, 1.055 * ops.clamp(c, 0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * c)

    r = gamma(m[0][0] * x + m[0][1] * y + m[0][2] * z)
    g = gamma(m[1][0] * x + m[1][1] * y + m[1][2] * z)
    bl = gamma(m[2][0] * x + m[2][1] * y + m[2][2] * z)
    return r, g, bl


def to_unit_float(rgb: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image -> float32 in [0, 1], keeping the full bit depth."""
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / 65535.0
    return rgb.astype(np.float32, copy=False)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB (uint8, uint16 or float [0, 1]) -> (..., 3) float32 Lab."""
    if rgb.dtype in (np.uint8, np.uint16):
        return _integer_srgb_to_lab(rgb)
    rgb = to_unit_float(rgb)
    L, a, b = _rgb_to_lab(rgb[..., 0], rgb[..., 1], rgb[..., 2], _NumpyOps)
    return np.stack([L, a, b], axis=-1).astype(np.float32, copy=False)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Lab -> (..., 3) float32 sRGB in [0, 1]."""
    lab = lab.astype(np.float32, copy=False)
    r, g, b = _lab_to_rgb(lab[..., 0], lab[..., 1], lab[..., 2], _NumpyOps)
    return np.stack([r, g, b], axis=-1).astype(np.float32, copy=False)


def _linear(c):
    """sRGB-encoded level in [0, 1] -> linear light."""
    return np.where(c <= 0.04045, c / 12.92, np.clip((c + 0.055) / 1.055, 0.0, None) ** 2.4)


def _l_from_y(y):
    """Relative luminance Y (white = 1) -> L*."""
    f = np.where(y > _EPS, np.clip(y, _EPS, None) ** (1.0 / 3.0), _KAPPA * y + 16.0 / 116.0)
    return 116.0 * f - 16.0


@lru_cache(maxsize=4)
def _level_table(dtype: str, kind: str) -> np.ndarray:
    """Every level of an integer sample type mapped once (linear light, or L* of that grey): then
    a frame costs one table lookup per sample instead of powers."""
    peak = 255 if dtype == "uint8" else 65535
    levels = np.arange(peak + 1, dtype=np.float64) / peak
    table = _linear(levels) if kind == "linear" else _l_from_y(_linear(levels))
    return table.astype(np.float32)


_XYZ_OVER_WHITE_T = (_XYZ_FROM_RGB / np.array(_WHITE_D65)[:, None]).T.astype(np.float32)


def _integer_srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """srgb_to_lab for integer samples, all in float32 and about 10× faster than the general path:
    a table lookup linearises, one 3×3 transform gives XYZ, a cube root replaces the power 1/3.
    Training decodes every crop through here, so this sets how fast a GPU can be fed."""
    if rgb.size == 0:
        return np.zeros(rgb.shape, np.float32)
    table = _level_table(rgb.dtype.name, "linear")
    pixels = rgb.reshape(-1, 1, 3)
    linear = cv2.LUT(pixels, table) if rgb.dtype == np.uint8 else table[pixels]
    xyz = cv2.transform(linear, _XYZ_OVER_WHITE_T.T)
    f = np.cbrt(xyz)
    np.copyto(f, np.float32(_KAPPA) * xyz + np.float32(16.0 / 116.0), where=xyz <= np.float32(_EPS))
    fx, fy, fz = cv2.split(f)  # contiguous planes: strided channel arithmetic costs twice as much
    lab = cv2.merge([np.float32(116.0) * fy - np.float32(16.0), np.float32(500.0) * (fx - fy), np.float32(200.0) * (fy - fz)])
    return lab.reshape(rgb.shape)


def lab_to_srgb16_into(out: np.ndarray, L: np.ndarray, ab: np.ndarray) -> None:
    """16-bit sRGB of L* (h, w) and a*b* (h, w, 2) into out[..., :3]: `_lab_to_rgb`'s formulas
    (within one 16-bit code of them), worked in place in float32. About 1.4× the general path,
    which is what a 24 MP 16-bit scan spends most of its recombination in; 8-bit outputs go
    through OpenCV instead (render._lab_to_rgb8), whose spline gamma is too coarse for 16 bits."""
    fy = L + np.float32(16.0)
    fy *= np.float32(1.0 / 116.0)
    fx = ab[..., 0] * np.float32(1.0 / 500.0)
    fx += fy
    fz = ab[..., 1] * np.float32(-1.0 / 200.0)
    fz += fy
    np.maximum(fz, np.float32(0.0), out=fz)  # b* bounded as _lab_to_rgb bounds it
    xyz = []
    for f, white in ((fx, _WHITE_D65[0]), (fy, _WHITE_D65[1]), (fz, _WHITE_D65[2])):
        cube = f * f
        cube *= f
        linear = f - np.float32(16.0 / 116.0)
        linear *= np.float32(1.0 / _KAPPA)
        np.copyto(linear, cube, where=f > np.float32(_F_EPS))
        linear *= np.float32(white)
        xyz.append(linear)
    x, y, z = xyz
    for channel, row in enumerate(_RGB_FROM_XYZ_ROWS):
        c = x * np.float32(row[0])
        c += y * np.float32(row[1])
        c += z * np.float32(row[2])
        np.clip(c, np.float32(0.0), np.float32(1.0), out=c)
        encoded = np.maximum(c, np.float32(0.0031308))
        np.power(encoded, np.float32(1.0 / 2.4), out=encoded)
        encoded *= np.float32(1.055 * 65535.0)
        encoded += np.float32(-0.055 * 65535.0 + 0.5)
        dark = c <= np.float32(0.0031308)
        c *= np.float32(12.92 * 65535.0)
        c += np.float32(0.5)
        np.copyto(encoded, c, where=dark)
        out[..., channel] = encoded  # truncates, as astype does: + 0.5 rounded


def srgb_to_luminance(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB -> (...) float32 L*, without computing a and b."""
    if rgb.dtype in (np.uint8, np.uint16):
        lin = _level_table(rgb.dtype.name, "linear")
        m = _XYZ_FROM_RGB[1]
        y = m[0] * lin[rgb[..., 0]] + m[1] * lin[rgb[..., 1]] + m[2] * lin[rgb[..., 2]]
        return _l_from_y(y).astype(np.float32, copy=False)
    rgb = to_unit_float(rgb)
    L, _, _ = _rgb_to_lab(rgb[..., 0], rgb[..., 1], rgb[..., 2], _NumpyOps)
    return L.astype(np.float32, copy=False)


def grey_to_luminance(grey: np.ndarray) -> np.ndarray:
    """(...) grey level (uint8, uint16 or float [0, 1]) -> (...) float32 L*.

    A grey pixel is R = G = B, so L* follows from Y alone: the sRGB matrix's Y row sums to
    1.000000, so Y is the linearised grey level. Integer levels go through a table.
    """
    if grey.dtype in (np.uint8, np.uint16):
        return _level_table(grey.dtype.name, "L")[grey]
    return _l_from_y(_linear(to_unit_float(grey))).astype(np.float32, copy=False)


def srgb_to_lab_torch(rgb):
    """(N, 3, H, W) sRGB float tensor in [0, 1] -> (N, 3, H, W) Lab tensor."""
    L, a, b = _rgb_to_lab(rgb[:, 0], rgb[:, 1], rgb[:, 2], _TorchOps)
    return _TorchOps.stack([L, a, b], axis=1)


def lab_to_srgb_torch(lab):
    """(N, 3, H, W) Lab tensor -> (N, 3, H, W) sRGB tensor in [0, 1]."""
    r, g, b = _lab_to_rgb(lab[:, 0], lab[:, 1], lab[:, 2], _TorchOps)
    return _TorchOps.stack([r, g, b], axis=1)


# --- Network scaling functions (numpy arrays and torch tensors alike) --------------------
def normalize_l(L):
    """L* in [0, 100] -> network input in [-1, 1]."""
    return L / (L_MAX / 2.0) - 1.0


def denormalize_l(l_net):
    """Network L in [-1, 1] -> L* in [0, 100]."""
    return (l_net + 1.0) * (L_MAX / 2.0)


def normalize_ab(ab):
    """a*, b* in Lab units -> network target in [-1, 1] (divided by AB_SCALE)."""
    return ab / AB_SCALE


def denormalize_ab(ab_net):
    """Network a/b in [-1, 1] -> Lab units."""
    return ab_net * AB_SCALE
