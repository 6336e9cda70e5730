"""One film from start to end: plan it, colour its pieces (the whole film, or its chunks), finish it.

A film longer than 1.5 chunks is processed in chunks that start on keyframes, each written
atomically under a work folder beside the target; a re-run continues after the last finished
chunk, and the chunks are joined (no re-encoding) with the source's audio. The output is
written under a temporary name and renamed once ffmpeg has finished it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..colorizer import Colorizer
from ..files import FolderInUse, atomic_write_bytes, fitting_name, hold_folder, remove_temporaries_of, temporary_beside
from ..hints import HintsError
from ..sheet import FrameSheet, sheet_path
from .chunks import (FilmPlan, check_chunk_seeks, check_complete, finished_chunks, join_chunks, make_index_copy, plan_film,
                     prepare_chunk_folder)
from .config import VideoConfig, VideoResult
from .ffmpeg import VideoError, find_ffmpeg, output_bits
from .smooth import TemporalSmoother
from .film_hints import FilmHints, film_hints, hinted_look
from .stream import Segment, luminance_frames
from .temporal import TemporalMeter, smoothing_note


ONE_PASS_AFTER_SEEK_CHECK = "its keyframes do not decode true after a seek"


@dataclass(frozen=True)
class Piece:
    """A stretch of a film coloured in one call, start to end: the whole film into its target
    (with its sound), or one chunk into the work folder."""

    first: int  # its first frame in the film
    count: int  # frames
    out: Path
    whole: bool


@dataclass(frozen=True)
class FilmJob:
    """One film, planned: where its frames are decoded from, its pieces, and which of them an
    earlier, interrupted run finished. Picklable: a cluster's actors run its pieces."""

    source: Path
    target: Path
    plan: FilmPlan
    decode_from: Path  # the source, or the index copy its chunks are decoded from
    config: VideoConfig
    pieces: tuple  # every Piece, in film order
    finished: tuple  # per piece: its file was already there when the film was planned
    work: Path | None = None  # the chunks' work folder (None: one pass)
    hints: FilmHints | None = None  # the archivist's colour hints, tracked through the film (film_hints.py)
    hint_error: str | None = None  # why its hints file could not be used: it is coloured without, and counted failed

    @property
    def to_run(self) -> list:
        return [piece for piece, done in zip(self.pieces, self.finished) if not done]


@dataclass
class PieceResult:
    """What colouring one piece found: sent back from wherever it ran, merged by finish_film."""

    frames: int
    cuts: int
    cut_frames: list
    meters: dict  # {"smoothed": TemporalMeter, "per_frame": TemporalMeter}, their sums only
    sheet: FrameSheet | None = None  # the sheet frames that fell in this piece


def hold_film(target: Path):
    """Lock `target` against a second run writing it at the same time (FolderInUse names the holder)."""
    return hold_folder(target.parent, f"archivecolor video run writing {target.name}", lock_name=f".{fitting_name(target.name)}.lock")


def prepare_film(source: Path, target: Path, config: VideoConfig) -> FilmJob:
    """Everything before the first frame: the plan, the index copy of an unindexed stream, the
    seek check, the chunks' work folder (chunks of another source or other settings removed).
    Run it holding hold_film(target). Raises VideoError."""
    source, target = Path(source), Path(target)
    film = plan_film(source, target, config)
    remove_temporaries_of(target)  # a killed run's half-written film (a chunked run's are in its work folder)
    ffmpeg = find_ffmpeg(config.ffmpeg)
    decode_from = source
    if film.index_copy:
        decode_from, film = make_index_copy(ffmpeg, source, target, film, config.chunk_frames)
    decode_from, film = check_chunk_seeks(ffmpeg, source, decode_from, target, film, config)
    if len(film.chunks) <= 1:
        return FilmJob(source, target, film, decode_from, config, (Piece(0, film.chunks[0][1], target, True),), (False,))
    work, names = prepare_chunk_folder(source, film.chunks, target, config)
    pieces = tuple(Piece(first, count, name, False) for name, (first, count) in zip(names, film.chunks))
    return FilmJob(source, target, film, decode_from, config, pieces, tuple(name.exists() for name in names), work)


