"""`archivecolor evaluate`: desaturate colour photos, colorize them, compare with the originals.

Every figure comes with its floor measured in the same run: the grey baseline (a = b = 0, the
photo left black-and-white). A model that does not beat grey on PSNR and CIEDE2000 is worse
than doing nothing.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .colorizer import Colorizer
from .data import find_images, read_rgb
from .hints import truth_hints
from .lab import lab_to_srgb, srgb_to_lab
from .metrics import ciede2000, colourfulness, psnr, ssim
from .render import recombine_into

HINT_SEED = 0  # --hints-from-truth: the same points for the same photo on every run and every model
THUMB_HEIGHT = 128  # pixels, in the HTML report
STUDY_HEIGHT = 320  # pixels, in the forced-choice study page
SHEET_HEIGHT = 200  # pixels per picture in sheet.jpg
SHEET_ROWS = 8  # photos in sheet.jpg (the first ones, in name order)
SHEET_GAP, SHEET_HEADER, SHEET_CAPTION = 8, 26, 24  # pixels: between panels, column titles, a row's figures
FIGURES = ("psnr", "ssim", "ciede2000", "colourfulness")
# which way each figure is better; colourfulness is best near the truth's, not at its largest
BETTER = {"psnr": "↑", "ssim": "↑", "ciede2000": "↓", "colourfulness": "≈ truth"}


def verdict(summary: dict) -> str:
    """In words: did the model beat leaving the pictures grey, on PSNR and on CIEDE2000?"""
    model, grey = summary["model"], summary["grey"]
    psnr, delta_e = model["psnr"] > grey["psnr"], model["ciede2000"] < grey["ciede2000"]
    if psnr and delta_e:
        return (f"the model beat leaving them grey on both PSNR ({model['psnr']:.2f} against {grey['psnr']:.2f} dB) and "
                f"CIEDE2000 ({model['ciede2000']:.2f} against {grey['ciede2000']:.2f}), at colourfulness "
                f"{model['colourfulness']:.1f} (truth {summary['truth_colourfulness']:.1f})")
    if not psnr and not delta_e:
        return "the model did NOT beat leaving them grey: worse on PSNR and on CIEDE2000"
    better, worse = ("PSNR", "CIEDE2000") if psnr else ("CIEDE2000", "PSNR")
    return f"the model beat leaving them grey on {better} only, not on {worse}"


@dataclass
class ImageScore:
    name: str
    model: dict
    grey: dict
    truth_colourfulness: float


@dataclass
class Evaluation:
    backend: str
    render_size: int
    images: list[ImageScore] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    fid: dict | None = None  # {"model": …, "grey": …} when Inception weights were given
    chroma_gain: float = 1.0  # the model's a/b was scaled by this before scoring (evaluate --chroma-gain)
    with_hints: dict = field(default_factory=dict)  # N -> summary with N hints from the truth (evaluate --hints-from-truth)

    def mean(self, which: str, figure: str) -> float:
        values = [getattr(s, which)[figure] for s in self.images]
        return float(np.mean(values)) if values else float("nan")

    def summary(self) -> dict:
        return {
            "images": len(self.images),
            "model": {f: self.mean("model", f) for f in FIGURES},
            "grey": {f: self.mean("grey", f) for f in FIGURES},
            "truth_colourfulness": float(np.mean([s.truth_colourfulness for s in self.images])) if self.images else float("nan"),
            **({"fid": self.fid} if self.fid else {}),
        }

    def to_json(self) -> str:
        return json.dumps(
            {"backend": self.backend, "render_size": self.render_size, "chroma_gain": self.chroma_gain, "seconds": round(self.seconds, 2), "summary": self.summary(),
             "with_hints_from_truth": {str(n): s for n, s in self.with_hints.items()}, "failed": self.failed, "per_image": [s.__dict__ for s in self.images]},
            indent=1,
        )


def score(prediction: np.ndarray, truth: np.ndarray) -> dict:
    """Figures for one (H, W, 3) uint8 prediction against its (H, W, 3) uint8 truth."""
    p = torch.from_numpy(prediction.astype(np.float32) / 255).permute(2, 0, 1)[None]
    t = torch.from_numpy(truth.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return {
        "psnr": psnr(p, t).item(),
        "ssim": ssim(p, t).item(),
        "ciede2000": float(ciede2000(srgb_to_lab(prediction), srgb_to_lab(truth)).mean()),
        "colourfulness": colourfulness(p).item(),
    }


def evaluate_folder(images_dir: Path, colorizer: Colorizer, batch_size: int = 8, limit: int | None = None,
                    thumbnails: list | None = None, on_image=None, study_pairs: list | None = None,
                    fid_images: dict | None = None, sheet_rows: list | None = None, hints_from_truth: int = 0) -> Evaluation:
    """Score every colour photo below `images_dir`.

    Optionally collects (name, grey, model, truth) thumbnails for the report,
    (name, model, truth) larger images for the forced-choice study page, 299² copies
    of the model, grey and truth images for FID (fid_images: {"model": [], "grey": [], "truth": []}),
    and (grey, model, truth) RGB arrays of the first SHEET_ROWS photos for `sheet_jpeg`.
    `hints_from_truth` N > 0 gives each photo N colour hints at random points (seeded by its name),
    taken from its true colours: what the model does with an archivist's hints.
    """
    evaluation = Evaluation(colorizer.backend.name, colorizer.render_size, chroma_gain=colorizer.chroma_gain)
    started = time.perf_counter()
    paths = find_images(Path(images_dir))[:limit]
    for start in range(0, len(paths), batch_size):
        chunk = []
        for path in paths[start : start + batch_size]:
            name = path.relative_to(images_dir).as_posix()
            try:
                rgb = read_rgb(path)
            except (ValueError, OSError) as exc:
                evaluation.failed[name] = str(exc)
                continue
            if rgb.dtype == np.uint16:
                rgb = (rgb // 257).astype(np.uint8)
            lab = srgb_to_lab(rgb)
            L = lab[..., 0]  # the desaturated input: luminance only
            job = colorizer.prepare(L)
            if hints_from_truth:
                job.add_hints(truth_hints(lab[..., 1:], hints_from_truth, np.random.default_rng([HINT_SEED, zlib.crc32(name.encode())])))
            chunk.append((name, rgb, L, job))
        colorizer.predict([job for *_, job in chunk], batch_size)
        for name, truth, L, job in chunk:
            prediction = np.empty_like(truth)
            recombine_into(prediction, L, job.ab)
            grey = (lab_to_srgb(np.dstack([L, np.zeros((*L.shape, 2), np.float32)])) * 255 + 0.5).astype(np.uint8)
            t = torch.from_numpy(truth.astype(np.float32) / 255).permute(2, 0, 1)[None]
            evaluation.images.append(ImageScore(name, score(prediction, truth), score(grey, truth), colourfulness(t).item()))
            if thumbnails is not None:
                thumbnails.append((name, _thumb(grey), _thumb(prediction), _thumb(truth)))
            if fid_images is not None:
                for key, image in (("model", prediction), ("grey", grey), ("truth", truth)):
                    fid_images[key].append(cv2.resize(image, (299, 299), interpolation=cv2.INTER_AREA))
            if sheet_rows is not None and len(sheet_rows) < SHEET_ROWS:
                sheet_rows.append(tuple(_resized(image, SHEET_HEIGHT) for image in (grey, prediction, truth)))
            if study_pairs is not None:
                study_pairs.append((name, _thumb(prediction, STUDY_HEIGHT), _thumb(truth, STUDY_HEIGHT)))
            if on_image is not None:
                on_image()
    evaluation.seconds = time.perf_counter() - started
    return evaluation


def _resized(rgb: np.ndarray, height: int) -> np.ndarray:
    scale = height / rgb.shape[0]
    return cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)


def _thumb(rgb: np.ndarray, height: int = THUMB_HEIGHT) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(_resized(rgb, height), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


def sheet_jpeg(evaluation: Evaluation, rows: list) -> bytes:
    """One picture to look at instead of a table: grey input | colorized | original, a row per photo.

    Under each row: the photo's name and its CIEDE2000 and PSNR beside the grey baseline's, so
    the picture never shows colour without saying how far it is from the truth.
    """
    from PIL import Image, ImageDraw, ImageFont

    gap, header, caption = SHEET_GAP, SHEET_HEADER, SHEET_CAPTION
    font = ImageFont.load_default(size=15)
    cell = max(panel.shape[1] for row in rows for panel in row)  # panels centred in equal columns
    sheet = Image.new("RGB", (3 * cell + 4 * gap, header + len(rows) * (SHEET_HEIGHT + caption) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(("grey input", "archivecolor", "original")):
        draw.text((gap + column * (cell + gap) + cell // 2, 5), title, fill="black", font=font, anchor="ma")
    for index, (row, scored) in enumerate(zip(rows, evaluation.images)):
        top = header + index * (SHEET_HEIGHT + caption)
        for column, panel in enumerate(row):
            sheet.paste(Image.fromarray(panel), (gap + column * (cell + gap) + (cell - panel.shape[1]) // 2, top))
        model, grey = scored.model, scored.grey
        draw.text((gap, top + SHEET_HEIGHT + 3),
                  f"{scored.name}: CIEDE2000 {model['ciede2000']:.2f} (grey {grey['ciede2000']:.2f}), "
                  f"PSNR {model['psnr']:.2f} dB (grey {grey['psnr']:.2f})", fill="#333", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def html_report(evaluation: Evaluation, thumbnails: list, title: str) -> str:
    """A self-contained page: the figures beside the grey baseline, then before | after | truth."""
    s = evaluation.summary()
    better = {"psnr": max, "ssim": max, "ciede2000": min}
    rows = []
    for f in FIGURES:
        m, g = s["model"][f], s["grey"][f]
        mark = ""
        if f in better:
            mark = " ✔" if better[f](m, g) == m and m != g else " ✘"
        rows.append(f"<tr><td>{f}</td><td>{m:.3f}{mark}</td><td>{g:.3f}</td></tr>")
    rows.append(f"<tr><td>colourfulness of the truth</td><td colspan=2>{s['truth_colourfulness']:.3f}</td></tr>")
    cards = []
    for (name, grey, model, truth), scored in zip(thumbnails, evaluation.images):
        cards.append(
            f"<figure><img src='{grey}'><img src='{model}'><img src='{truth}'>"
            f"<figcaption>{html.escape(name)} — PSNR {scored.model['psnr']:.2f} dB (grey {scored.grey['psnr']:.2f}), "
            f"ΔE2000 {scored.model['ciede2000']:.2f} (grey {scored.grey['ciede2000']:.2f})</figcaption></figure>"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
figure{{display:inline-block;margin:8px}}img{{margin-right:2px}}figcaption{{font-size:12px;color:#444}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{s['images']} images, backend {html.escape(evaluation.backend)}, render size {evaluation.render_size}. Each photo is desaturated,
colorized, and compared with its original. ✔ / ✘: better / not better than leaving it grey.</p>
<table><tr><th>figure</th><th>model</th><th>grey baseline</th></tr>{''.join(rows)}</table>
<h2>grey input | colorized | original</h2>{''.join(cards)}</body></html>"""


