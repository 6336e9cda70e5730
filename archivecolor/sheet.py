"""Before/after sheets: small grey | colour pairs on one JPEG, for looking rather than reading.

`folder --sheet` shows its first pictures; `video --sheet` frames spread over each film.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .colorizer import RenderJob
from .lab import lab_to_srgb

SHEET_IMAGES = 12  # pairs on a sheet
SHEET_THUMB_HEIGHT = 160  # pixels
SHEET_EVERY_SECONDS = 10  # a film of unknown length: one frame this often


def sheet_pair(job: RenderJob, name: str = "") -> tuple[np.ndarray, np.ndarray, str]:
    """Small grey and colour versions of one picture, and its name, for the before/after sheet."""
    import cv2

    L = job.L_render
    scale = SHEET_THUMB_HEIGHT / L.shape[0]
    size = (max(1, round(L.shape[1] * scale)), SHEET_THUMB_HEIGHT)
    lab = np.dstack([L, job.ab])
    colour = (lab_to_srgb(cv2.resize(lab, size, interpolation=cv2.INTER_AREA)) * 255 + 0.5).astype(np.uint8)
    grey = (lab_to_srgb(np.dstack([cv2.resize(L, size, interpolation=cv2.INTER_AREA), np.zeros((*size[::-1], 2), np.float32)])) * 255 + 0.5).astype(np.uint8)
    return grey, colour, name


SHEET_WIDTH = 1400  # pixels a row of pairs may fill (rows are packed, so portrait and landscape pairs leave no holes)
LABEL_HEIGHT = 20  # pixels under each pair for its name and which side is which


def sheet_bytes(pairs: list, title: str = "") -> bytes:
    """Rows of 'grey | colorized' thumbnail pairs on white, each pair labelled with its picture's
    name, packed left to right (a row takes pairs while they fit), as JPEG; `title` on top."""
    from io import BytesIO

    from PIL import Image, ImageDraw, ImageFont

    gap = 8
    font = ImageFont.load_default(size=12)
    pairs = [pair if len(pair) == 3 else (*pair, "") for pair in pairs]
    rows, row, width = [], [], gap
    for pair in pairs:
        pair_w = pair[0].shape[1] + pair[1].shape[1] + 3 * gap
        if row and width + pair_w > SHEET_WIDTH:
            rows.append(row)
            row, width = [], gap
        row.append(pair)
        width += pair_w
    rows.append(row)
    row_h = SHEET_THUMB_HEIGHT + LABEL_HEIGHT + gap
    top_h = 26 if title else 0
    sheet_w = max(sum(p[0].shape[1] + p[1].shape[1] + 3 * gap for p in r) for r in rows) + gap
    sheet = Image.new("RGB", (sheet_w, top_h + len(rows) * row_h + gap), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, 6), title, fill="black", font=ImageFont.load_default(size=14))
    for r, pairs_in_row in enumerate(rows):
        top, left = top_h + r * row_h + gap, gap
        for grey, colour, name in pairs_in_row:
            sheet.paste(Image.fromarray(grey), (left, top))
            sheet.paste(Image.fromarray(colour), (left + grey.shape[1] + gap, top))
            label = f"{name}: grey | colorized" if name else "grey | colorized"
            width = grey.shape[1] + colour.shape[1] + gap
            while len(label) > 8 and draw.textlength(label, font=font) > width:
                label = "…" + label[2:]  # a long name loses its start, not which side is which
            draw.text((left, top + SHEET_THUMB_HEIGHT + 3), label, fill="#333", font=font)
            left += width + 2 * gap
    buffer = BytesIO()
    sheet.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class FrameSheet:
    """Pairs of SHEET_IMAGES frames spread evenly over a film, one every `step` frames; offer()
    every frame, in order. FrameSheet.spread(frames, rate) sizes it for a film."""

    step: int
    picked: list = field(default_factory=list)  # (frame index, its pair)

    @classmethod
    def spread(cls, frames: int | None, rate: float | None = None) -> "FrameSheet":
        """For a film of `frames` frames, or one every SHEET_EVERY_SECONDS where its length is unknown."""
        spacing = frames / SHEET_IMAGES if frames else (rate or 25) * SHEET_EVERY_SECONDS
        return cls(max(1, int(spacing)))

    @property
    def pairs(self) -> list:
        return [pair for _, pair in sorted(self.picked, key=lambda p: p[0])][:SHEET_IMAGES]

    def offer(self, index: int, job: RenderJob) -> None:
        if index % self.step == self.step // 2 and len(self.picked) < SHEET_IMAGES:  # mid-interval: not the first black frame
            self.picked.append((index, sheet_pair(job, f"frame {index}")))

    @classmethod
    def combined(cls, sheets: list) -> "FrameSheet":
        """One film's sheet from the sheets of its pieces (each offered the frames of its own stretch)."""
        return cls(sheets[0].step, [pick for sheet in sheets for pick in sheet.picked])

    def jpeg(self, cut_frames: list[int] | None = None) -> bytes | None:
        """The sheet, its title naming the scene cuts found (where smoothing started afresh)."""
        if not self.pairs:
            return None
        shown = ", ".join(map(str, (cut_frames or [])[:20])) + (" …" if cut_frames and len(cut_frames) > 20 else "")
        return sheet_bytes(self.pairs, f"scene cuts at frames {shown}" if cut_frames else "no scene cuts found")


def sheet_path(output: Path) -> Path:
    """Where a film's or a reel's sheet goes: beside its output, reel-colorized.mp4 -> reel-colorized-sheet.jpg."""
    return output.with_name(f"{output.stem if output.suffix else output.name}-sheet.jpg")
