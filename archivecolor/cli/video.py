"""`archivecolor video`: films and image sequences, with their per-film tables and reports."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (GroupedCommand, check_takes_hints, hint_reach_option, cluster_config, cluster_options, checked_for_cluster, model_spec, open_colorizer, runtime_options, saturation_option,
                     say_actor_plan, say_left_out)


@click.command(cls=GroupedCommand, examples=(
    ("archivecolor video reel.mp4", "Colour a film (into reel-colorized.mp4), sound and timecode kept"),
    ("archivecolor video reels/ --sheet", "Every film in a folder, each with a contact sheet of its frames"),
    ("archivecolor video scan_0001/ --codec prores_ks -o reel1.mov", "A reel of numbered DPX/TIFF frames"),
    ("archivecolor video reel.mp4 --hints reel.hints.json", "The uniform was blue: hints placed on frames, held for their shots"),
), short_help="Colorize films, or reels of numbered frames, keeping sound and timing.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or folder (several; a folder's tree is mirrored). Default: NAME-colorized.EXT beside "
                   "each input (NAME-colorized.EXT.mkv where EXT cannot hold the codec: .dv, .vob, WebM with x264…).")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--smoothing", type=click.Choice(["none", "ema", "flow"]), default="ema", show_default=True,
              help="Temporal a/b smoothing against flicker: ema (moving average), flow (motion-compensated, slower), none.")
@click.option("--smoothing-strength", type=click.FloatRange(0, 0.99), default=0.7, show_default=True,
              help="Weight of the past frames in the smoothing (0 = none; higher is steadier).")
@click.option("--cut-threshold", type=click.FloatRange(0, 2), default=0.3, show_default=True,
              help="How different two frames' pictures must be for a scene cut, where smoothing starts afresh: 0 is the same "
                   "layout of light and dark, about 1 unrelated pictures (brightness alone, a flash or a fade, does not count). "
                   "Lower finds cuts between similar shots; a cut must also stand out from the shot's own motion.")
@click.option("--hints", "hints_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Colour hints: a .hints.json file for one film or reel, or a folder that mirrors the inputs "
                   "(HINTS/sub/reel.hints.json for sub/reel.mp4, HINTS/scan_0001.hints.json for the reel folder scan_0001/). Each point names the frame it was placed on ({\"x\": 812, \"y\": 430, \"color\": "
                   "\"#2f4f8f\", \"frame\": 1200}); it holds for that frame's shot and follows the picture's motion. "
                   "`archivecolor hints` makes the file on a still of the frame.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder: libx264, libx265, prores_ks, ffv1, or any your ffmpeg has.")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True, help="Quality for libx264/libx265 (lower is better).")
@click.option("--preset", default="medium", show_default=True, help="libx264/libx265 speed preset.")
@click.option("--chunk-frames", type=click.IntRange(0), default=3000, show_default=True,
              help="Films longer than 1.5× this many frames are processed in keyframe-aligned chunks that an interrupted run resumes from; 0: one pass.")
@click.option("--sheet", is_flag=True,
              help="Also write a before/after sheet of 12 frames spread over each film (NAME-colorized-sheet.jpg beside its output).")
@click.option("--preview", is_flag=True,
              help="Image sequences: also write NAME-colorized-preview.mp4 beside the colorized frames' folder, an H.264 film of "
                   "the colorized frames (at most 1080 lines) to watch without a DPX or TIFF-sequence player. Made "
                   "from the frames on disk once the reel is done, so a resumed reel's preview is whole.")
@click.option("--preview-fps", type=click.FloatRange(1, 300), default=None,
              help="Frame rate of the preview film. Default: the rate a DPX film header records, else 24.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a JSON report here: each film's or reel's result, reason, frames, speed, cuts and temporal figures.")
@click.option("--ffmpeg", "ffmpeg_path", default=None, help="ffmpeg binary (default: $ARCHIVECOLOR_FFMPEG, then ffmpeg on PATH, then the bundled one).")
@click.option("--dry-run", is_flag=True,
              help="Only say what a run would do: each film's frames, length, size, black-and-white or colour, chunks "
                   "(and how many an interrupted run already finished), or why it would be skipped or fail. Reads the "
                   "films' headers and packets only; writes nothing, loads no model. Exit code 1 if any film would fail.")
@hint_reach_option
@saturation_option
@runtime_options
@cluster_options
def video(inputs, out, hint_reach, overwrite, smoothing, smoothing_strength, cut_threshold, hints_path, codec, crf, preset, chunk_frames, sheet, preview, preview_fps,
          report, ffmpeg_path, dry_run,
          saturation, weights, backend, device, precision, render_size, batch_size, engine, debug, cluster, cluster_actors, actor_cpus, actor_gpus):
    """Colorize films: one or more video files, or folders of them (mp4, mov, mkv, avi, mxf, mpg,
    ts, webm, dv, vob, mts, m2ts, wmv, flv, ogv, m2v; hidden and system files and this tool's own
    outputs are left out of folders), or folders of numbered frames (a film scanner's image
    sequence: reel1/reel1_000001.dpx or .tif …; or a folder of such reels), colorized into
    NAME-colorized/ frame by frame with the same names, format, bit depth and metadata (DPX
    frames keep their film and TV headers: keycode, frame position, timecode); a re-run
    continues after the last frame written.

    Frames stream from ffmpeg through the model in batches (nothing is spilled to disk), a/b
    is smoothed over time (reset at scene cuts), colour is recombined with each frame's own
    full-resolution luminance, and ffmpeg encodes the result with every audio and subtitle
    stream of the source copied bit-exact. Frame rate, frame count, size and SAR are kept.
    Each output is written under a temporary name and renamed when complete.
    """
    from .. import console
    from ..video.ffmpeg import EncodeOptions
    from ..video.config import VideoConfig
    from ..video.film import FilmsStopped, colorize_films
    from ..video.inputs import find_inputs
    from ..weights import WeightsError
    from ..video import report as video_report
    from ..video.smooth import SmoothingConfig

    try:
        found = find_inputs(list(inputs), out, codec)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path, why in found.refused:
        console.error_line(path, why)
    refused = len(found.refused)
    say_left_out(found.left_out.hidden, found.left_out.others_line("films"))
    if found.ours:
        console.info(f"left out {found.ours} film(s) that archivecolor made (colorized outputs of an earlier run)")
    if not found.films and not found.sequences:
        if refused:
            raise SystemExit(1)
        raise click.ClickException("no video files (or folders of numbered frames) found")
    if found.sequences and cluster is not None:
        raise click.ClickException(f"{found.sequences[0][0].folder}: image sequences run on this machine; leave out --cluster")
    films, targets = [film for film, _ in found.films], [target for _, target in found.films]
    reels = [reel.folder for reel, _ in found.sequences]
    hints, orphans = _hints_of_films(hints_path, films + reels, found.names) if hints_path else ({}, [])
    for path, why in orphans:
        console.error_line(path, why)
    refused += len(orphans)
    sequences, sequence_targets = [reel for reel, _ in found.sequences], [target for _, target in found.sequences]
    try:
        spec = model_spec(weights, backend, device, precision, render_size, engine, saturation, hint_reach)
        look = spec.look()
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    config = VideoConfig(batch_size=batch_size, ffmpeg=ffmpeg_path, chunk_frames=chunk_frames or None, sheet=sheet,
                         smoothing=SmoothingConfig(mode=smoothing, strength=smoothing_strength, cut_threshold=cut_threshold),
                         encode=EncodeOptions(codec=codec, crf=crf if codec in ("libx264", "libx265") else None,
                                              preset=preset if codec in ("libx264", "libx265") else None),
                         look=look)
    if dry_run:
        failing = _say_video_plan(films, targets, config, overwrite) if films else 0
        _say_sequence_plan(sequences, sequence_targets, overwrite)
        if failing or refused:
            raise SystemExit(1)
        return
    if cluster is not None:
        if hints:
            check_takes_hints(None, spec)
        if _videos_on_cluster(films, targets, config, spec, overwrite,
                              cluster_config(cluster, cluster_actors, actor_cpus, actor_gpus), report, hints) or refused:
            raise SystemExit(1)
        return
    colorizer = open_colorizer(spec)
    if hints:
        check_takes_hints(colorizer)
    table = _film_table("archivecolor video (temporal figures: per-frame → smoothed, lower is steadier)",
                        ("film", "result", "frames", "frames/s", "cuts", "CDC", "static Δab"), left=("film", "result"))
    made_with = {**colorizer.made_with(), "smoothing": smoothing, "smoothing_strength": smoothing_strength, "cut_threshold": cut_threshold}
    records = []  # the JSON report's entries
    with console.make_progress("frames/s") as progress:
        bars, tracking = [], []

        def tracking_total(n):  # a hinted film's hints are followed through it first: a bar of their own
            tracking.append(progress.add_task(f"{Path(progress.tasks[-1].description).name} (following its hints)", total=n))

        def on_total(n):  # the film is planned (and its hints followed, where it has them): colouring starts
            if tracking and progress.tasks[-1].id == tracking[-1]:  # the pass stops after the last hinted shot: its bar ends full
                progress.update(tracking[-1], total=progress.tasks[-1].completed)
            progress.update(bars[-1], total=n)

        def on_end(outcome):
            if bars and outcome.status == "done":
                progress.update(bars[-1], total=progress.tasks[-1].completed)  # a film of unknown length: its bar ends full
            _say_film(outcome)

        try:
            outcomes = colorize_films(list(zip(films, targets)), colorizer, config, overwrite,
                                      on_start=lambda film: bars.append(progress.add_task(film.name, total=None)),
                                      on_total=on_total,
                                      on_frames=lambda n: progress.advance(bars[-1], n), on_end=on_end, debug=debug, hints=hints,
                                      on_tracking=(tracking_total, lambda n: progress.advance(tracking[-1], n)))
        except FilmsStopped as stopped:
            progress.stop()
            _stop(stopped, report, [video_report.record(o.source, o.target, o.status, o.reason, o.result) for o in stopped.outcomes],
                  made_with)
    for outcome in outcomes:
        records.append(video_report.record(outcome.source, outcome.target, outcome.status, outcome.reason, outcome.result))
        table.add_row(*_film_row(outcome, f"{outcome.result.frames_per_s:.1f}" if outcome.result else ""))
    failed = sum(outcome.status == "failed" for outcome in outcomes)
    for sequence, target in zip(sequences, sequence_targets):
        try:
            failed += _run_sequence(sequence, target, colorizer, config, overwrite, table, records, (preview_fps or 0) if preview else None,
                                    hints.get(sequence.folder))
        except KeyboardInterrupt:
            _stop(f"stopped in {sequence.folder}: the frames written are kept; run the same command to resume", report, records,
                  made_with)
    console.stderr.print(table)
    if report is not None:
        video_report.write(report, records, made_with)
    if failed or refused:
        raise SystemExit(1)


def _hints_of_films(hints_path: Path, films: list, names: dict) -> tuple[dict, list]:
    """video.inputs.hints_of_films, with what --hints cannot be combined with said as usage errors."""
    from ..video.inputs import hints_of_films

    try:
        return hints_of_films(hints_path, films, names)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _say_film(outcome) -> None:
    """The lines a film's end gets, on one machine or a cluster: its failure, or where it went and what to know."""
    from .. import console

    film, result = outcome.source, outcome.result
    if outcome.status == "failed":
        console.error_line(film, outcome.reason)
    if result is None:
        return
    if result.source_bits > 8 and result.output_bits == 8:
        console.info(f"{film}: written 8-bit from a {result.source_bits}-bit source; --codec libx265, prores_ks or ffv1 keep its depth")
    if result.resumed_chunks:
        console.info(f"{film}: {result.resumed_chunks} finished chunks from an earlier run were kept")
    if result.one_pass_reason:
        console.info(f"{film}: done in one pass, not in resumable chunks: {result.one_pass_reason}")
    if result.smoothing_note:
        console.warn(f"{film}: {result.smoothing_note}")
    if result.hints:
        _say_hints(film, result.hints)
    console.info(f"{film} → {outcome.target}" + (f" (sheet: {result.sheet})" if result.sheet else ""))


