"""ffmpeg as subprocesses with argument lists and pipes; stream facts read with PyAV.

ffprobe is often missing (the static ffmpeg a pip install brings has none), so stream facts
come from PyAV, which links FFmpeg's own libraries: exact rational rates, SAR, colour tags.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import numpy as np
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..imageio import COLORIZED_MARK, PROVENANCE

FFMPEG_ENV = "ARCHIVECOLOR_FFMPEG"


class VideoError(Exception):
    """A film that cannot be processed; str() is one line naming the cause."""


def find_ffmpeg(explicit: str | None = None) -> str:
    """--ffmpeg, then $ARCHIVECOLOR_FFMPEG, then ffmpeg on PATH (keeps the user's NVENC, ProRes…),
    then the static binary that the imageio-ffmpeg dependency ships."""
    for candidate in (explicit, os.environ.get(FFMPEG_ENV)):
        if candidate:
            found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if not found:
                raise VideoError(f"ffmpeg not found at {candidate!r}")
            return found
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:
        raise VideoError(f"no ffmpeg: install one on PATH or `pip install imageio-ffmpeg` ({exc})") from None


@dataclass(frozen=True)
class VideoInfo:
    width: int  # coded size; frames come out upright (ffmpeg applies rotation) as display_hw
    height: int
    rate: Fraction  # frames per second, exact (e.g. 30000/1001)
    frames: int | None  # as the container states it, when it does
    duration: float | None  # seconds
    sar: Fraction  # sample aspect ratio
    rotation: int  # degrees the player rotates by (0, 90, 180, 270)
    pix_fmt: str
    color_range: str | None  # "tv" / "pc"
    color_space: str | None  # "bt709", "smpte170m", ...
    color_primaries: str | None
    color_trc: str | None
    audio_streams: int
    subtitle_streams: int

    @property
    def display_hw(self) -> tuple[int, int]:
        return (self.width, self.height) if self.rotation in (90, 270) else (self.height, self.width)

    grey_content: bool = False  # a colour format carrying neutral chroma: black-and-white film in YUV
    # Interlaced video (tape transfers): "tt"/"bb" (top/bottom field first, coded so), "tb"/"bt"
    # (swapped coding order); None for progressive or unstated.
    field_order: str | None = None
    comment: str | None = None  # the container's comment tag, which also carries the provenance mark
    container: str = ""  # the demuxer's name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2", "mpeg", "mpegts"
    timecode: str | None = None  # the first frame's SMPTE timecode ("10:00:00:00"; ";" before frames for drop-frame)
    # Seconds from the file's start (its earliest stream) to the video's first frame: an MP4
    # whose sound starts at zero and whose pictures start a frame later has 0.04 at 25 fps.
    video_start: float = 0.0

    def seek_seconds(self, frame: int) -> float | None:
        """Where ffmpeg's -ss must go for `frame` (None: the start): half a frame early, so the
        wanted frame is the first at or after it whatever the rounding, in the file's timeline,
        which starts at its earliest stream, not at the video's first frame."""
        if frame <= 0:
            return None
        return float((frame - Fraction(1, 2)) / self.rate) + self.video_start

    @property
    def seeks_exactly(self) -> bool:
        """Whether a seek lands where the frame count says: not in program and transport streams
        (.mpg, .vob, .ts, .mts) or raw elementary streams, which carry no index."""
        return not set(self.container.split(",")) & UNINDEXED_DEMUXERS

    @property
    def top_field_first(self) -> bool:
        return self.field_order in ("tt", "tb")

    @property
    def is_monochrome(self) -> bool:
        """Luma alone describes the picture, so L can be taken from it without a colour round trip."""
        return self.pix_fmt.startswith("gray") or self.grey_content

    @property
    def deep(self) -> bool:
        """More than 8 bits per sample."""
        return any(tag in self.pix_fmt for tag in ("10", "12", "16"))

    @property
    def bits(self) -> int:
        """Bits per sample of the source (8 unless its pixel format says 10, 12 or 16)."""
        return next((bits for bits in (16, 12, 10) if str(bits) in self.pix_fmt), 8)


# Codecs that carry more than 8 bits, and the depth they are written at for a deep source. x264
# stays 8-bit (High 10 plays on few players): the table says so, and --codec libx265, prores_ks
# or ffv1 keep a master's depth.
DEEP_CODECS = ("libx265", "prores_ks", "ffv1")


def output_bits(info: "VideoInfo", codec: str) -> int:
    """The depth `codec` writes the colour film at: the source's where it is deep and the codec carries it."""
    if not info.deep or codec not in DEEP_CODECS:
        return 8
    return 10 if codec in ("libx265", "prores_ks") else (10 if info.bits == 10 else 16)


_RANGE = {1: "tv", 2: "pc"}
_SPACE = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
_TRC = {1: "bt709", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10", 16: "smpte2084", 18: "arib-std-b67"}
_FIELD_ORDER = {2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # AVFieldOrder; 0 unknown, 1 progressive
UNINDEXED_DEMUXERS = frozenset({"mpeg", "mpegts", "mpegvideo", "h264", "hevc", "m4v", "rawvideo"})


def probe(path: Path) -> VideoInfo:
    """Stream facts of the first video stream, without ffprobe. Raises VideoError."""
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError("no such file")
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except Exception as exc:
        # FFmpeg's own words, without its errno and the path the error line already names
        raise VideoError(f"not a readable media file ({getattr(exc, 'strerror', None) or exc})") from None
    with container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        if _single_picture(container, stream):
            raise VideoError("a still picture, not a film: colorize it with `archivecolor folder`")
        ctx = stream.codec_context
        rate = stream.guessed_rate or stream.average_rate or stream.base_rate
        if not rate:
            raise VideoError("no frame rate in the stream")
        frames = stream.frames or None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rotation = _rotation(container, stream)
        grey_content = _neutral_chroma(container, stream)
        sar = stream.sample_aspect_ratio or Fraction(1, 1)
        if not ctx.width or not ctx.height:
            raise VideoError("video stream has no size")
        return VideoInfo(
            width=ctx.width, height=ctx.height, rate=Fraction(rate), frames=frames, duration=duration,
            sar=Fraction(sar) if sar else Fraction(1, 1), rotation=rotation, pix_fmt=ctx.pix_fmt or "yuv420p",
            color_range=_RANGE.get(int(ctx.color_range or 0)), color_space=_SPACE.get(int(ctx.colorspace or 0)),
            color_primaries=_PRIMARIES.get(int(ctx.color_primaries or 0)), color_trc=_TRC.get(int(ctx.color_trc or 0)),
            audio_streams=len(container.streams.audio), subtitle_streams=len(container.streams.subtitles),
            grey_content=grey_content, field_order=_FIELD_ORDER.get(int(getattr(ctx, "field_order", 0) or 0)),
            comment=container.metadata.get("comment") or container.metadata.get("COMMENT"),
            container=container.format.name or "", timecode=_timecode(container, stream),
            video_start=_video_start(container, stream),
        )


def _video_start(container, stream) -> float:
    """The video stream's start in the file's timeline (see VideoInfo.video_start); 0 when either is unstated."""
    if stream.start_time is None or stream.time_base is None or container.start_time is None:
        return 0.0
    return max(0.0, float(stream.start_time * stream.time_base) - container.start_time / 1_000_000)


def _timecode(container, stream) -> str | None:
    """Where the source keeps its start timecode: on the video stream or a QuickTime/MP4 timecode
    track (tmcd), or as a container tag (Matroska's TIMECODE, MXF's timecode)."""
    places = [stream.metadata, *(s.metadata for s in container.streams if s.type == "data"), container.metadata]
    for tags in places:
        for key in ("timecode", "TIMECODE"):
            if tags.get(key):
                return tags[key]
    return None


IMAGE_DEMUXERS = ("image2", "gif", "apng", "webp")  # and every "*_pipe" (png_pipe, tiff_pipe, j2k_pipe…)


def _single_picture(container, stream) -> bool:
    """A photo handed to `video` (FFmpeg reads it as a one-frame film); an animated GIF or PNG is a film."""
    name = container.format.name or ""
    if not (name in IMAGE_DEMUXERS or name.endswith("_pipe")):
        return False
    pictures = 0
    for packet in container.demux(stream):
        pictures += bool(packet.size)
        if pictures > 1:
            break
    container.seek(0)
    return pictures <= 1


NEUTRAL_CHROMA_LEVELS = 2  # 8-bit U/V within this of 128 on every sampled pixel: no colour
CHROMA_SAMPLE_FRAMES = 3  # bright frames that must all be neutral
CHROMA_SEARCH_FRAMES = 150  # frames searched for them (fades from black are common)


def _neutral_chroma(container, stream) -> bool:
    """True when sampled non-dark frames of an 8-bit YUV stream carry no colour at all."""
    ctx = stream.codec_context
    if not (ctx.pix_fmt or "").startswith(("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")) or "10" in ctx.pix_fmt:
        return False
    container.seek(0)
    bright = 0
    try:
        for index, frame in enumerate(container.decode(stream)):
            if index >= CHROMA_SEARCH_FRAMES:
                break
            if _plane(frame.planes[0]).mean() < 32:  # too dark to tell colour from none
                continue
            for plane in frame.planes[1:3]:
                if np.abs(_plane(plane).astype(np.int16) - 128).max() > NEUTRAL_CHROMA_LEVELS:
                    return False
            bright += 1
            if bright >= CHROMA_SAMPLE_FRAMES:
                return True
    except Exception:
        return False
    return False


def _plane(plane) -> np.ndarray:
    """An 8-bit plane without the padding at the end of each line."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def _rotation(container, stream) -> int:
    """Display rotation (ffmpeg applies it when decoding, so frames come out upright).

    Read from the first decoded frame's display matrix, where modern files keep it, else from
    the old 'rotate' tag. A wrong answer would scramble every frame, so it is not guessed.
    """
    try:
        frame = next(container.decode(stream))
        rotation = getattr(frame, "rotation", None)
        if rotation is not None:
            return int(rotation) % 360
    except StopIteration:
        raise VideoError("the video stream holds no frame") from None
    except Exception as exc:
        raise VideoError(f"the first frame cannot be decoded ({exc})") from None
    rotate = stream.metadata.get("rotate")
    try:
        return int(rotate) % 360 if rotate else 0
    except ValueError:
        return 0


def decode_command(ffmpeg: str, path: Path, pix_fmt: str, start_seconds: float | None = None, frames: int | None = None,
                   size: tuple[int, int] | None = None, only_frame: int | None = None) -> list[str]:
    """Raw frames of the first video stream on stdout, upright, every frame kept (no dup/drop).

    start_seconds seeks (accurately: to the keyframe before, then decoding forward); frames
    stops after that many; size (width, height) scales them down (fingerprints of frames);
    only_frame keeps that frame alone, counted as the pipeline counts them (every frame decoded
    from the start: exact where a seek may not be).
    """
    import ffmpeg as ff

    input_args = {"ss": f"{start_seconds:.6f}"} if start_seconds else {}
    stream = ff.input(str(path), **input_args)["v:0"]
    if only_frame is not None:
        stream = stream.filter("select", f"eq(n,{only_frame})")
        frames = 1
    if size is not None:
        stream = stream.filter("scale", size[0], size[1], flags="area")
    output_args = {"frames:v": frames} if frames else {}
    out = ff.output(stream, "pipe:", format="rawvideo", pix_fmt=pix_fmt, fps_mode="passthrough", an=None, sn=None, **output_args)
    return ff.compile(out.global_args("-hide_banner", "-loglevel", "error", "-nostdin"), cmd=ffmpeg)


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "libx264"  # libx264, libx265, prores_ks, ffv1, or any encoder this ffmpeg has
    crf: int | None = 18  # quality for x264/x265 (lower is better); None for codecs without CRF
    preset: str | None = "medium"  # x264/x265 speed preset


def output_colour_tags(info: VideoInfo) -> dict:
    """Colour tags for the output: the source's where it states them, else the convention for its size."""
    hd = info.height >= 720
    default = "bt709" if hd else "smpte170m"
    return {
        "colorspace": info.color_space or default,
        "color_primaries": info.color_primaries or ("bt709" if hd else "smpte170m"),
        "color_trc": info.color_trc or ("bt709" if hd else "smpte170m"),
        "color_range": info.color_range or "tv",
    }


def encode_command(ffmpeg: str, source: Path, out: Path, info: VideoInfo, hw: tuple[int, int], options: EncodeOptions,
                   container_format: str | None = None, with_streams: bool = True, timed: bool = False, mark: str = PROVENANCE) -> list[str]:
    """Colour frames (rgb24 on stdin) + every audio and subtitle stream of `source`, copied bit-exact.

    with_streams=False encodes the picture alone (a chunk of a long film, joined later).
    """
    import ffmpeg as ff

    h, w = hw
    bits = output_bits(info, options.codec)
    # Pictures that start after the sound start as late in the colour film: in sync with it
    delay = {"itsoffset": f"{info.video_start:.6f}"} if with_streams and info.video_start else {}
    if timed:  # frames arrive in NUT packets carrying the source's own timestamps (variable rate)
        frames = ff.input("pipe:", format="nut", **delay)
    else:
        frames = ff.input("pipe:", format="rawvideo", pix_fmt=pipe_format(bits), s=f"{w}x{h}", framerate=str(info.rate), **delay)
    src = ff.input(str(source))
    video = frames.video
    if info.sar != 1:
        video = video.filter("setsar", f"{info.sar.numerator}/{info.sar.denominator}")
    tags = output_colour_tags(info)
    kwargs = {"vcodec": options.codec, "acodec": "copy", "scodec": "copy", **tags}
    if info.field_order:
        video, interlace_kwargs = _keep_interlacing(video, info, options.codec, chroma_format(hw) + ("10le" if bits > 8 else ""))
        kwargs.update(interlace_kwargs)
    if options.codec in ("libx264", "libx265"):
        kwargs["pix_fmt"] = chroma_format(hw) + ("10le" if bits > 8 else "")
        if options.crf is not None:
            kwargs["crf"] = options.crf
        if options.preset:
            kwargs["preset"] = options.preset
    elif options.codec == "prores_ks":
        kwargs["pix_fmt"] = "yuv422p10le"
        kwargs["profile:v"] = "3"
    elif options.codec == "ffv1":
        kwargs["pix_fmt"] = {8: "yuv444p", 10: "yuv444p10le", 16: "yuv444p16le"}[bits]
        kwargs["level"] = 3
    if container_format:
        kwargs["format"] = container_format
    if timed:
        kwargs["fps_mode"] = "passthrough"
    if str(out).endswith((".mp4", ".mov", ".m4v")) and container_format in (None, "mp4", "mov"):
        kwargs["movflags"] = "+faststart"
    streams = [video]
    if with_streams and info.audio_streams:
        streams.append(src["a"])
    if with_streams and info.subtitle_streams:
        streams.append(src["s"])
    if not with_streams:
        kwargs.pop("acodec")
        kwargs.pop("scodec")
    else:
        kwargs.update(_provenance_tags(info, mark))
    out_node = ff.output(*streams, str(out), **kwargs).global_args("-hide_banner", "-loglevel", "error", "-nostdin", "-y")
    cmd = ff.compile(out_node, cmd=ffmpeg)
    if with_streams and len(streams) == 1:
        # ffmpeg-python names only the inputs that feed a stream; the source must be input 1 for its tags
        at = cmd.index("pipe:") + 1
        cmd[at:at] = ["-i", str(source)]
    return cmd


def pipe_format(bits: int) -> str:
    """The raw frames archivecolor pipes to the encoder: 8-bit RGB, or 16-bit for a deep output."""
    return "rgb48le" if bits > 8 else "rgb24"


def chroma_format(hw: tuple[int, int]) -> str:
    """x264/x265's pixel format: 4:2:0, what every player plays, unless a side is odd. 4:2:0
    cannot code an odd side (x264 refuses the film), so such a film keeps its size in 4:4:4."""
    return "yuv420p" if hw[0] % 2 == 0 and hw[1] % 2 == 0 else "yuv444p"


def _keep_interlacing(video, info: VideoInfo, codec: str, pix_fmt: str = "yuv420p"):
    """An interlaced source stays interlaced: frames flagged with its field order, 4:2:0 chroma
    subsampled per field, and encoders that can code fields told to. Without this a tape transfer
    comes out flagged progressive and players show its combing instead of deinterlacing."""
    if codec in ("libx264", "libx265"):
        video = video.filter("scale", interl=1).filter("format", pix_fmt)
    video = video.filter("setfield", "tff" if info.top_field_first else "bff")
    kwargs = {"field_order": info.field_order}
    if codec in ("libx264", "prores_ks", "mpeg2video"):
        kwargs["flags"] = "+ildct+ilme"
    return video, kwargs


def provenance_comment(source_comment: str | None, mark: str = PROVENANCE) -> str:
    """The output's comment: the source's, with the mark that says this film was colorized (and by what)."""
    if source_comment and COLORIZED_MARK in source_comment:
        return source_comment
    return f"{source_comment} | {mark}" if source_comment else mark


def _provenance_tags(info: VideoInfo, mark: str = PROVENANCE) -> dict:
    """The source film's own tags (title, date, …; input 1 is the source), its start timecode (a
    tmcd track in MOV/MP4, a tag in Matroska and MXF: conform tools find the frames by it) and
    the provenance mark."""
    tags = {"map_metadata": 1, "metadata": f"comment={provenance_comment(info.comment, mark)}"}
    return {**tags, "timecode": info.timecode} if info.timecode else tags


def concat_command(ffmpeg: str, list_file: Path, source: Path, out: Path, info: VideoInfo, container_format: str,
                   mark: str = PROVENANCE) -> list[str]:
    """Join encoded chunks without re-encoding and add the source's audio and subtitles, copied."""
    delay = ["-itsoffset", f"{info.video_start:.6f}"] if info.video_start else []  # in sync with the sound, as in one pass
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           *delay, "-f", "concat", "-safe", "0", "-i", str(list_file), "-i", str(source), "-map", "0:v:0"]
    if info.audio_streams:
        cmd += ["-map", "1:a"]
    if info.subtitle_streams:
        cmd += ["-map", "1:s"]
    cmd += ["-c", "copy"]
    for key, value in _provenance_tags(info, mark).items():
        cmd += [f"-{key}", str(value)]
    if container_format in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    return cmd + ["-f", container_format, str(out)]


def index_copy_command(ffmpeg: str, source: Path, out: Path) -> list[str]:
    """The first video stream of `source` copied bit-exact (no re-encoding) into Matroska, whose
    index makes seeks land on the frame asked for: what program and transport streams lack."""
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-fflags", "+genpts", "-i", str(source),
            "-map", "0:v:0", "-c", "copy", "-f", "matroska", str(out)]


def stream_index(path: Path) -> tuple[list[int], Fraction, list[int], int]:
    """The first video stream's frame timestamps in presentation order, their time base, the
    presentation-order indices of its keyframes, and how many video packets the file holds: one
    demuxing pass, no decoding. Frames an edit list leaves out (which players, and decoding, skip)
    are not among the timestamps, but are among the packets, which a cut-short file lacks."""
    stamps, keys, time_base, packets = _demux_video(path)
    order = {pts: i for i, pts in enumerate(stamps)}
    return stamps, time_base, sorted(order[pts] for pts in keys), packets


def frame_timestamps(path: Path) -> tuple[list[int], Fraction]:
    """Presentation timestamps of the first video stream's frames, in order, and their time base."""
    stamps, time_base, _, _ = stream_index(path)
    return stamps, time_base


def is_variable_rate(stamps: list[int], time_base: Fraction, rate: Fraction) -> bool:
    """Frame intervals more than 5 % off the nominal rate make a VFR stream (millisecond-rounded CFR stays CFR)."""
    if len(stamps) < 3:
        return False
    nominal = float(1 / (rate * time_base))  # ticks per frame
    deltas = np.diff(np.asarray(stamps, dtype=np.int64))
    return bool(np.abs(deltas - nominal).max() > max(1.0, 0.05 * nominal))


def keyframe_indices(path: Path) -> list[int]:
    """Presentation-order indices of the keyframes of the first video stream (demuxing only, no decoding)."""
    return stream_index(path)[2]


def _demux_video(path: Path) -> tuple[list[int], set[int], Fraction, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stamps, keys, packets = [], set(), 0
        for packet in container.demux(stream):
            packets += packet.size > 0  # the demuxer's flush packet at the end is empty
            if packet.pts is None or packet.is_discard:  # discarded: outside an edit list (a cut made without re-encoding)
                continue
            stamps.append(packet.pts)
            if packet.is_keyframe:
                keys.add(packet.pts)
        return sorted(stamps), keys, Fraction(stream.time_base), packets


STDERR_KEPT = 64 * 1024  # bytes of an ffmpeg child's stderr kept for its error line


def start(cmd: list[str], stdin=None, stdout=None) -> subprocess.Popen:
    """ffmpeg as a child process, its stderr drained as it comes (the last STDERR_KEPT bytes kept
    for stderr_of). A damaged film's decoder writes hundreds of KiB of complaints: with nobody
    reading them it blocked on a full pipe while we waited for its frames, and the run hung."""
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    kept = bytearray()

    def drain():
        while chunk := proc.stderr.read1(STDERR_KEPT):
            kept.extend(chunk)
            del kept[:-STDERR_KEPT]

    proc.stderr_kept, proc.stderr_drain = kept, threading.Thread(target=drain, name="ffmpeg-stderr", daemon=True)
    proc.stderr_drain.start()
    return proc


def stderr_of(proc: subprocess.Popen) -> str:
    """The end of what a child from `start` wrote to stderr, once it has exited."""
    proc.stderr_drain.join(timeout=10)
    return bytes(proc.stderr_kept).decode(errors="replace").strip()


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
