"""`archivecolor video`: decode -> batch -> infer -> smooth -> recombine -> encode, streaming.

Three threads joined by bounded queues: the decoder thread reads raw frames from ffmpeg and
computes their luminance; the main thread runs the network and the temporal smoothing; the
encoder thread recombines colour with the full-resolution L and pipes frames into ffmpeg.
Memory does not grow with the film's length. The output is written under a temporary name
and renamed once ffmpeg has finished it; audio and subtitles are copied bit-exact.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..colorizer import Colorizer
from ..render import recombine_into
from ..sheet import FrameSheet, sheet_path
from ..imageio import COLORIZED_MARK
from ..files import atomic_write_bytes, file_sha256, fitting_name, hold_folder, remove_temporaries_of, temporary_beside
from ..lab import grey_to_luminance, srgb_to_luminance
from .ffmpeg import (EncodeOptions, VideoError, VideoInfo, concat_command, decode_command, encode_command, find_ffmpeg,
                     index_copy_command, is_variable_rate, keyframe_indices, output_bits, pipe_format, probe, start, stderr_of,
                     stream_index)
from .smooth import SmoothingConfig, TemporalSmoother
from .temporal import TemporalMeter

# Read by ffmpeg; the last ones (tape captures, DVD, camcorder and web formats) are written back as Matroska.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".mpg", ".mpeg", ".ts",
                    ".dv", ".vob", ".mts", ".m2ts", ".wmv", ".flv", ".ogv", ".m2v")
WEBM_CODECS = ("libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1")  # all WebM can hold
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm",
                     ".mxf": "mxf", ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts"}
_END = object()


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


@dataclass
class VideoResult:
    source: str
    output: str
    frames: int = 0
    seconds: float = 0.0
    scene_cuts: int = 0
    cut_frames: list = field(default_factory=list)  # frame numbers where a new shot begins (found in this run)
    resumed_chunks: int = 0  # chunks found finished from an earlier, interrupted run
    variable_rate: bool = False  # the source's own frame timestamps were kept
    temporal: dict = field(default_factory=dict)  # {"smoothed": {...}, "per_frame": {...}}
    sheet: str | None = None  # the before/after sheet written, if asked for
    one_pass_reason: str | None = None  # why a film long enough for chunks went in one pass
    source_bits: int = 8  # bits per sample of the source
    output_bits: int = 8  # and of the colour film (a deep master keeps its depth where the codec carries it)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def container_refusal(suffix: str, codec: str) -> str | None:
    """Why an output named `suffix` cannot hold `codec` video; None if it can."""
    suffix = suffix.lower()
    if suffix not in CONTAINER_FORMATS:
        return f"unsupported output container {suffix!r} (use one of {', '.join(CONTAINER_FORMATS)})"
    if suffix == ".webm" and codec not in WEBM_CODECS:
        return f"WebM holds only VP8, VP9 and AV1 video, not {codec}: name the output .mkv, or --codec libvpx-vp9"
    if suffix in (".mp4", ".m4v") and codec == "prores_ks":
        return "MP4 does not hold ProRes: name the output .mov"
    return None


def output_suffix(source: Path, codec: str) -> str:
    """The source's own container where it can hold the colour film, else .mov for ProRes from
    MP4 and Matroska for the rest (.dv, .vob, WebM with x264…): it holds any codec and the
    source's sound and subtitles as they are. A changed container keeps the source's suffix
    before its own (reel.vob -> reel.vob.mkv), so reel.dv and reel.vob never share an output."""
    if container_refusal(source.suffix, codec) is None:
        return source.suffix
    return source.suffix + (".mov" if codec == "prores_ks" and source.suffix.lower() in (".mp4", ".m4v") else ".mkv")


def default_output(source: Path, codec: str = "libx264") -> Path:
    return source.with_name(f"{source.stem}-colorized{output_suffix(source, codec)}")


def is_colorized_output(path: Path) -> bool:
    """A film an earlier run wrote (its comment carries the provenance mark, or it is
    NAME-colorized.EXT beside NAME.EXT): a folder of films holds these after the first run,
    and colouring them again would only make NAME-colorized-colorized.EXT."""
    path = Path(path)
    if path.stem.endswith("-colorized") and path.with_name(path.stem.removesuffix("-colorized") + path.suffix).exists():
        return True
    try:
        import av

        with av.open(str(path)) as container:
            return COLORIZED_MARK in (container.metadata.get("comment") or container.metadata.get("COMMENT") or "")
    except Exception:
        return False  # unreadable: colorize_video will say why


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


def _colorize_film(source: Path, target: Path, film: "FilmPlan", colorizer: Colorizer, config: VideoConfig, on_frames) -> VideoResult:
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
                raise VideoError(f"ffmpeg could not copy the video stream to give it an index: {_last_line(proc.stderr.decode(errors='replace'))}")
            os.replace(tmp, copy)
        atomic_write_bytes(made_from, json.dumps(signature).encode())
    stamps, _, keys, _ = stream_index(copy)
    info = dataclasses.replace(film.info, frames=len(stamps))
    chunks = plan_chunks(copy, info, chunk_frames, keys)
    if len(chunks) <= 1:  # too short after all: one pass from the source itself, which also gives the sound
        shutil.rmtree(work, ignore_errors=True)
        return source, dataclasses.replace(film, chunks=[(0, film.info.frames or 0)], index_copy=False)
    return copy, dataclasses.replace(film, info=info, chunks=chunks, index_copy=False)


def look_of(weights: Path, render_size: int, saturation: float) -> str:
    """The settings besides smoothing and encoding that make a film's colour: a re-run with other
    weights, render size or saturation starts the film over rather than join two looks."""
    return f"weights sha256 {file_sha256(weights)}, render size {render_size}, saturation {saturation:g}"


SEEK_CHECK_SIZE = (64, 36)  # frames compared at this size: enough to tell a frame from garbage
SEEK_CHECK_FRAMES = 5  # from each seek point
SEEK_CHECK = "seek-check.json"  # in the work folder: the check's result for this source and these chunks


def _fingerprints(ffmpeg: str, path: Path, rate: Fraction, first: int, count: int | None):
    """Small grey frames from `first` on (all of them if count is None), one at a time."""
    start_seconds = float((first - Fraction(1, 2)) / rate) if first > 0 else None
    proc = start(decode_command(ffmpeg, path, "gray", start_seconds, count, size=SEEK_CHECK_SIZE), stdout=subprocess.PIPE)
    size = SEEK_CHECK_SIZE[0] * SEEK_CHECK_SIZE[1]
    try:
        while len(data := proc.stdout.read(size)) == size:
            yield np.frombuffer(data, np.uint8).reshape(SEEK_CHECK_SIZE[1], SEEK_CHECK_SIZE[0]).astype(np.int16)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        stderr_of(proc)


def seeks_land_true(ffmpeg: str, path: Path, rate: Fraction, seek_points: list[int]) -> bool:
    """Whether decoding after a seek to each point gives the frames that decoding the film from
    its start gives there. Some encoders write keyframes that are no clean entry point (IDR
    frames with non-intra slices): after a seek those decode to garbage, so such a film cannot
    go in chunks. Costs one decoding pass at thumbnail size, a few percent of colouring it."""
    wanted = {point + k for point in seek_points for k in range(SEEK_CHECK_FRAMES)}
    linear = {i: frame for i, frame in enumerate(_fingerprints(ffmpeg, path, rate, 0, None)) if i in wanted}
    for point in seek_points:
        seeked = list(_fingerprints(ffmpeg, path, rate, point, SEEK_CHECK_FRAMES))
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
        ok = seeks_land_true(ffmpeg, decode_from, film.info.rate, points)
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


def run_chunk(segment: "Segment", chunk: Path, first: int, count: int) -> None:
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


def join_chunks(ffmpeg: str, work: Path, names: list[Path], source: Path, info: VideoInfo, target: Path, container: str) -> None:
    """Join finished chunks into `target` without re-encoding, with the source's audio and subtitles."""
    source, target, work = source.resolve(), target.resolve(), work.resolve()  # ffmpeg runs inside the work folder
    listing = work / "chunks.txt"
    listing.write_text("".join(f"file '{_concat_escape(n.name)}'\n" for n in names))
    with temporary_beside(target) as tmp:
        proc = subprocess.run(concat_command(ffmpeg, listing, source, tmp, info, container), capture_output=True, cwd=work)
        if proc.returncode != 0:
            raise VideoError(f"ffmpeg could not join the chunks: {_last_line(proc.stderr.decode(errors='replace'))}")
        os.replace(tmp, target)
    shutil.rmtree(work, ignore_errors=True)


