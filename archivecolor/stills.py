"""One still file at the pipeline's two ends: decode (header checks before any pixel, pages,
luminance, network input, its colour hints) and write (recombine at full resolution, the
provenance mark, encode, atomic write). `folder`, a cluster's workers and the frames of an image
sequence all colour through these two, with the options they take spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import dpx, heif
from .colorizer import RenderJob
from .files import atomic_write_bytes
from .hints import HINTS_SUFFIX, HintsError, read_hints
from .imageio import ANIMATED_FORMATS, BadInput, Still, encode_still, encode_tiff_pages, provenance_mark, read_stills, still_format
from .lab import GREY_LEVEL_THRESHOLD, chroma_level
from .render import full_luminance, recombine_into


DEFAULT_MAX_MEGAPIXELS = 500.0


def pixel_refusal(pixels: int | None, max_megapixels: float) -> str | None:
    """Why a picture of `pixels` is refused (over the limit), or None."""
    if not pixels or not max_megapixels or pixels <= max_megapixels * 1e6:
        return None
    return (f"{pixels / 1e6:,.0f} megapixels, above the limit of {max_megapixels:g} (a decompression bomb, or a scan "
            "larger than this machine should decode): raise --max-megapixels to colorize it")


@dataclass
class FileTask:
    source: Path
    rel: str
    target: Path
    fmt: str
    pixels: int | None = None  # from the header, read when the task comes up for decoding
    hints: int = 0  # colour hints placed on it
    hint_error: str | None = None  # why its hints file could not be used (it is coloured without, and counted failed)


@dataclass
class DecodedFile:
    task: FileTask
    stills: list[Still]
    luminance: list[np.ndarray]
    jobs: list[RenderJob]


def decode_failure(exc: Exception) -> str:
    if isinstance(exc, BadInput):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    if type(exc).__module__.startswith("cv2"):  # OpenCV's assertion text names its own source lines
        return "not a decodable image (the decoder refused its data: damaged, or an unsupported variant)"
    return f"unexpected error while decoding: {exc!r}"


def header(path: Path) -> tuple[int, int, str]:
    """(pixels of all pages, pages or frames, format) from the header alone; (0, 1, "") when it
    cannot be read (decoding will say why)."""
    from PIL import Image

    if still_format(path) == "dpx":
        try:
            with open(path, "rb") as f:
                dims = dpx.size(f.read(784))
        except OSError:
            dims = None
        return (dims[0] * dims[1], 1, "dpx") if dims else (0, 1, "")
    if still_format(path) == "heif":
        try:
            pixels, pictures = heif.header(path)
            return pixels, pictures, "heif"
        except heif.HeifError:
            return 0, 1, ""
    try:
        with Image.open(path) as im:
            kind = (im.format or "").lower()
            # pages of a TIFF, frames of an animated GIF, PNG or WebP (refused: not stills)
            pages = max(1, getattr(im, "n_frames", 1)) if kind in ("tiff", *ANIMATED_FORMATS) else 1
            return im.size[0] * im.size[1] * pages, pages, kind
    except Exception:
        return 0, 1, ""


def pages_refusal(fmt: str, pages: int, source_format: str | None = None) -> str | None:
    """Why `pages` pictures (a TIFF's pages, a HEIC burst) cannot go into one `fmt` file (only
    TIFF holds several); None if they can."""
    if pages > 1 and fmt != "tiff":
        what = "pictures (a burst)" if source_format == "heif" else "pages"
        return f"{pages} {what}, and {fmt.upper()} holds one picture: colorize it to TIFF (--format tiff; the default for .tif names)"
    return None


def decode_file(task: FileTask, prepare, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS, skip_color: bool = False,
                hints_dir: Path | None = None) -> DecodedFile | None:
    """Read every page and prepare its network input with `prepare(L_full) -> RenderJob`, the
    hints of HINTS_DIR placed on the first; None for a colour file that `skip_color` leaves out.
    Raises BadInput (among others) for a file that cannot be coloured."""
    if task.pixels is None:
        task.pixels = header(task.source)[0]
    if refusal := pixel_refusal(task.pixels, max_megapixels):  # before a single pixel is decoded
        raise BadInput(refusal)
    stills = read_stills(task.source)
    if refusal := pages_refusal(task.fmt, len(stills), still_format(task.source)):
        raise BadInput(refusal)
    if skip_color and all(not s.is_grey and chroma_level(s.pixels[..., :3]) >= GREY_LEVEL_THRESHOLD for s in stills):
        return None
    luminance = [full_luminance(s.pixels, s.metadata.icc) for s in stills]
    jobs = [prepare(L) for L in luminance]
    if hints_dir is not None:
        place_hints(task, jobs[0], hints_dir)
    return DecodedFile(task, stills, luminance, jobs)


def hints_file(hints_dir: Path, rel: str) -> Path:
    """Where the hints of SOURCE/rel live: HINTS_DIR/sub/plate-12.hints.json for sub/plate-12.tif."""
    rel_path = Path(rel)
    return Path(hints_dir) / rel_path.parent / (rel_path.stem + HINTS_SUFFIX)


def place_hints(task: FileTask, job: RenderJob, hints_dir: Path) -> None:
    """Read the picture's hints file, if it has one, onto its render job; a bad file is noted on the
    task (the picture is coloured without hints and counted failed) rather than stop anything."""
    path = hints_file(hints_dir, task.rel)
    if not path.is_file():
        return
    height, width = job.geometry.full_hw
    try:
        hints = read_hints(path, size=(width, height))
    except HintsError as exc:
        task.hint_error = f"hints: {exc}"
        return
    job.add_hints(hints)
    task.hints = len(hints)


def write_file(item: DecodedFile, ab_upsampling: str = "bilinear", quality: int = 95, made_with: str = "") -> int:
    """Recombine every page at full resolution (`ab_upsampling`: render.AB_UPSAMPLING), mark it
    as made with `made_with`, encode (`quality` for JPEG and WebP), write atomically; returns pictures written."""
    pages = []
    for still, L_full, job in zip(item.stills, item.luminance, item.jobs):
        channels = 4 if still.alpha is not None else 3
        rgb = np.empty((*L_full.shape, channels), dtype=still.pixels.dtype)
        recombine_into(rgb, L_full, job.ab, job.L_render, ab_upsampling)
        if channels == 4:
            rgb[..., 3] = still.alpha
        pages.append((rgb, replace(still.metadata, provenance=provenance_mark(made_with, item.task.hints))))
    if item.task.fmt == "tiff":
        data = encode_tiff_pages(pages)
    else:
        data = encode_still(pages[0][0], item.task.fmt, pages[0][1], quality)
    atomic_write_bytes(item.task.target, data)
    return len(pages)
