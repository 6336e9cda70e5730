"""Colour hints as the generator sees them: a/b planes and a mask beside L (N, 3, H, W).

A hint says "the colour here is this": its a/b (network scaling) fill a small patch of the two
colour planes and the mask is 1 there, 0 elsewhere; all zeros is "no hints". Training draws hints
from the true colours (`sample_hints`, after Zhang et al. 2017, "Real-Time User-Guided Image
Colorization"), so one generator colours automatically and follows an archivist's hints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .lab import AB_SCALE, srgb_to_lab

MAX_POINTS = 24  # hints drawn per picture at most
POINTS_P = 1 / 6  # the number of hints per picture is geometric with this p (mean 6)
MAX_HALF_SIDE = 2  # a drawn hint is a square patch of side 1, 3 or 5 pixels (at the crop's scale)


def sample_hints(ab, generator):
    """Hints drawn from the true `ab` (N, 2, H, W): for each picture 1–24 patches, each hint the
    mean a/b of its patch. Draws come from `generator` (on the CPU) so a resumed run draws alike."""
    import torch  # training only: colouring with hints needs no torch

    n, _, height, width = ab.shape
    planes = torch.zeros((n, 3, height, width), device=ab.device, dtype=ab.dtype)
    for i in range(n):
        # geometric by inversion with the seeded generator: P(k) = p (1 − p)^(k−1), k ≥ 1
        u = torch.rand((), generator=generator).item()
        points = min(MAX_POINTS, 1 + int(math.log(1.0 - u) / math.log(1.0 - POINTS_P)))
        ys = torch.randint(0, height, (points,), generator=generator).tolist()
        xs = torch.randint(0, width, (points,), generator=generator).tolist()
        halves = torch.randint(0, MAX_HALF_SIDE + 1, (points,), generator=generator).tolist()
        for y, x, r in zip(ys, xs, halves):
            top, bottom, left, right = max(0, y - r), min(height, y + r + 1), max(0, x - r), min(width, x + r + 1)
            colour = ab[i, :, top:bottom, left:right].mean(dim=(1, 2))
            planes[i, :2, top:bottom, left:right] = colour[:, None, None]
            planes[i, 2, top:bottom, left:right] = 1.0
    return planes


# --- an archivist's hints -------------------------------------------------------------------
HINTS_SUFFIX = ".hints.json"  # HINTS_DIR/sub/plate-12.hints.json belongs to SOURCE/sub/plate-12.tif
DEFAULT_RADIUS_RENDER = 2  # a hint without a radius covers a 5 × 5 patch at the render size (as in training)


class HintsError(ValueError):
    """A hints file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Hint:
    x: float  # pixels of the picture as displayed (after its EXIF orientation), from the left
    y: float  # from the top
    a: float  # the colour's chroma, CIE a* and b*; its lightness is not used (L stays the picture's)
    b: float
    radius: float | None = None  # pixels of the source; None: DEFAULT_RADIUS_RENDER at the render size
    frame: int | None = None  # for a film: the frame it was placed on


def colour_ab(colour: str) -> tuple[float, float]:
    """'#2f4f8f' (sRGB hex) -> (a*, b*). Raises ValueError for anything else."""
    if not (isinstance(colour, str) and len(colour) == 7 and colour[0] == "#"):
        raise ValueError(f"colour {colour!r} is not a hex sRGB value like '#2f4f8f'")
    try:
        rgb = np.array([[[int(colour[i : i + 2], 16) for i in (1, 3, 5)]]], dtype=np.uint8)
    except ValueError:
        raise ValueError(f"colour {colour!r} is not a hex sRGB value like '#2f4f8f'") from None
    lab = srgb_to_lab(rgb)[0, 0]
    return float(lab[1]), float(lab[2])


