"""Link the training photos into a class-balanced mix, for `archivecolor train`.

    python train/balanced_mix.py ../shared/data/train /tmp/balanced

Caltech-101 is long-tailed: airplanes (800), motorbikes (626) and faces (435) are 24 % of its
7,726 photos, while 26 of its 100 classes hold fewer than 50. Each class's photos are linked
round(sqrt(largest class / class size)) times (square-root balancing, as long-tailed
recognition uses it), so that a rare class is seen more often without its few photos being
repeated as often as full balancing would. The clothing photos are linked once: then they are
8 % of the mix (21 % of the photos), still a minority as the data's README asks. The rule reads
the class sizes only; no evaluation picture had a say in it.

Symbolic links, not copies: nothing of ../shared is duplicated, and a later pass of a link is
the same photo with other random crops. `archivecolor train` keeps every link of a photo on one
side of its validation split (data.linked_photo): a photo is validated once and never trained
on under another name. Writes into an empty or new folder.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

CLASSES_FOLDER, KEPT_ONCE = "caltech101", "clothing"


def repeats(sizes: dict[str, int]) -> dict[str, int]:
    """How many times each class's photos are linked: round(sqrt(largest / size)) (Python's round: half to even), at least 1."""
    largest = max(sizes.values())
    return {name: max(1, round(math.sqrt(largest / size))) for name, size in sizes.items()}


def link_mix(data: Path, out: Path) -> dict[str, int]:
    """Make the mix under `out`; returns the number of links per class (and for the clothing)."""
    classes = {folder.name: sorted(p for p in folder.iterdir() if p.is_file())
               for folder in sorted((data / CLASSES_FOLDER).iterdir()) if folder.is_dir()}
    links = {}
    for name, k in repeats({name: len(photos) for name, photos in classes.items()}).items():
        folder = out / CLASSES_FOLDER / name
        folder.mkdir(parents=True)
        for photo in classes[name]:
            for r in range(k):
                os.symlink(photo.resolve(), folder / (photo.stem + (f"__r{r}" if r else "") + photo.suffix))
        links[name] = k * len(classes[name])
    once = sorted(p for p in (data / KEPT_ONCE).iterdir() if p.is_file())
    (out / KEPT_ONCE).mkdir(parents=True)
    for photo in once:
        os.symlink(photo.resolve(), out / KEPT_ONCE / photo.name)
    links[KEPT_ONCE] = len(once)
    return links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="../shared/data/train")
    parser.add_argument("out", type=Path, help="a new or empty folder for the links")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    links = link_mix(args.data, args.out)
    total = sum(links.values())
    print(f"{total} links in {args.out}: clothing {links[KEPT_ONCE] / total:.1%}, largest class "
          f"{max((n, c) for c, n in links.items() if c != KEPT_ONCE)[1]} {max(n for c, n in links.items() if c != KEPT_ONCE) / total:.1%}")


if __name__ == "__main__":
    main()
