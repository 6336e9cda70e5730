"""An archivist's hints on a film: each placed on one frame, held for its shot, carried along by the picture's motion.

A hint (hints.Hint with its `frame`) says what colour a thing was where it stood on that frame.
Before the film is coloured, one pass over its luminance at render size finds the shots (the
smoothing's own cut detector) and follows each hint's point through its shot, forward and back
from its frame, by optical flow (OpenCV Farnebäck, as the `flow` smoothing computes it). A hint
is dropped from the frame where its point leaves the picture or is covered (the luminance
carried along disagrees with the frame's, the smoothing's occlusion test), and stops at a cut.
The coloured pass then places, on each frame, the hints in force there, where they are then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ..files import file_sha256
from ..hints import Hint, HintsError, parse_hints, read_hints_text
from ..render import plan, render_luminance
from .cuts import CutDetector
from .smooth import FARNEBACK_ARGS, luminance_8bit

MAX_BACK_FRAMES = 3000  # a hint holds back toward its shot's start over at most this many frames (memory: a frame at render size each)
TRACK_WINDOW = 2  # the flow at a point is the median over the (2·2+1)² pixels around it


@dataclass(frozen=True)
class HintTrack:
    """Where one hint's point is on each frame it holds on: frames first … first + len(xs) − 1,
    in the full picture's pixels."""

    point: int  # its number in the hints file, counted from 1 (as messages name it)
    hint: Hint  # as placed
    first: int
    xs: tuple
    ys: tuple

    @property
    def last(self) -> int:
        return self.first + len(self.xs) - 1

    def at(self, frame: int) -> Hint | None:
        if not self.first <= frame <= self.last:
            return None
        i = frame - self.first
        return replace(self.hint, x=self.xs[i], y=self.ys[i])


@dataclass(frozen=True)
class FilmHints:
    """A film's hints, tracked: what each frame gets (`at`), and what the report says (`report`)."""

    file: str
    sha256: str
    tracks: tuple  # HintTrack per hint
    shots: tuple  # (first frame, last frame) of each shot a hint was placed in

    @property
    def count(self) -> int:
        return len(self.tracks)

    def at(self, frame: int) -> list[Hint]:
        return [hint for track in self.tracks if (hint := track.at(frame)) is not None]

    def report(self) -> dict:
        """The hints used per shot: each hint's point, the frame it was placed on, and the frames it held on."""
        shots = []
        for first, last in self.shots:
            inside = [t for t in self.tracks if first <= t.hint.frame <= last]
            shots.append({"first_frame": first, "last_frame": last,
                          "hints": [{"point": t.point, "placed_on": t.hint.frame, "held_from": t.first, "held_to": t.last}
                                    for t in inside]})
        return {"file": self.file, "sha256": self.sha256, "points": self.count, "shots": shots}


def track_hints(frames: Iterable[np.ndarray], hints: list[Hint], full_hw: tuple[int, int], cut_threshold: float,
                occlusion_threshold: float) -> tuple[list[HintTrack], list[tuple[int, int]], int]:
    """Follow `hints` (each with its frame) through `frames` (L* at render size, in film order).
    Returns the tracks, the (first, last) frames of the shots that hold a hint, and the frames seen:
    it stops at the first cut after the last hinted frame (the film's end when none comes).
    Pure array code: the film pass feeds it decoded frames, tests feed it drawn ones."""
    detector = CutDetector(cut_threshold)
    by_frame: dict[int, list[int]] = {}
    for i, hint in enumerate(hints):
        by_frame.setdefault(hint.frame, []).append(i)
    last_placed = max(by_frame, default=-1)
    positions: dict[int, dict[int, tuple[float, float]]] = {i: {} for i in range(len(hints))}  # render pixels per frame
    active: dict[int, tuple[float, float]] = {}  # hints being carried forward: their point now
    shot_frames: list[np.ndarray] = []  # this shot's frames so far (while a hint may still be placed), for the way back
    shot_start, prev, scale, t = 0, None, None, -1
    hinted_shots: list[list[int]] = []
    for t, L in enumerate(frames):
        if scale is None:
            scale = (L.shape[0] / full_hw[0], L.shape[1] / full_hw[1])
        L = np.asarray(L, np.float32)
        if detector(L) and t > 0:  # a new shot: the hints of the last one end
            if t > last_placed:  # and no hint is placed later: the rest of the film needs no decoding
                break
            shot_start, prev, active, shot_frames = t, None, {}, []
        if prev is not None and active:
            flow = cv2.calcOpticalFlowFarneback(luminance_8bit(prev), luminance_8bit(L), *FARNEBACK_ARGS)
            active = {i: p for i, p in ((i, _carried(p, flow, prev, L, occlusion_threshold)) for i, p in active.items()) if p}
            for i, p in active.items():
                positions[i][t] = p
        if t in by_frame:
            if not hinted_shots or hinted_shots[-1][0] != shot_start:
                hinted_shots.append([shot_start, t])
            placed = {i: (hints[i].y * scale[0], hints[i].x * scale[1]) for i in by_frame[t]}
            for i, start in placed.items():
                positions[i][t] = active[i] = start
            _carry_back(placed, t, shot_frames + [L], positions, occlusion_threshold)
        if hinted_shots and hinted_shots[-1][0] == shot_start:
            hinted_shots[-1][1] = t
        if t < last_placed:
            shot_frames.append(L)
            del shot_frames[:-MAX_BACK_FRAMES]
        else:
            shot_frames = []
        prev = L
    tracks = []
    for i, hint in enumerate(hints):
        held = positions[i]
        if not held:
            continue
        first, last = min(held), max(held)
        ys, xs = zip(*(held[f] for f in range(first, last + 1)))
        tracks.append(HintTrack(i + 1, hint, first, tuple(x / scale[1] for x in xs), tuple(y / scale[0] for y in ys)))
    return tracks, [tuple(s) for s in hinted_shots], t + 1


