"""One film from start to end: plan it, colour its pieces (the whole film, or its chunks), finish it.

A film longer than 1.5 chunks is processed in chunks that start on keyframes, each written
atomically under a work folder beside the target; a re-run continues after the last finished
chunk, and the chunks are joined (no re-encoding) with the source's audio. The output is
written under a temporary name and renamed once ffmpeg has finished it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..colorizer import Colorizer
from ..files import atomic_write_bytes, fitting_name, hold_folder, remove_temporaries_of, temporary_beside
from ..sheet import FrameSheet, sheet_path
from .chunks import FilmPlan, check_chunk_seeks, check_complete, join_chunks, make_index_copy, plan_film, prepare_chunk_folder
from .config import VideoConfig, VideoResult
from .ffmpeg import VideoError, find_ffmpeg, output_bits
from .smooth import TemporalSmoother
from .stream import Segment
from .temporal import TemporalMeter


def colorize_video(source: Path, target: Path, colorizer: Colorizer, config: VideoConfig = VideoConfig(), on_frames=None,
                   on_total=None) -> VideoResult:
    """Colorize one film into `target` (written atomically). Raises VideoError on failure.
    `on_total(frames)` once the film is planned (None where its length is unknown), `on_frames(n)` as frames are written.

    A film longer than 1.5 chunks is processed in chunks that start on keyframes, each written
    atomically under a work folder beside the target; a re-run continues after the last
    finished chunk, and the chunks are joined (no re-encoding) with the source's audio. The
    chunks of a program or transport stream are decoded from an index copy in that folder.
    """
    source, target = Path(source), Path(target)
    film = plan_film(source, target, config)
    if on_total is not None:
        on_total(film.info.frames)
    lock = hold_folder(target.parent, f"archivecolor video run writing {target.name}", lock_name=f".{fitting_name(target.name)}.lock")
    try:
        remove_temporaries_of(target)  # a killed run's half-written film (a chunked run's are in its work folder)
        return _colorize_film(source, target, film, colorizer, config, on_frames)
    finally:
        lock.close()


def _colorize_film(source: Path, target: Path, film: FilmPlan, colorizer: Colorizer, config: VideoConfig, on_frames) -> VideoResult:
    result = VideoResult(str(source), str(target), variable_rate=film.timestamps is not None, source_bits=film.info.bits,
                         output_bits=output_bits(film.info, config.encode.codec))
    started = time.perf_counter()
    smoother = TemporalSmoother(config.smoothing)
    meters = {"smoothed": TemporalMeter(), "per_frame": TemporalMeter()} if config.measure else {}
    sheet = FrameSheet(film.info.frames, float(film.info.rate)) if config.sheet else None
    ffmpeg = find_ffmpeg(config.ffmpeg)
    decode_from = source
    if film.index_copy:
        decode_from, film = make_index_copy(ffmpeg, source, target, film, config.chunk_frames)
    decode_from, film = check_chunk_seeks(ffmpeg, source, decode_from, target, film, config)
    result.one_pass_reason = "its keyframes do not decode true after a seek" if film.seek_refused else None
    segment = Segment(decode_from, film.info, ffmpeg, colorizer, config, smoother, meters, on_frames, film.timestamps, sheet)
    if len(film.chunks) <= 1:
        with temporary_beside(target) as tmp:
            result.frames = segment.run(tmp, film.container, with_streams=True)
            check_complete(result.frames, film.info)
            os.replace(tmp, target)
    else:
        result.frames = _run_chunks(segment, source, film.chunks, target, film.container, result)
    if sheet is not None and (jpeg := sheet.jpeg(sorted(smoother.cut_frames))):
        atomic_write_bytes(sheet_path(target), jpeg)
        result.sheet = str(sheet_path(target))
    result.seconds = time.perf_counter() - started
    result.scene_cuts = smoother.cuts
    result.cut_frames = sorted(smoother.cut_frames)
    result.temporal = {name: meter.result() for name, meter in meters.items()}
    return result


def run_chunk(segment: Segment, chunk: Path, first: int, count: int) -> None:
    """Colorize frames [first, first + count) into `chunk` (atomically). The smoothing is primed
    on the frames just before it, so colour runs on across the join as in one pass."""
    segment.smoother.reset()
    warmup = min(first, segment.config.smoothing.settle_frames())
    segment.smoother.frame = first - warmup  # cut frames are numbered in the whole film
    with temporary_beside(chunk) as tmp:
        got = segment.run(tmp, "matroska", with_streams=False, first_frame=first, frame_count=count, warmup_frames=warmup)
        if got != count:
            raise VideoError(f"the chunk from frame {first} gave {got} frames, {count} expected")
        os.replace(tmp, chunk)


def _run_chunks(segment: Segment, source: Path, chunks, target: Path, container: str, result: VideoResult) -> int:
    """The chunks not finished yet, then the join; `source` gives the audio and subtitles (the
    segment may decode from an index copy)."""
    work, names = prepare_chunk_folder(source, chunks, target, segment.config)
    frames = 0
    for chunk, (first, count) in zip(names, chunks):
        if chunk.exists():  # finished in an earlier run
            result.resumed_chunks += 1
            if segment.on_frames is not None:
                segment.on_frames(count)
            continue
        run_chunk(segment, chunk, first, count)
        frames += count
    join_chunks(segment.ffmpeg, work, names, source, segment.info, target, container)
    return frames