def _say_hints(name, hints: dict) -> None:
    """'reel.mp4: 3 colour hint(s) in 2 shot(s) (frames 0–99: 2, frames 100–180: 1)'."""
    from .. import console

    held = ", ".join(f"frames {shot['first_frame']}–{shot['last_frame']}: {len(shot['hints'])}" for shot in hints["shots"])
    console.info(f"{name}: {hints['points']} colour hint(s) in {len(hints['shots'])} shot(s) ({held})")


def _film_row(outcome, rate: str) -> tuple:
    """A film's row in the run's table (the rate column is the caller's: frames/s here, chunks on a cluster)."""
    result = outcome.result
    if result is None:
        return (outcome.source.name, "skipped (exists)" if outcome.status == "skipped" else outcome.status, "", rate, "", "", "")
    status = f"done ({result.resumed_chunks} chunks resumed)" if result.resumed_chunks else "done"
    if result.hint_error:
        status = "failed: coloured without its hints"
    elif result.hints:
        status += f", {result.hints['points']} hints"
    if result.source_bits > 8:  # a deep master: say what depth the colour film has
        status += f", {result.output_bits}-bit"
    if result.smoothing_note:
        status += ", not steadier"
    cdc, static = _temporal_cells(result.temporal)
    return (outcome.source.name, status, str(result.frames), rate, str(result.scene_cuts), cdc, static)