def study_page(pairs: list, title: str, seed: int = 0) -> str:
    """A self-contained two-alternative forced-choice page: which of two pictures looks more real?

    Each trial shows the colorized and the original photo side by side in a random order; the
    participant clicks one. Answers stay in the browser and are saved with a button as a JSON
    file (nothing is sent anywhere). The share of trials where the colorized one was picked is
    the "fooling rate" of the pix2pix paper's perceptual study.
    """
    rng = np.random.default_rng(seed)
    trials = []
    for name, model, truth in pairs:
        model_left = bool(rng.integers(0, 2))
        left, right = (model, truth) if model_left else (truth, model)
        trials.append({"name": name, "left": left, "right": right, "model_side": "left" if model_left else "right"})
    order = rng.permutation(len(trials)).tolist()
    payload = json.dumps([trials[i] for i in order])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;text-align:center}}img{{height:{STUDY_HEIGHT}px;margin:8px;cursor:pointer;border:3px solid transparent}}
img:hover{{border-color:#36c}}#done{{display:none}}</style></head><body>
<h1>Which photo looks more real?</h1>
<p>Click the one that looks like a real colour photograph. <span id="progress"></span></p>
<div id="trial"><img id="left" alt="left"><img id="right" alt="right"></div>
<div id="done"><p>Thank you. <span id="summary"></span></p><button id="save">Save answers (JSON)</button></div>
<script>
const trials = {payload};
const answers = [];
let i = 0, shownAt = 0;
function show() {{
  if (i >= trials.length) {{
    document.getElementById('trial').style.display = 'none';
    document.getElementById('done').style.display = 'block';
    const fooled = answers.filter(a => a.picked_model).length;
    document.getElementById('summary').textContent = `The colorized photo was picked in ${{fooled}} of ${{answers.length}} trials.`;
    return;
  }}
  document.getElementById('left').src = trials[i].left;
  document.getElementById('right').src = trials[i].right;
  document.getElementById('progress').textContent = `(${{i + 1}} / ${{trials.length}})`;
  shownAt = performance.now();
}}
function pick(side) {{
  const t = trials[i];
  answers.push({{name: t.name, picked: side, picked_model: side === t.model_side, ms: Math.round(performance.now() - shownAt)}});
  i += 1; show();
}}
document.getElementById('left').onclick = () => pick('left');
document.getElementById('right').onclick = () => pick('right');
document.getElementById('save').onclick = () => {{
  const blob = new Blob([JSON.stringify({{title: {json.dumps(title)}, answers}}, null, 1)], {{type: 'application/json'}});
  const a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = 'study-answers.json'; a.click();
}};
show();
</script></body></html>"""


def evaluate_video(clip: Path, colorizer: Colorizer, smoothing=None, batch_size: int = 8, max_frames: int | None = None,
                   on_frames=None) -> dict:
    """Temporal figures of a colour clip, desaturated and colorized: per-frame vs smoothed vs the truth.

    The truth's own figures are the floor: real footage changes colour a little from frame to
    frame too. Everything is measured at render size, where the colour is predicted.
    """
    import subprocess

    from .video.ffmpeg import decode_command, find_ffmpeg, probe
    from .video.smooth import SmoothingConfig, TemporalSmoother
    from .video.temporal import TemporalMeter

    info = probe(clip)
    height, width = info.display_hw
    frame_bytes = height * width * 3
    decoder = subprocess.Popen(decode_command(find_ffmpeg(), clip, "rgb24"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    smoother = TemporalSmoother(smoothing or SmoothingConfig())
    meters = {"per_frame": TemporalMeter(), "smoothed": TemporalMeter(), "truth": TemporalMeter()}
    frames = 0

    def flush(batch):
        colorizer.predict([job for job, _ in batch], batch_size)
        for job, truth_ab in batch:
            meters["per_frame"].add(job.L_render, job.ab)
            meters["smoothed"].add(job.L_render, smoother(job.L_render, job.ab))
            meters["truth"].add(job.L_render, truth_ab)
        if on_frames is not None:
            on_frames(len(batch))

    try:
        batch = []
        while max_frames is None or frames < max_frames:
            data = decoder.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            rgb = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            lab = srgb_to_lab(rgb)
            job = colorizer.prepare(lab[..., 0])
            rh, rw = job.geometry.render_hw
            truth_ab = cv2.resize(lab[..., 1:], (rw, rh), interpolation=cv2.INTER_AREA)
            batch.append((job, truth_ab))
            frames += 1
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    finally:
        decoder.kill()
        decoder.wait()
    return {"clip": str(clip), "frames": frames, "scene_cuts": smoother.cuts, **{k: m.result() for k, m in meters.items()}}
