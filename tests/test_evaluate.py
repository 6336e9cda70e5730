import json

import numpy as np
from click.testing import CliRunner

from archivecolor.backends import open_backend
from archivecolor.cli import main
from archivecolor.colorizer import Colorizer
from archivecolor.evaluate import evaluate_folder, score


def test_score_of_the_truth_is_perfect_and_grey_is_not():
    rng = np.random.default_rng(0)
    truth = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    perfect = score(truth, truth)
    assert perfect["ciede2000"] == 0 and perfect["ssim"] > 0.999 and perfect["psnr"] > 90
    grey = np.repeat(truth.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert score(grey, truth)["ciede2000"] > 5


def test_evaluate_reports_model_beside_grey_baseline(colour_folder, tiny_weights, tmp_path):
    colorizer = Colorizer(open_backend("torch", tiny_weights, device="cpu").backend, render_size=32)
    thumbs = []
    result = evaluate_folder(colour_folder, colorizer, batch_size=4, thumbnails=thumbs)
    summary = result.summary()
    assert summary["images"] == 16 and len(thumbs) == 16
    assert summary["grey"]["colourfulness"] < 0.5 < summary["truth_colourfulness"]
    assert summary["model"]["psnr"] != summary["grey"]["psnr"]

    out = tmp_path / "eval"
    cli = CliRunner().invoke(main, ["evaluate", str(colour_folder), "--weights", str(tiny_weights), "--out", str(out),
                                    "--render-size", "32", "--backend", "torch", "--study"])
    assert cli.exit_code == 0, cli.output
    data = json.loads((out / "evaluation.json").read_text())
    assert set(data["summary"]["model"]) == {"psnr", "ssim", "ciede2000", "colourfulness"}
    page = (out / "report.html").read_text()
    assert page.count("<figure>") == 16 and "grey baseline" in page
    study = (out / "study.html").read_text()
    trials = json.loads(study.split("const trials = ", 1)[1].split(";\n", 1)[0])
    assert len(trials) == 16 and {t["model_side"] for t in trials} == {"left", "right"}
    assert all(t["left"].startswith("data:image/jpeg;base64,") for t in trials)


def test_evaluate_video_reports_per_frame_smoothed_and_truth(tiny_weights, tmp_path):
    import subprocess

    from archivecolor.video.ffmpeg import find_ffmpeg

    clip = tmp_path / "colour.mp4"
    subprocess.run([find_ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
    out = tmp_path / "ev"
    result = CliRunner().invoke(main, ["evaluate", "--video", str(clip), "--weights", str(tiny_weights), "--out", str(out),
                                       "--render-size", "32", "--backend", "torch"])
    assert result.exit_code == 0, result.output
    (figures,) = json.loads((out / "evaluation-video.json").read_text())
    assert figures["frames"] == 20
    for kind in ("per_frame", "smoothed", "truth"):
        assert {"cdc", "cdc_1", "cdc_2", "cdc_4", "static_delta_ab"} <= set(figures[kind])
    assert figures["truth"]["cdc"] > 0  # testsrc's colours move: the truth is not flat
