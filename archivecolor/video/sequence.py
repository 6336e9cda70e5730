"""Image sequences: a film scanner's numbered frames (reel1/frame_000001.tif …), colorized as a film.

Restorers keep scanned film as one still per frame, 16-bit TIFF and the like, not as a video
file. A folder of such frames goes through the film path's smoothing (flicker is a film's
problem whatever holds it) and the still path's reading and writing (full bit depth, ICC,
metadata, atomic writes): decode → batch → infer → smooth → write, frame by frame, in order.
The output is a folder of frames with the same names. A re-run continues after the last frame
written, priming the smoothing on the frames before it so that colour does not jump there.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..colorizer import Colorizer
from ..files import OutputUnwritable, stops_the_run, write_failure
from ..folder import remove_stale_partials
from ..stills import DEFAULT_MAX_MEGAPIXELS, FileTask, decode_failure, decode_file, header, pixel_refusal, write_file
from ..hints import HintsError
from ..imageio import COLOUR_OUTPUT, STILL_EXTENSIONS, BadInput, read_stills, still_format
from ..render import full_luminance
from ..listing import is_hidden_or_system
from ..sheet import FrameSheet, sheet_path
from ..files import atomic_write_bytes
from .ffmpeg import VideoError
from .config import VideoConfig, VideoResult
from .film_hints import FilmHints, film_hints, hinted_look
from .stream import smooth_measured
from .smooth import TemporalSmoother
from .temporal import TemporalMeter, smoothing_note

FRAME_NUMBER = re.compile(r"^(.*?)(\d+)$")  # a stem ending in digits: "reel1_000123" -> ("reel1_", "000123")
MIN_FRAMES = 2
NOT_FRAMES = {"heif", "gif"}  # phone photos and animations are not what film scanners write


@dataclass
class FrameSequence:
    folder: Path
    frames: list[Path]  # in frame-number order
    others: int = 0  # pictures in the folder that are not frames of this sequence (left as they are)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) frame numbers missing

    @property
    def span(self) -> str:
        """'frame_000001.tif … frame_001440.tif'"""
        return f"{self.frames[0].name} … {self.frames[-1].name}"

    def gaps_line(self) -> str | None:
        if not self.gaps:
            return None
        shown = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in self.gaps[:5])
        return f"frame numbers missing: {shown}" + (f" and {len(self.gaps) - 5} more gaps" if len(self.gaps) > 5 else "")


def find_sequence(folder: Path) -> FrameSequence | None:
    """The numbered frames directly in `folder` (the largest set sharing a name pattern and a
    format, at least MIN_FRAMES of them); None where it holds none."""
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}  # by name pattern; frame_9 and frame_10 are one
    pictures = 0
    for path in Path(folder).iterdir():
        fmt = still_format(path)
        if not path.is_file() or fmt is None or fmt in NOT_FRAMES or is_hidden_or_system(Path(path.name)):
            continue
        pictures += 1
        match = FRAME_NUMBER.match(path.stem)
        if match:
            prefix, digits = match.groups()
            groups.setdefault((prefix, path.suffix.lower()), []).append((int(digits), path))
    if not groups:
        return None
    best = max(groups.values(), key=len)
    if len(best) < MIN_FRAMES:
        return None
    best.sort()
    numbers = [n for n, _ in best]
    gaps = [(a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b - a > 1]
    return FrameSequence(Path(folder), [p for _, p in best], pictures - len(best), gaps)


def find_sequences(folder: Path) -> tuple[list[FrameSequence], list[FrameSequence]]:
    """The film reel in `folder`, else those in its subfolders (a folder of reels: scans/reel1/,
    scans/reel2/ …), leaving out hidden and system folders and this tool's NAME-colorized ones;
    and, apart, the numbered pictures found that are no film reel (looks_like_film_frames: a box
    of photos numbered 1-8 is a job for `folder`: is_reel)."""
    folder = Path(folder)
    candidates = [sequence] if (sequence := find_sequence(folder)) else []
    if not candidates:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            ours = sub.name.endswith("-colorized") and sub.with_name(sub.name.removesuffix("-colorized")).is_dir()
            if not ours and not is_hidden_or_system(Path(sub.name)) and (sequence := find_sequence(sub)):
                candidates.append(sequence)
    return [s for s in candidates if is_reel(s)], [s for s in candidates if not is_reel(s)]


FILM_FRAME_DIGITS = 6  # film scanners number frames with 6-8 digits; cameras with 4 (IMG_0001)
FILM_FRAMES_AT_LEAST = 24  # a second of film


def looks_like_film_frames(sequence: FrameSequence) -> bool:
    """Whether `folder` would do better to leave these to `video`: DPX, which only film scanners
    write, or a second or more of frames numbered with film scanners' long numbers."""
    first = sequence.frames[0]
    digits = len(FRAME_NUMBER.match(first.stem).group(2))
    long_run = len(sequence.frames) >= FILM_FRAMES_AT_LEAST and digits >= FILM_FRAME_DIGITS
    return first.suffix.lower() == ".dpx" or long_run


