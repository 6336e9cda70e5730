"""Make docs/before-after.jpg, the README's picture of what the default model does.

The photos are scikit-image's bundled samples, chosen because they are free to show: the
astronaut Eileen Collins (NASA, public domain), a coffee cup (Rachel Michetti, CC0), Chelsea the
cat (Stéfan van der Walt, CC0) and a Falcon 9 launch (SpaceX, public domain). None of them is in
the training data. Each is desaturated, colorized by `archivecolor evaluate`, and shown beside its
original with its figures:

    python docs/before_after.py [--weights FILE]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
from skimage import data

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea, "rocket": data.rocket}
OUT = Path(__file__).resolve().parent / "before-after.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="generator to show (default: the packaged model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for name, load in PHOTOS.items():
            cv2.imwrite(str(photos / f"{name}.png"), cv2.cvtColor(load(), cv2.COLOR_RGB2BGR))
        command = [sys.executable, "-m", "archivecolor", "evaluate", str(photos), "--out", str(Path(tmp) / "evaluation")]
        subprocess.run(command + (["--weights", args.weights] if args.weights else []), check=True)
        shutil.copyfile(Path(tmp) / "evaluation" / "sheet.jpg", OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
