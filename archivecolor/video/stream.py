"""One stretch of a film, streaming: decode -> infer -> smooth -> recombine -> encode.

Three threads joined by bounded queues: the decoder thread reads raw frames from ffmpeg and
computes their luminance; the main thread runs the network and the temporal smoothing; the
encoder thread recombines colour with the full-resolution L and pipes frames into ffmpeg.
Memory does not grow with the film's length.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..colorizer import Colorizer
from ..lab import grey_to_luminance, srgb_to_luminance
from ..render import recombine_into
from ..sheet import FrameSheet
from .config import VideoConfig
from .ffmpeg import VideoError, VideoInfo, decode_command, encode_command, last_line, output_bits, pipe_format, start, stderr_of
from .smooth import TemporalSmoother

_END = object()


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
    hints: object = None  # film_hints.FilmHints: the colour hints placed on each frame, by its index in the film

    def run(self, out: Path, container: str, with_streams: bool, first_frame: int = 0, frame_count: int | None = None,
            warmup_frames: int = 0) -> int:
        """Frames [first_frame, first_frame + frame_count) into `out`; the `warmup_frames` before
        them only prime the smoothing (colorized, not written, not measured)."""
        info, config, colorizer, smoother, meters = self.info, self.config, self.colorizer, self.smoother, self.meters
        pix_fmt, channels, dtype = _raw_format(info)
        height, width = info.display_hw
        frame_bytes = height * width * channels * np.dtype(dtype).itemsize
        first_decoded = first_frame - warmup_frames
        start_seconds = info.seek_seconds(first_decoded)
        to_decode = frame_count + warmup_frames if frame_count else None
        decoder = start(decode_command(self.ffmpeg, self.source, pix_fmt, start_seconds, to_decode if first_frame or frame_count else None),
                        stdout=subprocess.PIPE)
        timed = self.timestamps is not None
        encoder = start(encode_command(self.ffmpeg, self.source, out, info, (height, width), config.encode, container, with_streams, timed,
                                       config.mark),
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
                    _put(decoded, _luminance(data, dtype, height, width, channels), stop)
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
        priming, index = warmup_frames, first_decoded  # the film's frame number of the next frame decoded
        try:
            batch, finished = [], False
            while not finished:
                item = decoded.get()
                finished = item is _END
                if not finished:
                    job = colorizer.prepare(item)
                    if self.hints is not None:
                        job.add_hints(self.hints.at(index))
                    batch.append((item, job))
                    index += 1
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
            raise VideoError(f"ffmpeg could not decode it: {last_line(decoder_err)}")
        if errors:
            exc = errors[0]
            if isinstance(exc, BrokenPipeError) or encoder.returncode:
                raise VideoError(f"ffmpeg could not encode it: {last_line(encoder_err) or exc}")
            raise exc if isinstance(exc, VideoError) else VideoError(f"{type(exc).__name__}: {exc}")
        if encoder.returncode != 0:
            raise VideoError(f"ffmpeg could not encode it: {last_line(encoder_err)}")
        if frames == 0:
            raise VideoError(f"no frames could be decoded{': ' + last_line(decoder_err) if decoder_err else ''}")
        return frames


def luminance_frames(ffmpeg: str, source: Path, info: VideoInfo, only_frame: int | None = None):
    """L* at full size of every frame (or of `only_frame` alone), in order, as the coloured pass
    computes it: hints are tracked on these before colouring, and placed on one of them."""
    pix_fmt, channels, dtype = _raw_format(info)
    height, width = info.display_hw
    frame_bytes = height * width * channels * np.dtype(dtype).itemsize
    decoder = start(decode_command(ffmpeg, source, pix_fmt, only_frame=only_frame), stdout=subprocess.PIPE)
    try:
        while len(data := decoder.stdout.read(frame_bytes)) == frame_bytes:
            yield _luminance(data, dtype, height, width, channels)
    finally:
        if decoder.poll() is None:
            decoder.kill()
        decoder.wait()


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


def _luminance(data: bytes, dtype, height: int, width: int, channels: int) -> np.ndarray:
    """One raw decoded frame (_raw_format's) -> L* at full size: from luma directly for grey film."""
    pixels = np.frombuffer(data, dtype=dtype).reshape((height, width, channels) if channels > 1 else (height, width))
    return grey_to_luminance(pixels) if channels == 1 else srgb_to_luminance(pixels)


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
