"""Pix2Pix training: TrainConfig + train(), readable top to bottom.

One iteration, as the design card has it:
  ab_fake = G(L)
  D step:  ½·[BCE(D(L, ab_real), 1) + BCE(D(L, ab_fake.detach()), 0)]
  G step:  gan_weight·BCE(D(L, ab_fake), 1) + λ·|ab_fake − ab_real|₁
The G step reuses the forward pass of the D step (as the reference pix2pix does): G has not
changed in between, so a second forward would only cost time.

Optional "NoGAN" schedule (DeOldify): the first `l1_only_epochs` train G on λ·L1 alone.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from . import console
from .backends import bf16_emulated_warning
from .data import ColorizationDataset, ScanResult, linked_photo, scan_folder, split_train_val
from .monitor import failure_watch, load_validation, validate, write_curves, write_sample_sheet
from . import colour_classes
from .hints import sample_hints
from .nets import HINT_CHANNELS, DiscriminatorConfig, GeneratorConfig, PatchDiscriminator, build_generator
from .files import atomic_write_bytes
from .run_folder import RunFolder, read_checkpoint, save_checkpoint
from .stopping import Stopped, ignore_sigterm, kill_workers_left_at_exit, signals_stop_at_a_step, stop_workers
from .weights import save_generator

@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100  # the design's 100–200
    batch_size: int = 4  # the design's 1–4
    crop: int = 256  # training crop side, pixels (a multiple of 2**depth)
    resize: int | None = None  # scale images to this short side before cropping (the render size); None keeps them
    resize_max: int | None = None  # with resize: each crop from a random short side in [resize, resize_max] (multi-scale)
    l1_weight: float = 100.0  # λ; the design's remedy for colour bleeding is to raise it
    gan_weight: float = 1.0  # weight of the adversarial term (0 trains G on L1 alone)
    l1_only_epochs: int = 0  # NoGAN pre-training: epochs of L1 alone before the adversarial term starts
    lr: float = 2e-4  # Adam learning rate of G (and of D unless lr_d is set)
    lr_d: float | None = None  # separate D learning rate: the remedy for oscillating or collapsing D
    beta1: float = 0.5
    beta2: float = 0.999
    decay_epochs: int = 0  # linear decay of the learning rate to 0 over the last N epochs (pix2pix's n_epochs_decay)
    width: int = 64  # generator width (the design's 64)
    depth: int = 6  # generator levels (the design's 6)
    d_width: int = 64  # discriminator width (the design's 64)
    upsample: str = "transpose"  # "resize" against checkerboard artifacts
    norm: str = "batch"  # "instance" if BatchNorm's running statistics drift from training
    dropout: float = 0.5
    # "unet": the design's encoder from scratch; "efficientnet-lite0|1|2": a pretrained ImageNet encoder
    # (with it, width is the decoder's width at stride 2 and depth is 5)
    encoder: str = "unet"
    encoder_lr_mult: float = 0.3  # a pretrained encoder fine-tunes at lr × this (below the decoder's)
    # share of batches that carry colour hints drawn from the true colours (hints.sample_hints); above 0
    # the generator takes hint channels beside L. Half or fewer keeps automatic colouring the main skill.
    hint_fraction: float = 0.0
    hint_decoder: bool = False  # with an encoder and hints: hints also into each decoder level (netconfig)
    hint_pooling: str = "normalised"  # how those taps bring the hints down (netconfig.HINT_POOLINGS)
    decoder: str = "conv"  # with an encoder: "conv" or "separable" (netconfig.DECODER_KINDS)
    global_context: bool = False  # with an encoder: the picture's mean deep feature added at the bottleneck (netconfig)
    # on hinted batches, L1 near each hint (within NEAR_HINT_PIXELS) counts 1 + this times more: the
    # whole-crop L1 gives a hint's few pixels almost no pull (lite0-c's taps grew to |w| 0.02 in 45 min)
    hint_loss_weight: float = 0.0
    # with an encoder: "regress" (ab through a tanh, the design's) or "classify" (logits over ab bins,
    # trained by a rebalanced cross-entropy beside λ·L1 on their annealed mean: colour_classes)
    head: str = "regress"
    class_weight: float = 1.0  # with head "classify": weight of the cross-entropy term
    rebalance: float = 0.5  # with head "classify": 0 none, 0.5 Zhang et al.'s; rare colours count more (colour_classes)
    # batches per epoch: under one pass, more frequent checkpoints on large folders; over one pass, the
    # photos again (reshuffled, new crops), so a small folder on a fast GPU is not validated every few seconds
    steps_per_epoch: int | None = None
    val_fraction: float = 0.05  # held-out share of the images
    max_val: int = 200  # at most this many validation images
    # validate on this folder's photos instead of a share held out of DATA_DIR (scenes like the archive's,
    # say, when DATA_DIR is mostly objects); a photo in both is validated and not trained on
    val_dir: str | None = None
    samples: int = 6  # rows in the sample sheet
    seed: int = 0
    workers: int = 2  # data-loading processes
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    bf16: bool = False  # bfloat16 autocast (CPU; on CUDA fp16 autocast is used automatically)
    log_every: int = 20  # steps between loss lines in log.jsonl
    threads: int | None = None  # CPU threads for torch (None: torch's default, all cores)
    keep_epochs: bool = False  # also keep generator-epochNNN.safetensors for every epoch, to choose one by held-out metrics
    init_generator: str | None = None  # start G from these weights ("default": the shipped model) to fine-tune; its shape wins
    # distillation: a trained generator ("default": the shipped model) whose colours G also learns to match, at
    # λ × teacher_weight beside λ·L1 to the truth; G's encoder starts as the teacher's when they share one.
    # How a faster network (a separable decoder, say) is taught what a slower one knows.
    teacher: str | None = None
    teacher_weight: float = 1.0
    # A run sized in time rather than epochs (a scheduler's window, a lent GPU, "overnight"):
    time_limit_minutes: float | None = None  # end at the first step after this much training (validation included; resumes add up)
    decay_minutes: float = 0.0  # with time_limit_minutes: decay the learning rate linearly to 0 over its last N minutes

    def generator_config(self) -> GeneratorConfig:
        depth = self.depth if self.encoder == "unet" else 5  # an encoder has its five strides
        return GeneratorConfig(width=self.width, depth=depth, upsample=self.upsample, norm=self.norm, dropout=self.dropout,
                               encoder=self.encoder, hint_channels=HINT_CHANNELS if self.hint_fraction > 0 else 0,
                               hint_decoder=self.hint_decoder and self.hint_fraction > 0, hint_pooling=self.hint_pooling,
                               decoder=self.decoder if self.encoder != "unet" else "conv",
                               head=self.head if self.encoder != "unet" else "regress",
                               global_context=self.global_context and self.encoder != "unet")

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier for 0-based `epoch`: 1, then linear to 0 over the last decay_epochs."""
        if self.decay_epochs <= 0:
            return 1.0
        start = self.epochs - self.decay_epochs
        return 1.0 - max(0, epoch + 1 - start) / float(self.decay_epochs + 1)

    def time_factor(self, trained_s: float) -> float:
        """Learning-rate multiplier after `trained_s` seconds of training: 1, then linear to 0 over
        the last decay_minutes of the time limit (epochs cannot say when a timed run ends)."""
        if not self.time_limit_minutes or self.decay_minutes <= 0:
            return 1.0
        left_s = self.time_limit_minutes * 60 - trained_s
        return min(1.0, max(0.0, left_s / (self.decay_minutes * 60)))

    def out_of_time(self, trained_s: float) -> bool:
        return self.time_limit_minutes is not None and trained_s >= self.time_limit_minutes * 60

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if "hint_pooling" not in d:  # a run made before normalised pooling averaged its hint taps
            known["hint_pooling"] = "mean"
        return cls(**known)


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """½·(BCE(real, 1) + BCE(fake, 0)) on logits."""
    real = F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
    fake = F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
    return 0.5 * (real + fake)


