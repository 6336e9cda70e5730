"""Planning a film before its first frame, and its resumable chunks: stream facts, chunks on
keyframes, the index copy of an unindexed stream, the seek check, the work folder, the join."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes, temporary_beside
from .config import VideoConfig
from .ffmpeg import (VideoError, VideoInfo, concat_command, decode_command, index_copy_command, is_variable_rate, keyframe_indices,
                     last_line, probe, start, stderr_of, stream_index)
from .naming import CONTAINER_FORMATS, container_refusal


def check_complete(frames: int, info: VideoInfo) -> None:
    """A film that decodes to fewer frames than its packets promise is damaged or cut short: it
    fails, rather than leave a shorter film that a re-run would take for finished. (A frame or
    two, or 1 %, may drop at a broken packet.)"""
    if info.frames and frames < info.frames - max(2, info.frames // 100):
        raise VideoError(f"only {frames} of its {info.frames} frames could be decoded: the file is damaged or cut short "
                         "(nothing written)")


def check_not_cut_short(packets: int, info: VideoInfo) -> None:
    """A file whose index (an MP4's moov at the front, say) promises more frames than it holds
    packets for was cut short, by a copy that stopped or a download that broke: decoding would
    end early and look like a shorter film, finished. It fails instead, before anything is written."""
    if info.frames and packets and packets < info.frames - max(2, info.frames // 100):
        raise VideoError(f"cut short: its index promises {info.frames} frames, the file holds only {packets} "
                         "(an interrupted copy or download?); nothing written")


@dataclass(frozen=True)
class FilmPlan:
    info: VideoInfo
    container: str  # ffmpeg's muxer for the target's extension
    chunks: list  # (first frame, frame count) per chunk; one entry: a single pass
    timestamps: tuple | None  # (pts list, time base) of a variable-rate source, kept frame by frame
    index_copy: bool = False  # chunks are decoded from a Matroska copy of the video stream (the source has no index)
    seek_refused: bool = False  # long enough for chunks, but a seek does not decode true: one pass


def plan_film(source: Path, target: Path, config: VideoConfig) -> FilmPlan:
    """Everything decided before the first frame: stream facts, output muxer, chunks. Raises VideoError."""
    if target.resolve() == source.resolve():
        raise VideoError("the output would overwrite the source")
    info = probe(source)
    refusal = container_refusal(target.suffix, config.encode.codec)
    if refusal:
        raise VideoError(refusal)
    container = CONTAINER_FORMATS[target.suffix.lower()]
    stamps, time_base, keys, packets = stream_index(source)  # one demux pass: timestamps and keyframes
    check_not_cut_short(packets, info)
    if stamps and (info.frames is None or len(stamps) < info.frames):
        # Matroska and others state no frame count, and an MP4 cut without re-encoding counts the
        # frames its edit list leaves out: the packets shown tell
        info = dataclasses.replace(info, frames=len(stamps))
    if is_variable_rate(stamps, time_base, info.rate):  # timestamps travel with the frames; one pass (chunks assume a constant rate)
        return FilmPlan(info, container, [(0, info.frames or 0)], (stamps, time_base))
    chunks = plan_chunks(source, info, config.chunk_frames, keys)
    # A seek in a program or transport stream lands near a frame, not on it: its chunks are
    # decoded from a copy with an index (made when the run starts).
    return FilmPlan(info, container, chunks, None, index_copy=len(chunks) > 1 and not info.seeks_exactly)


def plan_chunks(source: Path, info: VideoInfo, chunk_frames: int | None, keys: list[int] | None = None) -> list[tuple[int, int]]:
    """(first frame, frame count) per chunk, each starting on a keyframe about chunk_frames apart."""
    if not chunk_frames or not info.frames or info.frames <= chunk_frames * 3 // 2:
        return [(0, info.frames or 0)]
    if keys is None:
        keys = keyframe_indices(source)
    starts = [0]
    for key in keys:
        if key - starts[-1] >= chunk_frames and info.frames - key >= chunk_frames // 2:
            starts.append(key)
    bounds = starts + [info.frames]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _work_folder(target: Path) -> Path:
    return target.parent / f".{target.name}.chunks"


INDEX_COPY = "source-video.mkv"  # in the work folder, with what it was copied from in INDEX_COPY_FROM
INDEX_COPY_FROM = "source-video.json"


def _source_signature(source: Path) -> dict:
    stat = source.stat()
    return {"source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def make_index_copy(ffmpeg: str, source: Path, target: Path, film: FilmPlan, chunk_frames: int | None) -> tuple[Path, FilmPlan]:
    """Copy the video stream of an unindexed source (.mpg, .vob, .ts) into Matroska in the work
    folder, bit-exact (no re-encoding), unless an earlier run already did; chunks are planned and
    decoded on the copy, whose seeks land on their frames. The copy costs the video stream's size
    on disk until the chunks are joined. Returns the copy and the plan on it."""
    work = _work_folder(target)
    work.mkdir(exist_ok=True)
    copy, made_from = work / INDEX_COPY, work / INDEX_COPY_FROM
    signature = _source_signature(source)
    try:
        fresh = json.loads(made_from.read_text()) == signature and copy.exists()
    except (OSError, ValueError):
        fresh = False
    if not fresh:
        needed, free = source.stat().st_size, shutil.disk_usage(work).free
        if needed > free:  # the copy is at most the source's size (its video stream)
            if not any(work.iterdir()):
                work.rmdir()
            raise VideoError(f"no room for the index copy its chunks are decoded from (up to {needed / 1e9:.1f} GB, "
                             f"{free / 1e9:.1f} GB free): free some space, or give --chunk-frames 0 for one pass (not resumable)")
        with temporary_beside(copy) as tmp:
            proc = subprocess.run(index_copy_command(ffmpeg, source, tmp), capture_output=True)
            if proc.returncode != 0:
                raise VideoError(f"ffmpeg could not copy the video stream to give it an index: {last_line(proc.stderr.decode(errors='replace'))}")
            os.replace(tmp, copy)
        atomic_write_bytes(made_from, json.dumps(signature).encode())
    stamps, _, keys, _ = stream_index(copy)
    info = dataclasses.replace(film.info, frames=len(stamps), video_start=probe(copy).video_start)
    chunks = plan_chunks(copy, info, chunk_frames, keys)
    if len(chunks) <= 1:  # too short after all: one pass from the source itself, which also gives the sound
        shutil.rmtree(work, ignore_errors=True)
        return source, dataclasses.replace(film, chunks=[(0, film.info.frames or 0)], index_copy=False)
    return copy, dataclasses.replace(film, info=info, chunks=chunks, index_copy=False)


SEEK_CHECK_SIZE = (64, 36)  # frames compared at this size: enough to tell a frame from garbage
SEEK_CHECK_FRAMES = 5  # from each seek point
SEEK_CHECK = "seek-check.json"  # in the work folder: the check's result for this source and these chunks


def _fingerprints(ffmpeg: str, path: Path, info: VideoInfo, first: int, count: int | None):
    """Small grey frames from `first` on (all of them if count is None), one at a time."""
    proc = start(decode_command(ffmpeg, path, "gray", info.seek_seconds(first), count, size=SEEK_CHECK_SIZE), stdout=subprocess.PIPE)
    size = SEEK_CHECK_SIZE[0] * SEEK_CHECK_SIZE[1]
    try:
        while len(data := proc.stdout.read(size)) == size:
            yield np.frombuffer(data, np.uint8).reshape(SEEK_CHECK_SIZE[1], SEEK_CHECK_SIZE[0]).astype(np.int16)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        stderr_of(proc)


def seeks_land_true(ffmpeg: str, path: Path, info: VideoInfo, seek_points: list[int]) -> bool:
    """Whether decoding after a seek to each point gives the frames that decoding the film from
    its start gives there. Some encoders write keyframes that are no clean entry point (IDR
    frames with non-intra slices): after a seek those decode to garbage, so such a film cannot
    go in chunks. Costs one decoding pass at thumbnail size, a few percent of colouring it."""
    wanted = {point + k for point in seek_points for k in range(SEEK_CHECK_FRAMES)}
    linear = {i: frame for i, frame in enumerate(_fingerprints(ffmpeg, path, info, 0, None)) if i in wanted}
    for point in seek_points:
        seeked = list(_fingerprints(ffmpeg, path, info, point, SEEK_CHECK_FRAMES))
        expected = [linear.get(point + k) for k in range(len(seeked))]
        if not seeked or any(e is None or np.abs(s - e).mean() > 1.0 for s, e in zip(seeked, expected)):
            return False
    return True


def check_chunk_seeks(ffmpeg: str, source: Path, decode_from: Path, target: Path, film: FilmPlan,
                      config: VideoConfig) -> tuple[Path, FilmPlan]:
    """The film's chunks, if seeking to where they start decodes true (see seeks_land_true);
    otherwise one pass from the source, the work folder removed. The result is kept in the work
    folder, so a resumed run does not check again."""
    if len(film.chunks) <= 1:
        return decode_from, film
    warmup = config.smoothing.settle_frames()
    points = [max(0, first - warmup) for first, _ in film.chunks[1:]]
    work = _work_folder(target)
    record = work / SEEK_CHECK
    key = {**_source_signature(source), "decoded": str(decode_from), "points": points}
    try:
        checked = json.loads(record.read_text())
        ok = checked["ok"] if checked["key"] == key else None
    except (OSError, ValueError, KeyError):
        ok = None
    if ok is None:
        ok = seeks_land_true(ffmpeg, decode_from, film.info, points)
        work.mkdir(exist_ok=True)
        atomic_write_bytes(record, json.dumps({"key": key, "ok": ok}).encode())
    if ok:
        return decode_from, film
    shutil.rmtree(work, ignore_errors=True)
    return source, dataclasses.replace(film, chunks=[(0, film.info.frames or 0)], index_copy=False, seek_refused=True)


def _chunk_plan(source: Path, chunks, config: VideoConfig) -> dict:
    """What finished chunks must have been made from and with, as stored in the work folder's plan.json."""
    stat = source.stat()
    return json.loads(json.dumps({"source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                  "chunks": chunks, "encode": repr(config.encode), "smoothing": repr(config.smoothing),
                                  "look": config.look}))


def _chunk_names(work: Path, chunks) -> list[Path]:
    return [work / f"chunk-{index:05d}.mkv" for index in range(len(chunks))]


def prepare_chunk_folder(source: Path, chunks, target: Path, config: VideoConfig) -> tuple[Path, list[Path]]:
    """The work folder beside `target` and its chunk files (finished ones exist). Chunks of
    another source or other settings are removed; so are temporaries a killed run left."""
    work = _work_folder(target)
    work.mkdir(exist_ok=True)
    plan = _chunk_plan(source, chunks, config)
    plan_file = work / "plan.json"
    if plan_file.exists() and json.loads(plan_file.read_text()) != plan:
        for stale in work.iterdir():  # another source or other settings: start over (these check their own source)
            if stale.name not in (INDEX_COPY, INDEX_COPY_FROM, SEEK_CHECK):
                stale.unlink()
    atomic_write_bytes(plan_file, json.dumps(plan).encode())
    for stale in work.glob(".*.part"):
        stale.unlink()
    return work, _chunk_names(work, chunks)


def finished_chunks(source: Path, chunks, target: Path, config: VideoConfig) -> int:
    """Chunks an earlier, interrupted run finished and a re-run would keep; reads only (for --dry-run)."""
    work = _work_folder(target)
    plan_file = work / "plan.json"
    try:
        if len(chunks) <= 1 or json.loads(plan_file.read_text()) != _chunk_plan(source, chunks, config):
            return 0
    except (OSError, ValueError):
        return 0
    return sum(1 for name in _chunk_names(work, chunks) if name.exists())


def join_chunks(ffmpeg: str, work: Path, names: list[Path], source: Path, info: VideoInfo, target: Path, container: str,
                mark: str | None = None) -> None:
    """Join finished chunks into `target` without re-encoding, with the source's audio and subtitles."""
    source, target, work = source.resolve(), target.resolve(), work.resolve()  # ffmpeg runs inside the work folder
    listing = work / "chunks.txt"
    listing.write_text("".join(f"file '{_concat_escape(n.name)}'\n" for n in names))
    with temporary_beside(target) as tmp:
        command = concat_command(ffmpeg, listing, source, tmp, info, container, **({"mark": mark} if mark else {}))
        proc = subprocess.run(command, capture_output=True, cwd=work)
        if proc.returncode != 0:
            raise VideoError(f"ffmpeg could not join the chunks: {last_line(proc.stderr.decode(errors='replace'))}")
        os.replace(tmp, target)
    shutil.rmtree(work, ignore_errors=True)


def _concat_escape(name: str) -> str:
    return name.replace("'", "'\\''")
