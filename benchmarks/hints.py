"""What colour hints cost: a hinted picture against an automatic one, a hinted film against an automatic one.

    python benchmarks/hints.py [--data ../shared/data] [--backend auto] [--photos 20] [--film box.mp4]

Stills: the first --photos BSD100 pictures, each coloured one at a time as `folder` does
(prepare, predict), automatically and with 10 hints from its true colours; seconds per picture.
With the spreading on (the default reach) the network runs its automatic graph and the hints
cost the spreading alone; with `--hint-reach 0` (folder, video) a model with hint channels runs
its hint graph for a batch that has hints (the onnx backend keeps a second session for it).
Films: a shared clip desaturated, coloured by `video`'s pipeline without and with a hints file
of 3 points on one frame; the hinted run adds one decoding and
tracking pass before colouring (timed on its own too). Prints the machine and each figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archivecolor.backends import open_backend  # noqa: E402
from archivecolor.colorizer import Colorizer  # noqa: E402
from archivecolor.hints import truth_hints  # noqa: E402
from archivecolor.imageio import read_stills  # noqa: E402
from archivecolor.lab import srgb_to_lab  # noqa: E402
from archivecolor.weights import default_weights_path  # noqa: E402


def machine() -> str:
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())


def stills(colorizer: Colorizer, photos: list[Path]) -> tuple[float, float]:
    """Seconds per picture, automatic and with 10 hints (the first of each is a warm-up, not counted)."""
    rng = np.random.default_rng(0)
    pictures = []
    for path in photos:
        rgb = read_stills(path)[0].pixels
        lab = srgb_to_lab(rgb)
        pictures.append((lab[..., 0], truth_hints(lab[..., 1:], 10, rng)))
    times = {}
    for hinted in (False, True):
        elapsed = []
        for L, hints in [pictures[0]] + pictures:
            started = time.perf_counter()
            job = colorizer.prepare(L)
            if hinted:
                job.add_hints(hints)
            colorizer.predict([job], 1)
            elapsed.append(time.perf_counter() - started)
        times[hinted] = float(np.mean(elapsed[1:]))
    return times[False], times[True]


def film(colorizer: Colorizer, clip: Path, work: Path) -> dict:
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.ffmpeg import find_ffmpeg, probe
    from archivecolor.video.film import colorize_video
    from archivecolor.video.film_hints import film_hints
    from archivecolor.video.stream import luminance_frames

    ffmpeg = find_ffmpeg()
    grey = work / "grey.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(clip), "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "16", "-an", str(grey)],
                   check=True)
    info = probe(grey)
    height, width = info.display_hw
    frame = min(100, (info.frames or 1) // 2)
    hints = work / "grey.hints.json"
    hints.write_text(json.dumps({"points": [{"x": width * fx, "y": height * fy, "color": colour, "frame": frame}
                                            for fx, fy, colour in ((0.3, 0.4, "#c03020"), (0.6, 0.5, "#2f4f8f"), (0.5, 0.8, "#4f7a2a"))]}))
    config = VideoConfig(measure=False, chunk_frames=None)
    figures = {"frames": info.frames, "size": f"{width}×{height}"}
    for label, hints_file in (("automatic", None), ("hinted", hints)):
        started = time.perf_counter()
        result = colorize_video(grey, work / f"{label}.mp4", colorizer, config, hints_file=hints_file)
        figures[label] = time.perf_counter() - started
    started = time.perf_counter()
    tracked = film_hints(hints, luminance_frames(ffmpeg, grey, info), info.display_hw, info.frames, colorizer.render_size,
                         colorizer.backend.size_multiple, config.smoothing.cut_threshold, config.smoothing.occlusion_threshold)
    figures["tracking"] = time.perf_counter() - started
    figures["held"] = [(t.first, t.last) for t in tracked.tracks]
    figures["shots"] = result.hints["shots"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--film", default="box.mp4")
    args = parser.parse_args()
    backend = open_backend(args.backend, default_weights_path()).backend
    colorizer = Colorizer(backend, render_size=256)
    print(f"machine: {machine()}; backend {backend.name}; default model, render size 256")
    print(f"command: python benchmarks/hints.py --backend {args.backend} --photos {args.photos} --film {args.film}")
    photos = sorted((args.data / "eval" / "bsd100").glob("*.png"))[: args.photos]
    automatic, hinted = stills(colorizer, photos)
    print(f"stills ({len(photos)} BSD100 pictures, one at a time): automatic {1000 * automatic:.0f} ms, with 10 hints "
          f"{1000 * hinted:.0f} ms per picture ({hinted / automatic:.2f}×)")
    with tempfile.TemporaryDirectory() as work:
        f = film(colorizer, args.data / "video" / args.film, Path(work))
    print(f"film ({args.film} desaturated, {f['frames']} frames, {f['size']}, one pass): automatic {f['automatic']:.1f} s, "
          f"3 hints on one frame {f['hinted']:.1f} s ({f['hinted'] / f['automatic']:.2f}×); the tracking pass alone "
          f"{f['tracking']:.1f} s ({f['frames'] / f['tracking']:.0f} frames/s)")
    print(f"  hints held on frames {f['held']}; shots holding hints: {[(s['first_frame'], s['last_frame']) for s in f['shots']]}")


if __name__ == "__main__":
    main()
