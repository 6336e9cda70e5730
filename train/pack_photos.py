"""Pack training photos small enough to travel to a lent GPU machine (the device tool's 64 MiB).

Each photo is scaled to the render scale (256 px short side by default), centre-cropped square
and stored as WebP (quality 75: about 8 KiB per photo, measured on Caltech-101). When the whole
set would not fit in --max-mib, a seeded random subset is taken (each subfolder at about its
share of the source, so the clothing photos stay a minority):

    python train/pack_photos.py ../shared/data/train .pack/photos --max-mib 46

Train on the pack as on the original folder (`archivecolor train .pack/photos ...`). The pack
is a copy of ../shared data: keep it in an ignored folder (.git/info/exclude), never commit it.
"""

import argparse
import random
from pathlib import Path

import cv2

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def square(image, side: int):
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    h, w = image.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-mib", type=float, default=46.0, help="size budget of the pack")
    parser.add_argument("--side", type=int, default=256, help="square side in pixels (the render size)")
    parser.add_argument("--quality", type=int, default=75, help="WebP quality")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    photos = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in EXTENSIONS)
    random.Random(args.seed).shuffle(photos)  # any prefix is a fair sample of every subfolder
    budget, used, written = args.max_mib * 2**20, 0, 0
    for path in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        ok, data = cv2.imencode(".webp", square(image, args.side), [cv2.IMWRITE_WEBP_QUALITY, args.quality])
        if used + len(data) > budget:
            break
        target = args.out / path.relative_to(args.source).with_suffix(".webp")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.tobytes())
        used, written = used + len(data), written + 1
    print(f"packed {written} of {len(photos)} photos, {used / 2**20:.1f} MiB, into {args.out}")


if __name__ == "__main__":
    main()
