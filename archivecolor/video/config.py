"""A film job's settings and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..files import file_sha256
from .ffmpeg import EncodeOptions
from .smooth import SmoothingConfig


@dataclass(frozen=True)
class VideoConfig:
    batch_size: int = 8  # frames per network call
    smoothing: SmoothingConfig = SmoothingConfig()
    encode: EncodeOptions = EncodeOptions()
    ffmpeg: str | None = None  # ffmpeg binary; None: $ARCHIVECOLOR_FFMPEG, PATH, then the bundled one
    measure: bool = True  # temporal figures for the smoothed and the per-frame output
    queue_frames: int = 16  # frames held at most between two stages
    chunk_frames: int | None = 3000  # long films go in chunks of about this many frames (resumable); None: one pass
    sheet: bool = False  # also a before/after sheet of frames spread over each film, beside its output
    look: str = ""  # what made the colour (see look_of): an interrupted film's chunks are kept only for the same
    made_with: str = ""  # the same, for the film's provenance mark (colorize_video sets it from its colorizer)
    hints: int = 0  # colour hints placed on the film (its mark says how many)

    @property
    def mark(self) -> str:
        from ..imageio import provenance_mark

        return provenance_mark(self.made_with, self.hints)


@dataclass
class VideoResult:
    source: str
    output: str
    frames: int = 0
    seconds: float = 0.0
    scene_cuts: int = 0
    cut_frames: list = field(default_factory=list)  # frame numbers where a new shot begins (found in this run)
    chunks: int = 1  # pieces the film went in (1: one pass)
    resumed_chunks: int = 0  # chunks found finished from an earlier, interrupted run
    variable_rate: bool = False  # the source's own frame timestamps were kept
    temporal: dict = field(default_factory=dict)  # {"smoothed": {...}, "per_frame": {...}}
    sheet: str | None = None  # the before/after sheet written, if asked for
    one_pass_reason: str | None = None  # why a film long enough for chunks went in one pass
    smoothing_note: str | None = None  # where smoothing did not make the colour steadier (temporal.smoothing_note)
    source_bits: int = 8  # bits per sample of the source
    output_bits: int = 8  # and of the colour film (a deep master keeps its depth where the codec carries it)
    hints: dict | None = None  # the colour hints used, per shot (film_hints.FilmHints.report)
    hint_error: str | None = None  # why the film's hints file could not be used (coloured without it)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def look_of(weights: Path, render_size: int, saturation: float) -> str:
    """The settings besides smoothing and encoding that make a film's colour: a re-run with other
    weights, render size or saturation starts the film over rather than join two looks."""
    return look_line(file_sha256(weights), render_size, saturation)


def look_line(weights_sha256: str, render_size: int, saturation: float) -> str:
    return f"weights sha256 {weights_sha256}, render size {render_size}, saturation {saturation:g}"
