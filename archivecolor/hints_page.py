"""`archivecolor hints PICTURE`: one self-contained HTML page to place colour hints on a picture
(or on one frame of a film: `archivecolor hints reel.mp4 --frame 1200`).

The page holds the grey picture (as it is displayed, after its EXIF orientation) and a little
script: click a point, pick a colour (a picker, or a swatch of colours archivists often know),
see the list, save `NAME.hints.json` (the file `folder --hints` reads; for a film, `video --hints`,
each point with its frame, the points of the film's other frames kept). No network, no server:
it opens from disk in any browser. With a colorizer it also shows the picture coloured without
and with the hints already in its hints file, computed when the page is written.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .hints import HINTS_SUFFIX

PAGE_WIDTH = 1000  # pixels the picture is shown at, at most (clicks map back to the source's pixels)
KNOWN_COLOURS = (  # (name, sRGB): what records and memories often say
    ("navy uniform", "#1f2a44"), ("khaki", "#8f7f55"), ("field grey", "#5d6152"), ("red brick", "#8e3b2e"),
    ("barn red", "#7c1f16"), ("grass", "#4f7a2a"), ("sky", "#7fa6d0"), ("light skin", "#e0b89a"),
    ("dark skin", "#7a5138"), ("blond", "#c9a86a"), ("auburn", "#7b3f23"), ("dress green", "#2f6b4f"),
)


def _stem(picture: Path) -> str:
    return picture.name if picture.is_dir() else picture.stem  # a reel's folder keeps its whole name


def hints_path_for(picture: Path) -> Path:
    """plate-12.tif -> plate-12.hints.json beside it; the reel folder reel1/ -> reel1.hints.json beside it."""
    return picture.with_name(_stem(picture) + HINTS_SUFFIX)


def page_path_for(picture: Path, frame: int | None = None) -> Path:
    """plate-12.tif -> plate-12.hints.html beside it; reel.mp4 (or the reel folder reel/), frame
    1200 -> reel.frame1200.hints.html."""
    return picture.with_name(_stem(picture) + ("" if frame is None else f".frame{frame}") + ".hints.html")


def reel_frame(folder: Path, frame: int) -> np.ndarray:
    """L* of one frame of a reel of numbered frames, counted from 0 in the reel's order (as `video`
    counts them). Raises HintsError for a folder that is no reel or a frame it does not have."""
    from .hints import HintsError
    from .render import full_luminance
    from .imageio import read_stills
    from .video.sequence import find_sequence

    sequence = find_sequence(folder)
    if sequence is None:
        raise HintsError("not a reel of numbered frames (name one picture, or a film with --frame)")
    if frame >= len(sequence.frames):
        raise HintsError(f"frame {frame} is not in the reel (frames 0–{len(sequence.frames) - 1})")
    still = read_stills(sequence.frames[frame])[0]
    return full_luminance(still.pixels, still.metadata.icc)


def film_frame(film: Path, frame: int, ffmpeg: str | None = None) -> np.ndarray:
    """L* of one frame of a film, numbered as `video` numbers them (from 0). Raises HintsError
    for a frame the film does not have, VideoError for a film that cannot be read."""
    from .hints import HintsError
    from .video.ffmpeg import find_ffmpeg, probe
    from .video.stream import luminance_frames

    info = probe(film)
    if info.frames and frame >= info.frames:
        raise HintsError(f"frame {frame} is not in the film (frames 0–{info.frames - 1})")
    got = list(luminance_frames(find_ffmpeg(ffmpeg), film, info, only_frame=frame))
    if not got:
        raise HintsError(f"frame {frame} is not in the film (it decodes to fewer frames)")
    return got[0]


def _jpeg_data_url(rgb: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


def _page_size(hw: tuple[int, int]) -> tuple[int, int]:
    height, width = hw
    scale = min(1.0, PAGE_WIDTH / width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _colour_rgb(L: np.ndarray, ab: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    import cv2

    from .lab import lab_to_srgb

    small_L = cv2.resize(L, size_hw[::-1], interpolation=cv2.INTER_AREA)
    small_ab = cv2.resize(ab, size_hw[::-1], interpolation=cv2.INTER_LINEAR)
    return (lab_to_srgb(np.dstack([small_L, small_ab])) * 255 + 0.5).astype(np.uint8)


def build_page(picture: Path, colorizer=None, hints_file: Path | None = None, frame: int | None = None, ffmpeg: str | None = None) -> str:
    """The page for `picture`, or for frame `frame` of the film `picture` (its existing hints,
    from `hints_file` or NAME.hints.json beside it, already placed); with `colorizer`, the two
    precomputed previews. Raises BadInput, HintsError (VideoError for a film)."""
    from .hints import parse_hints, read_hints_text
    from .imageio import read_stills
    from .render import full_luminance

    if frame is None:
        still = read_stills(picture)[0]
        L = full_luminance(still.pixels, still.metadata.icc)
    else:
        L = reel_frame(picture, frame) if picture.is_dir() else film_frame(picture, frame, ffmpeg)
    height, width = L.shape
    hints_file = hints_file or hints_path_for(picture)
    text = read_hints_text(hints_file) if hints_file.exists() else '{"points": []}'
    # the checks of `folder --hints` (and of `video --hints`): a bad file fails here
    hints = parse_hints(text, str(hints_file), (width, height), film=frame is not None)
    existing = json.loads(text)["points"]
    hints = [hint for hint in hints if hint.frame == frame]  # on this frame (a still's all have None)
    size = _page_size((height, width))
    previews = {}
    if colorizer is not None:
        plain = colorizer.prepare(L)
        colorizer.predict([plain])
        previews["without hints"] = _jpeg_data_url(_colour_rgb(L, plain.ab, size))
        if hints and not getattr(colorizer.backend, "hint_channels", 0):
            previews["with hints: this model takes no hints"] = previews["without hints"]
        elif hints:
            hinted = colorizer.prepare(L)
            hinted.add_hints(hints)
            colorizer.predict([hinted])
            previews[f"with its {len(hints)} hint{'s' * (len(hints) != 1)}"] = _jpeg_data_url(_colour_rgb(L, hinted.ab, size))
    facts = {"name": picture.name, "save_as": hints_path_for(picture).name, "width": width, "height": height,
             "scale": width / size[1], "points": existing, "known": KNOWN_COLOURS, "frame": frame}
    return PAGE.replace("$TITLE", html.escape(picture.name)).replace("$PICTURE", _jpeg_data_url(_colour_rgb(L, np.zeros((*L.shape, 2), np.float32), size))).replace(
        "$PREVIEWS", "".join(f'<figure><img src="{url}" alt="{html.escape(label)}"><figcaption>{html.escape(label)}</figcaption>'
                             f"</figure>" for label, url in previews.items())).replace("$FACTS", json.dumps(facts).replace("</", "<\\/"))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Colour hints: $TITLE</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
#stage { position: relative; display: inline-block; cursor: crosshair; user-select: none; }
#stage img { display: block; }
.mark { position: absolute; width: 14px; height: 14px; margin: -9px 0 0 -9px; border: 2px solid #fff;
        border-radius: 50%; box-shadow: 0 0 0 1px #000; pointer-events: none; }
#tools { margin: 10px 0; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.swatch { width: 22px; height: 22px; border: 1px solid #555; display: inline-block; cursor: pointer; vertical-align: middle; }
#list li { margin: 2px 0; } #list .chip { display: inline-block; width: 12px; height: 12px; border: 1px solid #555; }
figure { display: inline-block; margin: 8px 12px 0 0; } figcaption { text-align: center; color: #555; }
</style></head><body>
<h2>Colour hints for $TITLE</h2>
<p>Click the picture where you know a colour; the hint takes the colour chosen below (its
lightness is not used: only its hue and strength). Save, then put the file beside the picture,
or in the same place of a hints tree, and run <code>archivecolor folder SCANS --hints HINTS</code>
(a film's frame: <code>archivecolor video FILM --hints FILE</code>; a hint holds for the frame's
shot and follows what it was placed on; the hints of the film's other frames are kept).</p>
<div id="tools">
  <label>colour <input type="color" id="colour" value="#2f4f8f"></label>
  <span id="swatches"></span>
  <label>radius (source pixels, empty: automatic) <input type="number" id="radius" min="1" step="1" style="width: 5em"></label>
  <button id="save">Save hints</button> <span id="saved"></span>
</div>
<div id="stage"><img id="picture" src="$PICTURE" alt="the picture, grey"></div>
<ol id="list"></ol>
<div id="previews">$PREVIEWS</div>
<script>
const facts = $FACTS;
const points = facts.points.map(p => Object.assign({}, p));
const here = p => facts.frame === null || p.frame === facts.frame;  // a film's page marks this frame's points
const stage = document.getElementById("stage"), list = document.getElementById("list");
const colour = document.getElementById("colour"), radius = document.getElementById("radius");
for (const [name, hex] of facts.known) {
  const s = document.createElement("span");
  s.className = "swatch"; s.title = name; s.style.background = hex; s.dataset.colour = hex;
  s.addEventListener("click", () => { colour.value = hex; });
  document.getElementById("swatches").appendChild(s);
}
function draw() {
  stage.querySelectorAll(".mark").forEach(m => m.remove());
  list.innerHTML = "";
  points.forEach((p, i) => {
    if (here(p)) {
      const m = document.createElement("div");
      m.className = "mark"; m.style.left = (p.x / facts.scale) + "px"; m.style.top = (p.y / facts.scale) + "px";
      m.style.background = p.color; stage.appendChild(m);
    }
    const li = document.createElement("li");
    li.innerHTML = `<span class="chip" style="background:${p.color}"></span> ` + (p.frame !== undefined ? `frame ${p.frame}, ` : "") +
      `x ${p.x}, y ${p.y}, ${p.color}` + (p.radius ? `, radius ${p.radius}` : "") + ` <button data-i="${i}">remove</button>`;
    li.querySelector("button").addEventListener("click", () => { points.splice(i, 1); draw(); });
    list.appendChild(li);
  });
}
stage.addEventListener("click", e => {
  const box = document.getElementById("picture").getBoundingClientRect();
  const x = Math.min(facts.width - 1, Math.max(0, Math.round((e.clientX - box.left) * facts.scale)));
  const y = Math.min(facts.height - 1, Math.max(0, Math.round((e.clientY - box.top) * facts.scale)));
  const p = {x: x, y: y, color: colour.value};
  if (facts.frame !== null) p.frame = facts.frame;
  if (radius.value) p.radius = Number(radius.value);
  points.push(p); draw();
});
document.getElementById("save").addEventListener("click", () => {
  const blob = new Blob([JSON.stringify({points: points}, null, 1) + "\\n"], {type: "application/json"});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = facts.save_as;
  document.body.appendChild(a); a.click(); a.remove();
  document.getElementById("saved").textContent = `saved ${points.length} hints as ${facts.save_as}`;
});
draw();
</script></body></html>
"""