REEL_DIGITS = 5  # `video` takes numbered frames as a reel from this many digits (scanners and editors: 5-8; cameras and box scans: 1-4)


def is_reel(sequence: FrameSequence) -> bool:
    """Whether `video` takes these numbered pictures for a film reel: DPX, or frame numbers of
    REEL_DIGITS or more digits, whatever their count (a short test strip is a reel too). A box of
    photos numbered 01-08 is not: `folder` colours those, and `video` says so."""
    first = sequence.frames[0]
    return first.suffix.lower() == ".dpx" or len(FRAME_NUMBER.match(first.stem).group(2)) >= REEL_DIGITS


def film_reels(folders) -> list[FrameSequence]:
    """The reels of film frames among `folders`, for `folder` to point at `video`."""
    reels = []
    for folder in sorted(set(folders)):
        sequence = find_sequence(folder)
        if sequence and looks_like_film_frames(sequence):
            reels.append(sequence)
    return reels


def default_sequence_output(folder: Path) -> Path:
    folder = Path(folder).resolve()
    return folder.parent / f"{folder.name}-colorized"

def reel_of(path: Path) -> FrameSequence | None:
    """The image sequence a still is one frame of, if it is one (named alone to `video`)."""
    path = Path(path)
    if still_format(path) is None:
        return None
    reel = find_sequence(path.parent)
    return reel if reel is not None and path in reel.frames and is_reel(reel) else None


def sequence_output(sequence: FrameSequence, out: Path | None, one_input: bool, one_sequence: bool,
                    given: Path | None = None) -> Path:
    """A reel's output folder: --out itself for the one reel of one input, --out/NAME among
    several, else NAME-colorized beside it; for the reels found in a folder `given` (a folder of
    reels), GIVEN-colorized/NAME beside that folder, never inside it. Raises ValueError for one
    inside the frames' folder or the folder given."""
    given = Path(given) if given is not None else sequence.folder
    if out is None:
        inside = given.resolve() != sequence.folder.resolve()
        target = default_sequence_output(given) / sequence.folder.name if inside else default_sequence_output(sequence.folder)
    else:
        target = out if one_input and one_sequence else out / sequence.folder.name
    resolved = Path(target).resolve()
    for source in {sequence.folder.resolve(), given.resolve()}:
        if resolved == source or resolved.is_relative_to(source):
            raise ValueError(f"the output folder {resolved} is inside the input folder {source}: choose one beside it")
    return Path(target)


def notes(sequence: FrameSequence) -> list[str]:
    """What to know before colouring a reel: gaps in its numbering, pictures that are not its
    frames, and log-encoded DPX (coloured as scanned, with no log-to-display conversion)."""
    from ..dpx import log_encoding

    lines = [sequence.gaps_line()]
    if sequence.others:
        lines.append(f"{sequence.others} other pictures in the folder are not its frames: left as they are")
    if encoding := log_encoding(sequence.frames[0]):
        lines.append(f"its DPX frames hold {encoding} (film densities, not display tones): they are coloured as "
                     "scanned, tones kept, without a log-to-display conversion")
    return [f"{sequence.folder}: {line}" for line in lines if line]