def _stop(message, report: Path | None, records: list, made_with: dict | None = None):
    """Ctrl-C: say what is kept and how to go on, write the report so far, exit 130."""
    from .. import console
    from ..video import report as video_report

    if report is not None:
        video_report.write(report, records, made_with)
    console.stderr.print(f"{message}" + (f"; the report so far: {report}" if report is not None else ""), markup=False)
    raise SystemExit(130)


def _temporal_cells(temporal: dict) -> tuple[str, str]:
    """CDC and static Δab, per-frame → smoothed, for the video tables."""
    if not temporal:
        return "", ""
    before, after = temporal["per_frame"], temporal["smoothed"]
    return f"{before['cdc']:.4f} → {after['cdc']:.4f}", f"{before['static_delta_ab']:.2f} → {after['static_delta_ab']:.2f}"


def _sequence_label(sequence) -> str:
    return f"{sequence.folder.name}/ ({len(sequence.frames)} frames)"


def _say_sequence_plan(sequences, targets, overwrite: bool) -> None:
    from .. import console
    from ..video.sequence import frames_to_do, notes

    for sequence, target in zip(sequences, targets):
        done = len(sequence.frames) - len(frames_to_do(sequence, target, overwrite)[1])
        console.info(f"{sequence.folder}: a sequence of {len(sequence.frames)} frames ({sequence.span}), "
                     f"{done} already done → {target}/")
        for note in notes(sequence):
            console.info(note)