def run_piece(job: FilmJob, piece: Piece, colorizer: Colorizer, on_frames=None) -> PieceResult:
    """Colour one piece into its file (atomically): decode -> infer -> smooth -> encode. A chunk's
    smoothing is primed on the frames just before it, so colour runs on across the join."""
    config, film = job.config, job.plan
    smoother = TemporalSmoother(config.smoothing)
    meters = {"smoothed": TemporalMeter(), "per_frame": TemporalMeter()} if config.measure else {}
    sheet = FrameSheet.spread(film.info.frames, float(film.info.rate)) if config.sheet else None
    segment = Segment(job.decode_from, film.info, find_ffmpeg(config.ffmpeg), colorizer, config, smoother, meters, on_frames,
                      film.timestamps, sheet, job.hints)
    if piece.whole:
        with temporary_beside(piece.out) as tmp:
            frames = segment.run(tmp, film.container, with_streams=True)
            check_complete(frames, film.info)
            os.replace(tmp, piece.out)
    else:
        run_chunk(segment, piece.out, piece.first, piece.count)
        frames = piece.count
    return PieceResult(frames, smoother.cuts, sorted(smoother.cut_frames), {name: meter.sums_only() for name, meter in meters.items()},
                       sheet)


def run_chunk(segment: Segment, chunk: Path, first: int, count: int) -> None:
    """Colorize frames [first, first + count) into `chunk` (atomically), the smoothing primed on
    the frames before it."""
    segment.smoother.reset()
    warmup = min(first, segment.config.smoothing.settle_frames())
    segment.smoother.frame = first - warmup  # cut frames are numbered in the whole film
    with temporary_beside(chunk) as tmp:
        got = segment.run(tmp, "matroska", with_streams=False, first_frame=first, frame_count=count, warmup_frames=warmup)
        if got != count:
            raise VideoError(f"the chunk from frame {first} gave {got} frames, {count} expected")
        os.replace(tmp, chunk)


def finish_film(job: FilmJob, results: list, seconds: float) -> VideoResult:
    """Join a chunked film's chunks into its target (no re-encoding, with the source's sound),
    write its sheet, and merge what its pieces found into the film's result."""
    film, config = job.plan, job.config
    if job.work is not None:
        join_chunks(find_ffmpeg(config.ffmpeg), job.work, [piece.out for piece in job.pieces], job.source, film.info, job.target,
                    film.container, config.mark)
    result = VideoResult(str(job.source), str(job.target), variable_rate=film.timestamps is not None, source_bits=film.info.bits,
                         output_bits=output_bits(film.info, config.encode.codec), chunks=len(job.pieces),
                         resumed_chunks=sum(job.finished) if job.work is not None else 0,
                         one_pass_reason=ONE_PASS_AFTER_SEEK_CHECK if film.seek_refused else None,
                         hints=job.hints.report() if job.hints is not None else None, hint_error=job.hint_error)
    result.frames = sum(r.frames for r in results)
    result.scene_cuts = sum(r.cuts for r in results)
    result.cut_frames = sorted(frame for r in results for frame in r.cut_frames)
    if config.measure and results:
        result.temporal = {name: TemporalMeter.combined([r.meters[name] for r in results]).result() for name in results[0].meters}
        result.smoothing_note = smoothing_note(result.temporal)
    sheets = [r.sheet for r in results if r.sheet is not None]
    if sheets and (jpeg := FrameSheet.combined(sheets).jpeg(result.cut_frames)):
        atomic_write_bytes(sheet_path(job.target), jpeg)
        result.sheet = str(sheet_path(job.target))
    result.seconds = seconds
    return result


