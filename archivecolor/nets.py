"""The Pix2Pix networks: a U-Net generator (L -> ab) and a 70×70 PatchGAN (L, ab -> logits).

Pure nn.Modules built from frozen configs: no I/O, no losses, no training state.
Shapes in comments are for the design's 256² input at width 64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

UPSAMPLE_MODES = ("transpose", "resize")
NORM_KINDS = ("batch", "instance")


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

    def __post_init__(self):
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
        return 2**self.depth

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


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # affine so that it can represent the same functions as BatchNorm; no running statistics
    return nn.InstanceNorm2d(channels, affine=True)


def _up(in_ch: int, out_ch: int, mode: str) -> nn.Module:
    """×2 spatial upsampling; "resize" avoids the uneven overlap of ConvT that makes checkerboards."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False),
    )


class UNetGenerator(nn.Module):
    """L (N, 1, H, W) in [-1, 1] -> ab (N, 2, H, W) in [-1, 1]; H, W multiples of 2**depth."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        widths = config.level_widths()

        # Encoder: Conv 4×4 s2 -> Norm -> LeakyReLU(0.2). The outermost level has no norm,
        # as in pix2pix: normalising the raw L input would discard its absolute brightness.
        self.down = nn.ModuleList()
        in_ch = 1
        for level, out_ch in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False)]
            if level > 0:
                layers.append(_norm(config.norm, out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            in_ch = out_ch

        # Decoder: Up ×2 -> Norm -> Dropout -> ReLU, then concatenation with the encoder
        # level of the same size (skip connection). 4×4×512 -> 8×8×512 (+512 skip) -> ...
        self.up = nn.ModuleList()
        for i, level in enumerate(range(config.depth - 2, -1, -1)):
            out_ch = widths[level]
            layers = [_up(in_ch, out_ch, config.upsample), _norm(config.norm, out_ch)]
            if i < config.dropout_blocks and config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            layers.append(nn.ReLU(inplace=True))
            self.up.append(nn.Sequential(*layers))
            in_ch = out_ch * 2  # after concatenation with the skip

        # Last upsampling to full resolution (256×256×64), then Conv 1×1 -> 2 channels, tanh.
        self.head = nn.Sequential(
            _up(in_ch, widths[0], config.upsample),
            nn.ReLU(inplace=True),
            nn.Conv2d(widths[0], 2, kernel_size=1),
            nn.Tanh(),
        )
        init_weights(self)

    def forward(self, l_net: torch.Tensor) -> torch.Tensor:
        skips = []
        x = l_net
        for block in self.down:
            x = block(x)
            skips.append(x)  # 128², 64², ..., 4² (the bottleneck)
        skips.pop()  # the bottleneck is not concatenated with itself
        for block in self.up:
            x = block(x)
            x = torch.cat([x, skips.pop()], dim=1)
        ab = self.head(x)
        return ab * self.config.chroma_gain if self.config.chroma_gain != 1.0 else ab


class PatchDiscriminator(nn.Module):
    """(L, ab) pair (N, 3, H, W) -> patch logits (N, 1, H/8 - 2, W/8 - 2); 30×30 at 256².

    Each logit sees a 70×70 patch of the input: the design's PatchGAN, without a sigmoid
    (the loss takes logits).
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.config = config
        w = config.width
        self.layers = nn.Sequential(
            nn.Conv2d(config.in_channels, w, 4, stride=2, padding=1),  # 128×128×64
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),  # 64×64×128
            nn.BatchNorm2d(2 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1, bias=False),  # 32×32×256
            nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 4, stride=1, padding=1, bias=False),  # 31×31×512
            nn.BatchNorm2d(8 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * w, 1, 4, stride=1, padding=1),  # 30×30×1 logits
        )
        init_weights(self)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.layers(pair)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
