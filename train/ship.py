"""Ship a trained generator as archivecolor's embedded default model.

    python train/ship.py RUN/generator-epoch017.safetensors --recipe train/default-cpu.md

Writes archivecolor/models/default.safetensors: the same generator stored in fp16 (half the
size; the runtime computes in fp32 or fp16 as the backend chooses), with where it came from
in its metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from archivecolor.weights import load_generator, read_metadata, save_generator

TARGET = Path(__file__).resolve().parents[1] / "archivecolor" / "models" / "default.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--recipe", default="train/default-cpu.md")
    parser.add_argument("--figures", type=Path, default=None, help="evaluation.json of the chosen weights, recorded in the metadata")
    args = parser.parse_args()
    generator = load_generator(args.weights)
    info = json.loads(read_metadata(args.weights).get("info", "{}"))
    info["recipe"] = args.recipe
    info["source_file"] = args.weights.name
    if args.figures:
        info["bsd100"] = json.loads(args.figures.read_text())["summary"]
    save_generator(TARGET, generator, dtype=torch.float16, info=info)
    print(f"{TARGET}: {TARGET.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