def _carry_back(placed: dict, t: int, frames: list[np.ndarray], positions: dict, occlusion_threshold: float) -> None:
    """Follow the hints placed on frame t (hint -> its point) back through their shot's earlier
    frames (`frames` ends with frame t), one flow per pair of frames for them all."""
    points = dict(placed)
    for k in range(len(frames) - 1, 0, -1):
        if not points:
            return
        flow = cv2.calcOpticalFlowFarneback(luminance_8bit(frames[k]), luminance_8bit(frames[k - 1]), *FARNEBACK_ARGS)
        points = {i: p for i, p in ((i, _carried(p, flow, frames[k], frames[k - 1], occlusion_threshold)) for i, p in points.items()) if p}
        for i, p in points.items():
            positions[i][t - (len(frames) - k)] = p


def _carried(p: tuple[float, float], flow: np.ndarray, here: np.ndarray, there: np.ndarray, occlusion_threshold: float):
    """The point `p` (y, x) of frame `here` moved by `flow` into frame `there`; None where it leaves
    the picture or its luminance there disagrees (covered, or tracked onto something else)."""
    h, w = here.shape
    y, x = int(round(min(max(p[0], 0), h - 1))), int(round(min(max(p[1], 0), w - 1)))
    r = TRACK_WINDOW
    window = flow[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].reshape(-1, 2)
    dx, dy = np.median(window[:, 0]), np.median(window[:, 1])
    ny, nx = p[0] + float(dy), p[1] + float(dx)
    if not (0 <= ny <= h - 1 and 0 <= nx <= w - 1):
        return None
    before = cv2.getRectSubPix(here, (3, 3), (float(p[1]), float(p[0]))).mean()
    after = cv2.getRectSubPix(there, (3, 3), (nx, ny)).mean()
    return (ny, nx) if abs(float(after) - float(before)) < occlusion_threshold else None


def read_film_hints(path: Path, display_hw: tuple[int, int], frames: int | None) -> list[Hint]:
    """A film's hints file, checked against the film: every point on the picture, every frame in
    the film. Raises HintsError naming the file and the entry."""
    hints = parse_hints(read_hints_text(path), str(path), size=(display_hw[1], display_hw[0]), film=True)
    for i, hint in enumerate(hints):
        if frames and hint.frame >= frames:
            raise HintsError(f"{path}: point {i + 1}: frame {hint.frame} is not in the film (frames 0–{frames - 1})")
    return hints


def film_hints(path: Path, luminance: Iterator[np.ndarray], display_hw: tuple[int, int], frames: int | None, render_size: int,
               size_multiple: int, cut_threshold: float, occlusion_threshold: float, on_frames=None) -> FilmHints:
    """Read a film's hints file and track its hints through the film's frames (`luminance`: L* at
    full size, in order, what the coloured pass decodes). `on_frames(n)` as frames are tracked
    (a long film's pass takes minutes before the first frame is coloured). Raises HintsError."""
    hints = read_film_hints(path, display_hw, frames)
    geometry = plan(display_hw, render_size, size_multiple)
    rendered = _counted((render_luminance(L, geometry) for L in luminance), on_frames)
    tracks, shots, seen = track_hints(rendered, hints, display_hw, cut_threshold, occlusion_threshold)
    for i, hint in enumerate(hints):
        if hint.frame >= seen:
            raise HintsError(f"{path}: point {i + 1}: frame {hint.frame} is not in the film (it decodes to {seen} frames)")
    return FilmHints(str(path), file_sha256(path), tuple(tracks), tuple(shots))


def _counted(frames: Iterator[np.ndarray], on_frames, every: int = 10):
    """The frames, with on_frames(n) called every `every` of them (and for the rest at the end)."""
    n = 0
    for n, frame in enumerate(frames, 1):
        yield frame
        if on_frames is not None and n % every == 0:
            on_frames(every)
    if on_frames is not None and n % every:
        on_frames(n % every)


def hinted_look(look: str, hints_file: Path, reach: float) -> str:
    """A film's or reel's look when hints colour it: chunks or frames coloured with other hints (or
    another reach) are then never joined to these."""
    try:
        digest = file_sha256(hints_file)
    except OSError:
        digest = "unreadable"  # said once the hints are read
    return f"{look}, hints sha256 {digest} reaching {reach:g} px"
