"""The `archivecolor` command: parse options -> config -> call the library -> exit code.

Heavy imports (torch, cv2) happen inside the commands, so `archivecolor --help` is instant.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="archivecolor")
def main():
    """archivecolor: colorize black-and-white photo and film archives with a Pix2Pix cGAN."""


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder: checkpoint, log.jsonl, samples.png, curves.png and the exported generator land here. "
                   "Default: runs/DATA_DIR-NAME-YYYYmmdd-HHMMSS.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (its saved settings are used; --epochs may extend it).")
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True, help="Training epochs (the design's 100–200).")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True, help="Images per step (the design's 1–4).")
@click.option("--crop", type=click.IntRange(16), default=256, show_default=True, help="Training crop side in pixels; a multiple of 2^depth.")
@click.option("--resize", type=click.IntRange(16), default=None, help="Scale each image to this short side before cropping; use the render size inference will run at.")
@click.option("--l1-weight", type=float, default=100.0, show_default=True, help="λ, weight of the L1 term. Raise it against colour bleeding.")
@click.option("--gan-weight", type=float, default=1.0, show_default=True, help="Weight of the adversarial term; 0 trains on L1 alone.")
@click.option("--l1-only-epochs", type=click.IntRange(0), default=0, show_default=True, help="'NoGAN' pre-training: epochs of L1 alone before the adversarial term starts.")
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam learning rate of the generator (and of D unless --lr-d).")
@click.option("--lr-d", type=float, default=None, help="Discriminator learning rate; lower it if D's loss collapses or oscillates.")
@click.option("--decay-epochs", type=click.IntRange(0), default=0, show_default=True, help="Decay the learning rate linearly to 0 over the last N epochs.")
@click.option("--width", type=click.IntRange(1), default=64, show_default=True, help="Generator width (channels of the first level).")
@click.option("--depth", type=click.IntRange(2), default=6, show_default=True, help="Generator levels (stride-2 steps).")
@click.option("--d-width", type=click.IntRange(1), default=64, show_default=True, help="Discriminator width.")
@click.option("--upsample", type=click.Choice(["transpose", "resize"]), default="transpose", show_default=True,
              help="Decoder upsampling: 'resize' (nearest + conv) is the design's remedy for checkerboard artifacts.")
@click.option("--norm", type=click.Choice(["batch", "instance"]), default="batch", show_default=True,
              help="Normalisation in the generator; 'instance' has no running statistics that can drift from training.")
@click.option("--dropout", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Dropout in the innermost decoder blocks.")
@click.option("--time-limit", "time_limit_minutes", type=click.FloatRange(0, min_open=True), default=None, metavar="MINUTES",
              help="Size the run in time instead: end at the first step after MINUTES of training (validation included, "
                   "earlier sessions of a resumed run counted), with the generator validated and saved; --epochs stays a cap. "
                   "For a scheduler's window, a lent GPU, a night. --resume with a longer limit continues.")
@click.option("--decay-minutes", type=click.FloatRange(0), default=0.0, show_default=True,
              help="With --time-limit: decay the learning rate linearly to 0 over the last N minutes (as --decay-epochs does "
                   "for a run sized in epochs).")
@click.option("--steps-per-epoch", type=click.IntRange(1), default=None, help="Cap each epoch at N batches (more frequent checkpoints on large folders).")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.05, show_default=True, help="Share of images held out for validation.")
@click.option("--max-val", type=click.IntRange(1), default=200, show_default=True, help="At most this many validation images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same data order and initialisation.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast on CPU (about 1.8× faster on CPUs with AVX-512 BF16/AMX; slower elsewhere, where it is emulated: it warns). CUDA uses fp16 autocast automatically.")
@click.option("--log-every", type=click.IntRange(1), default=20, show_default=True, help="Steps between loss lines in log.jsonl.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: all cores).")
@click.option("--init-weights", "init_generator", default=None, metavar="FILE|default",
              help="Start the generator from these weights and fine-tune them (e.g. `default`, the shipped model, on photos like "
                   "your archive's); their network shape replaces --width/--depth/--upsample/--norm. The discriminator starts fresh.")
@click.option("--keep-epochs", is_flag=True, help="Also keep generator-epochNNN.safetensors for every epoch, to pick one by held-out metrics "
                                                  "or to average the last few (`archivecolor average-weights`).")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def train(data_dir, run_dir, resume, no_progress, **options):
    """Train the cGAN on a folder tree of colour images (jpg/png/webp/tiff/bmp/jp2, recursive).

    Near-grey images are skipped and counted; unreadable ones are reported and skipped.
    Every epoch writes a checkpoint, log.jsonl, samples.png (grey | predicted | truth),
    curves.png and generator.safetensors to the run folder. Ctrl-C or SIGTERM (kill, a
    scheduler's time limit) saves and stops; --resume continues. Multi-GPU: torchrun --nproc_per_node N -m archivecolor train ...
    """
    import signal
    import time

    from .train import TrainConfig, train as run_training

    if run_dir is None:
        if resume:
            raise click.UsageError("--resume needs --out naming the run folder to continue")
        run_dir = Path("runs") / f"{data_dir.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
        click.echo(f"run folder: {run_dir}", err=True)
    if options["decay_minutes"] and options["time_limit_minutes"] is None and not resume:
        raise click.UsageError("--decay-minutes counts back from the end of --time-limit: give both")
    config = TrainConfig(**options)
    try:
        result = run_training(data_dir, run_dir, config, resume=resume, show_progress=not no_progress)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.failure:
        raise click.ClickException(result.failure)
    if result.interrupted:
        raise SystemExit(128 + int(result.stop_signal or signal.SIGINT))


def runtime_options(command):
    """Options every inference command shares: which weights, which backend, where."""
    options = [
        click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Generator weights (.safetensors from `archivecolor train`). Default: the model shipped inside archivecolor."),
        click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "tensorrt"]), default="auto", show_default=True,
                     help="Inference engine. auto: the TensorRT engine (else torch fp16) on a CUDA GPU, onnxruntime fp32 on a CPU; it says what it picked."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto", show_default=True,
                     help="torch backend precision. auto: fp16 on CUDA, fp32 on CPU; bf16 is faster on CPUs with AVX-512 BF16/AMX (elsewhere emulated and slower: it warns)."),
        click.option("--render-size", type=click.IntRange(32), default=256, show_default=True,
                     help="Short side (pixels) the network sees. Colour is predicted at this size and upsampled onto the original full-resolution luminance."),
        click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Images per network call."),
        click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="TensorRT engine file (default: the one `archivecolor build-engine` wrote to engines/ for these weights, this GPU and TensorRT)."),
        click.option("--debug", is_flag=True, help="Show full tracebacks."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def cluster_options(command):
    """Options of the commands that can run on a Ray cluster."""
    options = [
        click.option("--cluster", default=None, metavar="auto|local|ADDRESS",
                     help='Run on a Ray cluster (pip install "archivecolor[cluster]"): auto = $RAY_ADDRESS or the cluster '
                          '`ray start` made on this machine, else a new local one; local = a new one on this machine; or '
                          'HOST:PORT / ray://HOST:10001. Every node must see the inputs and outputs under the same paths.'),
        click.option("--cluster-actors", type=click.IntRange(1), default=None,
                     help="Model actors (each holds the model once). Default: one per GPU; on CPUs, as many as half the CPUs hold (all, for video)."),
        click.option("--actor-cpus", type=click.FloatRange(0.1), default=None, help="CPUs per model actor. Default: 1 with a GPU, else up to 4."),
        click.option("--actor-gpus", type=click.FloatRange(0), default=None, help="GPUs per model actor. Default: 1 where the cluster has GPUs, else 0."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def cluster_config(cluster, cluster_actors, actor_cpus, actor_gpus):
    from .cluster import ClusterConfig

    return ClusterConfig(address=cluster, actors=cluster_actors, cpus_per_actor=actor_cpus, gpus_per_actor=actor_gpus)


def say_actor_plan(plan, resources) -> None:
    from . import console

    gpus = f", {resources['GPU']:g} GPUs" if resources.get("GPU") else ""
    console.info(f"cluster: {resources.get('CPU', 0):g} CPUs{gpus}; {plan.actors} model actor(s) with {plan.cpus:g} CPU"
                 + (f" and {plan.gpus:g} GPU" if plan.gpus else "") + " each")


def open_colorizer(weights, backend, device, precision, render_size, engine=None):
    from . import console
    from .backends import BackendError, bf16_emulated_warning, open_backend
    from .colorizer import Colorizer
    from .weights import WeightsError

    try:
        choice = open_backend(backend, weights=weights, device=device, precision=precision, engine=engine)
        colorizer = Colorizer(choice.backend, render_size=render_size)
    except (BackendError, WeightsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    console.info(f"backend: {choice.backend.name} ({choice.reason})")
    if getattr(choice.backend, "precision", None) == "bf16" and (slow := bf16_emulated_warning(choice.backend.device.type)):
        console.warn(f"--precision bf16: {slow}")
    return colorizer


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder; the input tree is mirrored there. Default: SOURCE-colorized beside SOURCE (never inside it); "
                   "for a single picture, its folder's: scans/a.jpg -> scans-colorized/a.jpg.")
@click.option("--format", "output_format", type=click.Choice(["jpeg", "png", "tiff", "webp", "bmp", "jp2"]), default=None,
              help="Output format. Default: each file's own format (16-bit PNG/TIFF/JP2 stay 16-bit; JP2 is written lossless); "
                   "GIF gives PNG, HEIC JPEG, DPX 16-bit TIFF, PGM/PBM PPM.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them, so a re-run resumes).")
@click.option("--skip-color", is_flag=True, help="Leave out inputs that are already in colour (default: colorize them from their luminance).")
@click.option("--ab-upsampling", type=click.Choice(["bilinear", "guided"]), default="bilinear", show_default=True,
              help="How predicted colour is brought to full resolution. guided: edge-aware, follows the luminance edges (against colour bleeding).")
@click.option("--sheet", is_flag=True, help="Also write a before/after sheet of the first images (before-after.jpg in the output folder).")
@click.option("--jobs", type=click.IntRange(1), default=2, show_default=True, help="Decode threads and encode threads (each).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG / WebP quality.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON report here (it is always written to OUT/archivecolor-report.json).")
@click.option("--dry-run", is_flag=True,
              help="Only say what a run would do: files to colorize (and their megapixels), already done, refused, "
                   "unreadable headers. Reads names and headers only; writes nothing, loads no model. Exit code 1 if "
                   "any file would fail.")
@runtime_options
@cluster_options
def folder(source, out, output_format, overwrite, skip_color, ab_upsampling, sheet, jobs, quality, report, dry_run,
           weights, backend, device, precision, render_size, batch_size, engine, debug, cluster, cluster_actors, actor_cpus, actor_gpus):
    """Colorize every image below SOURCE (jpg, png, tiff incl. multi-page, webp, bmp, jp2, pgm/pbm/ppm, gif, heic, dpx),
    or SOURCE itself where it is one picture.

    Sources are never written. Each output is written under a temporary name and renamed when
    complete, so an interrupted run leaves nothing half-written; run the same command again to
    resume. A file that cannot be read is reported on one line and the run goes on; the exit
    code is 1 if any file failed, 0 otherwise.
    """
    from rich.table import Table

    from . import console
    from .folder import FolderConfig, OutputUnwritable, check_output_folder, colorize_folder, default_output_folder
    from .imageio import STILL_EXTENSIONS
    from .weights import atomic_write_bytes

    if out is not None and source.is_file() and out.suffix.lower() in STILL_EXTENSIONS and not out.is_dir():
        raise click.ClickException(f"--out names a folder (the picture keeps its name in it): --out {out.parent / out.stem}/ "
                                   f"would give {out.parent / out.stem / source.name}")
    out = out or default_output_folder(source)
    try:
        config = FolderConfig(render_size=render_size, batch_size=batch_size, output_format=output_format, overwrite=overwrite,
                              skip_color=skip_color, ab_upsampling=ab_upsampling, sheet=sheet, jobs=jobs, quality=quality)
        check_output_folder(source, out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        if _say_folder_plan(source, out, config):
            raise SystemExit(1)
        return
    colorizer = open_colorizer(weights, backend, device, precision, render_size, engine) if cluster is None else None
    progress = console.make_progress("files/s")
    with progress:
        bar = progress.add_task("colorizing", total=None)

        def on_file(result):
            if result.status == "failed":
                console.error_line(result.source, result.reason)
            progress.advance(bar)

        try:
            if cluster is None:
                result = colorize_folder(source, out, colorizer, config, on_file=on_file,
                                         on_total=lambda total: progress.update(bar, total=total))
            else:
                result = _folder_on_cluster(source, out, config, weights, _model_spec(backend, device, precision, engine),
                                            cluster_config(cluster, cluster_actors, actor_cpus, actor_gpus), on_file,
                                            lambda total: progress.update(bar, total=total))
        except click.ClickException:
            raise
        except OutputUnwritable as exc:
            raise click.ClickException(str(exc)) from None
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
    _say_left_out(result.left_out, result.others)
    _hint_film_reels(source, (r.source for r in result.results))
    if report is not None:
        atomic_write_bytes(report, result.to_json().encode())
    if result.failed:
        console.stderr.print(f"{result.failed} file(s) failed; see {out / 'archivecolor-report.json'}", markup=False)
        raise SystemExit(1)


def _say_folder_plan(source, out, config) -> int:
    """The dry run's table; returns how many files would fail."""
    from rich.table import Table

    from . import console
    from .folder import plan_folder

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
    _say_left_out(plan.left_out, plan.others)
    _hint_film_reels(source, [task.rel for task in plan.todo] + [result.source for result in plan.settled])
    return plan.count("failed") + len(plan.unreadable)


def _hint_film_reels(source: Path, relative_files) -> None:
    """`folder` colours each frame of a scanned reel on its own; `video` would smooth them over time."""
    from . import console
    from .video.sequence import film_reels

    root = source if source.is_dir() else source.parent
    reels = film_reels(root / Path(rel).parent for rel in relative_files)
    for reel in reels[:3]:
        console.info(f"hint: {reel.folder} holds {len(reel.frames)} film frames ({reel.span}): `archivecolor video "
                     f"{reel.folder}` colours them as a film, smoothing colour over time against flicker")
    if len(reels) > 3:
        console.info(f"hint: and {len(reels) - 3} more folders of film frames")


def _say_left_out(hidden: int, others: str | None = None) -> None:
    from . import console

    if hidden:
        console.info(f"left out {hidden} hidden or system file(s) (AppleDouble ._ files, @eaDir, __MACOSX, …): not part of the archive")
    if others:
        console.info(others)


def _model_spec(backend, device, precision, engine):
    from .cluster import ModelSpec

    return ModelSpec(backend, device, precision, str(engine.resolve()) if engine else None)


def _cluster_weights(weights):
    """The weights file to ship to the actors, checked here so a bad one fails before any cluster starts."""
    from .weights import WeightsError, read_metadata, resolve_weights

    try:
        weights = resolve_weights(weights)
        read_metadata(weights)
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    return weights


def _temporal_cells(temporal: dict) -> tuple[str, str]:
    """CDC and static Δab, per-frame → smoothed, for the video tables."""
    if not temporal:
        return "", ""
    before, after = temporal["per_frame"], temporal["smoothed"]
    return f"{before['cdc']:.4f} → {after['cdc']:.4f}", f"{before['static_delta_ab']:.2f} → {after['static_delta_ab']:.2f}"


def _folder_on_cluster(source, out, config, weights, model, cluster, on_file, on_total):
    from .cluster import ClusterError
    from .cluster.folder import colorize_folder_on_cluster

    weights = _cluster_weights(weights)
    try:
        return colorize_folder_on_cluster(source, out, weights, model, config, cluster,
                                          on_file=on_file, on_total=on_total, on_start=say_actor_plan)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or folder (several; a folder's tree is mirrored). Default: NAME-colorized.EXT beside "
                   "each input (NAME-colorized.EXT.mkv where EXT cannot hold the codec: .dv, .vob, WebM with x264…).")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--smoothing", type=click.Choice(["none", "ema", "flow"]), default="ema", show_default=True,
              help="Temporal a/b smoothing against flicker: ema (moving average), flow (motion-compensated, slower), none.")
