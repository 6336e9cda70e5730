"""`archivecolor video`: decode -> batch -> infer -> smooth -> recombine -> encode, streaming.

Three threads joined by bounded queues: the decoder thread reads raw frames from ffmpeg and
computes their luminance; the main thread runs the network and the temporal smoothing; the
encoder thread recombines colour with the full-resolution L and pipes frames into ffmpeg.
Memory does not grow with the film's length. The output is written under a temporary name
and renamed once ffmpeg has finished it; audio and subtitles are copied bit-exact.
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..colorizer import Colorizer
from ..render import recombine_into
from ..lab import grey_to_luminance, srgb_to_luminance
from .ffmpeg import EncodeOptions, VideoError, VideoInfo, decode_command, encode_command, find_ffmpeg, probe, start
from .smooth import SmoothingConfig, TemporalSmoother
from .temporal import TemporalMeter

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".mpg", ".mpeg", ".ts")
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


@dataclass
class VideoResult:
    source: str
    output: str
    frames: int = 0
    seconds: float = 0.0
    scene_cuts: int = 0
    temporal: dict = field(default_factory=dict)  # {"smoothed": {...}, "per_frame": {...}}

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def default_output(source: Path) -> Path:
    return source.with_name(f"{source.stem}-colorized{source.suffix}")


def colorize_video(source: Path, target: Path, colorizer: Colorizer, config: VideoConfig = VideoConfig(), on_frames=None) -> VideoResult:
    """Colorize one film into `target` (written atomically). Raises VideoError on failure."""
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise VideoError("the output would overwrite the source")
    info = probe(source)
    ffmpeg = find_ffmpeg(config.ffmpeg)
    pix_fmt, channels, dtype = _raw_format(info)
    height, width = _decoded_size(info)
    frame_bytes = height * width * channels * np.dtype(dtype).itemsize
    container = CONTAINER_FORMATS.get(target.suffix.lower())
    if container is None:
        raise VideoError(f"unsupported output container {target.suffix!r} (use one of {', '.join(CONTAINER_FORMATS)})")

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    result = VideoResult(str(source), str(target))
    started = time.perf_counter()
    decoder = start(decode_command(ffmpeg, source, pix_fmt), stdout=subprocess.PIPE)
    encoder = start(encode_command(ffmpeg, source, tmp, info, (height, width), config.encode, container),
                    stdin=subprocess.PIPE)
    decoded: queue.Queue = queue.Queue(maxsize=config.queue_frames)
    to_encode: queue.Queue = queue.Queue(maxsize=config.queue_frames)
    errors: list[BaseException] = []
    stop = threading.Event()

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
        """Encoder thread: L at full size + ab at render size -> rgb24 frames into ffmpeg."""
        frame = np.empty((height, width, 3), np.uint8)
        try:
            while True:
                item = to_encode.get()
                if item is _END:
                    break
                L, job = item
                recombine_into(frame, L, job.ab)
                encoder.stdin.write(frame.tobytes())
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            while to_encode.get() is not _END:  # let the main thread finish and see the error
                pass

    reader = threading.Thread(target=read_frames, name="decode", daemon=True)
    writer = threading.Thread(target=write_frames, name="encode", daemon=True)
    reader.start()
    writer.start()
    smoother = TemporalSmoother(config.smoothing)
    meters = {"smoothed": TemporalMeter(), "per_frame": TemporalMeter()} if config.measure else {}
    try:
        batch, finished = [], False
        while not finished:
            item = decoded.get()
            finished = item is _END
            if not finished:
                batch.append((item, colorizer.prepare(item)))
            if batch and (finished or len(batch) >= config.batch_size):
                colorizer.predict([job for _, job in batch], config.batch_size)
                for L, job in batch:
                    if meters:
                        meters["per_frame"].add(job.L_render, job.ab)
                    job.ab = smoother(job.L_render, job.ab)
                    if meters:
                        meters["smoothed"].add(job.L_render, job.ab)
                    if not _put(to_encode, (L, job), stop):
                        break
                result.frames += len(batch)
                if on_frames is not None:
                    on_frames(len(batch))
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

    try:
        if isinstance(errors[0] if errors else None, KeyboardInterrupt):
            raise errors[0]
        decoder_err = decoder.stderr.read().decode(errors="replace").strip() if decoder.stderr else ""
        encoder_err = encoder.stderr.read().decode(errors="replace").strip() if encoder.stderr else ""
        if decoder.returncode not in (0, None) and not errors:
            raise VideoError(f"ffmpeg could not decode it: {_last_line(decoder_err)}")
        if errors:
            exc = errors[0]
            if isinstance(exc, BrokenPipeError) or encoder.returncode:
                raise VideoError(f"ffmpeg could not encode it: {_last_line(encoder_err) or exc}")
            raise exc if isinstance(exc, VideoError) else VideoError(f"{type(exc).__name__}: {exc}")
        if encoder.returncode != 0:
            raise VideoError(f"ffmpeg could not encode it: {_last_line(encoder_err)}")
        if result.frames == 0:
            raise VideoError(f"no frames could be decoded{': ' + _last_line(decoder_err) if decoder_err else ''}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    result.seconds = time.perf_counter() - started
    result.scene_cuts = smoother.cuts
    result.temporal = {name: meter.result() for name, meter in meters.items()}
    return result


def _raw_format(info: VideoInfo) -> tuple[str, int, type]:
    """Raw pixel format to decode into: luma only for black-and-white film (L from luma, exactly)."""
    if info.is_monochrome:
        return ("gray16le", 1, np.uint16) if info.deep else ("gray", 1, np.uint8)
    return ("rgb48le", 3, np.uint16) if info.deep else ("rgb24", 3, np.uint8)


def _decoded_size(info: VideoInfo) -> tuple[int, int]:
    return info.display_hw


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
