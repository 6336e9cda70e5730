"""Where a film's colour version goes: its output name and container, and what counts as one of ours."""

from __future__ import annotations

from pathlib import Path

from ..imageio import COLORIZED_MARK

# Read by ffmpeg; the last ones (tape captures, DVD, camcorder and web formats) are written back as Matroska.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".mpg", ".mpeg", ".ts",
                    ".dv", ".vob", ".mts", ".m2ts", ".wmv", ".flv", ".ogv", ".m2v")
WEBM_CODECS = ("libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1")  # all WebM can hold
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm",
                     ".mxf": "mxf", ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts"}


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