def colorize_video(source: Path, target: Path, colorizer: Colorizer, config: VideoConfig = VideoConfig(), on_frames=None,
                   on_total=None, hints_file: Path | None = None, on_tracking: tuple = (None, None)) -> VideoResult:
    """Colorize one film into `target` (written atomically) on this machine. Raises VideoError on failure.
    `on_total(frames)` once the film is planned (None where its length is unknown), `on_frames(n)` as frames are written.
    `hints_file`: the archivist's colour hints (film_hints.py); one that cannot be used is said in
    the result's hint_error, and the film is coloured without it. `on_tracking`: (on_total,
    on_frames) for the pass that follows the hints through the film before it is coloured.

    A film longer than 1.5 chunks is processed in chunks that start on keyframes; a re-run
    continues after the last finished chunk. The chunks of a program or transport stream are
    decoded from an index copy in the work folder.
    """
    started = time.perf_counter()
    config = config if config.look else dataclasses.replace(config, look=colorizer.look())
    config = config if config.made_with else dataclasses.replace(config, made_with=colorizer.provenance())
    if hints_file is not None:  # hints change the colour: chunks coloured with other hints are not joined to these
        config = dataclasses.replace(config, look=hinted_look(config.look, hints_file, colorizer.hint_spread))
    with hold_film(Path(target)):
        job = prepare_film(source, target, config)
        if hints_file is not None:
            tracking_total, tracking_frames = on_tracking
            if tracking_total is not None:
                tracking_total(job.plan.info.frames)
            job = with_hints(job, hints_file, colorizer.render_size, colorizer.backend.size_multiple, tracking_frames)
        if on_total is not None:
            on_total(job.plan.info.frames)
        resumed = sum(piece.count for piece, done in zip(job.pieces, job.finished) if done)  # finished in an earlier run
        if resumed and on_frames is not None:
            on_frames(resumed)  # at once: a bar's rate then counts only frames coloured now
        results = [run_piece(job, piece, colorizer, on_frames) for piece, done in zip(job.pieces, job.finished) if not done]
        return finish_film(job, results, time.perf_counter() - started)


def with_hints(job: FilmJob, hints_file: Path, render_size: int, size_multiple: int, on_frames=None) -> FilmJob:
    """The job with its hints tracked through the film (one decoding pass, at the model's render
    size), and its output's mark counting them; or, where the file cannot be used, with the reason
    and no hints. Needs no model: a cluster's driver runs it too."""
    info, smoothing = job.plan.info, job.config.smoothing
    try:
        hints = film_hints(hints_file, luminance_frames(find_ffmpeg(job.config.ffmpeg), job.decode_from, info), info.display_hw,
                           info.frames, render_size, size_multiple, smoothing.cut_threshold, smoothing.occlusion_threshold,
                           on_frames)
    except HintsError as exc:
        return dataclasses.replace(job, hint_error=f"hints: {exc}")
    return dataclasses.replace(job, hints=hints, config=dataclasses.replace(job.config, hints=hints.count))


@dataclass
class FilmOutcome:
    """What became of one film in a batch: done, skipped (exists) or failed (why), and its result."""

    source: Path
    target: Path
    status: str
    reason: str = ""
    result: VideoResult | None = None


class FilmsStopped(Exception):
    """Ctrl-C stopped a batch of films: the films and chunks finished are kept."""

    def __init__(self, outcomes: list, total: int):
        done = sum(o.status in ("done", "skipped") for o in outcomes)
        super().__init__(f"stopped: {done} of {total} films done; run the same command to resume (a long film's "
                         "finished chunks are kept)")
        self.outcomes, self.total = outcomes, total


def settled_before_start(source: Path, target: Path, overwrite: bool) -> "FilmOutcome | None":
    """A film's outcome decided before any work: failed where its output would be the source
    itself, skipped where its output exists (a finished earlier run); None: colour it."""
    source, target = Path(source), Path(target)
    if target.exists() and target.resolve() == source.resolve():
        return FilmOutcome(source, target, "failed", "the output would overwrite the source: name another with -o")
    if target.exists() and not overwrite:
        return FilmOutcome(source, target, "skipped", "exists")
    return None