@click.option("--smoothing-strength", type=click.FloatRange(0, 0.99), default=0.7, show_default=True,
              help="Weight of the past frames in the smoothing (0 = none; higher is steadier).")
@click.option("--cut-threshold", type=click.FloatRange(0, 2), default=0.5, show_default=True,
              help="Scene-cut sensitivity: L1 distance between consecutive luminance histograms that resets smoothing.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder: libx264, libx265, prores_ks, ffv1, or any your ffmpeg has.")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True, help="Quality for libx264/libx265 (lower is better).")
@click.option("--preset", default="medium", show_default=True, help="libx264/libx265 speed preset.")
@click.option("--chunk-frames", type=click.IntRange(0), default=3000, show_default=True,
              help="Films longer than 1.5× this many frames are processed in keyframe-aligned chunks that an interrupted run resumes from; 0: one pass.")
@click.option("--sheet", is_flag=True,
              help="Also write a before/after sheet of 12 frames spread over each film (NAME-colorized-sheet.jpg beside its output).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a JSON report here: each film's or reel's result, reason, frames, speed, cuts and temporal figures.")
@click.option("--ffmpeg", "ffmpeg_path", default=None, help="ffmpeg binary (default: $ARCHIVECOLOR_FFMPEG, then ffmpeg on PATH, then the bundled one).")
@click.option("--dry-run", is_flag=True,
              help="Only say what a run would do: each film's frames, length, size, black-and-white or colour, chunks "
                   "(and how many an interrupted run already finished), or why it would be skipped or fail. Reads the "
                   "films' headers and packets only; writes nothing, loads no model. Exit code 1 if any film would fail.")
