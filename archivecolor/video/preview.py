"""A reel's preview film: its colorized frames as one small H.264 file, to watch the result
without a DPX or TIFF-sequence player.

Made from the frames on disk once the reel is done, so it covers the frames of earlier,
interrupted runs too; frames that failed are simply not in it. Scaled to at most
PREVIEW_HEIGHT lines, 8-bit 4:2:0 (what every player plays), and written under a temporary
name, then renamed, like every output. It is for looking, not a master: the frames are that.
"""

from __future__ import annotations

import os
import subprocess
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from pathlib import Path

import cv2
import numpy as np

from ..imageio import BadInput, read_stills
from ..files import remove_temporaries_of, temporary_beside
from .ffmpeg import VideoError, find_ffmpeg, provenance_comment, start, stderr_of

PREVIEW_HEIGHT = 1080  # lines at most
DEFAULT_FPS = 24.0  # a film scanner's frames carry no rate outside DPX film headers (dpx.frame_rate); sound film runs at 24
PREVIEW_CRF, PREVIEW_PRESET = 20, "veryfast"


def preview_path(out: Path) -> Path:
    """reel1-colorized/ -> reel1-colorized-preview.mp4 beside it."""
    out = Path(out)
    return out.parent / f"{out.name}-preview.mp4"


def preview_size(hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the preview: at most PREVIEW_HEIGHT lines, both sides even (4:2:0)."""
    h, w = hw
    scale = min(1.0, PREVIEW_HEIGHT / h)
    return max(2, round(h * scale / 2) * 2), max(2, round(w * scale / 2) * 2)


def _preview_frame(path: Path, hw: tuple[int, int] | None) -> np.ndarray | None:
    """A written frame as 8-bit RGB at `hw` (None: its own preview size); None if unreadable."""
    try:
        pixels = read_stills(path)[0].pixels
    except BadInput:
        return None
    if pixels.ndim == 2:
        pixels = np.dstack([pixels] * 3)
    pixels = pixels[..., :3]
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    size = preview_size(pixels.shape[:2]) if hw is None else hw
    if pixels.shape[:2] != size:
        pixels = cv2.resize(pixels, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels)


def _read_ahead(readers: ThreadPoolExecutor, frames: list[Path], hw: tuple[int, int], depth: int):
    """The frames' preview pictures in order, at most `depth` decoded ahead (a reel can be hours long)."""
    pending: deque[Future] = deque()
    for path in frames:
        pending.append(readers.submit(_preview_frame, path, hw))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def encode_command(ffmpeg: str, hw: tuple[int, int], fps: float, out: Path) -> list[str]:
    """Raw 8-bit sRGB frames on stdin -> H.264 4:2:0 in MP4, tagged BT.709 with sRGB's tone curve."""
    h, w = hw
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "-",
            "-vf", "scale=out_color_matrix=bt709:out_range=tv", "-c:v", "libx264", "-preset", PREVIEW_PRESET,
            "-crf", str(PREVIEW_CRF), "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
            "-color_trc", "iec61966-2-1", "-movflags", "+faststart", "-metadata", f"comment={provenance_comment(None)}",
            "-f", "mp4", str(out)]


def write_preview(frames: list[Path], target: Path, fps: float = DEFAULT_FPS, ffmpeg: str | None = None,
                  jobs: int = 2, on_frames=None) -> int:
    """Encode `frames` (written frames, in order) into `target`; returns how many it holds.

    A frame that cannot be read is left out (the reel's run has said why). Raises VideoError
    if none can be read or ffmpeg fails; nothing is left under `target` then.
    """
    target = Path(target)
    remove_temporaries_of(target)  # from a run killed while encoding
    frames = list(frames)
    first, picture = next(((i, pic) for i, path in enumerate(frames) if (pic := _preview_frame(path, None)) is not None), (None, None))
    if picture is None:
        raise VideoError("no written frame could be read for the preview film")
    hw = picture.shape[:2]
    with temporary_beside(target) as tmp, ThreadPoolExecutor(jobs, thread_name_prefix="preview") as readers:
        encoder = start(encode_command(find_ffmpeg(ffmpeg), hw, fps, tmp), stdin=subprocess.PIPE)
        written = 0
        try:
            for picture in chain([picture], _read_ahead(readers, frames[first + 1 :], hw, 2 * jobs)):
                if picture is None:
                    continue
                encoder.stdin.write(picture.data)
                written += 1
                if on_frames is not None:
                    on_frames(1)
            encoder.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped: its own message says why, below
        except BaseException:  # Ctrl-C, or a frame that broke the reader: no half film stays
            encoder.kill()
            encoder.wait()
            raise
        if encoder.wait() != 0:
            lines = stderr_of(encoder).splitlines()
            raise VideoError(f"ffmpeg could not encode the preview film: {lines[-1] if lines else 'no message'}")
        os.replace(tmp, target)
    return written


def reel_preview(sequence, target: Path, frames_written: int, ffmpeg: str | None, overwrite: bool, fps: float = 0.0,
                 on_total=None, on_frames=None) -> Path:
    """The preview film of a coloured reel (`target` its folder of frames), unless an earlier run's
    is still whole (nothing new was written since). `fps` 0: the rate a DPX film header records,
    else DEFAULT_FPS. Raises VideoError."""
    from ..dpx import frame_rate
    from .sequence import frame_target

    path = preview_path(target)
    if path.exists() and not overwrite and frames_written == 0:
        return path
    frames = [t for t in (frame_target(frame, target)[0] for frame in sequence.frames) if t.exists()]
    if on_total is not None:
        on_total(len(frames))
    write_preview(frames, path, fps or frame_rate(sequence.frames[0]) or DEFAULT_FPS, ffmpeg, on_frames=on_frames)
    return path