def _run_chunks(segment: "Segment", source: Path, chunks, target: Path, container: str, result: VideoResult) -> int:
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


def _concat_escape(name: str) -> str:
    return name.replace("'", "'\\''")


@dataclass
class Segment:
    """Runs decode -> infer -> smooth -> encode over a stretch of one film."""

    source: Path
    info: VideoInfo
    ffmpeg: str
    colorizer: Colorizer
    config: VideoConfig
    smoother: TemporalSmoother
    meters: dict
    on_frames: object = None
    timestamps: tuple | None = None  # (pts list, time base) for a variable-rate source
    sheet: FrameSheet | None = None  # offered every frame written, by its index in the film

    def run(self, out: Path, container: str, with_streams: bool, first_frame: int = 0, frame_count: int | None = None,
            warmup_frames: int = 0) -> int:
        """Frames [first_frame, first_frame + frame_count) into `out`; the `warmup_frames` before
        them only prime the smoothing (colorized, not written, not measured)."""
        info, config, colorizer, smoother, meters = self.info, self.config, self.colorizer, self.smoother, self.meters
        pix_fmt, channels, dtype = _raw_format(info)
        height, width = info.display_hw
        frame_bytes = height * width * channels * np.dtype(dtype).itemsize
        first_decoded = first_frame - warmup_frames
        # Half a frame early: the wanted frame is the first at or after the seek point, whatever the rounding.
        start_seconds = float((first_decoded - Fraction(1, 2)) / info.rate) if first_decoded > 0 else None
        to_decode = frame_count + warmup_frames if frame_count else None
        decoder = start(decode_command(self.ffmpeg, self.source, pix_fmt, start_seconds, to_decode if first_frame or frame_count else None),
                        stdout=subprocess.PIPE)
        timed = self.timestamps is not None
        encoder = start(encode_command(self.ffmpeg, self.source, out, info, (height, width), config.encode, container, with_streams, timed),
                        stdin=subprocess.PIPE)
        decoded: queue.Queue = queue.Queue(maxsize=config.queue_frames)
        to_encode: queue.Queue = queue.Queue(maxsize=config.queue_frames)
        errors: list[BaseException] = []
        stop = threading.Event()
        frames = 0
        def read_frames():
            """Decoder thread: raw frame bytes -> (pixels, L at full size)."""
            try:
                while not stop.is_set():
                    data = decoder.stdout.read(frame_bytes)
                    if not data:
                        break
                    if len(data) < frame_bytes:
                        raise VideoError(f"the decoder stopped mid-frame ({len(data)} of {frame_bytes} bytes)")
                    pixels = np.frombuffer(data, dtype=dtype).reshape((height, width, channels) if channels > 1 else (height, width))
                    L = grey_to_luminance(pixels) if channels == 1 else srgb_to_luminance(pixels)
                    _put(decoded, L, stop)
            except BaseException as exc:
                errors.append(exc)
            finally:
                _put(decoded, _END, stop)

        def write_frames():
            """Encoder thread: L at full size + ab at render size -> RGB frames (8- or 16-bit) into ffmpeg."""
            deep = output_bits(info, config.encode.codec) > 8
            frame = np.empty((height, width, 3), np.uint16 if deep else np.uint8)
            muxer = _TimedMuxer(encoder.stdin, width, height, *self.timestamps, pix_fmt=pipe_format(16 if deep else 8)) if timed else None
            try:
                while True:
                    item = to_encode.get()
                    if item is _END:
                        break
                    L, job = item
                    recombine_into(frame, L, job.ab)
                    if muxer is not None:
                        muxer.write(frame)
                    else:
                        encoder.stdin.write(frame.tobytes())
                if muxer is not None:
                    muxer.close()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                while to_encode.get() is not _END:  # let the main thread finish and see the error
                    pass

        reader = threading.Thread(target=read_frames, name="decode", daemon=True)
        writer = threading.Thread(target=write_frames, name="encode", daemon=True)
        reader.start()
        writer.start()
        priming = warmup_frames
        try:
            batch, finished = [], False
            while not finished:
                item = decoded.get()
                finished = item is _END
                if not finished:
                    batch.append((item, colorizer.prepare(item)))
                if batch and (finished or len(batch) >= config.batch_size):
                    colorizer.predict([job for _, job in batch], config.batch_size)
                    written = 0
                    for L, job in batch:
                        if priming > 0:  # before the chunk: only the smoothing sees it
                            smoother.prime(job.L_render, job.ab)
                            priming -= 1
                            continue
                        smooth_measured(job, smoother, meters)
                        if self.sheet is not None:
                            self.sheet.offer(first_frame + frames + written, job)
                        if not _put(to_encode, (L, job), stop):
                            break
                        written += 1
                    frames += written
                    if self.on_frames is not None and written:
                        self.on_frames(written)
                    batch = []
                if stop.is_set():
                    break
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            to_encode.put(_END)
            writer.join()
            stop.set()
            _drain(decoded)
            reader.join(timeout=10)
            _close(encoder, decoder)

        if isinstance(errors[0] if errors else None, KeyboardInterrupt):
            raise errors[0]
        decoder_err, encoder_err = stderr_of(decoder), stderr_of(encoder)
        if decoder.returncode not in (0, None) and not errors:
            raise VideoError(f"ffmpeg could not decode it: {_last_line(decoder_err)}")
        if errors:
            exc = errors[0]
            if isinstance(exc, BrokenPipeError) or encoder.returncode:
                raise VideoError(f"ffmpeg could not encode it: {_last_line(encoder_err) or exc}")
            raise exc if isinstance(exc, VideoError) else VideoError(f"{type(exc).__name__}: {exc}")
        if encoder.returncode != 0:
            raise VideoError(f"ffmpeg could not encode it: {_last_line(encoder_err)}")
        if frames == 0:
            raise VideoError(f"no frames could be decoded{': ' + _last_line(decoder_err) if decoder_err else ''}")
        return frames



