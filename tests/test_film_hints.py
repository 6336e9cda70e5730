"""Hints on a film: held for their shot, carried by the picture's motion, dropped where their point is covered or leaves."""

import json
from pathlib import Path

import numpy as np
import pytest

from archivecolor.hints import Hint, HintsError
from archivecolor.video.film_hints import read_film_hints, track_hints

H, W = 64, 96  # render size of the drawn frames; the "full" picture is twice that


def textured(seed: int) -> np.ndarray:
    """A still background with structure (flow needs texture; the cut detector needs a layout)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(20, 70, (8, 12)).astype(np.float32)
    import cv2

    return cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 1.0, (H, W)).astype(np.float32)


def square_at(background: np.ndarray, x: int, y: int, side: int = 14, L: float = 95.0) -> np.ndarray:
    frame = background.copy()
    frame[y : y + side, x : x + side] = L
    frame[y + 3 : y + 6, x + 3 : x + 6] = 60.0  # a mark inside, so the square's own flow is found
    return frame


def moving_square(count: int, step: int = 2, x0: int = 10, y0: int = 25, seed: int = 1) -> list[np.ndarray]:
    background = textured(seed)
    return [square_at(background, x0 + step * t, y0) for t in range(count)]


def full_px(render_x: float, render_y: float) -> tuple[float, float]:
    return render_x * 2, render_y * 2


def test_a_hint_follows_a_moving_square_forward_and_back_from_its_frame():
    frames = moving_square(20)
    x, y = full_px(10 + 2 * 8 + 7, 25 + 7)  # the square's middle on frame 8
    tracks, shots, seen = track_hints(frames, [Hint(x, y, 40.0, -30.0, frame=8)], (2 * H, 2 * W), 0.3, 6.0)
    assert seen == 20 and shots == [(0, 19)]
    (track,) = tracks
    assert (track.first, track.last) == (0, 19)  # the whole shot, both ways from frame 8
    for t in range(20):
        hint = track.at(t)
        assert abs(hint.x / 2 - (10 + 2 * t + 7)) <= 1.5, (t, hint.x / 2)  # on the square as it moves
        assert abs(hint.y / 2 - 32) <= 1.5
        assert (hint.a, hint.b, hint.frame) == (40.0, -30.0, 8)


def test_a_hint_stops_at_a_cut_and_is_not_carried_into_the_next_shot():
    frames = moving_square(10) + [textured(seed=7)[::-1].copy() for _ in range(8)]  # a hard cut at frame 10
    x, y = full_px(10 + 2 * 3 + 7, 32)
    decoded = []
    tracks, shots, seen = track_hints((decoded.append(t) or L for t, L in enumerate(frames)), [Hint(x, y, 40.0, -30.0, frame=3)],
                                      (2 * H, 2 * W), 0.3, 6.0)
    (track,) = tracks
    assert (track.first, track.last) == (0, 9)
    assert shots == [(0, 9)]
    assert all(track.at(t) is None for t in range(10, 18))
    assert len(decoded) == seen == 11  # no hint after the cut: the rest of the film is not decoded for the hints


def test_a_hint_whose_point_is_covered_or_leaves_the_picture_is_dropped_for_those_frames():
    frames = moving_square(40, step=3)  # the square leaves the picture on the right after frame ~28
    x, y = full_px(10 + 7, 32)
    tracks, _, _ = track_hints(frames, [Hint(x, y, 40.0, -30.0, frame=0)], (2 * H, 2 * W), 0.3, 6.0)
    (track,) = tracks
    assert track.first == 0 and 20 <= track.last < 29, track.last  # held while the square is there
    assert track.at(35) is None

    background = textured(3)  # a still dark object, then a bright card slides over the hint's point
    frames = [square_at(background, 40, 25, L=30.0) for _ in range(5)]
    card = [60 - 4 * k for k in range(1, 6)] + [40] * 6  # it slides in, then stays over the point (no cut: small)
    frames += [square_at(square_at(background, 40, 25, L=30.0), x, 24, side=16, L=98.0) for x in card]
    tracks, _, _ = track_hints(frames, [Hint(*full_px(47, 32), 10.0, 10.0, frame=0)], (2 * H, 2 * W), 0.3, 6.0)
    (track,) = tracks
    assert track.last < len(frames) - 1  # covered: dropped
    assert all(track.at(t) is None for t in range(track.last + 1, len(frames)))


def test_hints_on_two_shots_are_listed_per_shot():
    frames = moving_square(10) + moving_square(10, seed=9, x0=40)
    hints = [Hint(*full_px(10 + 2 * 2 + 7, 32), 5.0, 5.0, frame=2), Hint(*full_px(40 + 2 * 5 + 7, 32), -5.0, 5.0, frame=15)]
    tracks, shots, _ = track_hints(frames, hints, (2 * H, 2 * W), 0.3, 6.0)
    assert shots == [(0, 9), (10, 19)]
    assert [(t.point, t.first, t.last) for t in tracks] == [(1, 0, 9), (2, 10, 19)]


@pytest.mark.parametrize("points, says", [
    ([{"x": 5, "y": 5, "color": "#ff0000"}], "names the frame it was placed on"),
    ([{"x": 5, "y": 5, "color": "#ff0000", "frame": 30}], "frame 30 is not in the film"),
    ([{"x": 500, "y": 5, "color": "#ff0000", "frame": 3}], "outside the picture"),
    ([{"x": 5, "y": 5, "color": "red", "frame": 3}], "not a hex sRGB value"),
])
def test_a_bad_film_hint_is_refused_naming_the_file_and_the_entry(tmp_path, points, says):
    path = tmp_path / "reel.hints.json"
    path.write_text(json.dumps({"points": [{"x": 1, "y": 1, "color": "#112233", "frame": 0}] + points}))
    with pytest.raises(HintsError) as caught:
        read_film_hints(path, (120, 160), frames=25)
    assert str(path) in str(caught.value) and "point 2" in str(caught.value) and says in str(caught.value)


# --- through the film pipeline ------------------------------------------------------------------
import subprocess  # noqa: E402

from archivecolor.colorizer import Colorizer  # noqa: E402
from archivecolor.video.ffmpeg import find_ffmpeg  # noqa: E402

SQUARE_FRAMES, OTHER_FRAMES = 20, 10  # a shot of a moving square, a hard cut, another shot


class HintEcho:
    """A stand-in network that colours exactly where it is given hints, and nowhere else: what a
    film's colour then shows is where the pipeline placed the hints on each frame (given to the
    network: no spreading, hint_spread=0)."""

    name, size_multiple, hint_channels = "hint echo", 16, 3

    def run(self, l_net, hints=None):
        if hints is None:
            return np.zeros((l_net.shape[0], 2, *l_net.shape[2:]), np.float32)
        return (hints[:, :2] * hints[:, 2:3]).astype(np.float32)


def square_film(path, codec="ffv1"):
    """The drawn shots at twice the render size, as an 8-bit grey film (lossless)."""
    import cv2

    frames = moving_square(SQUARE_FRAMES) + [textured(seed=7)[::-1].copy() for _ in range(OTHER_FRAMES)]
    grey = [cv2.resize(np.clip(f * 2.55, 0, 255).astype(np.uint8), (2 * W, 2 * H), interpolation=cv2.INTER_NEAREST) for f in frames]
    subprocess.run([find_ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{2 * W}x{2 * H}", "-r", "25",
                    "-i", "-", "-c:v", codec, "-g", "5", "-pix_fmt", "gray" if codec == "ffv1" else "yuv420p", str(path)],
                   input=b"".join(g.tobytes() for g in grey), check=True)
    return path


def decoded_rgb(path):
    out = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, 2 * H, 2 * W, 3)


def redness(rgb):
    return rgb[..., 0].astype(int) - rgb[..., 2].astype(int)


@pytest.mark.parametrize("chunk_frames", [None, 10])
def test_a_film_hint_colours_the_moving_square_in_its_shot_and_nothing_after_the_cut(tmp_path, chunk_frames):
    from archivecolor.imageio import PROVENANCE
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.ffmpeg import EncodeOptions
    from archivecolor.video.film import colorize_video
    from archivecolor.video.smooth import SmoothingConfig

    film = square_film(tmp_path / "reel.mkv")
    hints = tmp_path / "reel.hints.json"
    x, y = full_px(10 + 2 * 8 + 7, 32)  # the square's middle on frame 8
    hints.write_text(json.dumps({"points": [{"x": x, "y": y, "color": "#c03020", "radius": 8, "frame": 8}]}))
    config = VideoConfig(batch_size=4, smoothing=SmoothingConfig(mode="none"), chunk_frames=chunk_frames,
                         encode=EncodeOptions(codec="ffv1", crf=None, preset=None))
    tracked = []  # the pass that follows the hints reports its progress before any frame is coloured
    result = colorize_video(film, tmp_path / "out.mkv", Colorizer(HintEcho(), render_size=H, hint_spread=0.0), config, hints_file=hints,
                            on_tracking=(lambda n: tracked.append(("total", n)), lambda n: tracked.append(n)))
    assert tracked[0] == ("total", SQUARE_FRAMES + OTHER_FRAMES) and sum(tracked[1:]) == SQUARE_FRAMES  # it stops at the cut
    assert result.chunks == (1 if chunk_frames is None else 3) and result.hint_error is None
    assert result.hints["points"] == 1
    assert result.hints["shots"] == [{"first_frame": 0, "last_frame": SQUARE_FRAMES - 1,
                                      "hints": [{"point": 1, "placed_on": 8, "held_from": 0, "held_to": SQUARE_FRAMES - 1}]}]
    rgb = decoded_rgb(tmp_path / "out.mkv")
    assert len(rgb) == SQUARE_FRAMES + OTHER_FRAMES
    for t in range(SQUARE_FRAMES):
        cx, cy = 2 * (10 + 2 * t + 7), 2 * 32  # where the square is now
        assert redness(rgb[t, cy - 4 : cy + 4, cx - 4 : cx + 4]).mean() > 40, t  # the hint went with it
        assert abs(redness(rgb[t, 4:12, 4:12])).mean() < 3, t  # far from it: untouched
    assert abs(redness(rgb[SQUARE_FRAMES:])).max() <= 2  # the next shot: no hint carried over the cut
    import av

    with av.open(str(tmp_path / "out.mkv")) as container:  # the film's mark counts its hints
        comment = {k.lower(): v for k, v in container.metadata.items()}["comment"]
    assert comment.startswith(f"{PROVENANCE}: weights ") and comment.endswith(", 1 colour hint")


def test_a_hinted_film_in_chunks_comes_out_as_one_pass_makes_it(tmp_path):
    """Each chunk's smoothing is primed on frames before it: those get their hints too, numbered in the whole film."""
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.ffmpeg import EncodeOptions
    from archivecolor.video.film import colorize_video
    from archivecolor.video.smooth import SmoothingConfig

    film = square_film(tmp_path / "reel.mkv")
    hints = tmp_path / "reel.hints.json"
    hints.write_text(json.dumps({"points": [{"x": x, "y": 64, "color": c, "radius": 8, "frame": f}
                                            for x, c, f in ((2 * (10 + 2 * 12 + 7), "#c03020", 12), (150, "#2040c0", 3))]}))
    outputs = []
    for chunk_frames in (None, 10):
        config = VideoConfig(batch_size=4, smoothing=SmoothingConfig(mode="ema", strength=0.7), chunk_frames=chunk_frames,
                             encode=EncodeOptions(codec="ffv1", crf=None, preset=None))
        out = tmp_path / f"out-{chunk_frames}.mkv"
        assert colorize_video(film, out, Colorizer(HintEcho(), render_size=H, hint_spread=0.0), config, hints_file=hints).chunks == (1 if chunk_frames is None else 3)
        outputs.append(decoded_rgb(out).astype(int))
    assert np.abs(outputs[0] - outputs[1]).max() <= 1
    assert redness(outputs[0][:SQUARE_FRAMES]).max() > 40  # and there was colour to get wrong