@runtime_options
@cluster_options
def video(inputs, out, overwrite, smoothing, smoothing_strength, cut_threshold, codec, crf, preset, chunk_frames, sheet, report, ffmpeg_path, dry_run,
          weights, backend, device, precision, render_size, batch_size, engine, debug, cluster, cluster_actors, actor_cpus, actor_gpus):
    """Colorize films: one or more video files, or folders of them (mp4, mov, mkv, avi, mxf, mpg,
    ts, webm, dv, vob, mts, m2ts, wmv, flv, ogv, m2v; hidden and system files and this tool's own
    outputs are left out of folders), or folders of numbered frames (a film scanner's image
    sequence: reel1/reel1_000001.dpx or .tif …; or a folder of such reels), colorized into
    NAME-colorized/ frame by frame with the same names, bit depth and metadata (DPX frames
    become 16-bit TIFF); a re-run continues after the last frame written.

    Frames stream from ffmpeg through the model in batches (nothing is spilled to disk), a/b
    is smoothed over time (reset at scene cuts), colour is recombined with each frame's own
    full-resolution luminance, and ffmpeg encodes the result with every audio and subtitle
    stream of the source copied bit-exact. Frame rate, frame count, size and SAR are kept.
    Each output is written under a temporary name and renamed when complete.
    """
    from . import console
    from .video.ffmpeg import EncodeOptions, VideoError
    from .listing import Listing, archive_files
    from .video.pipeline import VIDEO_EXTENSIONS, VideoConfig, colorize_video, default_output, is_colorized_output, output_suffix
    from .video import report as video_report
    from .video.sequence import find_sequences, reel_of, sequence_output
    from .video.smooth import SmoothingConfig

    films, names, ours = [], [], 0  # names: where each lands under --out (a folder's tree mirrored)
    sequences = []  # folders of numbered frames (a film scanner's image sequence)
    skipped = Listing([])  # hidden and system files, and other kinds of file, over all folders
    frames_named = 0  # single frames of a reel named as films: refused with the reel's command
    for item in inputs:
        if not item.is_dir() and (reel := reel_of(item)):
            console.error_line(item, f"one frame of {reel.folder} ({len(reel.frames)} frames): `archivecolor video "
                                     f"{reel.folder}` colours the reel")
            frames_named += 1
            continue
        if not item.is_dir():  # named by the user: always taken
            films.append(item)
            names.append(Path(item.name))
            continue
        listing = archive_files(item, VIDEO_EXTENSIONS)  # a folder: its films, less this tool's own outputs
        if not listing.files and (found := find_sequences(item)):
            sequences += found
            continue
        skipped.hidden += listing.hidden
        skipped.others += listing.others
        for film in listing.files:
            if is_colorized_output(film):
                ours += 1
            else:
                films.append(film)
                names.append(film.relative_to(item))
    _say_left_out(skipped.hidden, skipped.others_line("films"))
    if ours:
        console.info(f"left out {ours} film(s) that archivecolor made (colorized outputs of an earlier run)")
    if not films and not sequences:
        if frames_named:
            raise SystemExit(1)
        raise click.ClickException("no video files (or folders of numbered frames) found")
    single_file_out = out is not None and len(films) == 1 and not sequences and out.suffix != ""
    if sequences and cluster is not None:
        raise click.ClickException(f"{sequences[0].folder}: image sequences run on this machine; leave out --cluster")
    try:
        sequence_targets = [sequence_output(sequence, out, len(inputs) == 1, len(sequences) == 1) for sequence in sequences]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    config = VideoConfig(batch_size=batch_size, ffmpeg=ffmpeg_path, chunk_frames=chunk_frames or None, sheet=sheet,
                         smoothing=SmoothingConfig(mode=smoothing, strength=smoothing_strength, cut_threshold=cut_threshold),
                         encode=EncodeOptions(codec=codec, crf=crf if codec in ("libx264", "libx265") else None,
                                              preset=preset if codec in ("libx264", "libx265") else None))
    if single_file_out:
        targets = [out]
    elif out is not None:
        targets = [out / name.parent / (name.stem + output_suffix(film, codec)) for film, name in zip(films, names)]
    else:
        targets = [default_output(film, codec) for film in films]
    if dry_run:
        failing = _say_video_plan(films, targets, config, overwrite) if films else 0
        _say_sequence_plan(sequences, sequence_targets, overwrite)
        if failing or frames_named:
            raise SystemExit(1)
        return
    if cluster is not None:
        _videos_on_cluster(films, targets, config, weights, _model_spec(backend, device, precision, engine), render_size, overwrite,
                           cluster_config(cluster, cluster_actors, actor_cpus, actor_gpus), report)
        return
    colorizer = open_colorizer(weights, backend, device, precision, render_size, engine)
    table = _film_table("archivecolor video (temporal figures: per-frame → smoothed, lower is steadier)",
                        ("film", "result", "frames", "frames/s", "cuts", "CDC", "static Δab"), left=("film", "result"))
    failed, records = 0, []  # records: the JSON report's entries
    for film, target in zip(films, targets):
        if target.exists() and not overwrite:
            table.add_row(film.name, "skipped (exists)", "", "", "", "", "")
            records.append(video_report.record(film, target, "skipped", "exists"))
            continue
        try:
            with console.make_progress("frames/s") as progress:
                bar = progress.add_task(film.name, total=None)
                result = colorize_video(film, target, colorizer, config, on_frames=lambda n: progress.advance(bar, n),
                                        on_total=lambda n: progress.update(bar, total=n))
        except Exception as exc:
            if debug and not isinstance(exc, VideoError):
                raise
            failed += 1
            reason = str(exc) if isinstance(exc, VideoError) else f"{type(exc).__name__}: {exc}"
            console.error_line(film, reason)
            table.add_row(film.name, "failed", "", "", "", "", "")
            records.append(video_report.record(film, target, "failed", reason))
            continue
        records.append(video_report.record(film, target, "done", result=result))
        cdc, static = _temporal_cells(result.temporal)
        status = f"done ({result.resumed_chunks} chunks resumed)" if result.resumed_chunks else "done"
        table.add_row(film.name, status, str(result.frames), f"{result.frames_per_s:.1f}", str(result.scene_cuts), cdc, static)
        if result.resumed_chunks:
            console.info(f"{film}: {result.resumed_chunks} finished chunks from an earlier run were kept")
        console.info(f"{film} → {target}" + (f" (sheet: {result.sheet})" if result.sheet else ""))
    for sequence, target in zip(sequences, sequence_targets):
        failed += _run_sequence(sequence, target, colorizer, config, overwrite, table, records)
    console.stderr.print(table)
    if report is not None:
        video_report.write(report, records)
    if failed or frames_named:
        raise SystemExit(1)


