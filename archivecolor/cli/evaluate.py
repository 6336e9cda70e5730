"""`archivecolor evaluate`: a model scored against the colour originals, beside the grey baseline."""

from __future__ import annotations

from pathlib import Path

import click

from .common import GroupedCommand, hint_reach_option, model_spec, open_colorizer, runtime_options


@click.command(cls=GroupedCommand, examples=(
    ("archivecolor evaluate my_colour_photos/", "How well the model colours photos like yours (figures and a sheet)"),
    ("archivecolor evaluate clips/ --video", "The same on colour film clips, with flicker figures"),
), short_help="Score the model on colour photos or clips (desaturated, then compared with the truth).")
@click.argument("images_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("evaluation"), show_default=True,
              help="Folder for evaluation.json, report.html and sheet.jpg.")
@click.option("--video", "video_clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A colour clip to desaturate and colorize: temporal figures (CDC, static Δab) per-frame vs smoothed vs the truth. Repeatable.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="With --video: only the first N frames of each clip.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate only the first N images.")
@click.option("--fid-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also report FID (model and grey baseline against the originals), with pytorch-fid's Inception weights file "
                   "(pt_inception-2015-12-05-6726825d.pth); it cannot be downloaded at run time.")
@click.option("--study", is_flag=True, help="Also write study.html: a two-alternative forced-choice page (which looks more real?) that saves answers as JSON locally.")
@click.option("--hints-from-truth", type=click.IntRange(1, 1000), multiple=True, metavar="N",
              help="Also score the photos with N colour hints each, at random points (the same on every run) taken from "
                   "their true colours: what the model makes of an archivist's hints. Repeat for several N.")
@click.option("--chroma-gain", type=click.FloatRange(0, 4), default=1.0, show_default=True,
              help="Scale the model's a/b by this before scoring. PSNR and CIEDE2000 reward muted colour, so compare two models "
                   "at equal colourfulness: give the more colourful one a gain below 1. Evaluation only; on top of any gain "
                   "the weights carry (train/ship.py --chroma-gain).")
@hint_reach_option
@runtime_options
def evaluate(images_dir, out, hint_reach, video_clips, max_frames, limit, fid_weights, study, chroma_gain, hints_from_truth, weights, backend, device, precision, render_size, batch_size, engine, debug):
    """Desaturate the colour photos in IMAGES_DIR (or clips, with --video), colorize them, and score against the originals.

    Reports PSNR and SSIM (RGB), mean CIEDE2000 and colourfulness (Hasler & Süsstrunk) of the
    output and of the truth, each beside the grey baseline (a = b = 0) measured in the same run.
    Writes evaluation.json, a self-contained report.html with before/after/truth thumbnails, and
    sheet.jpg: the first photos as grey | colorized | original rows, each with its figures.
    """
    from rich.table import Table

    from .. import console
    from ..data import find_images
    from ..evaluate import BETTER, FIGURES, evaluate_folder, verdict, html_report, sheet_jpeg, study_page
    from ..files import atomic_write_bytes

    if images_dir is None and not video_clips:
        raise click.UsageError("give IMAGES_DIR, --video CLIP, or both")
    colorizer = open_colorizer(model_spec(weights, backend, device, precision, render_size, engine, saturation=chroma_gain,
                                                hint_reach=hint_reach))
    if chroma_gain != 1.0:
        console.info(f"scoring the model's colour scaled by {chroma_gain:g} (--chroma-gain)")
    if video_clips:
        from ..evaluate import evaluate_video

        figures = []
        table = Table(title="temporal figures (lower is steadier; the truth is real footage's own floor)", show_edge=False)
        for column in ("clip", "frames", "figure", "per-frame", "smoothed", "truth"):
            table.add_column(column, justify="right" if column not in ("clip", "figure") else "left")
        from ..video.ffmpeg import probe

        for clip in video_clips:
            with console.make_progress("frames/s") as progress:
                bar = progress.add_task(clip.name, total=min(probe(clip).frames or 0, max_frames or 10**9) or None)
                result = evaluate_video(clip, colorizer, batch_size=batch_size, max_frames=max_frames,
                                        on_frames=lambda n: progress.advance(bar, n))
            figures.append(result)
            for figure in ("cdc", "cdc_1", "cdc_4", "static_delta_ab"):
                table.add_row(clip.name, str(result["frames"]), figure, f"{result['per_frame'][figure]:.4f}",
                              f"{result['smoothed'][figure]:.4f}", f"{result['truth'][figure]:.4f}")
        console.stderr.print(table)
        atomic_write_bytes(out / "evaluation-video.json", __import__("json").dumps(figures, indent=1).encode())
        console.info(f"wrote {out / 'evaluation-video.json'}")
        if images_dir is None:
            return
    total = len(find_images(images_dir)[:limit])
    thumbnails, sheet_rows, pairs = [], [], ([] if study else None)
    fid_images = {"model": [], "grey": [], "truth": []} if fid_weights else None
    if fid_weights:
        from ..fid import load_fid_inception

        try:
            inception = load_fid_inception(fid_weights)
        except (ValueError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
    with console.make_progress("images/s") as progress:
        bar = progress.add_task("evaluating", total=total)
        result = evaluate_folder(images_dir, colorizer, batch_size, limit, thumbnails, on_image=lambda: progress.advance(bar), study_pairs=pairs, fid_images=fid_images, sheet_rows=sheet_rows)
    for name, reason in result.failed.items():
        console.error_line(name, reason)
    if fid_weights and result.images:
        from ..fid import features, frechet_distance

        truth = features(inception, fid_images["truth"])
        result.fid = {"model": frechet_distance(features(inception, fid_images["model"]), truth),
                      "grey": frechet_distance(features(inception, fid_images["grey"]), truth)}
    summary = result.summary()
    hinted = {}
    for count in hints_from_truth:
        with console.make_progress("images/s") as progress:
            bar = progress.add_task(f"with {count} hints", total=total)
            hinted[count] = evaluate_folder(images_dir, colorizer, batch_size, limit, on_image=lambda: progress.advance(bar),
                                            hints_from_truth=count).summary()
    result.with_hints = hinted
    table = Table(title=f"{summary['images']} images from {images_dir}", show_edge=False)
    table.add_column("figure")
    table.add_column("model", justify="right")
    for count in hinted:
        table.add_column(f"with {count} hint{'s' if count > 1 else ''}", justify="right")
    table.add_column("grey baseline", justify="right")
    for figure in FIGURES:
        table.add_row(f"{figure} {BETTER[figure]}", f"{summary['model'][figure]:.3f}",
                      *(f"{h['model'][figure]:.3f}" for h in hinted.values()), f"{summary['grey'][figure]:.3f}")
    if result.fid:
        table.add_row("FID", f"{result.fid['model']:.2f}", f"{result.fid['grey']:.2f}")
    table.add_row("colourfulness of the truth", f"{summary['truth_colourfulness']:.3f}", "")
    console.stderr.print(table)
    console.info(verdict(summary))
    atomic_write_bytes(out / "evaluation.json", result.to_json().encode())
    atomic_write_bytes(out / "report.html", html_report(result, thumbnails, f"archivecolor evaluation: {images_dir}").encode())
    written = [out / "evaluation.json", out / "report.html"]
    if sheet_rows:
        atomic_write_bytes(out / "sheet.jpg", sheet_jpeg(result, sheet_rows))
        written.append(out / "sheet.jpg")
    console.info("wrote " + ", ".join(str(path) for path in written))
    if study:
        atomic_write_bytes(out / "study.html", study_page(pairs, f"archivecolor study: {images_dir.name}").encode())
        console.info(f"wrote {out / 'study.html'}: open it in a browser, answer, then save the answers")
    if result.failed:
        raise SystemExit(1)
