"""train/judge.py: the ship rule for a candidate default model, compared at equal colourfulness."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archivecolor.video.ffmpeg import find_ffmpeg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def judge():
    spec = importlib.util.spec_from_file_location("judge", ROOT / "train" / "judge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["judge"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["judge"]


@pytest.fixture
def scored(judge, colour_folder):
    pictures = judge.load_pictures(colour_folder)
    return pictures, judge.predict(judge.open_model("default", 64), pictures)  # the shipped model: real colour


def test_the_reference_is_scaled_to_the_candidates_colourfulness(judge, scored):
    pictures, ab = scored
    base = judge.figures(pictures, ab)["colourfulness"]
    assert base > 5.0
    scale, found = judge.at_colourfulness(pictures, ab, 1.5 * base)
    assert found["colourfulness"] == pytest.approx(1.5 * base, abs=0.05 * base)
    assert 1.3 < scale < 1.8


def test_a_greyer_copy_of_a_model_does_not_win_by_being_greyer(judge, scored):
    pictures, ab = scored
    greyer = [a * 0.5 for a in ab]
    plain = judge.figures(pictures, ab)
    muted = judge.figures(pictures, greyer)
    assert muted["colourfulness"] < plain["colourfulness"]
    result = judge.compare(pictures, greyer, ab)
    assert result["reference_scale"] == pytest.approx(0.5, abs=0.05)
    for figure in ("psnr", "ciede2000"):  # the same colours at the same colourfulness: level
        assert result["reference_matched"][figure] == pytest.approx(result["candidate"][figure], rel=0.01)
    itself = judge.compare(pictures, ab, ab)
    assert itself["reference_scale"] == 1.0
    met = [ok for ok, _ in judge.verdict(itself, None)]
    assert met[2] is False  # a model never beats itself


def _summary(psnr, ciede, ref_psnr=24.5, ref_ciede=10.0):
    return {"pictures": 100, "candidate": {"psnr": psnr, "ciede2000": ciede, "colourfulness": 22.0},
            "reference_matched": {"psnr": ref_psnr, "ciede2000": ref_ciede, "colourfulness": 22.0},
            "reference_scale": 0.94, "grey": {"psnr": 22.8, "ciede2000": 11.9, "colourfulness": 0.0}}


def test_the_rule_weighs_ciede2000_above_psnr_but_keeps_the_psnr_floor(judge):
    clips = _summary(27.0, 6.1, 27.2, 6.3)
    ship = lambda bsd, c=clips: all(ok for ok, _ in judge.verdict(bsd, c))  # noqa: E731
    assert ship(_summary(24.45, 9.80))  # better CIEDE2000, 0.05 dB less PSNR: ships
    assert not ship(_summary(23.95, 9.80))  # under the 24.0 dB floor
    assert not ship(_summary(24.60, 10.00))  # level on CIEDE2000
    assert not ship(_summary(24.45, 9.80), _summary(27.0, 6.4, 27.2, 6.3))  # worse on the clips
    assert not ship(_summary(24.45, 12.0, ref_ciede=12.5))  # worse than grey on CIEDE2000


def test_a_recipes_end_points_are_judged_on_their_mean_difference_on_the_clips(judge):
    ship = lambda points: all(ok for ok, _ in judge.recipe_verdict(points)[0])  # noqa: E731
    bsd = _summary(24.45, 9.80)
    lose, win = _summary(27.0, 6.35, 27.2, 6.30), _summary(27.0, 6.10, 27.2, 6.20)  # +0.05 and -0.10 against the reference
    assert not ship([("a", bsd, lose)])  # one end point: the single rule, exactly
    assert judge.recipe_verdict([("a", bsd, lose)])[0] == judge.verdict(bsd, lose)
    assert ship([("a", bsd, lose), ("b", bsd, win)])  # mean -0.025: a recipe that wins on average
    assert not ship([("a", bsd, lose), ("b", bsd, _summary(27.0, 6.25, 27.2, 6.20))])  # mean +0.05
    assert not ship([("a", bsd, win), ("b", _summary(23.9, 9.80), win)])  # every end point must meet the BSD100 floor
    _, best = judge.recipe_verdict([("a", _summary(24.5, 9.90), win), ("b", _summary(24.5, 9.70), lose), ("c", bsd, win)])
    assert best == 1  # the end point to ship: the lowest BSD100 CIEDE2000


def test_judge_takes_several_end_points_and_names_the_one_to_ship(judge, colour_folder, tiny_weights, tmp_path):
    out = tmp_path / "judged"
    code = judge.main([str(tiny_weights), "default", "--photos", str(colour_folder), "--clips", "", "--render-size", "64", "--out", str(out)])
    report = json.loads((out / "judge.json").read_text())
    assert code == (0 if report["ship"] else 1) and len(report["end_points"]) == 2
    scores = [e["bsd100"]["candidate"]["ciede2000"] for e in report["end_points"]]
    assert report["candidate"] == [str(tiny_weights), "default"][int(np.argmin(scores))]
    assert report["bsd100"] == {k: v for k, v in report["end_points"][int(np.argmin(scores))].items() if k != "candidate"}["bsd100"]
    assert len(report["checks"]) == 2 * 3  # the BSD100 conditions for each; no clips given


def test_judge_runs_end_to_end_and_its_exit_code_is_its_verdict(judge, colour_folder, tiny_weights, tmp_path):
    clips = tmp_path / "clips"
    (clips / "frames").mkdir(parents=True)
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=3",
                    str(clips / "pattern.mp4")], check=True)
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(clips / "pattern.mp4"), "-frames:v", "2",
                    str(clips / "frames" / "%02d.png")], check=True)
    out = tmp_path / "judged"
    code = judge.main([str(tiny_weights), "--photos", str(colour_folder), "--clips", str(clips), "--render-size", "64",
                       "--out", str(out)])
    report = json.loads((out / "judge.json").read_text())
    assert code == (0 if report["ship"] else 1)
    assert report["bsd100"]["pictures"] == 16
    assert report["clip_frames"]["pictures"] == 6 + 2  # 3 s at 2 frames/s, and the frame folder as it is
    assert len(report["checks"]) == 4 and report["ship"] == all(c["met"] for c in report["checks"])
    assert np.isfinite(report["clip_frames"]["candidate"]["ciede2000"])
    by_clip = report["clip_frames"]["by_clip"]  # which clip decided the set's mean
    assert {clip: f["pictures"] for clip, f in by_clip.items()} == {"frames": 2, "pattern": 6}
    frames = 6 + 2
    weighted = sum(f["candidate"] * f["pictures"] for f in by_clip.values()) / frames
    assert weighted == pytest.approx(report["clip_frames"]["candidate"]["ciede2000"], rel=1e-5)
    weighted = sum(f["reference_matched"] * f["pictures"] for f in by_clip.values()) / frames
    assert weighted == pytest.approx(report["clip_frames"]["reference_matched"]["ciede2000"], rel=1e-5)
    from PIL import Image

    with Image.open(out / "judge-sheet.jpg") as sheet:  # 6 photos and 6 frames, 4 panels each
        assert sheet.width > 4 * 64 and sheet.height > 12 * 150