def test_cli_a_bad_film_hints_file_is_named_the_film_coloured_without_it_and_the_run_fails(tmp_path, hint_weights):
    from click.testing import CliRunner

    from archivecolor.cli import main

    films = tmp_path / "films"
    films.mkdir()
    square_film(films / "a.mkv")
    square_film(films / "b.mkv")
    hints = tmp_path / "hints"
    hints.mkdir()
    (hints / "a.hints.json").write_text(json.dumps({"points": [{"x": 40, "y": 40, "color": "#c03020", "frame": 99}]}))
    (hints / "b.hints.json").write_text(json.dumps({"points": [{"x": 40, "y": 40, "color": "#c03020", "frame": 5}]}))
    (hints / "c.hints.json").write_text(json.dumps({"points": []}))  # no film c
    args = ["video", str(films), "-o", str(tmp_path / "out"), "--hints", str(hints), "--weights", str(hint_weights),
            "--backend", "onnx", "--render-size", "64", "--report", str(tmp_path / "report.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "a.hints.json: point 1: frame 99 is not in the film" in text and "coloured without its hints" in text
    assert "c.hints.json" in text and "no film beside it" in text
    report = {Path(f["source"]).name: f for f in json.loads((tmp_path / "report.json").read_text())["films"]}
    assert report["a.mkv"]["status"] == "failed" and Path(report["a.mkv"]["output"]).exists()
    assert report["b.mkv"]["status"] == "done" and report["b.mkv"]["hints"]["points"] == 1

    one = CliRunner().invoke(main, args[:4] + ["--hints", str(hints / "b.hints.json")] + args[6:])
    assert one.exit_code == 2 and "one film's file" in " ".join(one.output.split())


def square_reel(folder):
    """The drawn shots at twice the render size, as a film scanner's 16-bit TIFF frames."""
    import cv2
    import tifffile

    folder.mkdir(parents=True)
    frames = moving_square(SQUARE_FRAMES) + [textured(seed=7)[::-1].copy() for _ in range(OTHER_FRAMES)]
    for i, f in enumerate(frames):
        grey = cv2.resize(np.clip(f / 100 * 65535, 0, 65535).astype(np.uint16), (2 * W, 2 * H), interpolation=cv2.INTER_NEAREST)
        tifffile.imwrite(folder / f"reel1_{i + 1:06d}.tif", grey)
    return folder


def test_a_reel_of_numbered_frames_takes_hints_as_a_film_does(tmp_path):
    """A hint placed on a reel's frame (counted from 0) rides the square through its shot, stops at
    the cut, and each frame's mark counts the hints that coloured it; a bad file colours the reel
    without hints and fails it, saying why."""
    import tifffile

    from archivecolor.imageio import read_stills
    from archivecolor.lab import srgb_to_lab
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.sequence import colorize_reel, find_sequence
    from archivecolor.video.smooth import SmoothingConfig

    sequence = find_sequence(square_reel(tmp_path / "reel1"))
    hints = tmp_path / "reel1.hints.json"
    x, y = full_px(10 + 2 * 8 + 7, 32)
    hints.write_text(json.dumps({"points": [{"x": x, "y": y, "color": "#c03020", "radius": 8, "frame": 8}]}))
    config = VideoConfig(batch_size=4, smoothing=SmoothingConfig(mode="none"))
    colorizer = Colorizer(HintEcho(), render_size=H, hint_spread=0.0)
    outcome = colorize_reel(sequence, tmp_path / "out", colorizer, config, jobs=1, hints_file=hints)
    assert outcome.status == "done", outcome.reason
    assert outcome.result.hints["shots"] == [{"first_frame": 0, "last_frame": SQUARE_FRAMES - 1,
                                              "hints": [{"point": 1, "placed_on": 8, "held_from": 0, "held_to": SQUARE_FRAMES - 1}]}]
    frames = sorted((tmp_path / "out").iterdir())
    for t in (0, 8, SQUARE_FRAMES - 1, SQUARE_FRAMES + 3):
        (still,) = read_stills(frames[t])
        a = srgb_to_lab(still.pixels[..., :3].astype(np.float32) / 65535)[..., 1]
        cx, cy = 2 * (10 + 2 * t + 7), 2 * 32
        if t < SQUARE_FRAMES:
            assert a[cy - 4 : cy + 4, cx - 4 : cx + 4].mean() > 10, t  # on the square, wherever it is now
            assert abs(a[4:12, 4:12]).mean() < 2, t  # far from it: untouched
            assert tifffile.TiffFile(frames[t]).pages[0].software.endswith(", 1 colour hint"), t
        else:
            assert abs(a).max() < 2 and "1 colour hint" not in tifffile.TiffFile(frames[t]).pages[0].software  # after the cut: none
    hints.write_text(json.dumps({"points": [{"x": x, "y": y, "color": "#c03020", "frame": 99}]}))
    bad = colorize_reel(sequence, tmp_path / "out2", colorizer, config, jobs=1, hints_file=hints)
    assert bad.status == "failed" and "frame 99 is not in the film" in bad.reason and "coloured without its hints" in bad.reason
    assert len(list((tmp_path / "out2").iterdir())) == SQUARE_FRAMES + OTHER_FRAMES
    assert tifffile.imread(sorted((tmp_path / "out2").iterdir())[8]).shape[-1] == 3


def test_video_hints_mirror_reel_folders_and_the_page_places_them_on_a_reels_frame(tmp_path, hint_weights):
    from click.testing import CliRunner

    from archivecolor.cli import main

    reel = square_reel(tmp_path / "scans" / "reel1")  # a folder of reels: HINTS/reel1.hints.json for scans/reel1/
    x, y = full_px(10 + 2 * 8 + 7, 32)
    (tmp_path / "hints").mkdir()
    (tmp_path / "hints" / "reel1.hints.json").write_text(json.dumps({"points": [{"x": x, "y": y, "color": "#c03020", "frame": 8}]}))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["video", str(tmp_path / "scans"), "--hints", str(tmp_path / "hints"), "--weights", str(hint_weights),
                                       "--render-size", "64", "--report", str(report)])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(report.read_text())["films"]
    assert entry["kind"] == "image sequence" and entry["hints"]["points"] == 1
    assert "1 colour hint(s) in 1 shot(s)" in " ".join(result.output.split())
    page = CliRunner().invoke(main, ["hints", str(reel), "--frame", "8"])
    assert page.exit_code == 0, page.output
    text = (reel.parent / "reel1.frame8.hints.html").read_text()
    assert '"save_as": "reel1.hints.json"' in text and '"frame": 8' in text
    assert "frame 40 is not in the reel" in " ".join(CliRunner().invoke(main, ["hints", str(reel), "--frame", "40"]).output.split())


# The back of the hand that moves the cup in ../shared/data/video/cup.mp4, boxed by eye on the
# frames (left, top, right, bottom in the film's pixels): the knuckles to the wrist, neither the
# cup nor the forearm. The hand swings left by about 100 px at frame 60 and back.
CUP_HAND = {0: (400, 190, 560, 270), 30: (420, 185, 590, 270), 60: (230, 180, 410, 280), 100: (290, 180, 490, 280),
            140: (390, 180, 570, 270), 170: (350, 190, 530, 290), 200: (330, 170, 560, 290), 216: (340, 160, 570, 280)}


def test_on_real_footage_a_hint_on_a_hand_stays_on_the_hand_as_it_moves_the_cup(tmp_path):
    """Real footage (a hand tilts a cup for 217 frames, no cut): a hint placed on the back of the
    hand at frame 100 is followed back to the first frame and on to the last, on the hand in each."""
    from conftest import SHARED_DATA

    from archivecolor.video.ffmpeg import find_ffmpeg, probe
    from archivecolor.video.film_hints import film_hints
    from archivecolor.video.stream import luminance_frames

    film = SHARED_DATA / "video" / "cup.mp4"
    if not film.exists():
        pytest.skip(f"{film} is not here (the shared development data)")
    hints = tmp_path / "cup.hints.json"
    hints.write_text(json.dumps({"points": [{"x": 430, "y": 235, "color": "#c03020", "radius": 10, "frame": 100}]}))
    info = probe(film)
    tracked = film_hints(hints, luminance_frames(find_ffmpeg(), film, info), info.display_hw, info.frames, 256, 32, 0.3, 6.0)
    (track,) = tracked.tracks
    assert (track.first, track.last) == (0, info.frames - 1)
    for frame, (left, top, right, bottom) in CUP_HAND.items():
        point = track.at(frame)
        assert left <= point.x <= right and top <= point.y <= bottom, (frame, point.x, point.y)
    assert track.at(30).x - track.at(60).x > 80  # it moved with the hand, not stayed where it was placed
