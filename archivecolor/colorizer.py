"""The one Colorizer every pipeline uses: L of any size in, ab at render size out.

    colorizer = Colorizer(backend, render_size=256)
    job = colorizer.prepare(L_full)          # resize to render size, pad to the network multiple
    colorizer.predict([job, ...])            # one batch per padded size; fills job.ab
    recombine_into(out, L_full, job.ab, job.L_render, mode)   # full resolution, in strips
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .hint_spread import SPREAD_PIXELS, spread_hints
from .render import DEFAULT_RENDER_SIZE, Geometry, ab_from_network, network_input, plan, render_luminance


@dataclass
class RenderJob:
    geometry: Geometry
    L_render: np.ndarray  # (rh, rw) L* at render size
    l_net: np.ndarray  # (1, ph, pw) network input
    ab: np.ndarray | None = field(default=None)  # (rh, rw, 2) a*, b* once predicted
    hint_boxes: list | None = field(default=None)  # colour hints as patches at render size (hints.hint_boxes), or None

    def add_hints(self, hints: list) -> None:
        """Place an archivist's hints (hints.Hint, in the full picture's pixels) at render size; the
        network's planes are made from them only if the network is to take them (Colorizer._hints)."""
        from .hints import hint_boxes

        if hints:
            self.hint_boxes = hint_boxes(hints, self.geometry.full_hw, self.geometry.render_hw)


def prepare_job(L_full: np.ndarray, render_size: int, size_multiple: int) -> RenderJob:
    """Everything before the network, without one: decoding workers of a cluster run this."""
    geometry = plan(L_full.shape, render_size, size_multiple)
    L_render = render_luminance(L_full, geometry)
    return RenderJob(geometry, L_render, network_input(L_render, geometry))


def made_with_line(model: dict, render_size: int, saturation: float) -> str:
    """'weights default sha256 1a2b3c4d5e6f, render size 256, saturation 1': what made a picture's colours."""
    from pathlib import Path

    name = Path(str(model.get("weights", "unknown"))).name
    sha = model.get("weights_sha256")
    return f"weights {name}" + (f" sha256 {sha[:12]}" if sha else "") + f", render size {render_size}, saturation {saturation:g}"


class Colorizer:
    def __init__(self, backend, render_size: int = DEFAULT_RENDER_SIZE, chroma_gain: float = 1.0, model: dict | None = None,
                 hint_spread: float = SPREAD_PIXELS):
        """`chroma_gain` scales the predicted a/b: `--saturation` in folder and video, and `evaluate
        --chroma-gain`, which compares models at equal colourfulness. `model` describes the weights
        (weights.describe) for the reports' record of what made the colours. `hint_spread`: how far
        (render pixels along even luminance) a hint's colour is carried over its region from the
        automatic colour (hint_spread.py); 0 gives the hints to the network instead."""
        if render_size < backend.size_multiple:
            raise ValueError(f"render size {render_size} is below the network's size multiple {backend.size_multiple}")
        self.backend = backend
        self.render_size = render_size
        self.chroma_gain = chroma_gain
        self.model = dict(model or {})
        self.hint_spread = hint_spread

    def made_with(self) -> dict:
        """What makes this colorizer's colours: archivecolor's version, the weights, render size, saturation."""
        from . import __version__

        return {"archivecolor": __version__, **self.model, "backend": self.backend.name, "render_size": self.render_size,
                "saturation": self.chroma_gain, "hint_reach": self.hint_spread}

    def provenance(self) -> str:
        """What made the colours, in a line for each output's mark (imageio.provenance_mark)."""
        return made_with_line(self.model, self.render_size, self.chroma_gain)

    def look(self) -> str:
        """What makes a film's colour besides smoothing and encoding, as video.config.look_of says
        it: chunks are joined only with chunks of the same look. Weights without a SHA-256 get a
        look of their own, so an interrupted film is started over rather than joined to another."""
        from .video.config import look_line

        return look_line(self.model.get("weights_sha256") or f"unknown ({id(self.backend):x})", self.render_size, self.chroma_gain)

    def prepare(self, L_full: np.ndarray) -> RenderJob:
        return prepare_job(L_full, self.render_size, self.backend.size_multiple)

    def predict(self, jobs: list[RenderJob], batch_size: int = 8) -> None:
        """Run the network on `jobs`, batching those of equal padded size; fills each job.ab."""
        buckets: dict[tuple[int, int], list[RenderJob]] = defaultdict(list)
        for job in jobs:
            buckets[job.geometry.bucket].append(job)
        for group in buckets.values():
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                ab_net = self.backend.run(np.stack([job.l_net for job in batch]), self._hints(batch))  # (N, 2, ph, pw)
                if self.chroma_gain != 1.0:
                    ab_net = ab_net * np.float32(self.chroma_gain)
                for job, ab in zip(batch, ab_net):
                    job.ab = ab_from_network(ab, job.geometry)
                    if job.hint_boxes and self.hint_spread:
                        job.ab = spread_hints(job.L_render, job.ab, job.hint_boxes, self.hint_spread)

    def _hints(self, batch: list[RenderJob]) -> np.ndarray | None:
        """The batch's hint planes for the network (zeros for the pictures without), or None when
        none has hints or the spreading carries them. Spreading from the automatic colour beat
        spreading what a hint-trained network had made of them, and that network alone (train/default-lite0.md)."""
        from .hints import planes_from_boxes

        if not any(job.hint_boxes for job in batch) or self.hint_spread:
            return None
        if not getattr(self.backend, "hint_channels", 0):
            raise ValueError("this model was not trained with colour hints: colour without --hints, or with a model that takes them")
        return np.stack([planes_from_boxes(job.hint_boxes or [], job.geometry.padded_hw) for job in batch])