def smooth_measured(job, smoother: TemporalSmoother, meters: dict) -> None:
    """job.ab smoothed in place, the temporal figures taken before and after (when measuring)."""
    if meters:
        meters["per_frame"].add(job.L_render, job.ab)
    job.ab = smoother(job.L_render, job.ab)
    if meters:
        meters["smoothed"].add(job.L_render, job.ab)


class _TimedMuxer:
    """Raw rgb24 frames into a NUT stream on the encoder's stdin, each with the source's timestamp."""

    def __init__(self, sink, width: int, height: int, stamps: list[int], time_base, pix_fmt: str = "rgb24"):
        import av

        self.av = av
        self.container = av.open(sink, mode="w", format="nut")
        # The rate is the time base's inverse so that the muxer keeps every tick of the stamps
        # (left at its default, NUT rescales to 1/24 s and near frames collide).
        self.stream = self.container.add_stream("rawvideo", rate=Fraction(1) / Fraction(time_base))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
        self.pix_fmt = pix_fmt
        self.stream.time_base = time_base
        self.stream.codec_context.time_base = time_base
        self.stamps, self.time_base, self.index, self.last = stamps, time_base, 0, -1

    def write(self, rgb: np.ndarray) -> None:
        frame = self.av.VideoFrame.from_ndarray(rgb, format=self.pix_fmt)
        if self.index < len(self.stamps):
            pts = self.stamps[self.index] - self.stamps[0]
        else:  # more frames than packets: continue at the last interval
            step = self.stamps[-1] - self.stamps[-2] if len(self.stamps) > 1 else 1
            pts = self.stamps[-1] - self.stamps[0] + step * (self.index - len(self.stamps) + 1)
        pts = max(pts, self.last + 1)  # a muxer needs strictly increasing stamps; some files repeat one
        frame.pts, frame.time_base, self.last = pts, self.time_base, pts
        self.index += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


def _raw_format(info: VideoInfo) -> tuple[str, int, type]:
    """Raw pixel format to decode into: luma only for black-and-white film (L from luma, exactly)."""
    if info.is_monochrome:
        return ("gray16le", 1, np.uint16) if info.deep else ("gray", 1, np.uint8)
    return ("rgb48le", 3, np.uint16) if info.deep else ("rgb24", 3, np.uint8)


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put with a timeout loop so that a stopped pipeline never blocks forever."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if stop.is_set() and item is not _END:
                return False


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _close(encoder, decoder) -> None:
    try:
        encoder.stdin.close()
    except OSError:
        pass
    try:
        encoder.wait(timeout=600)
    except Exception:
        encoder.kill()
        encoder.wait()
    if decoder.poll() is None:
        decoder.kill()
    decoder.wait()


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