def frame_target(frame: Path, out: Path) -> tuple[Path, str]:
    """Where a frame's colour version goes (same name; a grey-only format's colour one) and its format."""
    fmt, suffix = COLOUR_OUTPUT.get(frame.suffix.lower(), (STILL_EXTENSIONS[frame.suffix.lower()], frame.suffix))
    return out / (frame.stem + suffix), fmt


def look_record(out: Path) -> Path:
    """How a reel's frames were coloured, beside its output folder (the folder holds frames only)."""
    return out.parent / f".{out.name}.look.json"


def check_look(out: Path, config: VideoConfig, frames_done: int) -> None:
    """A reel resumed with other settings would change colour where the first run stopped: refuse
    it (the frames written are kept) unless the reel is redone; record the settings otherwise."""
    look = {"look": config.look, "smoothing": repr(config.smoothing)}
    record = look_record(out)
    if frames_done:
        try:
            earlier = json.loads(record.read_text())
        except (OSError, ValueError):
            earlier = None  # written before this record existed: trusted, as then
        if earlier is not None and earlier != look:
            raise VideoError(f"its {frames_done} frames done so far were coloured with other settings (weights, render size, "
                             "saturation or smoothing): run the first run's command again, or --overwrite to redo the reel")
    atomic_write_bytes(record, json.dumps(look).encode())


@dataclass
class SequenceResult(VideoResult):
    failed: list[tuple[str, str]] = field(default_factory=list)  # (frame name, reason)
    already_done: int = 0  # frames an earlier run wrote
    preview: str | None = None  # the preview film written (video --preview)
    preview_error: str | None = None  # why the preview film asked for could not be made


def colorize_sequence(sequence: FrameSequence, out: Path, colorizer: Colorizer, config: VideoConfig = VideoConfig(),
                      overwrite: bool = False, jobs: int = 2, on_frames=None, on_total=None, on_error=None,
                      preview_fps: float | None = None, preview_progress: tuple = (None, None),
                      hints_file: Path | None = None) -> SequenceResult:
    """Colorize every frame of `sequence` into the folder `out`, in order, smoothing a/b over time;
    with `preview_fps` (0: the reel's own rate) also its preview film (preview.reel_preview), its
    bar fed through `preview_progress` (on_total, on_frames) and a failure kept in preview_error.
    `hints_file`: colour hints placed on frames of the reel (counted from 0), held for their shots
    and carried by the picture's motion as a film's are; one that cannot be used is said in the
    result's hint_error, and the reel is coloured without it.

    A frame that cannot be read is reported through `on_error(path, reason)` and left out; the
    rest go on. Frames already in `out` are kept unless `overwrite`; the smoothing is primed on
    up to `config.smoothing.settle_frames()` frames before the first one still to do. Raises
    VideoError if those frames were coloured with other settings.
    """
    if hints_file is not None:  # frames coloured with other hints are not mixed with these
        config = replace(config, look=hinted_look(config.look or colorizer.look(), hints_file, colorizer.hint_spread))
    result = _colorize_frames(sequence, Path(out), colorizer, config, overwrite, jobs, on_frames, on_total, on_error, hints_file)
    if preview_fps is not None:
        from .preview import reel_preview

        try:
            result.preview = str(reel_preview(sequence, Path(out), result.frames, config.ffmpeg, overwrite, preview_fps, *preview_progress))
        except VideoError as exc:
            result.preview_error = str(exc)
    return result


@dataclass
class ReelOutcome:
    """How one reel ended, as a FilmOutcome says it for a film: "done", "failed" (frames or its
    preview failed, or its frames were coloured with other settings) or "stopped" (nothing more
    can be written where it goes), with the reason and what was coloured."""
    source: Path  # the reel's folder
    target: Path
    status: str
    reason: str = ""
    result: SequenceResult | None = None