def _sequence_label(sequence) -> str:
    return f"{sequence.folder.name}/ ({len(sequence.frames)} frames)"


def _say_sequence_plan(sequences, targets, overwrite: bool) -> None:
    from . import console
    from .video.sequence import frame_target, notes

    for sequence, target in zip(sequences, targets):
        done = 0 if overwrite else sum(frame_target(frame, target)[0].exists() for frame in sequence.frames)
        console.info(f"{sequence.folder}: a sequence of {len(sequence.frames)} frames ({sequence.span}), "
                     f"{done} already done → {target}/")
        for note in notes(sequence):
            console.info(note)


def _run_sequence(sequence, target: Path, colorizer, config, overwrite: bool, table, records: list) -> int:
    """One image sequence into `target`, its row in `table`; returns 1 if any frame failed."""
    from . import console
    from .folder import OutputUnwritable
    from .video import report as video_report
    from .video.sequence import colorize_sequence, notes

    for note in notes(sequence):
        console.info(note)
    try:
        with console.make_progress("frames/s") as progress:
            bar = progress.add_task(sequence.folder.name, total=None)
            result = colorize_sequence(sequence, target, colorizer, config, overwrite, on_frames=lambda n: progress.advance(bar, n),
                                       on_total=lambda n: progress.update(bar, total=n), on_error=console.error_line)
    except OutputUnwritable as exc:
        console.error_line(target, str(exc))
        table.add_row(_sequence_label(sequence), "stopped", "", "", "", "", "")
        records.append(video_report.record(sequence.folder, target, "stopped", str(exc), kind="image sequence"))
        return 1
    records.append(video_report.record(sequence.folder, target, "failed" if result.failed else "done",
                                       f"{len(result.failed)} frame(s) failed" if result.failed else "", result, kind="image sequence"))
    cdc, static = _temporal_cells(result.temporal)
    status = "done" if not result.failed else f"{len(result.failed)} frame(s) failed"
    if result.already_done:
        status += f" ({result.already_done} done earlier)"
    table.add_row(_sequence_label(sequence), status, str(result.frames), f"{result.frames_per_s:.1f}", str(result.scene_cuts), cdc, static)
    console.info(f"{sequence.folder} → {target}/" + (f" (sheet: {result.sheet})" if result.sheet else ""))
    return 1 if result.failed else 0


