"""Link the photo tree into a source-balanced mix, and hold BSDS500's test scenes out as a validation folder.

    python train/source_mix.py ~/photos/tree ~/photos/mix ~/photos/val-bsds

The tree `../shared/tools/training-photos.sh` builds is 83 % Imagenette (10 classes) and
Caltech-101 (objects, often on white), while the judge scores scenes (BSD100). So the varied
sources are linked more than once: each source's photos round(sqrt(largest source / its
size)) times, at most 4 (square-root balancing, as balanced_mix.py does for Caltech's classes),
the clothing once. BSDS500's 200 test scenes are not linked into the mix at all: they go to
VAL, scenes like BSD100's (which the tree never holds) to choose between candidates on, so
BSD100 stays the final check. The rule reads the sources' sizes only.

Symbolic links, not copies; `archivecolor train` keeps every link of a photo on one side of
its own validation split (data.linked_photo). Writes into new or empty folders.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from archivecolor.data import find_images  # the photos `train` reads, links to folders followed

KEPT_ONCE = {"clothing"}
MAX_REPEATS = 4
HELD_OUT = "bsds500/BSDS500/data/images/test"


def repeats(sizes: dict[str, int]) -> dict[str, int]:
    """round(sqrt(largest / size)), between 1 and MAX_REPEATS; the clothing once."""
    largest = max(sizes.values())
    return {name: 1 if name in KEPT_ONCE else min(MAX_REPEATS, max(1, round(math.sqrt(largest / size))))
            for name, size in sizes.items()}


def link_mix(tree: Path, out: Path, val: Path) -> dict[str, tuple[int, int]]:
    """Make the mix under `out` and the held-out scenes under `val`; returns (photos, repeats) per source."""
    held_out = {p.resolve() for p in find_images(tree / HELD_OUT)}
    sources = {}
    for folder in sorted(p for p in tree.iterdir() if p.is_dir()):
        sources[folder.name] = [p for p in find_images(folder) if p.resolve() not in held_out]
    plan = repeats({name: len(photos) for name, photos in sources.items()})
    for name, photos in sources.items():
        for photo in photos:
            relative = photo.relative_to(tree)
            for r in range(plan[name]):
                link = out / relative.parent / (photo.stem + (f"__r{r}" if r else "") + photo.suffix)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(photo.resolve(), link)
    val.mkdir(parents=True, exist_ok=True)
    for photo in sorted(held_out):
        os.symlink(photo, val / photo.name)
    return {name: (len(photos), plan[name]) for name, photos in sources.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path, help="the tree training-photos.sh built")
    parser.add_argument("out", type=Path, help="a new or empty folder for the mix")
    parser.add_argument("val", type=Path, help="a new or empty folder for BSDS500's held-out test scenes")
    args = parser.parse_args()
    for folder in (args.out, args.val):
        if folder.exists() and any(folder.iterdir()):
            parser.error(f"{folder} is not empty")
    plan = link_mix(args.tree, args.out, args.val)
    total = sum(n * k for n, k in plan.values())
    for name, (n, k) in plan.items():
        print(f"{name:18s} {n:6d} photos × {k} = {n * k:6d} links ({n * k / total:.1%})")
    print(f"{total} links in {args.out}; {len(list(args.val.iterdir()))} held-out scenes in {args.val}")


if __name__ == "__main__":
    main()
