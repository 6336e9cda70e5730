"""Before/after sheets: small grey | colour pairs on one JPEG, for looking rather than reading.

`folder --sheet` shows its first pictures; `video --sheet` frames spread over each film.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .colorizer import RenderJob
from .lab import lab_to_srgb

SHEET_IMAGES = 12  # pairs on a sheet
SHEET_THUMB_HEIGHT = 160  # pixels
SHEET_COLUMNS = 3  # before|after pairs per row
SHEET_EVERY_SECONDS = 10  # a film of unknown length: one frame this often


def sheet_pair(job: RenderJob) -> tuple[np.ndarray, np.ndarray]:
    """Small grey and colour versions of one picture, for the before/after sheet."""
    import cv2

    L = job.L_render
    scale = SHEET_THUMB_HEIGHT / L.shape[0]
    size = (max(1, round(L.shape[1] * scale)), SHEET_THUMB_HEIGHT)
    lab = np.dstack([L, job.ab])
    colour = (lab_to_srgb(cv2.resize(lab, size, interpolation=cv2.INTER_AREA)) * 255 + 0.5).astype(np.uint8)
    grey = (lab_to_srgb(np.dstack([cv2.resize(L, size, interpolation=cv2.INTER_AREA), np.zeros((*size[::-1], 2), np.float32)])) * 255 + 0.5).astype(np.uint8)
    return grey, colour


def sheet_bytes(pairs: list[tuple[np.ndarray, np.ndarray]], columns: int = SHEET_COLUMNS) -> bytes:
    """A grid of 'before | after' thumbnail pairs on white, as JPEG."""
    import cv2

    gap = 8
    cell_w = max(g.shape[1] + c.shape[1] for g, c in pairs) + 3 * gap
    cell_h = SHEET_THUMB_HEIGHT + gap
    rows = -(-len(pairs) // columns)
    sheet = np.full((rows * cell_h + gap, min(columns, len(pairs)) * cell_w, 3), 255, np.uint8)
    for index, (grey, colour) in enumerate(pairs):
        top, left = (index // columns) * cell_h + gap, (index % columns) * cell_w + gap
        sheet[top : top + SHEET_THUMB_HEIGHT, left : left + grey.shape[1]] = grey
        left += grey.shape[1] + gap
        sheet[top : top + SHEET_THUMB_HEIGHT, left : left + colour.shape[1]] = colour
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes()


class FrameSheet:
    """Pairs of SHEET_IMAGES frames spread evenly over a film of `frames` frames (or one every
    SHEET_EVERY_SECONDS where its length is unknown); offer() every frame, in order."""

    def __init__(self, frames: int | None, rate: float | None = None):
        spacing = frames / SHEET_IMAGES if frames else (rate or 25) * SHEET_EVERY_SECONDS
        self.step = max(1, int(spacing))
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def offer(self, index: int, job: RenderJob) -> None:
        if index % self.step == self.step // 2 and len(self.pairs) < SHEET_IMAGES:  # mid-interval: not the first black frame
            self.pairs.append(sheet_pair(job))

    def jpeg(self) -> bytes | None:
        return sheet_bytes(self.pairs) if self.pairs else None


def sheet_path(output: Path) -> Path:
    """Where a film's or a reel's sheet goes: beside its output, reel-colorized.mp4 -> reel-colorized-sheet.jpg."""
    return output.with_name(f"{output.stem if output.suffix else output.name}-sheet.jpg")
