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
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: checkpoint, log.jsonl, samples.png, curves.png and the exported generator land here.")
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
@click.option("--steps-per-epoch", type=click.IntRange(1), default=None, help="Cap each epoch at N batches (more frequent checkpoints on large folders).")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.05, show_default=True, help="Share of images held out for validation.")
@click.option("--max-val", type=click.IntRange(1), default=200, show_default=True, help="At most this many validation images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same data order and initialisation.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast on CPU (about 1.8× faster on CPUs with AVX-512 BF16/AMX). CUDA uses fp16 autocast automatically.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: all cores).")
@click.option("--keep-epochs", is_flag=True, help="Also keep generator-epochNNN.safetensors for every epoch, to pick one by held-out metrics.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def train(data_dir, run_dir, resume, no_progress, **options):
    """Train the cGAN on a folder tree of colour images (jpg/png/webp/tiff/bmp, recursive).

    Near-grey images are skipped and counted; unreadable ones are reported and skipped.
    Every epoch writes a checkpoint, log.jsonl, samples.png (grey | predicted | truth),
    curves.png and generator.safetensors to the run folder. Ctrl-C saves and stops;
    --resume continues. Multi-GPU: torchrun --nproc_per_node N -m archivecolor train ...
    """
    from .train import TrainConfig, train as run_training

    config = TrainConfig(**options)
    try:
        result = run_training(data_dir, run_dir, config, resume=resume, show_progress=not no_progress)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