def _run_sequence(sequence, target: Path, colorizer, config, overwrite: bool, table, records: list, preview_fps: float | None = None,
                  hints_file: Path | None = None) -> int:
    """One image sequence into `target`, its row in `table`; returns 1 if any frame (or the
    preview film asked for with `preview_fps`, 0 for the reel's own rate, or its hints) failed."""
    from .. import console
    from ..video import report as video_report
    from ..video.sequence import colorize_reel, notes

    for note in notes(sequence):
        console.info(note)
    with console.make_progress("frames/s") as progress:
        bar = progress.add_task(sequence.folder.name, total=None)
        preview_bar = []  # the preview film's bar, added when it starts

        def preview_total(n):
            preview_bar.append(progress.add_task(f"{sequence.folder.name} preview", total=n))

        outcome = colorize_reel(sequence, target, colorizer, config, overwrite, on_frames=lambda n: progress.advance(bar, n),
                                on_total=lambda n: progress.update(bar, total=n), on_error=console.error_line,
                                preview_fps=preview_fps,
                                preview_progress=(preview_total, lambda n: progress.advance(preview_bar[-1], n)),
                                hints_file=hints_file)
    records.append(video_report.record(sequence.folder, target, outcome.status, outcome.reason, outcome.result, kind="image sequence"))
    result = outcome.result
    if result is None:  # stopped, or resumed with other settings
        console.error_line(target, outcome.reason)
        table.add_row(_sequence_label(sequence), outcome.status, "", "", "", "", "")
        return 1
    if result.preview_error is not None:
        from ..video.preview import preview_path

        console.error_line(preview_path(target), result.preview_error)
    cdc, static = _temporal_cells(result.temporal)
    status = "done" if not result.failed else f"{len(result.failed)} frame(s) failed"
    if result.already_done:
        status += f" ({result.already_done} done earlier)"
    if result.hint_error:
        console.error_line(sequence.folder, f"{result.hint_error}; coloured without its hints")
        status += ", failed: coloured without its hints"
    elif result.hints:
        _say_hints(sequence.folder, result.hints)
        status += f", {result.hints['points']} hints"
    if result.smoothing_note:
        status += ", not steadier"
        console.warn(f"{sequence.folder}: {result.smoothing_note}")
    table.add_row(_sequence_label(sequence), status, str(result.frames), f"{result.frames_per_s:.1f}", str(result.scene_cuts), cdc, static)
    extras = [f"sheet: {result.sheet}"] * bool(result.sheet) + [f"preview: {result.preview}"] * bool(result.preview)
    console.info(f"{sequence.folder} → {target}/" + (f" ({', '.join(extras)})" if extras else ""))
    return int(outcome.status != "done")