def _film_table(title: str, columns: tuple, left: tuple):
    """A per-film table: text columns left-aligned, and every column folds rather than cut a film's name."""
    from rich.table import Table

    table = Table(title=title, show_edge=False)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", overflow="fold")
    return table


def _say_video_plan(films, targets, config, overwrite) -> int:
    """The video dry run's table; returns how many films would fail."""
    from . import console
    from .video.ffmpeg import VideoError
    from .video.pipeline import finished_chunks, plan_film

    table = _film_table("dry run: archivecolor video (nothing written)",
                        ("film", "would be", "frames", "length", "size", "picture", "chunks (finished)"), left=("film", "would be", "picture"))
    failing = 0
    for film, target in zip(films, targets):
        if target.exists() and not overwrite:
            table.add_row(film.name, "skipped (exists)", "", "", "", "", "")
            continue
        try:
            plan = plan_film(film, target, config)
        except VideoError as exc:
            failing += 1
            console.error_line(film, str(exc))
            table.add_row(film.name, "failed", "", "", "", "", "")
            continue
        info = plan.info
        height, width = info.display_hw
        seconds = info.frames / info.rate if info.frames else info.duration
        picture = (("black-and-white" if info.is_monochrome else "colour") + (", variable rate" if plan.timestamps else "")
                   + ((", interlaced " + ("TFF" if info.top_field_first else "BFF")) if info.field_order else ""))
        chunks = f"{len(plan.chunks)} ({finished_chunks(film, plan.chunks, target, config.encode)})" if len(plan.chunks) > 1 else "1"
        table.add_row(film.name, "colorized", str(info.frames or "?"), f"{float(seconds):.1f} s" if seconds else "?",
                      f"{width}×{height}", picture, chunks)
    console.stderr.print(table)
    return failing


