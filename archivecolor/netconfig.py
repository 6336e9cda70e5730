"""The networks' configs: frozen, validated, and free of torch, so that reading a weights file's
header (what network it holds, whether it takes hints, its size multiple) costs no torch import."""

from __future__ import annotations

from dataclasses import asdict, dataclass

ENCODERS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")  # encoders.SCALING builds each

UPSAMPLE_MODES = ("transpose", "resize")
NORM_KINDS = ("batch", "instance")
ENCODER_KINDS = ("unet",) + ENCODERS
HINT_CHANNELS = 3  # a and b of the hinted points (network scaling) and a mask that is 1 where a hint is
# How the decoder taps bring the hint planes down to each level: "mean" averages them (a 5-px hint
# fades to a tenth of its colour at stride 16); "normalised" keeps each cell's hint colour whole
# (ab averaged over the hinted pixels only) and marks the cell hinted (the mask's maximum).
HINT_POOLINGS = ("mean", "normalised")
# An encoder generator's decoder levels: "conv", two full 3×3 convolutions (78 % of the network's
# multiply-adds at width 32); "separable", a 1×1 convolution that mixes the skip in, a depthwise
# 3×3 and a 1×1 (about an eighth of the cost: the pretrained encoder carries the meaning).
DECODER_KINDS = ("conv", "separable")
# An encoder generator's output: "regress", ab through a tanh (the design's L1 target, which averages
# plausible colours to brown); "classify", logits over ab bins whose annealed mean is the ab
# (colour_classes: Zhang et al. 2016's remedy for L1 playing it safe).
HEAD_KINDS = ("regress", "classify")
# Bounds a weights file's config must stay within before anything is built: a crafted header
# cannot ask for gigabytes (the largest network trained here is width 64).
MAX_WIDTH, MAX_DEPTH = 256, 8


@dataclass(frozen=True)
class GeneratorConfig:
    width: int = 64  # channels of the first encoder level; the design's 64
    depth: int = 6  # number of stride-2 levels; 6 takes 256² down to the 4×4 bottleneck
    max_width_mult: int = 8  # channels stop growing at width × 8 (the design's 512)
    upsample: str = "transpose"  # "transpose" (ConvT 4×4, the design) or "resize" (nearest ×2 + conv 3×3, against checkerboards)
    norm: str = "batch"  # "batch" (the design) or "instance" (no running statistics to drift from training)
    dropout: float = 0.5  # dropout in the innermost decoder blocks, as in pix2pix
    dropout_blocks: int = 3  # how many of the innermost decoder blocks carry dropout
    # a/b scaled by this after the tanh: 1 for training from scratch; a shipped model may carry
    # the gain it was chosen at (train/ship.py --chroma-gain), so every backend colours alike.
    chroma_gain: float = 1.0
    # "unet" (the design's encoder, from scratch) or a pretrained "efficientnet-lite0|1|2"; with an
    # encoder, `width` is the decoder's width at stride 2 and `depth` is fixed at 5 (strides 2–32)
    encoder: str = "unet"
    hint_channels: int = 0  # 0, or HINT_CHANNELS: colour hints as input beside L
    # With an encoder and hints: the hint planes, averaged down to each decoder level (strides 16
    # to 2), also enter there through a zero-initialised 3×3 convolution, where colour is decided
    # (Zhang et al. 2017 feed them deep too): in the stem alone they barely reach the decoder.
    hint_decoder: bool = False
    hint_pooling: str = "mean"  # with hint_decoder: one of HINT_POOLINGS
    decoder: str = "conv"  # with an encoder: one of DECODER_KINDS
    head: str = "regress"  # with an encoder: one of HEAD_KINDS
    # with head "classify": the annealed mean's temperature (lower: nearer the most likely colour, more
    # vivid); like chroma_gain a shipped model carries the one it was chosen at (train/ship.py --temperature)
    temperature: float = 0.38
    # With an encoder: the stride-32 features averaged over the whole picture, through a small
    # two-layer 1×1 network, added to the bottleneck at every position (Iizuka et al. 2016's global
    # fusion): each pixel's colour can follow the scene (a plane in the sky: the clouds are not leaves).
    global_context: bool = False

    def __post_init__(self):
        if self.encoder not in ENCODER_KINDS:
            raise ValueError(f"encoder must be one of {ENCODER_KINDS}, not {self.encoder!r}")
        if self.hint_channels not in (0, HINT_CHANNELS):
            raise ValueError(f"hint_channels must be 0 or {HINT_CHANNELS}, not {self.hint_channels!r}")
        if self.hint_decoder and (self.encoder == "unet" or not self.hint_channels):
            raise ValueError("hint_decoder needs an encoder generator that takes hints")
        if self.hint_pooling not in HINT_POOLINGS:
            raise ValueError(f"hint_pooling must be one of {HINT_POOLINGS}, not {self.hint_pooling!r}")
        if self.decoder not in DECODER_KINDS:
            raise ValueError(f"decoder must be one of {DECODER_KINDS}, not {self.decoder!r}")
        if self.decoder != "conv" and self.encoder == "unet":
            raise ValueError("decoder kinds are for encoder generators; the design's U-Net has its own")
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {HEAD_KINDS}, not {self.head!r}")
        if self.head != "regress" and self.encoder == "unet":
            raise ValueError("a classifying head is for encoder generators; the design's U-Net regresses ab")
        if self.global_context and self.encoder == "unet":
            raise ValueError("global context is for encoder generators; the design's U-Net has its own bottleneck")
        if not 0.01 <= self.temperature <= 10:
            raise ValueError(f"temperature must be within 0.01–10, not {self.temperature}")
        if self.encoder != "unet" and self.depth != 5:
            raise ValueError(f"an {self.encoder} encoder has depth 5 (strides 2 to 32), not {self.depth}")
        if not (isinstance(self.width, int) and isinstance(self.depth, int) and isinstance(self.max_width_mult, int)):
            raise ValueError("width, depth and max_width_mult must be integers")
        if self.width > MAX_WIDTH or self.depth > MAX_DEPTH or not 1 <= self.max_width_mult <= 16:
            raise ValueError(f"width ≤ {MAX_WIDTH}, depth ≤ {MAX_DEPTH} and max_width_mult 1–16 are the bounds; "
                             f"this asks width {self.width}, depth {self.depth}, max_width_mult {self.max_width_mult}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, not {self.upsample!r}")
        if self.norm not in NORM_KINDS:
            raise ValueError(f"norm must be one of {NORM_KINDS}, not {self.norm!r}")
        if self.width < 1 or self.depth < 2:
            raise ValueError("width must be ≥ 1 and depth ≥ 2")
        if not self.chroma_gain > 0:
            raise ValueError(f"chroma_gain must be > 0, not {self.chroma_gain}")

    @property
    def size_multiple(self) -> int:
        """Height and width of an input must be multiples of this (pixels)."""
        return 2**self.depth  # 32 for an encoder generator (depth 5)

    @property
    def in_channels(self) -> int:
        return 1 + self.hint_channels

    def level_widths(self) -> list[int]:
        """Channels at each encoder level: [64, 128, 256, 512, 512, 512] for the design."""
        return [self.width * min(2**i, self.max_width_mult) for i in range(self.depth)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(frozen=True)
class DiscriminatorConfig:
    width: int = 64  # channels of the first layer; the design's 64
    in_channels: int = 3  # L + ab