@dataclass
class FilmForecast:
    """What a run would do with one film (`video --dry-run`): "colorized", "skipped" or "failed"
    (why), with its plan and how many of its chunks an interrupted run already finished."""

    source: Path
    target: Path
    status: str
    reason: str = ""
    plan: FilmPlan | None = None
    finished: int = 0


def forecast_films(films: list, config: VideoConfig = VideoConfig(), overwrite: bool = False) -> list:
    """For (source, target) films, what colorize_films would do, decided as it decides (settled
    before start, then the plan): headers and packets read, nothing written, no model loaded."""
    forecasts = []
    for source, target in films:
        source, target = Path(source), Path(target)
        if (settled := settled_before_start(source, target, overwrite)) is not None:
            forecasts.append(FilmForecast(source, target, settled.status, settled.reason))
            continue
        try:
            plan = plan_film(source, target, config)
        except VideoError as exc:
            forecasts.append(FilmForecast(source, target, "failed", str(exc)))
            continue
        finished = finished_chunks(source, plan.chunks, target, config) if len(plan.chunks) > 1 else 0
        forecasts.append(FilmForecast(source, target, "colorized", plan=plan, finished=finished))
    return forecasts


def finished_outcome(source: Path, target: Path, result: VideoResult) -> FilmOutcome:
    """A coloured film's outcome: done, or failed where its hints could not be used (coloured without them)."""
    if result.hint_error:
        return FilmOutcome(Path(source), Path(target), "failed", f"{result.hint_error}; coloured without its hints", result)
    return FilmOutcome(Path(source), Path(target), "done", result=result)


def failure_reason(exc: Exception) -> str:
    """A film's failure in one line."""
    return str(exc) if isinstance(exc, (VideoError, FolderInUse)) else f"{type(exc).__name__}: {exc}"


def colorize_films(films: list, colorizer: Colorizer, config: VideoConfig = VideoConfig(), overwrite: bool = False,
                   on_start=None, on_total=None, on_frames=None, on_end=None, debug: bool = False, hints: dict | None = None,
                   on_tracking: tuple = (None, None)) -> list:
    """Colour (source, target) films one after another: a film whose output exists is skipped,
    one that fails is said (`on_end`) and counted, and the rest go on. Returns a FilmOutcome per
    film; Ctrl-C raises FilmsStopped with the outcomes so far. `on_start(source)` as each film
    begins, then `on_total` and `on_frames` as for colorize_video; with `debug` an unexpected
    error raises with its traceback. `hints` maps a film to its hints file; a film whose file
    cannot be used is coloured without it and counted failed, the reason said; `on_tracking` as
    for colorize_video."""
    outcomes = []
    for source, target in films:
        if (outcome := settled_before_start(source, target, overwrite)) is None:
            if on_start is not None:
                on_start(Path(source))
            try:
                result = colorize_video(source, target, colorizer, config, on_frames=on_frames, on_total=on_total,
                                        hints_file=(hints or {}).get(source), on_tracking=on_tracking)
                outcome = finished_outcome(source, target, result)
            except KeyboardInterrupt:
                raise FilmsStopped(outcomes, len(films)) from None
            except Exception as exc:
                if debug and not isinstance(exc, (VideoError, FolderInUse)):
                    raise
                outcome = FilmOutcome(Path(source), Path(target), "failed", failure_reason(exc))
        outcomes.append(outcome)
        if on_end is not None:
            on_end(outcome)
    return outcomes


def holding_films(targets) -> ExitStack:
    """hold_film for every target at once (a cluster run writes them all together)."""
    stack = ExitStack()
    try:
        for target in targets:
            stack.enter_context(hold_film(Path(target)))
    except BaseException:
        stack.close()
        raise
    return stack
