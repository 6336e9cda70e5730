"""Scene-cut detection on real footage with known cuts: precision and recall, new detector against the old.

The shared clips (../shared/data/video) hold single shots. This joins pieces of them into one
film with hard cuts at known frames, including cuts between two pieces of the same clip taken
seconds apart (the same place, the same light: what a histogram cannot tell apart), and runs
each detector over its luminance at the render size, as `video` does.

    python benchmarks/cuts.py [--data ../shared/data] [--threshold 0.3]

Prints, per detector: cuts found, true ones (within one frame of a join), precision and recall.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archivecolor.lab import srgb_to_lab  # noqa: E402
from archivecolor.video.cuts import CutDetector  # noqa: E402

PIECES = [  # (clip, first second, seconds): consecutive pieces of one clip are seconds apart
    ("box.mp4", 0.0, 2.0), ("box.mp4", 6.0, 2.0), ("cup.mp4", 0.5, 2.0), ("bikes.mp4", 0.0, 2.5), ("bikes.mp4", 5.0, 2.0),
    ("cockatoo.mp4", 1.0, 2.0), ("cockatoo.mp4", 8.0, 2.0), ("box.mp4", 11.0, 2.0), ("cup.mp4", 5.0, 2.0), ("realshort.mp4", 0.0, 1.0),
    ("bikes.mp4", 8.0, 1.5), ("cockatoo.mp4", 12.0, 1.5),
]
RENDER = 256  # short side, as `video` renders
# cuts inside the clips themselves (checked by eye): bikes.mp4 changes shot at frames 30 and 137 of 25 fps
INTERNAL_CUTS = {"bikes.mp4": (1.2, 5.48)}  # seconds


def clip_luminance(path: Path, start: float, seconds: float) -> list[np.ndarray]:
    import av
    import cv2

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < start:
                continue
            if t >= start + seconds:
                break
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            scale = RENDER / min(h, w)
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            frames.append(srgb_to_lab(rgb)[..., 0])
    return frames, rate


def old_histogram_detector(threshold: float = 0.5):
    """The detector before: L1 distance of consecutive 32-bin L* histograms."""
    previous = {}

    def detect(L):
        hist = np.histogram(L, bins=32, range=(0, 100))[0] / L.size
        cut = "h" in previous and np.abs(previous["h"] - hist).sum() > threshold
        previous["h"] = hist
        return cut

    return detect


def scores(found: list[int], truth: list[int]) -> tuple[int, float, float]:
    true = sum(any(abs(f - t) <= 1 for t in truth) for f in found)
    recalled = sum(any(abs(f - t) <= 1 for f in found) for t in truth)
    return true, true / len(found) if found else 1.0, recalled / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=0.3)
    args = parser.parse_args()
    import cv2

    film, cuts = [], []
    for name, start, seconds in PIECES:
        frames, rate = clip_luminance(args.data / "video" / name, start, seconds)
        if film:
            cuts.append(len(film))
        cuts += [len(film) + round((t - start) * rate) for t in INTERNAL_CUTS.get(name, ()) if start < t < start + seconds]
        # one frame size for the whole film, as a real film has (the clips differ)
        film += [cv2.resize(f, (448, 256), interpolation=cv2.INTER_AREA) for f in frames]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())
    print(f"machine: {cpu}, {len(film)} frames, {len(cuts)} known cuts at {cuts}")
    print(f"command: python benchmarks/cuts.py --threshold {args.threshold}")
    for label, detector in (("layout + tone (now)", CutDetector(args.threshold)), ("histogram L1 > 0.5 (before)", old_histogram_detector())):
        found = [i for i, L in enumerate(film) if detector(L)]
        true, precision, recall = scores(found, cuts)
        print(f"{label:30s} found {len(found):3d}, true {true:3d}, precision {precision:.2f}, recall {recall:.2f}; "
              f"missed {[c for c in cuts if not any(abs(f - c) <= 1 for f in found)]}, false {[f for f in found if not any(abs(f - c) <= 1 for c in cuts)]}")


if __name__ == "__main__":
    main()
