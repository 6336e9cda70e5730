"""`archivecolor hints`: the page to place colour hints on a picture."""

from __future__ import annotations

from pathlib import Path

import click

from .common import GroupedCommand, hint_reach_option, model_spec, open_colorizer, runtime_options


@click.command("hints", cls=GroupedCommand, examples=(
    ("archivecolor hints scans/plate-12.tif", "Write scans/plate-12.hints.html: open it, click, pick colours, save"),
    ("archivecolor hints scans/plate-12.tif --preview", "Also show it coloured without and with the hints it has"),
    ("archivecolor hints reel.mp4 --frame 1200", "A film's frame: its hints go in reel.hints.json, for video --hints"),
    ("archivecolor hints scan_0001/ --frame 40", "A reel of numbered frames: its hints go in scan_0001.hints.json beside it"),
), short_help="Write a page to place colour hints on a picture or a film's frame (for folder/video --hints).")
@click.argument("picture", type=click.Path(exists=True, path_type=Path))
@click.option("--frame", type=click.IntRange(0), default=None,
              help="PICTURE is a film, or a folder of a reel's numbered frames: place hints on this frame (counted from 0, "
                   "as `video` counts them; the frame of a timestamp t seconds is about t × the frame rate). A hint "
                   "holds for the frame's shot.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The page to write. Default: NAME.hints.html beside the picture.")
@click.option("--hints", "hints_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Hints to start from (default: NAME.hints.json beside the picture, when there is one).")
@click.option("--preview", is_flag=True, help="Also show the picture coloured without and with its hints (computed now).")
@hint_reach_option
@runtime_options
def hints(picture, frame, hint_reach, out, hints_file, preview, weights, backend, device, precision, render_size, batch_size, engine, debug):
    """Write a self-contained HTML page for PICTURE: open it in any browser (no network, no
    server), click where you know a colour, pick it (a picker and swatches of colours archivists
    often know), and save NAME.hints.json. Put that file beside the picture, or at the same place
    in a tree of hints, and `archivecolor folder SCANS --hints HINTS` colours with it. For a
    film, --frame picks the frame; the page keeps the film's hints on other frames, and
    `archivecolor video FILM --hints NAME.hints.json` colours with them all.
    """
    from .. import console
    from ..files import atomic_write_bytes
    from ..hints import HintsError
    from ..hints_page import build_page, page_path_for
    from ..imageio import BadInput
    from ..video.ffmpeg import VideoError
    from ..video.naming import VIDEO_EXTENSIONS

    if frame is None and picture.suffix.lower() in VIDEO_EXTENSIONS:
        raise click.UsageError(f"{picture} is a film: name the frame to place hints on with --frame N")
    if frame is None and picture.is_dir():
        raise click.UsageError(f"{picture} is a folder: for a reel of numbered frames, name the frame to place hints on "
                               "with --frame N; for stills, name one picture")

    colorizer = open_colorizer(model_spec(weights, backend, device, precision, render_size, engine, hint_reach=hint_reach)) if preview else None
    out = out or page_path_for(picture, frame)
    try:
        page = build_page(picture, colorizer, hints_file, frame)
    except (BadInput, HintsError, VideoError) as exc:
        raise click.ClickException(f"{picture}: {exc}") from None
    atomic_write_bytes(out, page.encode())
    console.info(f"page: {out} (open it in a browser; it saves {picture.stem}.hints.json)")