# The rate, against the decoder's, of branches that start at zero beside trained weights (the decoder's
# hint taps, the global context): at the decoder's own, lite0-c's taps grew only to |w| 0.02 in 45 min.
ZERO_START_LR_MULT = 5.0
NEAR_HINT_PIXELS = 8  # hint_loss_weight's reach around a hint, crop pixels


def near_hint_weights(hints: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel L1 weights (N, 1, H, W): 1 + strength within NEAR_HINT_PIXELS of a hint, 1 elsewhere,
    scaled to mean 1 so the loss keeps its size and the schedule its meaning."""
    near = F.max_pool2d(hints[:, 2:3], 2 * NEAR_HINT_PIXELS + 1, stride=1, padding=NEAR_HINT_PIXELS)
    weights = 1.0 + strength * near
    return weights / weights.mean()


def generator_loss(ab_fake, ab_real, pred_fake, l1_weight: float = 100.0, gan_weight: float = 1.0, weights=None):
    """gan_weight·BCE(fake, 1) + λ·L1; returns (total, gan term, l1 term). pred_fake None: L1 alone.
    `weights` (N, 1, H, W), mean 1: a per-pixel L1 weighting (near_hint_weights)."""
    l1 = F.l1_loss(ab_fake, ab_real) if weights is None else ((ab_fake - ab_real).abs() * weights).mean()
    if pred_fake is None:
        gan = torch.zeros((), device=ab_fake.device)
    else:
        gan = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
    return gan_weight * gan + l1_weight * l1, gan, l1


# --- distributed helpers ---------------------------------------------------------------
@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(name: str, dist: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist.local_rank)
    return device


# --- training ------------------------------------------------------------------------------
@dataclass
class TrainResult:
    epochs_done: int
    interrupted: bool
    best_val_psnr: float | None
    scan: ScanResult
    failure: str | None = None  # why the run stopped early on its own (state saved; --resume continues)
    stop_signal: int | None = None  # SIGINT or SIGTERM, when one stopped the run (state saved)
    out_of_time: bool = False  # ended by time_limit_minutes (validated, exported, resumable with a longer limit)
    speaks: bool = True  # False on the ranks of a DDP run other than 0, which say nothing (rank 0 speaks for all)


FINE_TUNE_HINT_FRACTION = 0.3  # a hint-taking generator fine-tuned without --hint-batches: the shipped recipe's share


def _initial_generator(config: TrainConfig) -> tuple[TrainConfig, dict]:
    """The weights to fine-tune from, and the config with their network shape (width, depth, ...)."""
    from .weights import WeightsError, load_generator, resolve_weights

    try:
        source = resolve_weights(None if config.init_generator == "default" else Path(config.init_generator))
        generator = load_generator(source)
    except WeightsError as exc:
        raise ValueError(f"--init-weights: {exc}") from None
    shape = generator.config
    if config.hint_fraction > 0 and not shape.hint_channels:
        raise ValueError(f"{source}: this generator takes no colour hints, so it cannot be fine-tuned with --hint-batches")
    hint_fraction = config.hint_fraction
    if shape.hint_channels and hint_fraction <= 0:  # its stem takes hint channels: without hint batches it would not fit, and the skill would fade
        hint_fraction = FINE_TUNE_HINT_FRACTION
        console.info(f"{source.name} takes colour hints: fine-tuned with hints on {hint_fraction:.0%} of batches, as the shipped "
                     f"model was trained (--hint-batches changes it)")
    config = replace(config, init_generator=str(source), width=shape.width, depth=shape.depth, upsample=shape.upsample, norm=shape.norm,
                     encoder=shape.encoder, hint_fraction=hint_fraction,  # 0 unless the generator takes hints (checked above)
                     hint_decoder=(config.hint_decoder or shape.hint_decoder) and bool(shape.hint_channels),
                     hint_pooling=shape.hint_pooling if shape.hint_decoder else config.hint_pooling, decoder=shape.decoder,
                     head=shape.head, global_context=config.global_context or shape.global_context)
    if config.generator_config().level_widths() != shape.level_widths():
        raise ValueError(f"{source}: its generator has max_width_mult {shape.max_width_mult}, which `train` cannot build")
    # a shipped model carries the chroma gain it was chosen at; training goes on from the network itself
    return config, generator.state_dict()


def _load_teacher(config: TrainConfig) -> tuple[TrainConfig, torch.nn.Module]:
    """The teacher's network (eval mode, no gradients), and the config naming its file in full (so a resume finds it)."""
    from .weights import WeightsError, load_generator, resolve_weights

    try:
        source = resolve_weights(None if config.teacher == "default" else Path(config.teacher))
        teacher = load_generator(source)
    except WeightsError as exc:
        raise ValueError(f"--teacher: {exc}") from None
    if config.hint_fraction > 0 and teacher.config.hint_channels and teacher.config.hint_channels != HINT_CHANNELS:
        raise ValueError(f"--teacher {source}: it takes {teacher.config.hint_channels} hint channels, not {HINT_CHANNELS}")
    teacher.requires_grad_(False)
    return replace(config, teacher=str(Path(source).resolve())), teacher.eval()


def _shares_encoder(student, teacher) -> bool:
    """Whether the student's encoder can start as the teacher's: the same pretrained network, the same input channels."""
    return (student.config.encoder != "unet" and student.config.encoder == teacher.config.encoder
            and student.config.in_channels == teacher.config.in_channels)


def _generator_optimiser(generator, config: TrainConfig, fast_stem: bool = True) -> torch.optim.Adam:
    """Adam over the generator; a pretrained encoder's parameters in a group of their own at a
    lower rate (each group's `lr_mult` scales the schedule's rate)."""
    encoder = getattr(generator, "encoder", None)
    if encoder is None:
        groups = [{"params": list(generator.parameters()), "lr_mult": 1.0}]
    else:
        # The stem, which holds the hint channels' weights, learns at the decoder's rate: at the
        # encoder's, a 110-minute run left those weights near their zero start (0.005 against the
        # grey channel's 0.96), and the model all but ignored hints (0.05 Lab units nearer a hint).
        fast = {id(encoder._conv_stem.weight)} if generator.config.hint_channels and fast_stem else set()
        slow = [p for p in encoder.parameters() if id(p) not in fast]
        mine = {id(p) for p in slow}
        zero_start = [p for branch in ("hint_taps", "global_context") if getattr(generator, branch, None) is not None
                      for p in getattr(generator, branch).parameters()]
        mine |= {id(p) for p in zero_start}
        groups = [{"params": slow, "lr_mult": config.encoder_lr_mult},
                  {"params": [p for p in generator.parameters() if id(p) not in mine], "lr_mult": 1.0}]
        if zero_start:
            groups.append({"params": zero_start, "lr_mult": ZERO_START_LR_MULT})
    for group in groups:
        group["lr"] = config.lr * group["lr_mult"]
    return torch.optim.Adam(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def _imagenet_start(generator, config: TrainConfig) -> None:
    """A fresh run of an encoder generator starts its encoder from the ImageNet classifier."""
    from .encoders import load_imagenet_state

    keys = load_imagenet_state(generator.encoder)
    if keys["missing"] or keys["unexpected"]:
        raise ValueError(f"the {config.encoder} ImageNet weights do not fit the encoder: missing {keys['missing'][:3]}, "
                         f"unexpected {keys['unexpected'][:3]}")
    console.info(f"encoder: {config.encoder} from its ImageNet weights (lr × {config.encoder_lr_mult:g})")


def _decoder_rate(optimiser) -> float:
    """The rate the schedule sets now (the group at lr × 1: the decoder's)."""
    return next(group["lr"] for group in optimiser.param_groups if group.get("lr_mult", 1.0) == 1.0)


def _set_rates(optimiser, lr: float) -> None:
    for group in optimiser.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def _batch_hints(config: TrainConfig, global_step: int, ab_real: torch.Tensor, to_device):
    """Hints for this batch, or None: a `hint_fraction` share of batches carry hints drawn from the
    truth; which ones, and the hints, follow from (seed, step), so a resumed run draws the same."""
    if config.hint_fraction <= 0:
        return None
    draws = torch.Generator().manual_seed(config.seed * 1_000_003 + global_step)
    if torch.rand((), generator=draws).item() >= config.hint_fraction:
        return None
    return to_device(sample_hints(ab_real.float().cpu(), draws))


PASS_SEED_STRIDE = 1_000_003  # a later pass of an epoch shuffles with seed + epoch + pass × this


def _epoch_order(sampler, epoch: int, n_images: int, count: int) -> list[int]:
    """The epoch's first `count` samples: one reshuffled pass over the images after another.

    A later pass's indices are offset by pass × n_images, so that the dataset gives the same
    image new random crops; the first pass is what it always was, so older runs resume alike.
    """
    order: list[int] = []
    passes = 0
    while len(order) < count:
        sampler.set_epoch(epoch + passes * PASS_SEED_STRIDE)
        order += [index + passes * n_images for index in sampler]
        passes += 1
    return order[:count]


def train(data_dir: Path, run_dir: Path, config: TrainConfig, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train the cGAN on the colour images below `data_dir`; everything lands in `run_dir`."""
    run = RunFolder(run_dir)
    try:
        return _train(data_dir, run, config, resume, show_progress)
    finally:
        run.release()  # a run that stopped on an error frees its folder at once, not when its process ends


def _resumed_config(run: RunFolder, config: TrainConfig) -> tuple[TrainConfig, dict]:
    """A resumed run's saved config, with a longer epoch cap, time limit or decay if given, and its checkpoint."""
    if not run.checkpoint.exists():
        raise FileNotFoundError(f"{run.checkpoint}: nothing to resume (no checkpoint)")
    saved = TrainConfig.from_dict(json.loads(run.config.read_text()))
    config = replace(saved, epochs=max(saved.epochs, config.epochs) if config.epochs != saved.epochs else saved.epochs,
                     # a timed run is continued with a longer limit (and, if given, a new decay)
                     time_limit_minutes=config.time_limit_minutes if config.time_limit_minutes is not None else saved.time_limit_minutes,
                     decay_minutes=config.decay_minutes or saved.decay_minutes)
    return config, read_checkpoint(run.checkpoint)


def _check_crop(config: TrainConfig) -> None:
    """The crop and scale range fit the generator, before anything is written."""
    try:
        multiple = config.generator_config().size_multiple
    except ValueError as exc:
        raise ValueError(f"generator: {exc}") from None
    if config.crop % multiple:
        raise ValueError(f"crop {config.crop} must be a multiple of {multiple} (the generator's size multiple)")
    if config.resize_max is not None and (config.resize is None or config.resize_max < config.resize):
        raise ValueError(f"resize range {config.resize}-{config.resize_max}: give it as SMALLEST-LARGEST short side, e.g. 192-320")


def _photos(data_dir: Path, run: RunFolder, config: TrainConfig, dist: _Dist, show: bool):
    """The scan (once per run, kept with it so a resume sees the same files), the training set and the validation batches."""
    if run.scan.exists():
        scan = ScanResult.from_json(run.scan.read_text())
    else:
        scan = _scan_with_progress(data_dir, show and dist.main)
        if dist.main:
            atomic_write_bytes(run.scan, scan.to_json().encode())
    if dist.main:
        for rel, reason in scan.failed.items():
            console.error_line(data_dir / rel, f"skipped: {reason}")
        console.info(f"{len(scan.usable)} colour images, {len(scan.grey)} near-grey skipped, {len(scan.failed)} unreadable skipped")
    if config.val_dir:
        val_root = Path(config.val_dir)
        train_files, val_files = _split_by_folder(data_dir, scan, val_root, run, config.max_val, show and dist.main, dist.main)
    else:
        val_root = data_dir
        train_files, val_files = split_train_val(scan.usable, config.val_fraction, config.max_val, config.seed, linked_photo(data_dir))
    if len(train_files) < config.batch_size * dist.world:
        raise ValueError(f"{len(train_files)} usable training images: fewer than one batch of {config.batch_size}")
    train_set = ColorizationDataset(data_dir, train_files, config.crop, config.resize, train=True, seed=config.seed,
                                    resize_max=config.resize_max)
    val_set = ColorizationDataset(val_root, val_files, config.crop, config.resize, train=False, resize_max=config.resize_max)
    return scan, train_set, load_validation(val_set, config.batch_size) if dist.main else []


LOSS_NAMES = ("l1", "gan", "d", "d_real", "d_fake", "ce", "teacher_l1")  # what an epoch's log record averages


@dataclass
class _Nets:
    """What a run trains and how: G and D, their optimisers and gradient scalers, the teacher and the
    class loss when the config asks for them, the device and the precision. `step` is one iteration."""

    config: TrainConfig
    device: torch.device
    generator: torch.nn.Module
    discriminator: PatchDiscriminator
    teacher: torch.nn.Module | None
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    channels_last: bool
    class_loss: colour_classes.ClassLoss | None
    world: int = 1
    g_model: torch.nn.Module | None = None  # G as the step calls it: G itself, or its DDP wrapper
    d_model: torch.nn.Module | None = None

    def __post_init__(self):
        self.g_model, self.d_model = self.generator, self.discriminator

    def wrap_for_ddp(self) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.g_model = DDP(self.generator, device_ids=ids)
        self.d_model = DDP(self.discriminator, device_ids=ids)

    def autocast(self):
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def step(self, l_net: torch.Tensor, ab_real: torch.Tensor, hints: torch.Tensor | None, adversarial: bool) -> dict[str, float]:
        """One iteration on a batch (the module docstring's); its losses by LOSS_NAMES."""
        config, classify = self.config, self.class_loss is not None
        with self.autocast():
            if classify:
                ab_fake, logits = self.g_model(l_net, hints, with_logits=True)
            else:
                ab_fake = self.g_model(l_net) if hints is None else self.g_model(l_net, hints)
        losses = {}
        pred_fake = None
        if adversarial:
            # D step on (L, ab_real) vs (L, ab_fake.detach())
            with self.autocast():
                pred_real = self.d_model(torch.cat([l_net, ab_real], 1))
                pred_fake_d = self.d_model(torch.cat([l_net, ab_fake.detach()], 1))
                loss_d = discriminator_loss(pred_real.float(), pred_fake_d.float())
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            # G step through a D whose weights need no gradient (DDP needs them kept)
            if self.world == 1:
                self.discriminator.requires_grad_(False)
            with self.autocast():
                pred_fake = self.d_model(torch.cat([l_net, ab_fake], 1))
        weights = near_hint_weights(hints, config.hint_loss_weight) if hints is not None and config.hint_loss_weight > 0 else None
        loss_g, gan, l1 = generator_loss(
            ab_fake.float(), ab_real, None if pred_fake is None else pred_fake.float(), config.l1_weight, config.gan_weight, weights
        )
        if classify:
            ce = self.class_loss(logits, ab_real)
            loss_g = loss_g + config.class_weight * ce
            losses["ce"] = ce.item()
        if self.teacher is not None and (hints is None or self.teacher.config.hint_channels):
            # on hinted batches a teacher that takes no hints would pull G away from them: skipped
            with torch.no_grad(), self.autocast():
                ab_teacher = self.teacher(l_net, hints)
            to_teacher = F.l1_loss(ab_fake.float(), ab_teacher.float())
            loss_g = loss_g + config.l1_weight * config.teacher_weight * to_teacher
            losses["teacher_l1"] = to_teacher.item()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if adversarial and self.world == 1:
            self.discriminator.requires_grad_(True)
        losses["l1"], losses["gan"] = l1.item(), gan.item()
        if adversarial:
            losses["d"] = loss_d.item()
            losses["d_real"] = torch.sigmoid(pred_real.float()).mean().item()
            losses["d_fake"] = torch.sigmoid(pred_fake_d.float()).mean().item()
        return losses

    def state(self, epoch: int, step: int, global_step: int, best_psnr: float | None, trained_seconds: float) -> dict:
        """Everything a resume needs to go on as if never stopped (the checkpoint)."""
        s = {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "epoch": epoch,
            "step": step,
            "global_step": global_step,
            "best_val_psnr": best_psnr,
            "trained_seconds": trained_seconds,
            "rng_cpu": torch.get_rng_state(),
            "colour_counts": self.class_loss.counts if self.class_loss is not None else None,
        }
        if self.device.type == "cuda":
            s["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return s

    def restore(self, checkpoint: dict) -> None:
        """The networks, optimisers, scalers, colour counts and random state as `state` saved them."""
        self.generator.load_state_dict(checkpoint["generator"])
        self.discriminator.load_state_dict(checkpoint["discriminator"])
        try:
            self.opt_g.load_state_dict(checkpoint["opt_g"])
        except ValueError:  # a run started before the stem had the decoder's rate: its groups as they were
            self.opt_g = _generator_optimiser(self.generator, self.config, fast_stem=False)
            self.opt_g.load_state_dict(checkpoint["opt_g"])
        self.opt_d.load_state_dict(checkpoint["opt_d"])
        self.scaler_g.load_state_dict(checkpoint["scaler_g"])
        self.scaler_d.load_state_dict(checkpoint["scaler_d"])
        if self.class_loss is not None and checkpoint.get("colour_counts") is not None:
            self.class_loss.counts = checkpoint["colour_counts"]
        torch.set_rng_state(checkpoint["rng_cpu"])
        if self.device.type == "cuda" and "rng_cuda" in checkpoint:
            torch.cuda.set_rng_state(checkpoint["rng_cuda"], self.device)


def _build_nets(config: TrainConfig, device: torch.device, dist: _Dist, init_state: dict | None, teacher, fresh: bool) -> _Nets:
    """G (from the seed, then the given weights, the teacher's encoder or ImageNet's), D and their optimisers."""
    torch.manual_seed(config.seed)
    generator = build_generator(config.generator_config())
    if init_state is not None:  # a generator without decoder hint taps or global context gains them, zero: it starts as it was
        missing, unexpected = generator.load_state_dict(init_state, strict=False)
        if unexpected or any(not key.startswith(("hint_taps.", "global_context.")) for key in missing):
            raise ValueError(f"--init-weights: the weights do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})")
    elif fresh and teacher is not None and _shares_encoder(generator, teacher):
        generator.encoder.load_state_dict(teacher.encoder.state_dict())
        console.info(f"encoder: {config.encoder} from the teacher {Path(config.teacher).name} (lr × {config.encoder_lr_mult:g})")
    elif config.encoder != "unet" and fresh:
        _imagenet_start(generator, config)
    generator = generator.to(device)
    if teacher is not None:
        teacher = teacher.to(device)
    discriminator = PatchDiscriminator(DiscriminatorConfig(width=config.d_width)).to(device)
    channels_last = device.type == "cuda" or config.bf16
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
        teacher = teacher.to(memory_format=torch.channels_last) if teacher is not None else None
    opt_g = _generator_optimiser(generator, config)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d or config.lr, betas=(config.beta1, config.beta2))
    amp_dtype = torch.float16 if device.type == "cuda" else (torch.bfloat16 if config.bf16 else None)
    if amp_dtype == torch.bfloat16 and dist.main and (slow := bf16_emulated_warning(device.type)):
        console.warn(f"--bf16: {slow}")
    fp16 = amp_dtype == torch.float16
    classify = config.generator_config().head == "classify"
    return _Nets(config, device, generator, discriminator, teacher, opt_g, opt_d,
                 torch.amp.GradScaler("cuda", enabled=fp16), torch.amp.GradScaler("cuda", enabled=fp16), amp_dtype, channels_last,
                 colour_classes.ClassLoss(colour_classes.bin_centres().to(device), config.rebalance) if classify else None,
                 world=dist.world)


class _TrainingClock:
    """Seconds of training in this run: earlier processes' (from the checkpoint) and this one's since its loop began."""

    def __init__(self, before: float, dist: _Dist, device: torch.device, timed: bool):
        self.before, self.dist, self.device, self.timed = before, dist, device, timed
        self.started = time.perf_counter()

    def here(self) -> float:
        return self.before + time.perf_counter() - self.started

    def shared(self) -> float:
        """Under DDP rank 0's clock (every rank calls this together), so that every rank stops at the same
        step with the same learning rate."""
        seconds = self.here()
        if self.dist.world > 1 and self.timed:
            clock = torch.tensor([seconds], dtype=torch.float64, device=self.device)
            torch.distributed.broadcast(clock, src=0)
            seconds = clock.item()
        return seconds


def _epoch_loader(train_set, order: list[int], config: TrainConfig, epoch: int, device: torch.device) -> DataLoader:
    loader = DataLoader(
        train_set, batch_size=config.batch_size, sampler=order, num_workers=config.workers,
        drop_last=True, pin_memory=device.type == "cuda", persistent_workers=False, worker_init_fn=ignore_sigterm,
        # its own generator: a loader drawing its workers' seed from the global RNG would
        # shift the dropout masks of a run resumed mid-epoch (it makes one loader more)
        generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch),
    )
    if config.workers:
        kill_workers_left_at_exit()
    return loader


def _loader_batches(batches):
    """The loader's batches. A worker killed while handing over a batch (the OOM killer, say) can
    surface as ConnectionResetError or EOFError instead of torch's "DataLoader worker ... exited"
    RuntimeError: the pipe closes before the worker is seen dead (seen once, with the cores busy).
    Both are the same failure, so both become the RuntimeError the training loop saves and stops on."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (ConnectionError, EOFError) as exc:
            raise RuntimeError(f"DataLoader worker lost while sending a batch: {exc!r}") from exc
        yield batch


def _running_losses(sums: dict[str, float], n_steps: int, classify: bool, adversarial: bool) -> str:
    """The progress bar's losses: the epoch's means so far."""
    return (f"L1 {sums['l1'] / n_steps:.4f}" + (f" CE {sums['ce'] / n_steps:.3f}" if classify else "")
            + (f" GAN {sums['gan'] / n_steps:.3f} D {sums['d'] / n_steps:.3f}" if adversarial else ""))


def _end_epoch(run: RunFolder, nets: _Nets, config: TrainConfig, val_batches, record: dict, timing: dict, adversarial: bool,
               best_psnr: float | None, checkpoint_at) -> float:
    """Validate, log, export the generator (and the best so far, and the epoch's with keep_epochs), save the
    checkpoint (`checkpoint_at(best_psnr)`), draw the sheets; returns the best validation PSNR now."""
    generator, epoch = nets.generator, record["epoch"]
    clock = time.perf_counter()
    val = validate(generator, val_batches, nets.device, nets.amp_dtype, nets.channels_last)
    timing["validate_s"] = time.perf_counter() - clock
    record["val"] = val
    warnings = failure_watch(record, adversarial)
    record["warnings"] = warnings
    for w in warnings:
        console.warn(w)
    run.append_log(record)
    clock = time.perf_counter()
    save_generator(run.generator, generator, info={"epoch": epoch, "val": val})
    if config.keep_epochs:
        save_generator(run.path / f"generator-epoch{epoch:03d}.safetensors", generator, info={"epoch": epoch, "val": val})
    if best_psnr is None or val["psnr"] > best_psnr:
        best_psnr = val["psnr"]
        save_generator(run.best, generator, info={"epoch": epoch, "val": val})
    save_checkpoint(run, checkpoint_at(best_psnr))
    timing["save_s"], clock = time.perf_counter() - clock, time.perf_counter()
    write_sample_sheet(run.samples, generator, val_batches, config.samples, nets.device)
    write_curves(run.curves, run.read_log())
    timing["sheets_s"] = time.perf_counter() - clock
    run.append_log(timing)  # where an epoch's time went, to find what starves a fast GPU
    console.info(
        f"epoch {epoch}: L1 {record['l1']:.4f}"
        + (f", D {record['d']:.3f}" if adversarial else "")
        + f", {record['images_per_s']:.1f} images/s; val PSNR {val['psnr']:.2f} dB (grey {val['grey_psnr']:.2f}),"
        f" SSIM {val['ssim']:.3f}, colourfulness {val['colourfulness']:.1f} (truth {val['truth_colourfulness']:.1f})"
    )
    return best_psnr


def _train(data_dir: Path, run: RunFolder, config: TrainConfig, resume: bool, show_progress: bool) -> TrainResult:
    device_kind = "cuda" if (config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())) else "cpu"
    dist = _init_distributed(device_kind)
    device = _pick_device(config.device, dist)
    if config.threads:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # one crop shape all run: let cuDNN time its convolution kernels once

    if dist.main:
        run.hold()
    config, checkpoint = _resumed_config(run, config) if resume else (config, None)
    init_state = None
    if config.init_generator and checkpoint is None:
        config, init_state = _initial_generator(config)
    teacher = None
    if config.teacher:
        config, teacher = _load_teacher(config)
    _check_crop(config)
    if dist.main:
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run.config, json.dumps(asdict(config), indent=1).encode())

    scan, train_set, val_batches = _photos(Path(data_dir), run, config, dist, show_progress)
    nets = _build_nets(config, device, dist, init_state, teacher, fresh=checkpoint is None)
    classify = nets.class_loss is not None
    start_epoch, start_step, global_step, best_psnr = 0, 0, 0, None
    trained_before = 0.0  # seconds of training in earlier processes of this run (time_limit_minutes counts them)
    if checkpoint is not None:
        nets.restore(checkpoint)
        start_epoch, start_step = checkpoint["epoch"], checkpoint["step"]
        global_step, best_psnr = checkpoint["global_step"], checkpoint.get("best_val_psnr")
        trained_before = checkpoint.get("trained_seconds", 0.0)
        if dist.main:
            console.info(f"resuming at epoch {start_epoch + 1}, step {start_step}")
    if dist.world > 1:
        nets.wrap_for_ddp()
    clock = _TrainingClock(trained_before, dist, device, timed=config.time_limit_minutes is not None)

    def state(epoch: int, step: int, best: float | None = None) -> dict:
        return nets.state(epoch, step, global_step, best_psnr if best is None else best, clock.here())

    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(train_set, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=config.seed, drop_last=True)
    steps_per_epoch = config.steps_per_epoch or len(sampler) // config.batch_size

    interrupted, failure, stop_signal, out_of_time = False, None, None, False
    epoch = start_epoch
    progress = console.make_progress("images/s", extra="{task.fields[losses]}", disable=not (show_progress and dist.main))
    with progress, signals_stop_at_a_step(enabled=dist.world == 1) as stop_requested:
        for epoch in range(start_epoch, config.epochs):
            epoch_started_s = clock.shared()
            if config.out_of_time(epoch_started_s):  # the limit passed while the last epoch was validated and saved
                out_of_time = True
                break
            adversarial = config.gan_weight > 0 and epoch >= config.l1_only_epochs
            lr_g = config.lr * config.lr_factor(epoch)
            lr_d = (config.lr_d or config.lr) * config.lr_factor(epoch)
            _set_rates(nets.opt_g, lr_g)
            _set_rates(nets.opt_d, lr_d)

            # The epoch's sample order is fixed by (seed, epoch); a resume skips the batches done.
            train_set.epoch = epoch
            skip = start_step if epoch == start_epoch else 0
            order = _epoch_order(sampler, epoch, len(train_set), steps_per_epoch * config.batch_size)[skip * config.batch_size :]
            loader = _epoch_loader(train_set, order, config, epoch, device)
            batches = None
            phase = "GAN" if adversarial else "L1"
            if config.time_limit_minutes is not None:  # a timed run's epoch count says nothing; the time left does
                label = f"epoch {epoch + 1} {phase}, {max(0.0, config.time_limit_minutes - epoch_started_s / 60):.0f} min left"
            else:
                label = f"epoch {epoch + 1}/{config.epochs} {phase}"
            task = progress.add_task(label, total=steps_per_epoch * config.batch_size * dist.world, completed=skip * config.batch_size * dist.world, losses="")
            sums = dict.fromkeys(LOSS_NAMES, 0.0)
            n_steps, t0, step, first_batch_s = 0, time.perf_counter(), skip, None
            nets.generator.train()
            nets.discriminator.train()
            try:
                batches = iter(loader)
                for l_net, ab_real in _loader_batches(batches):
                    if first_batch_s is None:
                        first_batch_s = time.perf_counter() - t0
                    if stop_requested.is_set():
                        raise Stopped(stop_requested.signum)
                    if config.time_limit_minutes is not None:
                        if config.out_of_time(now := clock.shared()):
                            out_of_time = True
                            break
                        for optimiser, lr in ((nets.opt_g, lr_g), (nets.opt_d, lr_d)):
                            _set_rates(optimiser, lr * config.time_factor(now))
                    l_net, ab_real = nets.to_device(l_net), nets.to_device(ab_real)
                    hints = _batch_hints(config, global_step, ab_real, nets.to_device)
                    losses = nets.step(l_net, ab_real, hints, adversarial)
                    step += 1
                    n_steps += 1
                    global_step += 1
                    for name, value in losses.items():
                        sums[name] += value
                    progress.update(task, advance=config.batch_size * dist.world, losses=_running_losses(sums, n_steps, classify, adversarial))
                    if dist.main and global_step % config.log_every == 0:
                        run.append_log({"kind": "step", "epoch": epoch, "step": step, "global_step": global_step,
                                        "l1": losses["l1"], "gan": losses["gan"], "d": losses.get("d"),
                                        **({"ce": losses["ce"]} if classify else {})})
            except KeyboardInterrupt as exc:
                interrupted, stop_signal = True, getattr(exc, "signum", signal.SIGINT)
                whole = isinstance(exc, Stopped) or not stop_requested.handles_sigint
                if dist.main and whole:
                    save_checkpoint(run, state(epoch, step))
                    console.info(f"interrupted: saved at epoch {epoch + 1}, step {step}; continue with --resume")
                elif dist.main:  # a second Ctrl-C, mid-step: the state is not whole, the last checkpoint stands
                    console.info("stopped at once (a second Ctrl-C), not saved: --resume continues from the last checkpoint")
                break
            except RuntimeError as exc:  # a data-loading worker killed on its own (the OOM killer, say)
                if "DataLoader worker" not in str(exc):
                    raise
                interrupted = True
                failure = f"a data-loading worker died ({exc}); saved at epoch {epoch + 1}, step {step}: continue with --resume"
                if dist.main:
                    save_checkpoint(run, state(epoch, step))
                break
            finally:
                progress.remove_task(task)
                stop_workers(batches)
                batches = None
            if out_of_time and n_steps == 0:  # out of time before this epoch's first step: the last save stands
                break

            elapsed = time.perf_counter() - t0
            record = {
                "kind": "epoch", "epoch": epoch + 1, "phase": phase, "lr": _decoder_rate(nets.opt_g), "steps": n_steps,
                "images_per_s": n_steps * config.batch_size * dist.world / max(elapsed, 1e-9),
                **{k: v / max(n_steps, 1) for k, v in sums.items()},
            }
            if out_of_time:
                record["out_of_time"] = True  # a partial epoch: the time limit ended the run at this step
            if dist.main:
                timing = {"kind": "timing", "epoch": epoch + 1, "steps_s": elapsed, "first_batch_s": first_batch_s}
                saved_at = (epoch, step) if out_of_time else (epoch + 1, 0)
                best_psnr = _end_epoch(run, nets, config, val_batches, record, timing, adversarial, best_psnr,
                                       lambda best: state(*saved_at, best))
            if dist.world > 1:
                torch.distributed.barrier()
            if out_of_time:
                break
    if out_of_time and dist.main:
        console.info(f"time limit ({config.time_limit_minutes:g} min) reached after {global_step} steps: the generator is "
                     "validated and saved; --resume with a longer --time-limit continues")

    epochs_done = epoch if interrupted or out_of_time else config.epochs
    if dist.world > 1:
        # DDP's reducers hold the process group, and their modules sit in reference cycles: left to the
        # interpreter's teardown, gloo's threads were once destroyed unjoined there (SIGABRT after a
        # finished run). Free them, then the group, while everything is still alive.
        nets.g_model = nets.d_model = None
        gc.collect()
        torch.distributed.destroy_process_group()
    return TrainResult(epochs_done=epochs_done, interrupted=interrupted, best_val_psnr=best_psnr, scan=scan, failure=failure,
                       stop_signal=stop_signal, out_of_time=out_of_time, speaks=dist.main)


def validation_photos(usable: list[str], max_val: int) -> list[str]:
    """At most `max_val` of a validation folder's photos, evenly spaced over its sorted list (every section of it)."""
    usable = sorted(usable)
    if len(usable) <= max_val:
        return usable
    return [usable[i * len(usable) // max_val] for i in range(max_val)]


def _split_by_folder(data_dir: Path, scan: ScanResult, val_root: Path, run: RunFolder, max_val: int, show: bool,
                     main: bool) -> tuple[list[str], list[str]]:
    """--val-dir: every photo of DATA_DIR trains except one that is also a validation photo (the same file, or a link to it)."""
    if run.val_scan.exists():
        val_scan = ScanResult.from_json(run.val_scan.read_text())
    else:
        val_scan = _scan_with_progress(val_root, show)
        if main:
            atomic_write_bytes(run.val_scan, val_scan.to_json().encode())
    val_files = validation_photos(val_scan.usable, max_val)
    if not val_files:
        raise ValueError(f"--val-dir {val_root}: no colour photos to validate on")
    held = {(val_root / name).resolve() for name in val_files}
    train_files = [name for name in scan.usable if (data_dir / name).resolve() not in held]
    if main:
        for rel, reason in val_scan.failed.items():
            console.error_line(val_root / rel, f"skipped: {reason}")
        also = len(scan.usable) - len(train_files)
        console.info(f"{len(val_files)} validation photos from {val_root}" + (f"; {also} of them also in DATA_DIR, not trained on" if also else ""))
    return train_files, val_files


def _scan_with_progress(data_dir: Path, show: bool) -> ScanResult:
    from .data import find_images

    total = len(find_images(data_dir))
    progress = console.make_progress("images/s", disable=not show)
    with progress:
        task = progress.add_task("scanning", total=total)
        return scan_folder(data_dir, progress=lambda: progress.advance(task))