def colorize_reel(sequence: FrameSequence, out: Path, colorizer: Colorizer, config: VideoConfig = VideoConfig(),
                  overwrite: bool = False, **options) -> ReelOutcome:
    """colorize_sequence, with its ends decided here for every caller: a reel whose frames or
    preview failed is "failed"; a reel resumed with other settings fails and one that cannot be
    written is "stopped", each with the reason. `options` are colorize_sequence's."""
    try:
        result = colorize_sequence(sequence, out, colorizer, config, overwrite, **options)
    except OutputUnwritable as exc:
        return ReelOutcome(sequence.folder, Path(out), "stopped", str(exc))
    except VideoError as exc:  # resumed with other settings
        return ReelOutcome(sequence.folder, Path(out), "failed", str(exc))
    reasons = [f"{result.hint_error}; coloured without its hints"] * bool(result.hint_error)
    reasons += [f"{len(result.failed)} frame(s) failed"] * bool(result.failed)
    reasons += ["the preview film failed"] * (result.preview_error is not None)
    return ReelOutcome(sequence.folder, Path(out), "failed" if reasons else "done", "; ".join(reasons), result)


def frames_to_do(sequence: FrameSequence, out: Path, overwrite: bool) -> tuple[list[FileTask], list[int]]:
    """A task for every frame of the reel, and the indices of those a run colours (all with
    `overwrite`, else those not yet in `out`): decided here for the run and its dry run alike."""
    tasks = [FileTask(frame, frame.name, *frame_target(frame, Path(out))) for frame in sequence.frames]
    return tasks, [i for i, task in enumerate(tasks) if overwrite or not task.target.exists()]


def reel_hints(sequence: FrameSequence, hints_file: Path, colorizer: Colorizer, config: VideoConfig) -> FilmHints:
    """A reel's hints followed through its frames as a film's are (film_hints: one pass over the
    frames' L*, shots found by the smoothing's cut detector). Raises HintsError."""
    return film_hints(hints_file, _reel_luminance(sequence), _reel_size(sequence), len(sequence.frames), colorizer.render_size,
                      colorizer.backend.size_multiple, config.smoothing.cut_threshold, config.smoothing.occlusion_threshold)


def _frame_luminance(frame: Path) -> np.ndarray:
    """A frame's L* at full size, read as its colouring reads it (a decompression bomb refused first)."""
    if refusal := pixel_refusal(header(frame)[0], DEFAULT_MAX_MEGAPIXELS):
        raise BadInput(refusal)
    still = read_stills(frame)[0]
    return full_luminance(still.pixels, still.metadata.icc)


def _reel_size(sequence: FrameSequence) -> tuple[int, int]:
    """The reel's picture size (height, width): its first frame that can be read."""
    for frame in sequence.frames:
        try:
            return _frame_luminance(frame).shape
        except Exception:  # such a frame fails, said, when it is coloured
            continue
    raise HintsError(f"no frame of {sequence.folder} can be read to place its hints on")


def _reel_luminance(sequence: FrameSequence):
    """Each frame's L* in order, for the hints' tracking. A frame that cannot be read (it fails,
    said, when it is coloured) repeats the one before, and one of another size is resized, so the
    frame numbers stay in step with the reel's."""
    height, width = _reel_size(sequence)
    last = np.zeros((height, width), np.float32)
    for frame in sequence.frames:
        try:
            L = _frame_luminance(frame)
            last = L if L.shape == (height, width) else cv2.resize(L, (width, height), interpolation=cv2.INTER_AREA)
        except Exception:  # as above: said when it is coloured
            pass
        yield last


