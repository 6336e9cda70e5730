"""The Pix2Pix networks: U-Net generators (L -> ab) and a 70×70 PatchGAN (L, ab -> logits).

Two generators, one config: the design's own U-Net (`encoder="unet"`), and a U-Net whose encoder
is a pretrained EfficientNet-Lite (`encoder="efficientnet-lite0"` …), which is how colorizers get
their sense of what things are. Either may take colour hints beside L (`hint_channels=3`: a/b of
the hinted points and their mask; zeros when there are none). Pure nn.Modules built from frozen
configs: no I/O, no losses, no training state. Shapes in comments are for a 256² input.
"""

from __future__ import annotations

import torch
from torch import nn

from . import colour_classes
from .encoders import EfficientNetLiteEncoder
from .netconfig import (ENCODER_KINDS, HINT_CHANNELS, MAX_DEPTH, MAX_WIDTH, NORM_KINDS, UPSAMPLE_MODES,  # noqa: F401 (their home before)
                        DiscriminatorConfig, GeneratorConfig)

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
        in_ch = config.in_channels
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

    def forward(self, l_net: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        x = with_hints(l_net, hints, self.config.hint_channels)
        for block in self.down:
            x = block(x)
            skips.append(x)  # 128², 64², ..., 4² (the bottleneck)
        skips.pop()  # the bottleneck is not concatenated with itself
        for block in self.up:
            x = block(x)
            x = torch.cat([x, skips.pop()], dim=1)
        ab = self.head(x)
        return ab * self.config.chroma_gain if self.config.chroma_gain != 1.0 else ab


def with_hints(l_net: torch.Tensor, hints: torch.Tensor | None, hint_channels: int) -> torch.Tensor:
    """L (N, 1, H, W), with the hint planes (N, 3, H, W) beside it when the network takes them (zeros: no hints)."""
    if not hint_channels:
        if hints is not None:
            raise ValueError("this generator was not trained with colour hints")
        return l_net
    if hints is None:
        n, _, h, w = l_net.shape
        hints = l_net.new_zeros((n, hint_channels, h, w))
    return torch.cat([l_net, hints.to(l_net.dtype)], dim=1)


class _ResizeConv(nn.Module):
    """Decoder level: nearest ×2 (no checkerboards), concatenation with the skip, then two 3×3
    conv-BN-ReLU; or, `separable`, at an eighth of the cost: 1×1 (mixes the skip in), depthwise
    3×3 (the neighbourhood), 1×1, each followed by BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, separable: bool = False):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        if separable:
            convs = [nn.Conv2d(in_ch + skip_ch, out_ch, 1, bias=False),
                     nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch, bias=False),
                     nn.Conv2d(out_ch, out_ch, 1, bias=False)]
        else:
            convs = [nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1, bias=False),
                     nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)]
        self.convs = nn.Sequential(*[layer for conv in convs for layer in (conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))])

    def forward(self, x, skip):
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class EncoderUNetGenerator(nn.Module):
    """L (+ hints) (N, 1|4, H, W) -> ab (N, 2, H, W) in [-1, 1]; H, W multiples of 32.

    The encoder is EfficientNet-Lite (its features at strides 2, 4, 8, 16 and 32 are the skips);
    a light resize-conv decoder (full or separable convolutions, `config.decoder`) climbs back to
    stride 2, where ab is predicted and then upsampled bilinearly to full size: colour is low-frequency, and the render's ab is upsampled onto the
    full-resolution L anyway. Decoder widths for width w: 8w, 4w, 2w, w at strides 16, 8, 4, 2.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.encoder = EfficientNetLiteEncoder(config.encoder, in_channels=config.in_channels)
        s2, s4, s8, s16, s32 = self.encoder.widths
        w = config.width
        separable = config.decoder == "separable"
        self.bottleneck = nn.Sequential(nn.Conv2d(s32, 8 * w, 1, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True))
        if config.global_context:  # the picture's mean stride-32 feature, added before the bottleneck's BN
            self.global_context = nn.Sequential(nn.Conv2d(s32, 8 * w, 1), nn.ReLU(inplace=True), nn.Conv2d(8 * w, 8 * w, 1, bias=False))
        self.decoder = nn.ModuleList([
            _ResizeConv(8 * w, s16, 8 * w, separable),  # 8² -> 16²
            _ResizeConv(8 * w, s8, 4 * w, separable),  # -> 32²
            _ResizeConv(4 * w, s4, 2 * w, separable),  # -> 64²
            _ResizeConv(2 * w, s2, w, separable),  # -> 128² (stride 2)
        ])
        if config.head == "classify":  # logits over the ab bins; their annealed mean is the ab
            self.head = nn.Conv2d(w, colour_classes.bin_count(), 1)
            self.register_buffer("bin_centres", colour_classes.bin_centres(), persistent=False)
        else:
            self.head = nn.Sequential(nn.Conv2d(w, 2, 3, padding=1), nn.Tanh())
        init_weights(self.bottleneck)
        if config.global_context:  # its last layer zero, as the hint taps: a fine-tune that adds it starts as it was
            init_weights(self.global_context)
            nn.init.zeros_(self.global_context[2].weight)
        init_weights(self.decoder)
        init_weights(self.head)
        if config.head == "classify":  # start grey: logits that favour the bins near a = b = 0 (σ 15 Lab units)
            with torch.no_grad():
                lab_d2 = (self.bin_centres * colour_classes.AB_SCALE).square().sum(1)
                self.head.bias.copy_(-config.temperature * lab_d2 / (2 * 15.0**2))
        if config.hint_decoder:  # hints into each decoder level too; zero at the start, so the model starts as it was
            self.hint_taps = nn.ModuleList([nn.Conv2d(config.hint_channels, width, 3, padding=1, bias=False) for width in (8 * w, 4 * w, 2 * w, w)])
            for tap in self.hint_taps:
                nn.init.zeros_(tap.weight)

    def forward(self, l_net: torch.Tensor, hints: torch.Tensor | None = None, with_logits: bool = False):
        """ab (N, 2, H, W); with_logits (a classifying head, training): (ab, logits at stride 2)."""
        features = self.encoder(with_hints(l_net, hints, self.config.hint_channels))
        deepest = features.pop()
        x = self.bottleneck[0](deepest)
        if self.config.global_context:  # (N, 8w, 1, 1): one vector a picture, at every position
            x = x + self.global_context(deepest.mean(dim=(2, 3), keepdim=True))
        x = self.bottleneck[1:](x)  # BN, ReLU
        taps = self.hint_taps if self.config.hint_decoder and hints is not None else [None] * len(self.decoder)
        for level, tap, stride in zip(self.decoder, taps, (16, 8, 4, 2)):
            x = level(x, features.pop())
            if tap is not None:  # the planes brought to this level's size: (N, 3, H / stride, W / stride)
                x = x + tap(pool_hints(hints, stride, self.config.hint_pooling))
        logits = self.head(x)
        ab = colour_classes.annealed_mean(logits, self.bin_centres, self.config.temperature) if self.config.head == "classify" else logits
        ab = nn.functional.interpolate(ab, size=l_net.shape[-2:], mode="bilinear", align_corners=False)
        ab = ab * self.config.chroma_gain if self.config.chroma_gain != 1.0 else ab
        if with_logits:
            if self.config.head != "classify":
                raise ValueError("with_logits is for a classifying head")
            return ab, logits
        return ab


def pool_hints(hints: torch.Tensor, stride: int, pooling: str) -> torch.Tensor:
    """Hint planes (N, 3, H, W) at 1/stride. "normalised": a cell holding any hinted pixel gets their
    mean a/b at full strength and mask 1, so a small hint reaches the coarse levels undiluted."""
    if pooling == "mean":
        return nn.functional.avg_pool2d(hints, stride)
    mean = nn.functional.avg_pool2d(hints, stride)
    coverage = mean[:, 2:3]
    ab = mean[:, :2] / coverage.clamp(min=1e-6)  # hint planes are 0 where the mask is: 0 / ε stays 0
    return torch.cat([ab, nn.functional.max_pool2d(hints[:, 2:3], stride)], 1)


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The generator `config` describes (freshly initialised; the encoder's ImageNet start is train's business)."""
    return UNetGenerator(config) if config.encoder == "unet" else EncoderUNetGenerator(config)


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