def _videos_on_cluster(films, targets, config, weights, model, render_size, overwrite, cluster, report: Path | None = None):
    from . import console
    from .cluster import ClusterError
    from .cluster.video import colorize_films_on_cluster

    weights = _cluster_weights(weights)
    table = _film_table("archivecolor video on a cluster (temporal figures: per-frame → smoothed, lower is steadier)",
                        ("film", "result", "frames", "chunks", "cuts", "CDC", "static Δab"), left=("film", "result"))
    with console.make_progress("frames/s") as progress:
        bar = progress.add_task("films", total=None)

        def on_film(outcome):
            if outcome.status == "failed":
                console.error_line(outcome.source, outcome.reason)
            elif outcome.status == "done":
                console.info(f"{outcome.source} → {outcome.target}")

        try:
            outcomes = colorize_films_on_cluster(list(zip(films, targets)), weights, model, render_size, config,
                                                 cluster, overwrite, on_total=lambda n: progress.update(bar, total=n),
                                                 on_frames=lambda n: progress.advance(bar, n), on_film=on_film, on_start=say_actor_plan)
        except ClusterError as exc:
            raise click.ClickException(str(exc)) from None
    for outcome in outcomes:
        cdc, static = _temporal_cells(outcome.temporal)
        status = outcome.status if outcome.status != "skipped" else "skipped (exists)"
        if outcome.resumed_chunks:
            status += f" ({outcome.resumed_chunks} chunks resumed)"
        table.add_row(Path(outcome.source).name, status, str(outcome.frames), str(outcome.chunks), str(outcome.scene_cuts), cdc, static)
    console.stderr.print(table)
    if report is not None:
        from .video import report as video_report

        video_report.write(report, [video_report.cluster_record(outcome) for outcome in outcomes])
    if any(outcome.status == "failed" for outcome in outcomes):
        raise SystemExit(1)


