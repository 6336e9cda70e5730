"""`archivecolor folder`: a tree of stills (or one), colorized into a mirrored tree."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (GroupedCommand, check_takes_hints, hint_reach_option, cluster_config, cluster_options, checked_for_cluster, model_spec, open_colorizer, runtime_options, saturation_option,
                     say_actor_plan, say_left_out)


@click.command(cls=GroupedCommand, examples=(
    ("archivecolor folder scans/ --sheet", "Colour a folder (into scans-colorized/) with a before/after sheet to look at first"),
    ("archivecolor folder box1/ -o box1-colour --format tiff", "16-bit TIFF masters into a folder of your choice"),
    ("archivecolor folder scans/ --dry-run", "Say what a run would do, without loading the model or writing anything"),
), short_help="Colorize a folder of scans or photos (or one picture) into a mirrored folder.")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder; the input tree is mirrored there. Default: SOURCE-colorized beside SOURCE (never inside it); "
                   "for a single picture, its folder's: scans/a.jpg -> scans-colorized/a.jpg.")
@click.option("--format", "output_format", type=click.Choice(["jpeg", "png", "tiff", "webp", "bmp", "jp2", "dpx"]), default=None,
              help="Output format. Default: each file's own format (16-bit PNG/TIFF/JP2 stay 16-bit; JP2 is written lossless; "
                   "DPX keeps its depth and its film and TV headers); "
                   "GIF gives PNG, HEIC JPEG, PGM/PBM PPM.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them, so a re-run resumes).")
@click.option("--skip-color", is_flag=True, help="Leave out inputs that are already in colour (default: colorize them from their luminance).")
@click.option("--ab-upsampling", type=click.Choice(["bilinear", "guided"]), default="bilinear", show_default=True,
              help="How predicted colour is brought to full resolution. guided: edge-aware, follows the luminance edges (against colour bleeding).")
@click.option("--sheet", is_flag=True, help="Also write a before/after sheet of the first images (before-after.jpg in the output folder).")
@click.option("--jobs", type=click.IntRange(1), default=2, show_default=True, help="Decode threads and encode threads (each). With the model on a GPU these set the pace: raise it towards the CPU count.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG / WebP quality.")
@click.option("--hints", "hints_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Colour hints: HINTS_DIR mirrors SOURCE, and HINTS_DIR/sub/plate-12.hints.json says what colour things "
                   "were in SOURCE/sub/plate-12.tif ({\"points\": [{\"x\": 812, \"y\": 430, \"color\": \"#2f4f8f\"}]}, "
                   "pixels as the picture is shown). Pictures without a file are coloured automatically.")
@click.option("--max-megapixels", type=click.FloatRange(0, min_open=True), default=500.0, show_default=True,
              help="Refuse pictures larger than this (all pages, read from the header before decoding): a 20000 × 20000 "
                   "archive scan passes, a decompression bomb does not.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON report here (it is always written to OUT/archivecolor-report.json).")
@click.option("--dry-run", is_flag=True,
              help="Only say what a run would do: files to colorize (and their megapixels), already done, refused, "
                   "unreadable headers. Reads names and headers only; writes nothing, loads no model. Exit code 1 if "
                   "any file would fail.")
@hint_reach_option
@saturation_option
@runtime_options
@cluster_options
def folder(source, out, hint_reach, output_format, overwrite, skip_color, ab_upsampling, sheet, jobs, quality, hints_dir, max_megapixels, report, dry_run, saturation,
           weights, backend, device, precision, render_size, batch_size, engine, debug, cluster, cluster_actors, actor_cpus, actor_gpus):
    """Colorize every image below SOURCE (jpg, png, tiff incl. multi-page, webp, bmp, jp2, pgm/pbm/ppm, gif, heic, dpx),
    or SOURCE itself where it is one picture.

    Sources are never written. Each output is written under a temporary name and renamed when
    complete, so an interrupted run leaves nothing half-written; run the same command again to
    resume. A file that cannot be read is reported on one line and the run goes on; the exit
    code is 1 if any file failed, 0 otherwise.
    """
    from rich.table import Table

    from .. import console
    from ..files import OutputUnwritable
    from ..folder import (SHEET_NAME, FolderConfig, FolderStopped, check_output_folder, colorize_folder, default_output_folder,
                          list_sources)
    from ..imageio import STILL_EXTENSIONS
    from ..files import FolderInUse, atomic_write_bytes

    if out is not None and source.is_file() and out.suffix.lower() in STILL_EXTENSIONS and not out.is_dir():
        raise click.ClickException(f"--out names a folder (the picture keeps its name in it): --out {out.parent / out.stem}/ "
                                   f"would give {out.parent / out.stem / source.name}")
    out = out or default_output_folder(source)
    try:
        config = FolderConfig(batch_size=batch_size, output_format=output_format, overwrite=overwrite,
                              skip_color=skip_color, ab_upsampling=ab_upsampling, sheet=sheet, jobs=jobs, quality=quality,
                              max_megapixels=max_megapixels, hints_dir=hints_dir)
        check_output_folder(source, out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        if _say_folder_plan(source, out, config):
            raise SystemExit(1)
        return
    listing = list_sources(source)  # listed once: for "no pictures" here, then for the run
    if source.is_dir() and (nothing := _no_pictures(source, listing)):
        raise click.ClickException(nothing)  # before any folder is made or model loaded
    try:
        spec = model_spec(weights, backend, device, precision, render_size, engine, saturation, hint_reach)
        colorizer = open_colorizer(spec) if cluster is None else None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if hints_dir is not None:
        check_takes_hints(colorizer, spec)
    # The bar counts megapixels once the headers are read (its rate and ETA then hold for mixed
    # sizes: small files finishing first do not promise the end), files in its description.
    progress = console.make_progress("MP/s", extra="{task.fields[files]}")
    with progress:
        bar = progress.add_task("colorizing (megapixels)", total=None, files="")
        files, finished, pixels_of = {"total": None}, set(), {}

        def say_files():
            progress.update(bar, files=f"{len(finished)} of {files['total']} files" if files["total"] is not None else "")

        def on_total(total):
            files["total"] = total
            if cluster is not None:  # a cluster run reads no headers ahead: its bar counts files
                progress.update(bar, total=total, description="colorizing (files)")
            say_files()

        def on_pixels(per_file):
            pixels_of.update(per_file)
            done = sum(per_file.get(rel, 0) for rel in finished)
            progress.update(bar, total=max(sum(per_file.values()), 1) / 1e6, completed=done / 1e6)

        def on_file(result):
            if result.status == "failed":
                console.error_line(result.source, result.reason)
            finished.add(result.source)
            progress.advance(bar, 1 if cluster is not None else pixels_of.get(result.source, 0) / 1e6)
            say_files()

        try:
            if cluster is None:
                result = colorize_folder(source, out, colorizer, config, on_file=on_file, on_total=on_total, on_pixels=on_pixels,
                                         listing=listing)
            else:
                result = _folder_on_cluster(source, out, config, spec,
                                            cluster_config(cluster, cluster_actors, actor_cpus, actor_gpus), on_file, on_total)
        except click.ClickException:
            raise
        except (OutputUnwritable, FolderInUse) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:  # before the first file started
            progress.stop()
            console.stderr.print("stopped before any file was done; run the same command to start again", markup=False)
            raise SystemExit(130) from None
        except FolderStopped as stopped:
            progress.stop()
            console.stderr.print(f"{stopped}; the report so far: {out / 'archivecolor-report.json'}", markup=False)
            raise SystemExit(130) from None
        except Exception as exc:
            if debug:
                raise
            raise click.ClickException(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)") from None
    table = Table(title=f"archivecolor folder → {out}", show_edge=False)
    for column in ("done", "skipped", "failed", "pictures", "seconds", "pictures/s"):
        table.add_column(column, justify="right")
    table.add_row(str(result.count("done")), str(result.count("skipped")), str(result.failed), str(result.images),
                  f"{result.seconds:.1f}", f"{result.images_per_s:.2f}")
    console.stderr.print(table)
    say_left_out(result.left_out, result.others)
    if sheet and (out / SHEET_NAME).exists():
        console.info(f"before/after sheet: {out / SHEET_NAME}")
    _hint_film_reels(source, (r.source for r in result.results))
    if report is not None:
        atomic_write_bytes(report, result.to_json().encode())
    if result.failed:
        console.stderr.print(f"{result.failed} file(s) failed; see {out / 'archivecolor-report.json'}", markup=False)
        raise SystemExit(1)


def _no_pictures(source: Path, listing) -> str | None:
    """'no pictures found in DIR …' with what is there instead (from its listing), or None when there are pictures."""
    from ..video.naming import VIDEO_EXTENSIONS

    if listing.files or listing.unusable:
        return None
    message = f"no pictures found in {source}"
    films = sum(n for suffix, n in listing.others.items() if suffix in VIDEO_EXTENSIONS)
    if listing.others:
        message += f" ({listing.others_line('images').removeprefix('not images archivecolor reads, left as they are: ')})"
    elif listing.hidden:
        message += f" (only {listing.hidden} hidden or system file(s), which are left out)"
    else:
        message += " (the folder is empty)"
    if films:
        message += f": for films, use `archivecolor video {source}`"
    return message


def _say_folder_plan(source, out, config) -> int:
    """The dry run's table; returns how many files would fail."""
    from rich.table import Table

    from .. import console
    from ..folder import plan_folder

    plan = plan_folder(source, out, config)
    for result in plan.settled:
        if result.status == "failed":
            console.error_line(result.source, result.reason)
    for rel in plan.unreadable:
        console.error_line(rel, "header unreadable: this file will most likely fail")
    table = Table(title=f"dry run: archivecolor folder {source} → {out} (nothing written)", show_edge=False)
    for column in ("to colorize", "megapixels", "already done", "refused", "unreadable header"):
        table.add_column(column, justify="right")
    table.add_row(str(len(plan.todo)), f"{plan.pixels / 1e6:.1f}", str(plan.count("skipped")), str(plan.count("failed")),
                  str(len(plan.unreadable)))
    console.stderr.print(table)
    say_left_out(plan.left_out, plan.others)
    _hint_film_reels(source, [task.rel for task in plan.todo] + [result.source for result in plan.settled])
    return plan.count("failed") + len(plan.unreadable)


def _hint_film_reels(source: Path, relative_files) -> None:
    """`folder` colours each frame of a scanned reel on its own; `video` would smooth them over time."""
    from .. import console
    from ..video.sequence import film_reels

    root = source if source.is_dir() else source.parent
    reels = film_reels(root / Path(rel).parent for rel in relative_files)
    for reel in reels[:3]:
        console.info(f"hint: {reel.folder} holds {len(reel.frames)} film frames ({reel.span}): `archivecolor video "
                     f"{reel.folder}` colours them as a film, smoothing colour over time against flicker")
    if len(reels) > 3:
        console.info(f"hint: and {len(reels) - 3} more folders of film frames")


def _folder_on_cluster(source, out, config, spec, cluster, on_file, on_total):
    from ..cluster import ClusterError
    from ..cluster.folder import colorize_folder_on_cluster

    try:
        return colorize_folder_on_cluster(source, out, checked_for_cluster(spec), config, cluster,
                                          on_file=on_file, on_total=on_total, on_start=say_actor_plan)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
