"""The generator shipped inside the package: present, small, self-describing, better than grey."""

import json

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
    assert not generator.training and generator.config.upsample == "resize"


def test_folder_uses_the_default_model_without_weights(tmp_path):
    import cv2

    src = tmp_path / "scans"
    src.mkdir()
    y, x = np.mgrid[0:96, 0:128]
    cv2.imwrite(str(src / "scan.png"), ((x + y) % 256).astype(np.uint8))
    result = CliRunner().invoke(main, ["folder", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "scan.png").exists()


@pytest.mark.skipif(not (SHARED_DATA / "eval" / "bsd100").exists(), reason="shared data not present")
def test_the_default_model_beats_leaving_photos_grey():
    """On held-out photos (BSD100, disjoint from the training data), both PSNR and CIEDE2000 beat grey."""
    from archivecolor.backends import open_backend
    from archivecolor.colorizer import Colorizer
    from archivecolor.evaluate import evaluate_folder

    colorizer = Colorizer(open_backend("auto").backend, render_size=256)
    summary = evaluate_folder(SHARED_DATA / "eval" / "bsd100", colorizer, batch_size=8).summary()
    assert summary["model"]["psnr"] > summary["grey"]["psnr"] + 0.3
    assert summary["model"]["ciede2000"] < summary["grey"]["ciede2000"] - 0.2
    assert summary["model"]["colourfulness"] > 5.0
