"""The model's settings as one frozen carrier: which weights, run by which backend where, at what
render size and saturation. It opens the Colorizer every caller uses (the commands, a cluster's
actors, evaluate) and names its own look (what makes the colour, for resume identity) and the
line each output's provenance mark carries. Importing it loads no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .hint_spread import SPREAD_PIXELS
from .render import DEFAULT_RENDER_SIZE


@dataclass(frozen=True)
class ModelSpec:
    weights: str | None = None  # a .safetensors (or exported .onnx) file; None: the model shipped inside archivecolor
    backend: str = "auto"  # auto, torch, onnx, tensorrt
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    precision: str = "auto"  # auto, fp32, fp16, bf16 (torch)
    engine: str | None = None  # a TensorRT engine file (on a cluster: under the same path on every node)
    render_size: int = DEFAULT_RENDER_SIZE  # short side the network sees, pixels
    saturation: float = 1.0  # scale of the predicted a/b (--saturation; evaluate's --chroma-gain)
    hint_reach: float = SPREAD_PIXELS  # how far a colour hint is carried from the automatic colour (hint_spread.py; 0: to the network instead)

    def weights_file(self) -> Path:
        """The weights this spec names, resolved (raises WeightsError)."""
        from .weights import resolve_weights

        return resolve_weights(self.weights)

    def describe(self) -> dict:
        """The weights' name, SHA-256, network and recipe (weights.describe), for reports and marks."""
        from .files import file_sha256
        from .weights import describe

        source = self.weights_file()
        return describe(source) if source.suffix != ".onnx" else {"weights": str(source), "weights_sha256": file_sha256(source)}

    def open(self, threads: int | None = None, weights_file: Path | None = None):
        """The Colorizer, with the backend's choice and its reason: (Colorizer, BackendChoice). Raises
        BackendError, WeightsError or ValueError. `weights_file`: a local copy of the same weights
        (a cluster actor's)."""
        from .backends import open_backend
        from .colorizer import Colorizer

        source = Path(weights_file) if weights_file is not None else self.weights_file()
        choice = open_backend(self.backend, weights=source, device=self.device, precision=self.precision,
                              engine=Path(self.engine) if self.engine else None, threads=threads)
        model = self.describe() if weights_file is None else {}
        return Colorizer(choice.backend, render_size=self.render_size, chroma_gain=self.saturation, model=model,
                         hint_spread=self.hint_reach), choice

    def look(self) -> str:
        """What makes a film's colour besides smoothing and encoding: chunks join only with chunks of the same look."""
        from .video.config import look_of

        return look_of(self.weights_file(), self.render_size, self.saturation)

    def made_with(self) -> str:
        """The line each output's provenance mark carries (colorizer.made_with_line)."""
        from .colorizer import made_with_line

        return made_with_line(self.describe(), self.render_size, self.saturation)

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)
