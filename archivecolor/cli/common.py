"""What the commands share: the inference and cluster options, opening the model, one-line notices."""

from __future__ import annotations

from pathlib import Path

import click

# Option headings in every command's --help, in this order; an option named in none of them goes
# under "Other options". A heading a command has no option for is left out.
OPTION_SECTIONS = (
    ("Input and output", ("out", "run_dir", "output_format", "overwrite", "report", "dry_run", "resume", "format", "video_clips",
                          "max_frames", "limit", "max_megapixels", "skip_color", "quality", "codec", "crf", "preset", "preview",
                          "preview_fps", "sheet", "engine_out")),
    ("Look", ("saturation", "hints_dir", "hints_path", "hint_reach", "ab_upsampling", "smoothing", "smoothing_strength", "cut_threshold", "chroma_gain", "render_size")),
    ("Model and speed", ("weights", "backend", "device", "precision", "batch_size", "engine", "jobs", "chunk_frames", "threads",
                         "workers")),
    ("Cluster", ("cluster", "cluster_actors", "actor_cpus", "actor_gpus")),
)


class GroupedCommand(click.Command):
    """A command whose --help puts its options under headings and ends with examples.

    `examples`: (command line, what it does) pairs; `sections`: headings of its own, which come
    before OPTION_SECTIONS (train has its recipe options).
    """

    def __init__(self, *args, examples=(), sections=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.examples = examples
        self.sections = tuple(sections) + OPTION_SECTIONS

    def format_options(self, ctx, formatter):
        records = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        records = {name: record for name, record in records.items() if record is not None}
        placed = set()
        for title, names in self.sections:
            rows = [records[name] for name in names if name in records and name not in placed]
            placed.update(name for name in names if name in records)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [record for name, record in records.items() if name not in placed]
        if rest:
            with formatter.section("Other options"):
                formatter.write_dl(rest)

    def format_epilog(self, ctx, formatter):
        if self.examples:
            with formatter.section("Examples"):
                for line, what in self.examples:
                    formatter.write_text(f"{what}:")
                    with formatter.indentation():
                        formatter.write_text(f"$ {line}")
        super().format_epilog(ctx, formatter)


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
        click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Images per network call. On a GPU raise it (32 at render size 256); at 512 keep it near 8 (see docs/performance.md)"),
        click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="TensorRT engine file (default: the one `archivecolor build-engine` wrote to engines/ for these weights, this GPU and TensorRT)."),
        click.option("--debug", is_flag=True, help="Show full tracebacks."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def saturation_option(command):
    """How strong the colour is, for the commands that write colorized pictures."""
    return click.option("--saturation", type=click.FloatRange(0, 3), default=1.0, show_default=True,
                        help="Scale the predicted colour (a*, b*): below 1 subtler, 0 leaves the pictures grey, above 1 "
                             "stronger. Turning it up makes colour more vivid, not more right.")(command)


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
    from ..cluster import ClusterConfig

    return ClusterConfig(address=cluster, actors=cluster_actors, cpus_per_actor=actor_cpus, gpus_per_actor=actor_gpus)


def say_actor_plan(plan, resources) -> None:
    from .. import console

    gpus = f", {resources['GPU']:g} GPUs" if resources.get("GPU") else ""
    console.info(f"cluster: {resources.get('CPU', 0):g} CPUs{gpus}; {plan.actors} model actor(s) with {plan.cpus:g} CPU"
                 + (f" and {plan.gpus:g} GPU" if plan.gpus else "") + " each")


def model_spec(weights, backend, device, precision, render_size, engine=None, saturation=1.0, hint_reach=None):
    """The runtime options as the one carrier every command passes on (modelspec.ModelSpec)."""
    from ..modelspec import ModelSpec

    spec = ModelSpec(str(weights) if weights else None, backend, device, precision, str(Path(engine).resolve()) if engine else None,
                     render_size, saturation)
    return spec if hint_reach is None else spec.replace(hint_reach=hint_reach)


def hint_reach_option(command):
    """How far a colour hint is carried from the automatic colour, for the commands that take hints."""
    from ..hint_spread import SPREAD_PIXELS

    return click.option("--hint-reach", type=click.FloatRange(0), default=SPREAD_PIXELS, show_default=True, metavar="PIXELS",
                        help="How far a hint's colour is carried over its region from the automatic colour, along even "
                             "luminance and stopped by edges, in pixels at the render size: half strength at about a "
                             "quarter of it, next to nothing beyond it. 0: the hints go to the model instead, which "
                             "carries them only as far as its training taught it.")(command)


def open_colorizer(spec):
    """Open the model a spec names, saying which backend runs it and why; a clear message, not a traceback, when it cannot."""
    from .. import console
    from ..backends import BackendError, bf16_emulated_warning
    from ..weights import WeightsError

    try:
        colorizer, choice = spec.open()
    except (BackendError, WeightsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    console.info(f"backend: {choice.backend.name} ({choice.reason})")
    if getattr(choice.backend, "precision", None) == "bf16" and (slow := bf16_emulated_warning(choice.backend.device.type)):
        console.warn(f"--precision bf16: {slow}")
    return colorizer


def say_left_out(hidden: int, others: str | None = None) -> None:
    from .. import console

    if hidden:
        console.info(f"left out {hidden} hidden or system file(s) (AppleDouble ._ files, @eaDir, __MACOSX, …): not part of the archive")
    if others:
        console.info(others)


def checked_for_cluster(spec):
    """The spec, its weights checked here so that bad ones fail before any cluster starts."""
    from ..weights import WeightsError, read_metadata

    try:
        read_metadata(spec.weights_file())
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    return spec


def check_takes_hints(colorizer, spec=None) -> None:
    """--hints --hint-reach 0 gives the hints to the network, which needs hint channels: say so
    before any work where this one has none (`colorizer` None: a cluster run, whose actors open
    `spec`; its weights' header says). Spreading (any other reach) starts from the automatic
    colour, which every model and engine gives."""
    if (spec.hint_reach if colorizer is None else colorizer.hint_spread):
        return
    if colorizer is None:
        from ..weights import read_config

        name, takes_hints = spec.weights_file(), read_config(spec.weights_file()).hint_channels
    else:
        name, takes_hints = colorizer.backend.name, getattr(colorizer.backend, "hint_channels", 0)
    if not takes_hints:
        raise click.ClickException(f"{name}: this model takes no colour hints, which --hint-reach 0 gives it (the default "
                                   "model does, a TensorRT engine does not: use --backend onnx or torch, or leave "
                                   "--hint-reach at its default)")
