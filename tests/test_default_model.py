"""The generator shipped inside the package: present, small, self-describing, better than grey in colour."""

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from archivecolor.cli import main
from archivecolor.weights import default_weights_path, load_generator, read_metadata

from conftest import SHARED_DATA


def test_the_default_model_ships_inside_the_package():
    path = default_weights_path()
    assert path is not None and path.parent.name == "models"
    assert path.stat().st_size <= 40 * 1024 * 1024
    meta = read_metadata(path)
    info = json.loads(meta["info"])
    assert info["recipe"].startswith("train/")
    generator = load_generator(path)
    assert not generator.training
    assert generator.config.encoder == "efficientnet-lite2" and generator.config.hint_channels == 3


def test_folder_uses_the_default_model_without_weights(tmp_path):
    import cv2

    src = tmp_path / "scans"
    src.mkdir()
    y, x = np.mgrid[0:96, 0:128]
    cv2.imwrite(str(src / "scan.png"), ((x + y) % 256).astype(np.uint8))
    result = CliRunner().invoke(main, ["folder", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "scan.png").exists()


def test_video_and_evaluate_use_the_default_model_without_weights(tmp_path, colour_folder):
    from archivecolor.video.ffmpeg import find_ffmpeg

    clip = tmp_path / "clip.mp4"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=1",
                    "-vf", "hue=s=0", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clip)], check=True)
    film = CliRunner().invoke(main, ["video", str(clip), "-o", str(tmp_path / "out.mp4")])
    assert film.exit_code == 0, film.output
    assert (tmp_path / "out.mp4").stat().st_size > 0
    scored = CliRunner().invoke(main, ["evaluate", str(colour_folder), "-o", str(tmp_path / "eval"), "--limit", "4"])
    assert scored.exit_code == 0, scored.output
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["summary"]["images"] == 4


@pytest.mark.skipif(not (SHARED_DATA / "eval" / "bsd100").exists(), reason="shared data not present")
def test_the_default_model_beats_leaving_photos_grey_in_colour():
    """On held-out photos (BSD100, disjoint from the training data), both PSNR and CIEDE2000 beat grey, with real colour."""
    from archivecolor.backends import open_backend
    from archivecolor.colorizer import Colorizer
    from archivecolor.evaluate import evaluate_folder

    colorizer = Colorizer(open_backend("auto").backend, render_size=256)
    summary = evaluate_folder(SHARED_DATA / "eval" / "bsd100", colorizer, batch_size=8, limit=40).summary()
    assert summary["model"]["psnr"] > summary["grey"]["psnr"] + 0.5
    assert summary["model"]["ciede2000"] < summary["grey"]["ciede2000"] - 0.5
    assert summary["model"]["colourfulness"] > 15.0