@main.command()
@click.argument("images_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("evaluation"), show_default=True,
              help="Folder for evaluation.json, report.html and sheet.jpg.")
@click.option("--video", "video_clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A colour clip to desaturate and colorize: temporal figures (CDC, static Δab) per-frame vs smoothed vs the truth. Repeatable.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="With --video: only the first N frames of each clip.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate only the first N images.")
@click.option("--fid-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also report FID (model and grey baseline against the originals), with pytorch-fid's Inception weights file "
                   "(pt_inception-2015-12-05-6726825d.pth); it cannot be downloaded at run time.")
@click.option("--study", is_flag=True, help="Also write study.html: a two-alternative forced-choice page (which looks more real?) that saves answers as JSON locally.")
@click.option("--chroma-gain", type=click.FloatRange(0, 4), default=1.0, show_default=True,
              help="Scale the model's a/b by this before scoring. PSNR and CIEDE2000 reward muted colour, so compare two models "
                   "at equal colourfulness: give the more colourful one a gain below 1. Evaluation only; on top of any gain "
                   "the weights carry (train/ship.py --chroma-gain).")
@runtime_options
def evaluate(images_dir, out, video_clips, max_frames, limit, fid_weights, study, chroma_gain, weights, backend, device, precision, render_size, batch_size, engine, debug):
    """Desaturate the colour photos in IMAGES_DIR (or clips, with --video), colorize them, and score against the originals.

    Reports PSNR and SSIM (RGB), mean CIEDE2000 and colourfulness (Hasler & Süsstrunk) of the
    output and of the truth, each beside the grey baseline (a = b = 0) measured in the same run.
    Writes evaluation.json, a self-contained report.html with before/after/truth thumbnails, and
    sheet.jpg: the first photos as grey | colorized | original rows, each with its figures.
    """
    from rich.table import Table

    from . import console
    from .data import find_images
    from .evaluate import FIGURES, evaluate_folder, html_report, sheet_jpeg, study_page
    from .weights import atomic_write_bytes

    if images_dir is None and not video_clips:
        raise click.UsageError("give IMAGES_DIR, --video CLIP, or both")
    colorizer = open_colorizer(weights, backend, device, precision, render_size, engine)
    colorizer.chroma_gain = chroma_gain
    if chroma_gain != 1.0:
        console.info(f"scoring the model's colour scaled by {chroma_gain:g} (--chroma-gain)")
    if video_clips:
        from .evaluate import evaluate_video

        figures = []
        table = Table(title="temporal figures (lower is steadier; the truth is real footage's own floor)", show_edge=False)
        for column in ("clip", "frames", "figure", "per-frame", "smoothed", "truth"):
            table.add_column(column, justify="right" if column not in ("clip", "figure") else "left")
        from .video.ffmpeg import probe

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
        from .fid import load_fid_inception

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
        from .fid import features, frechet_distance

        truth = features(inception, fid_images["truth"])
        result.fid = {"model": frechet_distance(features(inception, fid_images["model"]), truth),
                      "grey": frechet_distance(features(inception, fid_images["grey"]), truth)}
    summary = result.summary()
    table = Table(title=f"{summary['images']} images from {images_dir}", show_edge=False)
    table.add_column("figure")
    table.add_column("model", justify="right")
    table.add_column("grey baseline", justify="right")
    for figure in FIGURES:
        table.add_row(figure, f"{summary['model'][figure]:.3f}", f"{summary['grey'][figure]:.3f}")
    if result.fid:
        table.add_row("FID", f"{result.fid['model']:.2f}", f"{result.fid['grey']:.2f}")
    table.add_row("colourfulness of the truth", f"{summary['truth_colourfulness']:.3f}", "")
    console.stderr.print(table)
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


@main.command("average-weights")
@click.argument("weights", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The averaged generator (.safetensors) to write.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (never one of the inputs).")
def average_weights(weights, out, overwrite):
    """Average the generator weights of several epochs of one run into one file.

    Train with --keep-epochs, then average the last few epochs (e.g. the last 5:
    RUN/generator-epoch01{3..7}.safetensors), as stochastic weight averaging does. On the default
    run the mean was less colourful than its epochs, which PSNR and CIEDE2000 reward by themselves: judge
    it with `archivecolor evaluate --weights OUT` against an epoch scored with --chroma-gain at
    the same colourfulness.
    """
    from .weights import WeightsError, average_generators, save_generator

    if any(out.resolve() == w.resolve() for w in weights):
        raise click.UsageError(f"--out {out} is one of the inputs; archivecolor never overwrites its inputs")
    if out.exists() and not overwrite:
        raise click.UsageError(f"{out} exists; pass --overwrite to replace it")
    try:
        generator = average_generators(list(weights))
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    save_generator(out, generator, info={"averaged": [str(w) for w in weights]})
    click.echo(f"{out}: the mean of {len(weights)} generators", err=True)


@main.command("build-engine")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Generator weights (.safetensors). Default: the model shipped inside archivecolor.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("engines"), show_default=True,
              help="Folder for the ONNX files, the engine, its JSON sidecar and the timing cache.")
@click.option("--render-size", type=click.IntRange(32), default=256, show_default=True, help="Render size the engine is tuned for (its optimal shape).")
@click.option("--opt-batch", type=click.IntRange(1), default=8, show_default=True, help="Batch size the engine is tuned for.")
@click.option("--max-batch", type=click.IntRange(1), default=32, show_default=True, help="Largest batch the engine accepts.")
@click.option("--max-aspect", type=click.FloatRange(1, 8), default=2.75, show_default=True, help="Widest aspect ratio the engine accepts at the render size.")
@click.option("--workspace-gb", type=click.FloatRange(0.25), default=4.0, show_default=True, help="TensorRT builder workspace limit (GiB).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run the built engine on sample inputs and compare with PyTorch fp32 (ΔE2000, max |Δab|); a failed check fails the build.")
def build_engine_command(weights, out, render_size, opt_batch, max_batch, max_aspect, workspace_gb, verify):
    """Export the generator to ONNX and build a TensorRT FP16 engine from it.

    Always writes the fp32 ONNX (dynamic batch, height, width; checked with onnx.checker and
    against PyTorch in onnxruntime), which the `onnx` backend runs, and an FP16 ONNX for
    strongly typed TensorRT. Where TensorRT and a CUDA GPU are present it builds the engine
    with an optimization profile, a reused timing cache and a JSON sidecar (weights hash,
    TensorRT version, GPU, profile, parity). Without them it stops after the ONNX, saying so.
    """
    from . import console
    from .engine import (EngineError, EngineProfile, build_engine, engine_name, export_for_engine, gpu_identity, parity,
                         parity_passes, sample_inputs, sidecar_facts, tensorrt_version, write_sidecar, TIMING_CACHE_NAME)
    from .export import onnx_parity
    from .weights import WeightsError, file_sha256, resolve_weights

    try:
        weights = resolve_weights(weights)
        fp32, fp16, meta = export_for_engine(weights, out)
    except (WeightsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    figures32, figures16 = onnx_parity(weights, fp32), onnx_parity(weights, fp16)
    console.info(f"ONNX fp32: {fp32} (max |Δab| vs PyTorch {figures32['max_abs_ab_lab']:.2e} Lab units over {', '.join(figures32['shapes'])})")
    console.info(f"ONNX fp16: {fp16} (max |Δab| vs PyTorch fp32 {figures16['max_abs_ab_lab']:.3f} Lab units)")
    if figures32["max_abs_ab"] > 1e-4:
        raise click.ClickException(f"the fp32 ONNX disagrees with PyTorch by {figures32['max_abs_ab']:.2e}: export is broken")

    version, gpu = tensorrt_version(), gpu_identity()
    if version is None or gpu is None:
        missing = "TensorRT (pip install \"archivecolor[tensorrt]\")" if version is None else "a CUDA GPU"
        console.warn(f"engine not built: it needs {missing}. The ONNX files above run with --backend onnx.")
        return
    config = __import__("json").loads(meta["generator_config"])
    multiple = 2 ** int(config["depth"])
    profile = EngineProfile.for_render_size(render_size, multiple, opt_batch, max_batch, max_aspect)
    engine_path = out / engine_name(file_sha256(weights), gpu[0], version)
    try:
        build = build_engine(fp32, engine_path, profile, fp16_onnx_path=fp16, workspace_bytes=int(workspace_gb * (1 << 30)),
                             timing_cache=out / TIMING_CACHE_NAME)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    figures = None
    write_sidecar(engine_path, sidecar_facts(weights, profile, gpu, version, build, None))
    if verify:
        from .backends.tensorrt_backend import TensorRTBackend
        from .backends.torch_backend import TorchBackend

        figures = parity(TensorRTBackend(weights, engine_path), TorchBackend(weights, device="cuda", precision="fp32"), sample_inputs(profile))
        if not parity_passes(figures):
            engine_path.unlink(missing_ok=True)
            Path(str(engine_path) + ".json").unlink(missing_ok=True)
            raise click.ClickException(f"engine parity failed: mean ΔE2000 {figures['mean_delta_e2000']:.3f}, max |Δab| {figures['max_abs_ab']:.2f}")
        console.info(f"parity vs PyTorch fp32: mean ΔE2000 {figures['mean_delta_e2000']:.3f}, max |Δab| {figures['max_abs_ab']:.2f} Lab units")
    write_sidecar(engine_path, sidecar_facts(weights, profile, gpu, version, build, figures))
    console.info(f"engine: {engine_path} (TensorRT {version}, {gpu[0]}, built in {build['build_seconds']} s)")


if __name__ == "__main__":
    main()
