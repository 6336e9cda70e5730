"""Link a run's validation photos into a folder, to score candidates on them with `archivecolor evaluate`.

    python train/val_folder.py ~/runs/default ../shared/data/train runs/default-val
    archivecolor evaluate runs/default-val --weights ~/runs/default/generator-epoch015.safetensors

The validation photos are the ones `archivecolor train` held out (its dataset.json and the
split settings in its config.json; with `--val-dir`, that folder's, as its validation.json lists them), so choosing between epochs or averages on them leaves
BSD100 untouched for the final check. Symbolic links: nothing is copied or written in DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from archivecolor.data import linked_photo, split_train_val
from archivecolor.train import validation_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run folder of `archivecolor train`")
    parser.add_argument("data", type=Path, help="the DATA_DIR the run was trained on")
    parser.add_argument("out", type=Path, help="new folder for the links")
    args = parser.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    root = args.data
    if config.get("val_dir"):  # train --val-dir: its validation photos came from that folder
        root = Path(config["val_dir"])
        val = validation_photos(json.loads((args.run / "validation.json").read_text())["usable"], config["max_val"])
    else:
        usable = json.loads((args.run / "dataset.json").read_text())["usable"]
        _, val = split_train_val(usable, config["val_fraction"], config["max_val"], config["seed"], linked_photo(args.data))
    args.out.mkdir(parents=True, exist_ok=False)
    for i, name in enumerate(val):
        os.symlink((root / name).resolve(), args.out / f"{i:03d}-{Path(name).name}")
    print(f"{args.out}: {len(val)} validation photos of {args.run}")


if __name__ == "__main__":
    main()