def _colorize_frames(sequence: FrameSequence, out: Path, colorizer: Colorizer, config: VideoConfig, overwrite: bool, jobs: int,
                     on_frames, on_total, on_error, hints_file: Path | None = None) -> SequenceResult:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    result = SequenceResult(str(sequence.folder), str(out))
    tasks, todo = frames_to_do(sequence, out, overwrite)
    result.already_done = len(tasks) - len(todo)
    if todo:
        check_look(out, config, result.already_done)
    if on_total is not None:
        on_total(len(todo))
    if not todo:
        return result
    hints = None
    if hints_file is not None:
        try:
            hints = reel_hints(sequence, hints_file, colorizer, config)
            result.hints = hints.report()
        except HintsError as exc:
            result.hint_error = f"hints: {exc}"
    start = max(0, todo[0] - config.smoothing.settle_frames())
    to_write = set(todo)
    smoother = TemporalSmoother(config.smoothing)
    sheet = FrameSheet.spread(len(todo)) if config.sheet else None
    position = {index: n for n, index in enumerate(todo)}  # among the frames written in this run
    meters = {"smoothed": TemporalMeter(), "per_frame": TemporalMeter()} if config.measure else {}
    made_with = colorizer.provenance()
    started = time.perf_counter()
    order = list(range(start, len(tasks)))
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    with ThreadPoolExecutor(jobs, thread_name_prefix="decode") as decoders, ThreadPoolExecutor(jobs, thread_name_prefix="encode") as encoders:
        ahead: deque[list[tuple[int, Future]]] = deque()
        writing: deque[tuple[int, Future]] = deque()

        def submit(batch):
            ahead.append([(i, decoders.submit(decode_file, tasks[i], colorizer.prepare)) for i in batch])

        def settle_writes(limit: int) -> None:
            while len(writing) > limit:
                index, future = writing.popleft()
                try:
                    future.result()
                except BadInput as exc:
                    _fail(result, tasks[index], str(exc), on_error)
                except Exception as exc:  # a disk or encoder error: this frame fails…
                    _fail(result, tasks[index], f"could not write it: {write_failure(exc)}", on_error)
                    if stops_the_run(exc):  # …and every later one would too
                        raise OutputUnwritable(f"stopped: {write_failure(exc)}; finished frames are kept: make room "
                                               "and run the same command again") from None
                else:
                    result.frames += 1
                    if on_frames is not None:
                        on_frames(1)

        for batch in batches[:2]:
            submit(batch)
        for number in range(len(batches)):
            decoded = []
            for index, future in ahead.popleft():
                try:
                    item = future.result()
                    if len(item.stills) != 1:
                        raise BadInput(f"{len(item.stills)} pages: a frame is one picture")
                    if hints is not None and (placed := hints.at(index)):
                        item.jobs[0].add_hints(placed)
                        item.task.hints = len(placed)  # the frame's mark counts the hints that coloured it
                    decoded.append((index, item))
                except Exception as exc:  # this frame fails; the reel goes on (Ctrl-C is no Exception: it stops)
                    if index in to_write:
                        _fail(result, tasks[index], decode_failure(exc), on_error)
            if number + 2 < len(batches):
                submit(batches[number + 2])
            colorizer.predict([item.jobs[0] for _, item in decoded], config.batch_size)
            for index, item in decoded:
                job = item.jobs[0]
                if index not in to_write:  # done in an earlier run: primes the smoothing only
                    smoother.prime(job.L_render, job.ab)
                    continue
                smooth_measured(job, smoother, meters)
                if sheet is not None:
                    sheet.offer(position[index], job)
                writing.append((index, encoders.submit(write_file, item, made_with=made_with)))
            settle_writes(2 * jobs)
        settle_writes(0)
    if sheet is not None and (jpeg := sheet.jpeg()):
        atomic_write_bytes(sheet_path(out), jpeg)
        result.sheet = str(sheet_path(out))
    result.seconds = time.perf_counter() - started
    result.scene_cuts = smoother.cuts
    result.cut_frames = sorted(smoother.cut_frames)
    result.temporal = {name: meter.result() for name, meter in meters.items()} if result.frames > 1 else {}
    result.smoothing_note = smoothing_note(result.temporal)
    return result


def _fail(result: SequenceResult, task: FileTask, reason: str, on_error) -> None:
    result.failed.append((task.rel, reason))
    if on_error is not None:
        on_error(task.source, reason)

