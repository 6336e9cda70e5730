"""Chroma at model size, luminance at full size, as pure functions.

    geometry = plan(full_hw, render_size, multiple)
    l_net = network_input(L_full, geometry)          # resize L -> normalise -> pad (or snap)
    ab_small = ab_from_network(ab_net, geometry)     # crop padding -> Lab units
    recombine_into(out, L_full, ab_small, geometry)  # upsample ab (strips) + ORIGINAL L -> sRGB

The network never sees more than the render size, so a 20 000 × 20 000 scan costs the model
what a small one does; the full-resolution work (upsampling ab, Lab -> sRGB) runs in strips of
rows, so its temporaries stay small whatever the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .lab import denormalize_ab, lab_to_srgb16_into, normalize_l

# Short side the network sees, pixels. The default model learnt on photos at a 160 px short side,
# yet on BSD100 it scores alike at 192 and 256 and worse at 160 (train/README.md); 256 keeps more
# colour detail on large scans.
DEFAULT_RENDER_SIZE = 256
STRIP_ROWS = 512  # rows of the full-resolution image converted at a time
MAX_RENDER_ASPECT = 8  # the render's long side is at most this × the render size: a strip is not scaled up without end
ASPECT_SNAP = 0.02  # fraction: a render side this close to the network multiple is scaled onto it, not padded
AB_UPSAMPLING = ("bilinear", "guided")
GUIDED_RADIUS = 2  # guided filter window radius at render size, pixels
GUIDED_EPS = 1e-3  # guided filter regulariser, in (L/100)² units: smaller follows L edges more tightly


@dataclass(frozen=True)
class Geometry:
    full_hw: tuple[int, int]  # the image as decoded
    render_hw: tuple[int, int]  # the image scaled so that its short side is the render size
    padded_hw: tuple[int, int]  # render_hw padded up to the network's size multiple

    @property
    def bucket(self) -> tuple[int, int]:
        """Images with the same padded size can share a batch."""
        return self.padded_hw


def plan(full_hw: tuple[int, int], render_size: int, multiple: int) -> Geometry:
    """Scale so the short side is `render_size`, keep the aspect ratio, pad to `multiple`.

    Beyond MAX_RENDER_ASPECT:1 the long side sets the scale instead: a 12 × 5000 px strip
    would otherwise reach the network as 256 × 106 667 (27 M pixels: over a minute on a CPU
    where a photo takes 60 ms).

    A side within ASPECT_SNAP of a multiple is scaled onto it instead of padded: a 16:9 frame
    renders at 256 × 448, not 256 × 455 padded to 512, which is 12 % less network work for a
    1.5 % stretch of the colour map (resized back to the full image anyway). Measured on 14
    frames of a 720p clip: mean CIEDE2000 to the truth 8.88 snapped vs 9.05 padded.
    """
    h, w = full_hw
    scale = min(render_size / min(h, w), MAX_RENDER_ASPECT * render_size / max(h, w))
    rh, rw = (_snap(max(1, round(side * scale)), multiple) for side in (h, w))
    ph, pw = math.ceil(rh / multiple) * multiple, math.ceil(rw / multiple) * multiple
    return Geometry((h, w), (rh, rw), (ph, pw))


def _snap(side: int, multiple: int) -> int:
    nearest = max(multiple, round(side / multiple) * multiple)
    return nearest if abs(nearest - side) <= ASPECT_SNAP * side else side


def resize_plane(plane: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize a float32 plane (H, W) or (H, W, C): area when shrinking, cubic when enlarging."""
    if plane.shape[:2] == tuple(hw):
        return plane
    shrinking = hw[0] < plane.shape[0]
    return cv2.resize(plane, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def render_luminance(L_full: np.ndarray, geometry: Geometry) -> np.ndarray:
    """L* at render size, (rh, rw) float32."""
    return resize_plane(L_full, geometry.render_hw)


def network_input(L_render: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(rh, rw) L* -> (1, ph, pw) network input, padded by reflection (no stretching)."""
    rh, rw = geometry.render_hw
    ph, pw = geometry.padded_hw
    l_net = normalize_l(L_render.astype(np.float32, copy=False))
    if (ph, pw) != (rh, rw):
        border = cv2.BORDER_REFLECT_101 if (ph - rh < rh and pw - rw < rw) else cv2.BORDER_REPLICATE
        l_net = cv2.copyMakeBorder(l_net, 0, ph - rh, 0, pw - rw, border)
    return l_net[None]


def ab_from_network(ab_net: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(2, ph, pw) network output -> (rh, rw, 2) a*, b* in Lab units, padding cropped off."""
    rh, rw = geometry.render_hw
    return np.ascontiguousarray(denormalize_ab(ab_net[:, :rh, :rw]).transpose(1, 2, 0), dtype=np.float32)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    return cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT_101)


def guided_coefficients(L_render: np.ndarray, ab_small: np.ndarray, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS):
    """Fast guided filter (He & Sun 2015) at render size: ab ≈ A·L + B locally, L as the guide.

    Upsampling A and B (smooth) and applying them to the full-resolution L puts the colour
    edges where the luminance edges are: the remedy for colour bleeding across sharp edges.
    Returns A, B as (rh, rw, 2) float32.
    """
    guide = (L_render / 100.0).astype(np.float32)
    mean_i = _box(guide, radius)
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    coeff_a = np.empty_like(ab_small)
    coeff_b = np.empty_like(ab_small)
    for c in range(2):
        p = ab_small[..., c]
        mean_p = _box(p, radius)
        cov = _box(guide * p, radius) - mean_i * mean_p
        a = cov / (var_i + eps)
        coeff_a[..., c] = _box(a, radius)
        coeff_b[..., c] = _box(mean_p - a * mean_i, radius)
    return coeff_a, coeff_b


class _RowInterpolator:
    """Bilinear upsampling of a small (h, w, C) map to (H, W, C), produced a strip of rows at a time.

    Horizontal pass once (h × W × C, small), vertical pass per strip: the same result as
    cv2.resize(INTER_LINEAR) without ever holding the full-size map.
    """

    def __init__(self, small: np.ndarray, full_hw: tuple[int, int]):
        h = small.shape[0]
        H, W = full_hw
        self.wide = cv2.resize(small, (W, h), interpolation=cv2.INTER_LINEAR).reshape(h, W, -1)
        src = (np.arange(H, dtype=np.float64) + 0.5) * (h / H) - 0.5
        src = np.clip(src, 0, h - 1)
        self.y0 = np.floor(src).astype(np.int64)
        self.y1 = np.minimum(self.y0 + 1, h - 1)
        self.wy = (src - self.y0).astype(np.float32)[:, None, None]

    def rows(self, start: int, stop: int) -> np.ndarray:
        wy = self.wy[start:stop]
        return self.wide[self.y0[start:stop]] * (1.0 - wy) + self.wide[self.y1[start:stop]] * wy


def recombine_into(
    out: np.ndarray,
    L_full: np.ndarray,
    ab_small: np.ndarray,
    L_render: np.ndarray | None = None,
    mode: str = "bilinear",
    strip_rows: int = STRIP_ROWS,
) -> None:
    """Fill `out` (H, W, 3) uint8/uint16 with sRGB from the full-res L* and the upsampled ab.

    mode "bilinear": ab upsampled bilinearly; "guided": edge-aware, guided by L (needs L_render).
    """
    if mode not in AB_UPSAMPLING:
        raise ValueError(f"ab upsampling must be one of {AB_UPSAMPLING}, not {mode!r}")
    H, W = L_full.shape
    if mode == "guided":
        coeff_a, coeff_b = guided_coefficients(L_render, ab_small)
        up_a, up_b = _RowInterpolator(coeff_a, (H, W)), _RowInterpolator(coeff_b, (H, W))
    else:
        up = _RowInterpolator(ab_small, (H, W))
    for start in range(0, H, strip_rows):
        stop = min(H, start + strip_rows)
        L = L_full[start:stop].astype(np.float32, copy=False)
        if mode == "guided":
            ab = up_a.rows(start, stop) * (L / 100.0)[..., None] + up_b.rows(start, stop)
        else:
            ab = up.rows(start, stop)
        if out.dtype == np.uint8:
            out[start:stop, :, :3] = _lab_to_rgb8(L, ab)
        else:
            lab_to_srgb16_into(out[start:stop], L, ab)


def _lab_to_rgb8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """8-bit sRGB from L* (h, w) and a*b* (h, w, 2) through OpenCV's float Lab -> RGB (SIMD,
    threaded; about 4.6× the numpy formulas on a 720p frame). It agrees with `lab._lab_to_rgb`
    to 0.14 of an 8-bit level once b* is bounded as that function bounds it (f(Z) ≥ 0), which
    OpenCV does not do; 16-bit outputs keep the exact numpy path (OpenCV's gamma is a spline)."""
    lab = np.empty((*L.shape, 3), np.float32)
    lab[..., 0] = L
    lab[..., 1] = ab[..., 0]
    np.minimum(ab[..., 1], (L + 16.0) * (200.0 / 116.0), out=lab[..., 2])
    cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=lab)
    np.clip(lab, 0.0, 1.0, out=lab)
    lab *= 255.0
    lab += 0.5
    return lab.astype(np.uint8)


def full_luminance(pixels: np.ndarray, icc: bytes | None = None, strip_rows: int = STRIP_ROWS) -> np.ndarray:
    """L* (H, W) float32 from grey (H, W) or RGB(A) (H, W, 3|4) pixels at their full bit depth.

    Numbers are read as the source's ICC profile says (Dot Gain 20%, Adobe RGB…) where it is one
    that `icc.tone_of` evaluates, else as sRGB: grey by the exact grey -> L* formula, colour
    through sRGB -> Lab. Strips keep the float temporaries small on huge scans.
    """
    from .icc import luminance, tone_of
    from .lab import grey_to_luminance, srgb_to_luminance

    tone = tone_of(icc) if pixels.dtype in (np.uint8, np.uint16) else None
    H = pixels.shape[0]
    L = np.empty(pixels.shape[:2], dtype=np.float32)
    for start in range(0, H, strip_rows):
        rows = pixels[start : start + strip_rows]
        if tone is not None:
            L[start : start + strip_rows] = luminance(rows, tone)
        else:
            L[start : start + strip_rows] = grey_to_luminance(rows) if rows.ndim == 2 else srgb_to_luminance(rows[..., :3])
    return L
