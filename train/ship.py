"""Ship a trained generator as archivecolor's embedded default model.

    python train/ship.py RUN/generator-epoch017.safetensors --recipe train/default-cpu.md
    python train/ship.py RUN/generator-epoch01{3..7}.safetensors --figures evaluation/evaluation.json
    python train/ship.py RUN/generator-epoch022.safetensors --chroma-gain 1.35
    python train/ship.py RUN/generator.safetensors --temperature 0.3 --out /tmp/t030.safetensors

Writes archivecolor/models/default.safetensors: the generator (or the mean of several epochs'
generators, as `archivecolor average-weights` makes it) stored in fp16 (half the size; the
runtime computes in fp32 or fp16 as the backend chooses), with where it came from in its
metadata. --chroma-gain stores a scale for the predicted a/b in the network's config (applied
after its tanh, so the ONNX export and a TensorRT engine carry it too): choose it with
`archivecolor evaluate --chroma-gain` to colour at the colourfulness the model was compared at.
--temperature does the same for a classifying head's annealed mean (lower: nearer each pixel's
most likely colour); --out writes elsewhere, to score a temperature before choosing it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from archivecolor.weights import average_generators, load_generator, read_metadata, save_generator

TARGET = Path(__file__).resolve().parents[1] / "archivecolor" / "models" / "default.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, nargs="+", help="one generator, or several epochs of one run to average")
    parser.add_argument("--recipe", default="train/default-cpu.md")
    parser.add_argument("--figures", type=Path, default=None, help="evaluation.json of the chosen weights, recorded in the metadata")
    parser.add_argument("--chroma-gain", type=float, default=None, help="scale the predicted a/b by this (stored in the network config)")
    parser.add_argument("--temperature", type=float, default=None, help="a classifying head's annealed-mean temperature (stored in the network config)")
    parser.add_argument("--out", type=Path, default=TARGET, help="where to write (default: the embedded default model)")
    args = parser.parse_args()
    if len(args.weights) == 1:
        generator = load_generator(args.weights[0])
        info = json.loads(read_metadata(args.weights[0]).get("info", "{}"))
        info["source_file"] = args.weights[0].name
    else:
        generator = average_generators(args.weights)
        info = {"averaged_epochs": [json.loads(read_metadata(w).get("info", "{}")).get("epoch", w.name) for w in args.weights],
                "source_files": [w.name for w in args.weights]}
    info["recipe"] = args.recipe
    if args.chroma_gain is not None:
        generator.config = dataclasses.replace(generator.config, chroma_gain=args.chroma_gain)
    if args.temperature is not None:
        if generator.config.head != "classify":
            parser.error("--temperature is for a generator with a classifying head (train --head classify)")
        generator.config = dataclasses.replace(generator.config, temperature=args.temperature)
    if args.figures:
        info["bsd100"] = json.loads(args.figures.read_text())["summary"]
    save_generator(args.out, generator, dtype=torch.float16, info=info)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
