"""Judge a candidate default model against the shipped one, at equal colourfulness.

    python train/judge.py ~/runs/x/generator-epoch003.safetensors
    python train/judge.py candidate.safetensors --against other.safetensors --out judge-x/
    python train/judge.py ~/runs/x-seed0/mean-decay.safetensors ~/runs/x-seed1/mean-decay.safetensors

The ship rule of the recipes in one command. On BSD100 and on frames of the shared film clips
(pictures that no training choice has looked at), each model colours every picture once; the
reference's colour is then scaled until it is as colourful as the candidate's (Hasler and
Süsstrunk's measure, nearly linear in that scale), so that neither model wins PSNR or CIEDE2000
by being greyer: a muted model scores better on both, whether or not its colours are right.

Ship only if, on BSD100, the candidate beats leaving the pictures grey on PSNR and CIEDE2000,
reaches the issue's PSNR floor (24.0 dB) and beats the reference at its colourfulness on
CIEDE2000, and on the clips' frames (all together) is no worse on CIEDE2000 than the reference
at its colourfulness. PSNR against the reference is printed, not required: it is a mean squared
error, won by predicting the average colour, where CIEDE2000 is the perceptual difference the
issue's target is set in (rule of 2026-12-07, train/default-lite0.md).

Several candidates are a recipe's end points (seeds run before any was judged; the rule for a new
recipe, train/README.md): each must meet the BSD100 conditions, and the mean over them of the
clips' CIEDE2000 minus the reference's at each one's colourfulness must be at most 0; one end point
against six clips decides by the draw when a recipe is near the reference. The end point with the
lowest BSD100 CIEDE2000 is the one to ship. With one candidate the two rules are the same.

Exit code 0 for "ship", 1 for "do not ship". Writes judge.json (every figure) and judge-sheet.jpg
(pictures of both sets: grey, the reference as colourful as the candidate, the candidate, the
original; of the end point to ship, when there are several) to --out.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archivecolor.backends import open_backend
from archivecolor.colorizer import Colorizer
from archivecolor.data import find_images, read_rgb
from archivecolor.evaluate import score
from archivecolor.lab import lab_to_srgb, srgb_to_lab
from archivecolor.render import recombine_into

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAMES_PER_CLIP, CLIP_FPS = 20, 2  # frames taken from each clip: 20 at 2 per second
SHEET_ROWS_PER_SET = 6  # pictures of each set in judge-sheet.jpg
FIGURES = ("psnr", "ciede2000", "colourfulness")
PSNR_FLOOR = 24.0  # dB on BSD100: issue #19's target (grey: 22.8)


@dataclass
class Picture:
    name: str
    truth: np.ndarray  # (H, W, 3) uint8 sRGB
    L: np.ndarray  # (H, W) L*: the desaturated input


def load_pictures(folder: Path) -> list[Picture]:
    pictures = []
    for path in find_images(folder):
        rgb = read_rgb(path)
        if rgb.dtype == np.uint16:
            rgb = (rgb // 257).astype(np.uint8)
        pictures.append(Picture(path.relative_to(folder).as_posix(), rgb, srgb_to_lab(rgb)[..., 0]))
    return pictures


def clip_frames(clips: Path, cache: Path) -> Path:
    """FRAMES_PER_CLIP frames of each film in `clips` (CLIP_FPS per second) as PNG under `cache`,
    one folder per film, plus the folders of frames `clips` already holds (linked)."""
    from archivecolor.video.ffmpeg import find_ffmpeg

    cache.mkdir(parents=True, exist_ok=True)
    for film in sorted(clips.iterdir()):
        out = cache / film.stem
        if out.exists():
            continue
        if film.is_dir():
            out.symlink_to(film.resolve())
            continue
        part = cache / f".{film.stem}.part"
        part.mkdir(exist_ok=True)
        subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(film),
                        "-vf", f"fps={CLIP_FPS}", "-frames:v", str(FRAMES_PER_CLIP), str(part / "%03d.png")], check=True)
        part.rename(out)
    return cache


def open_model(weights: str, render_size: int) -> Colorizer:
    return Colorizer(open_backend("auto", None if weights == "default" else Path(weights)).backend, render_size)


def predict(colorizer: Colorizer, pictures: list[Picture]) -> list[np.ndarray]:
    """The a/b each picture gets from the model, at render size (colourfulness scale 1)."""
    jobs = [colorizer.prepare(p.L) for p in pictures]
    colorizer.predict(jobs)
    return [job.ab for job in jobs]


def coloured(picture: Picture, ab: np.ndarray | None, scale: float = 1.0) -> np.ndarray:
    """The picture in the colour `ab` scaled by `scale` (None: left grey), as 8-bit sRGB."""
    if ab is None:
        return (lab_to_srgb(np.dstack([picture.L, np.zeros((*picture.L.shape, 2), np.float32)])) * 255 + 0.5).astype(np.uint8)
    prediction = np.empty_like(picture.truth)
    recombine_into(prediction, picture.L, ab * np.float32(scale))
    return prediction


def picture_scores(pictures: list[Picture], abs_: list[np.ndarray | None], scale: float = 1.0) -> list[dict]:
    """PSNR, CIEDE2000 and colourfulness of each picture, its a/b scaled by `scale` (None: grey)."""
    return [score(coloured(picture, ab, scale), picture.truth) for picture, ab in zip(pictures, abs_)]


def mean_figures(rows: list[dict]) -> dict:
    return {f: float(np.mean([r[f] for r in rows])) for f in FIGURES}


def figures(pictures: list[Picture], abs_: list[np.ndarray], scale: float = 1.0) -> dict:
    """Mean PSNR, CIEDE2000 and colourfulness over the pictures, their a/b scaled by `scale`."""
    return mean_figures(picture_scores(pictures, abs_, scale))


def by_clip(pictures: list[Picture], rows: dict[str, list[dict]]) -> dict:
    """Mean CIEDE2000 of each clip's frames (named CLIP/frame), for each model's per-picture scores
    in `rows`. Shown, not ruled on: a clip with many frames weighs on the set's mean as much as
    several short ones together, and this says which clip decided it."""
    clips: dict[str, list[int]] = {}
    for index, picture in enumerate(pictures):
        clips.setdefault(picture.name.split("/")[0], []).append(index)
    return {clip: {"pictures": len(indices),
                   **{label: float(np.mean([scores[i]["ciede2000"] for i in indices])) for label, scores in rows.items()}}
            for clip, indices in clips.items()}


def scores_at_colourfulness(pictures: list[Picture], abs_: list[np.ndarray], target: float,
                            steps: int = 3) -> tuple[list[dict], float, list[dict]]:
    """Per-picture scores at scale 1, the scale of the a/b that makes them `target` colourful
    (secant steps from 1), and the per-picture scores there."""
    scale = 1.0
    unscaled = found = picture_scores(pictures, abs_)
    for _ in range(steps):
        colourfulness = mean_figures(found)["colourfulness"]
        if colourfulness <= 1e-6 or abs(colourfulness - target) <= 0.002 * target:
            break
        scale *= target / colourfulness
        found = picture_scores(pictures, abs_, scale)
    return unscaled, scale, found


def at_colourfulness(pictures: list[Picture], abs_: list[np.ndarray], target: float, steps: int = 3) -> tuple[float, dict]:
    """The scale of the a/b that makes them `target` colourful (secant steps from 1), and the figures there."""
    _, scale, found = scores_at_colourfulness(pictures, abs_, target, steps)
    return scale, mean_figures(found)


def sheet_jpeg(rows: list[tuple[Picture, np.ndarray, np.ndarray, float]], height: int = 150) -> bytes:
    """grey | reference at the candidate's colourfulness | candidate | original, a row per picture,
    each with its CIEDE2000: what the table's figures look like."""
    from PIL import Image, ImageDraw, ImageFont

    font, gap, header, caption = ImageFont.load_default(size=14), 6, 24, 20
    panels = []
    for picture, candidate, reference, scale in rows:
        images = [coloured(picture, None), coloured(picture, reference, scale), coloured(picture, candidate), picture.truth]
        width = max(1, round(picture.truth.shape[1] * height / picture.truth.shape[0]))
        errors = [score(image, picture.truth)["ciede2000"] for image in images[:3]]
        panels.append(([Image.fromarray(image).resize((width, height), Image.LANCZOS) for image in images], errors, picture.name))
    cell = max(panel[0][0].width for panel in panels)
    sheet = Image.new("RGB", (4 * cell + 5 * gap, header + len(panels) * (height + caption) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(("grey", "reference, as colourful", "candidate", "original")):
        draw.text((gap + column * (cell + gap) + cell // 2, 5), title, fill="black", font=font, anchor="ma")
    for index, (images, errors, name) in enumerate(panels):
        top = header + index * (height + caption)
        for column, image in enumerate(images):
            sheet.paste(image, (gap + column * (cell + gap) + (cell - image.width) // 2, top))
        draw.text((gap, top + height + 2), f"{name}: CIEDE2000 grey {errors[0]:.2f}, reference {errors[1]:.2f}, "
                  f"candidate {errors[2]:.2f}", fill="#333", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def compare(pictures: list[Picture], candidate: list[np.ndarray], reference: list[np.ndarray], per_clip: bool = False) -> dict:
    """The set's figures for the candidate, the reference as it is and at the candidate's
    colourfulness, and grey; with `per_clip`, each clip's CIEDE2000 too (`by_clip`)."""
    rows = {"candidate": picture_scores(pictures, candidate), "grey": picture_scores(pictures, [None] * len(pictures))}
    unscaled, scale, rows["reference_matched"] = scores_at_colourfulness(
        pictures, reference, mean_figures(rows["candidate"])["colourfulness"])
    result = {"pictures": len(pictures), "candidate": mean_figures(rows["candidate"]), "reference": mean_figures(unscaled),
              "reference_scale": scale, "reference_matched": mean_figures(rows["reference_matched"]),
              "grey": mean_figures(rows["grey"])}
    if per_clip:
        result["by_clip"] = by_clip(pictures, rows)
    return result


def verdict(bsd: dict, clips: dict | None) -> list[tuple[bool, str]]:
    """Each condition of the ship rule, met or not, in words."""
    c, r, g = bsd["candidate"], bsd["reference_matched"], bsd["grey"]
    checks = [
        (c["psnr"] > g["psnr"] and c["ciede2000"] < g["ciede2000"],
         f"BSD100, against grey: PSNR {c['psnr']:.2f} vs {g['psnr']:.2f}, CIEDE2000 {c['ciede2000']:.2f} vs {g['ciede2000']:.2f}"),
        (c["psnr"] >= PSNR_FLOOR, f"BSD100, PSNR at least {PSNR_FLOOR:.1f}: {c['psnr']:.2f}"),
        (c["ciede2000"] < r["ciede2000"],
         f"BSD100, against the reference at colourfulness {r['colourfulness']:.1f} (× {bsd['reference_scale']:.2f}): "
         f"CIEDE2000 {c['ciede2000']:.2f} vs {r['ciede2000']:.2f} (PSNR {c['psnr']:.2f} vs {r['psnr']:.2f}, not required)"),
    ]
    if clips is not None:
        c, r = clips["candidate"], clips["reference_matched"]
        checks.append((c["ciede2000"] <= r["ciede2000"],
                       f"clip frames ({clips['pictures']}), against the reference at colourfulness {r['colourfulness']:.1f}: "
                       f"CIEDE2000 {c['ciede2000']:.2f} vs {r['ciede2000']:.2f}"))
    return checks


def recipe_verdict(end_points: list[tuple[str, dict, dict | None]]) -> tuple[list[tuple[bool, str]], int]:
    """The ship rule over a recipe's end points, each (name, BSD100 figures, clips' figures or None):
    each meets the BSD100 conditions, and the clips' CIEDE2000 difference from the reference, averaged
    over them, is at most 0. Returns the checks and the index of the end point to ship (lowest BSD100
    CIEDE2000). One end point gives verdict()'s checks exactly."""
    if len(end_points) == 1:
        _, bsd, clips = end_points[0]
        return verdict(bsd, clips), 0
    checks = [(ok, f"{name}: {what}") for name, bsd, _ in end_points for ok, what in verdict(bsd, None)]
    with_clips = [clips for _, _, clips in end_points if clips is not None]
    if with_clips:
        differences = [c["candidate"]["ciede2000"] - c["reference_matched"]["ciede2000"] for c in with_clips]
        mean = float(np.mean(differences))
        checks.append((mean <= 0, f"clip frames, over {len(with_clips)} end points: CIEDE2000 minus the reference's at each one's "
                                  f"colourfulness {', '.join(f'{d:+.3f}' for d in differences)}, mean {mean:+.3f} (at most 0)"))
    best = min(range(len(end_points)), key=lambda i: end_points[i][1]["candidate"]["ciede2000"])
    return checks, best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", metavar="candidate",
                        help="generator weights (.safetensors) to judge; several: one recipe's end points (seeds)")
    parser.add_argument("--against", default="default", help="reference weights (default: the shipped model)")
    parser.add_argument("--photos", type=Path, default=SHARED / "eval" / "bsd100", help="held-out colour photos")
    parser.add_argument("--clips", type=Path, default=SHARED / "video", help="colour films and frame folders ('' to leave out)")
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("judge"), help="folder for judge.json and the cached clip frames")
    args = parser.parse_args(argv)

    sets = {"bsd100": load_pictures(args.photos)}
    if str(args.clips) not in ("", "."):
        frames = clip_frames(args.clips, args.out / "clip-frames")
        sets["clip_frames"] = [Picture(f"{folder.name}/{p.name}", p.truth, p.L) for folder in sorted(frames.iterdir())
                               if not folder.name.startswith(".") for p in load_pictures(folder)]
    reference_model = open_model(args.against, args.render_size)
    references = {}
    for name, pictures in sets.items():
        print(f"{name}: {len(pictures)} pictures", file=sys.stderr)
        references[name] = predict(reference_model, pictures)
    shown = {name: list(range(0, len(pictures), max(1, len(pictures) // SHEET_ROWS_PER_SET)))[:SHEET_ROWS_PER_SET]
             for name, pictures in sets.items()}  # the sheet's pictures, spread over each set
    results, sheet_colours = [], []  # per candidate: each set's figures, and its colours of the sheet's pictures
    for path in args.candidates:
        model = open_model(path, args.render_size)
        result, kept = {}, {}
        for name, pictures in sets.items():
            colours = predict(model, pictures)
            result[name] = compare(pictures, colours, references[name], per_clip=name == "clip_frames")
            kept[name] = [colours[i] for i in shown[name]]
        results.append(result)
        sheet_colours.append(kept)
    checks, best = recipe_verdict([(Path(c).parent.name or c, r["bsd100"], r.get("clip_frames")) for c, r in zip(args.candidates, results)])
    ship = all(ok for ok, _ in checks)
    sheet_rows = [(sets[name][i], colour, references[name][i], results[best][name]["reference_scale"])
                  for name in sets for i, colour in zip(shown[name], sheet_colours[best][name])]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "judge-sheet.jpg").write_bytes(sheet_jpeg(sheet_rows))
    report = {"candidate": args.candidates[best], "against": args.against, "ship": ship,
              "checks": [{"met": ok, "what": what} for ok, what in checks], **results[best]}
    if len(args.candidates) > 1:
        report["end_points"] = [{"candidate": c, **r} for c, r in zip(args.candidates, results)]
    (args.out / "judge.json").write_text(json.dumps(report, indent=1))
    for path, result in zip(args.candidates, results):
        if len(args.candidates) > 1:
            print(f"\n== {path}")
        for name, r in result.items():
            print(f"\n{name} ({r['pictures']} pictures)   PSNR  CIEDE2000  colourfulness")
            for row, label in (("candidate", "candidate"), ("reference", "reference"),
                               ("reference_matched", f"reference × {r['reference_scale']:.2f}"), ("grey", "grey")):
                f = r[row]
                print(f"  {label:<22} {f['psnr']:6.2f} {f['ciede2000']:10.2f} {f['colourfulness']:14.1f}")
            if "by_clip" in r:
                print(f"  by clip, CIEDE2000: candidate / reference × {r['reference_scale']:.2f} / grey (frames)")
                for clip, f in r["by_clip"].items():
                    print(f"    {clip:<24} {f['candidate']:5.2f} / {f['reference_matched']:5.2f} / {f['grey']:5.2f}  ({f['pictures']})")
    print()
    for ok, what in checks:
        print(f"{'met    ' if ok else 'NOT met'}  {what}")
    chosen = f"; the end point to ship: {args.candidates[best]}" if len(args.candidates) > 1 and ship else ""
    print(f"\n{'ship' if ship else 'do not ship'}{chosen} ({args.out / 'judge.json'}; the pictures: {args.out / 'judge-sheet.jpg'})")
    return 0 if ship else 1

if __name__ == "__main__":
    sys.exit(main())