def _film_table(title: str, columns: tuple, left: tuple):
    """A per-film table: text columns left-aligned, and every column folds rather than cut a film's name."""
    from rich.table import Table

    table = Table(title=title, show_edge=False)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", overflow="fold")
    return table


def _say_video_plan(films, targets, config, overwrite) -> int:
    """The video dry run's table; returns how many films would fail."""
    from .. import console
    from ..video.film import forecast_films

    table = _film_table("dry run: archivecolor video (nothing written)",
                        ("film", "would be", "frames", "length", "size", "picture", "chunks (finished)"), left=("film", "would be", "picture"))
    failing, chunked = 0, False
    for forecast in forecast_films(list(zip(films, targets)), config, overwrite):
        film, plan = forecast.source, forecast.plan
        if forecast.status == "skipped":
            table.add_row(film.name, "skipped (exists)", "", "", "", "", "")
            continue
        if forecast.status == "failed":
            failing += 1
            console.error_line(film, forecast.reason)
            table.add_row(film.name, "failed", "", "", "", "", "")
            continue
        info = plan.info
        height, width = info.display_hw
        seconds = info.frames / info.rate if info.frames else info.duration
        picture = (("black-and-white" if info.is_monochrome else "colour") + (", variable rate" if plan.timestamps else "")
                   + ((", interlaced " + ("TFF" if info.top_field_first else "BFF")) if info.field_order else ""))
        chunks = f"{len(plan.chunks)} ({forecast.finished})" if len(plan.chunks) > 1 else "1"
        if plan.index_copy:  # decoded from a copy of the video stream that the run makes first
            chunks += ", index copy"
        chunked = chunked or len(plan.chunks) > 1
        table.add_row(film.name, "colorized", str(info.frames or "?"), f"{float(seconds):.1f} s" if seconds else "?",
                      f"{width}×{height}", picture, chunks)
    console.stderr.print(table)
    if chunked:  # the dry run reads headers and packets only; the seek check decodes the whole film
        console.info("chunks: a run first checks that seeking to each chunk's start decodes the frames a pass from the "
                     "start gives (one pass at thumbnail size); where it does not, that film goes in one pass")
    return failing


def _videos_on_cluster(films, targets, config, spec, overwrite, cluster, report: Path | None = None, hints: dict | None = None) -> int:
    """The films on a cluster, their table and report; returns how many failed."""
    from .. import console
    from ..cluster import ClusterError
    from ..cluster.video import colorize_films_on_cluster
    from ..video import report as video_report

    spec = checked_for_cluster(spec)
    table = _film_table("archivecolor video on a cluster (temporal figures: per-frame → smoothed, lower is steadier)",
                        ("film", "result", "frames", "chunks", "cuts", "CDC", "static Δab"), left=("film", "result"))
    with console.make_progress("frames/s") as progress:
        bar = progress.add_task("films", total=None)
        try:
            outcomes = colorize_films_on_cluster(list(zip(films, targets)), spec, config,
                                                 cluster, overwrite, on_total=lambda n: progress.update(bar, total=n),
                                                 on_frames=lambda n: progress.advance(bar, n), on_film=_say_film, on_start=say_actor_plan,
                                                 hints=hints)
        except ClusterError as exc:
            raise click.ClickException(str(exc)) from None
    for outcome in outcomes:
        table.add_row(*_film_row(outcome, str(outcome.result.chunks) if outcome.result else ""))
    console.stderr.print(table)
    if report is not None:
        video_report.write(report, [video_report.record(o.source, o.target, o.status, o.reason, o.result) for o in outcomes])
    return sum(outcome.status == "failed" for outcome in outcomes)
