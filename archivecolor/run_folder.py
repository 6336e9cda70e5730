"""A training run's folder: its config, photo list, checkpoint, log, sheets and exported generators,
held by one run at a time; the checkpoint read without running any pickle."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from .files import FolderInUse, atomic_write_bytes, hold_folder


class RunFolder:
    """Where a run keeps its state: config, scan, checkpoint, logs, sheets, exported weights."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.scan = self.path / "dataset.json"
        self.val_scan = self.path / "validation.json"  # with val_dir: its photos, kept so a resume validates on the same
        self.checkpoint = self.path / "checkpoint.pt"
        self.log = self.path / "log.jsonl"
        self.samples = self.path / "samples.png"
        self.curves = self.path / "curves.png"
        self.generator = self.path / "generator.safetensors"
        self.best = self.path / "generator-best.safetensors"

    def hold(self):
        """Lock the folder for this run (released when the process ends). A second `train` on it
        (a job started twice, a --resume while the first still runs) would interleave two runs'
        checkpoints and logs; it is refused instead, naming the holder."""
        try:
            self._held = hold_folder(self.path, "archivecolor train", lock_name=".lock", remove=False)
        except FolderInUse as exc:
            raise ValueError(str(exc).replace("choose another output folder", "choose another --out")) from None

    def release(self) -> None:
        held = getattr(self, "_held", None)
        if held is not None:
            held.close()
            self._held = None

    def holds_a_run(self) -> bool:
        return self.config.exists() or self.checkpoint.exists() or self.log.exists()

    def clear(self) -> None:
        """Delete a run's files (for --overwrite); anything else in the folder stays."""
        for path in (self.config, self.scan, self.val_scan, self.checkpoint, self.log, self.samples, self.curves, self.generator, self.best,
                     *self.path.glob("generator-epoch*.safetensors")):
            path.unlink(missing_ok=True)

    def append_log(self, record: dict) -> None:
        with open(self.log, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


CHECKPOINT_KEYS = ("generator", "discriminator", "opt_g", "opt_d", "scaler_g", "scaler_d", "epoch", "step", "global_step", "rng_cpu")


def read_checkpoint(path: Path) -> dict:
    """A run's checkpoint, read without running any pickle (weights_only); one line naming the file when
    it is not one that `train` wrote (crafted, truncated, from another program)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path}: not a checkpoint archivecolor train wrote ({first}); --overwrite starts the run over") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: not a checkpoint archivecolor train wrote (no {missing[0]!r}); --overwrite starts the run over")
    return checkpoint


def save_checkpoint(run: RunFolder, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(run.checkpoint, buf.getvalue())