def parse_hints(text: str, name: str, size: tuple[int, int] | None = None, film: bool = False) -> list[Hint]:
    """The hints of one file's text; `size` (width, height) checks that every point lies on the
    picture. Raises HintsError naming `name` and the entry at fault."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HintsError(f"{name}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise HintsError(f"{name}: no \"points\" list (expected {{\"points\": [{{\"x\": …, \"y\": …, \"color\": \"#rrggbb\"}}]}})")
    hints = []
    for i, point in enumerate(data["points"]):
        where = f"{name}: point {i + 1}"
        if not isinstance(point, dict):
            raise HintsError(f"{where} is not an object")
        try:
            x, y = float(point["x"]), float(point["y"])
        except (KeyError, TypeError, ValueError):
            raise HintsError(f"{where}: x and y must be numbers (pixels)") from None
        if size is not None and not (0 <= x < size[0] and 0 <= y < size[1]):
            raise HintsError(f"{where}: ({x:g}, {y:g}) is outside the picture ({size[0]} × {size[1]} pixels)")
        try:
            a, b = colour_ab(point.get("color"))
        except ValueError as exc:
            raise HintsError(f"{where}: {exc}") from None
        radius = point.get("radius")
        if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0):
            raise HintsError(f"{where}: radius must be a number of pixels above 0, not {radius!r}")
        frame = point.get("frame")
        if film and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
            raise HintsError(f"{where}: a film's hint names the frame it was placed on (\"frame\": 1200)")
        hints.append(Hint(x, y, a, b, None if radius is None else float(radius), frame if film else None))
    return hints


def read_hints_text(path: Path) -> str:
    """A hints file's text; one that cannot be read (or is not UTF-8) raises HintsError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HintsError(f"{path}: cannot be read ({exc})") from None


def read_hints(path: Path, size: tuple[int, int] | None = None) -> list[Hint]:
    return parse_hints(read_hints_text(path), str(path), size)


def hint_boxes(hints: list[Hint], full_hw: tuple[int, int], render_hw: tuple[int, int]) -> list[tuple]:
    """Each hint as (top, bottom, left, right, a, b) at the render scale: a square patch, its radius
    scaled from the source (at least one pixel), DEFAULT_RADIUS_RENDER where it gives none."""
    boxes = []
    sy, sx = render_hw[0] / full_hw[0], render_hw[1] / full_hw[1]
    for hint in hints:
        cy, cx = min(render_hw[0] - 1, int(hint.y * sy)), min(render_hw[1] - 1, int(hint.x * sx))
        r = DEFAULT_RADIUS_RENDER if hint.radius is None else max(0, round(hint.radius * min(sx, sy)))
        boxes.append((max(0, cy - r), min(render_hw[0], cy + r + 1), max(0, cx - r), min(render_hw[1], cx + r + 1), hint.a, hint.b))
    return boxes


def hint_planes(hints: list[Hint], full_hw: tuple[int, int], render_hw: tuple[int, int], padded_hw: tuple[int, int]) -> np.ndarray:
    """The hints as the network takes them, (3, ph, pw) float32: a/b (network scaling) and the mask
    over each hint's patch (hint_boxes)."""
    return planes_from_boxes(hint_boxes(hints, full_hw, render_hw), padded_hw)


def planes_from_boxes(boxes: list, padded_hw: tuple[int, int]) -> np.ndarray:
    """hint_planes from hints already placed as boxes at render size: built only when the network
    takes the hints (with spreading on, the boxes alone are used)."""
    planes = np.zeros((3, *padded_hw), dtype=np.float32)
    for top, bottom, left, right, a, b in boxes:
        planes[0, top:bottom, left:right] = a / AB_SCALE
        planes[1, top:bottom, left:right] = b / AB_SCALE
        planes[2, top:bottom, left:right] = 1.0
    return planes


def truth_hints(ab: np.ndarray, count: int, rng: np.random.Generator) -> list[Hint]:
    """`count` hints at random points of a picture, each with the true a/b there (ab: (H, W, 2),
    Lab units): what `evaluate --hints-from-truth` places, and what an archivist's records would say."""
    h, w = ab.shape[:2]
    ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
    return [Hint(float(x), float(y), float(ab[y, x, 0]), float(ab[y, x, 1])) for y, x in zip(ys, xs)]
