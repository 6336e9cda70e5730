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
    assert "psnr ↑" in cli.output and "ciede2000 ↓" in cli.output  # which way is better
    assert "the model beat leaving them grey" in cli.output or "did NOT beat leaving them grey" in cli.output
    page = (out / "report.html").read_text()
    assert page.count("<figure>") == 16 and "grey baseline" in page
    study = (out / "study.html").read_text()
    trials = json.loads(study.split("const trials = ", 1)[1].split(";\n", 1)[0])
    assert len(trials) == 16 and {t["model_side"] for t in trials} == {"left", "right"}
    assert all(t["left"].startswith("data:image/jpeg;base64,") for t in trials)
    _check_sheet(out / "sheet.jpg", colour_folder)


def test_chroma_gain_scales_the_scored_colour_and_is_recorded(colour_folder, tmp_path):
    """--chroma-gain 0 must score as grey; 0.5 must halve the colourfulness; the JSON says which.

    With the shipped model: the tiny random one is too grey for colourfulness to tell."""
    summaries = {}
    for gain in ("1", "0.5", "0"):
        out = tmp_path / f"gain{gain}"
        cli = CliRunner().invoke(main, ["evaluate", str(colour_folder), "--out", str(out),
                                        "--render-size", "64", "--backend", "torch", "--chroma-gain", gain])
        assert cli.exit_code == 0, cli.output
        data = json.loads((out / "evaluation.json").read_text())
        assert data["chroma_gain"] == float(gain)
        summaries[gain] = data["summary"]
    for figure, grey in summaries["0"]["grey"].items():  # equal up to the rounding of two paths to 8-bit RGB
        assert abs(summaries["0"]["model"][figure] - grey) <= 0.1 + 0.01 * abs(grey), figure
    full, half = summaries["1"]["model"]["colourfulness"], summaries["0.5"]["model"]["colourfulness"]
    assert full > 1 and abs(half - full / 2) < 0.1 * full
    assert summaries["1"]["grey"] == summaries["0.5"]["grey"]


def _check_sheet(path, colour_folder):
    """sheet.jpg: the first SHEET_ROWS photos as grey | colorized | original; only the grey panels lack colour."""
    import cv2

    from archivecolor.data import find_images, read_rgb
    from archivecolor.evaluate import SHEET_CAPTION, SHEET_GAP, SHEET_HEADER, SHEET_HEIGHT, SHEET_ROWS
    from archivecolor.lab import srgb_to_lab

    sheet = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert sheet.shape[0] == SHEET_HEADER + SHEET_ROWS * (SHEET_HEIGHT + SHEET_CAPTION) + SHEET_GAP
    chroma = {"grey": [], "original": []}
    sources = find_images(colour_folder)[:SHEET_ROWS]
    widths = [round(w * SHEET_HEIGHT / h) for h, w in (read_rgb(source).shape[:2] for source in sources)]
    cell = max(widths)  # panels are centred in equal columns
    assert sheet.shape[1] == 3 * cell + 4 * SHEET_GAP
    for index, panel_w in enumerate(widths):
        top = SHEET_HEADER + index * (SHEET_HEIGHT + SHEET_CAPTION)
        for name, column in (("grey", 0), ("original", 2)):
            left = SHEET_GAP + column * (cell + SHEET_GAP) + (cell - panel_w) // 2
            panel = sheet[top + 2 : top + SHEET_HEIGHT - 2, left + 2 : left + panel_w - 2]
            chroma[name].append(np.hypot(*srgb_to_lab(panel)[..., 1:].transpose(2, 0, 1)).mean())
    assert max(chroma["grey"]) < 1.5 < 4 < np.mean(chroma["original"]), chroma


def test_the_verdict_says_in_words_whether_the_model_beat_grey():
    from archivecolor.evaluate import verdict

    def summary(psnr, delta_e):
        return {"model": {"psnr": psnr, "ciede2000": delta_e, "colourfulness": 30.0},
                "grey": {"psnr": 23.0, "ciede2000": 11.0, "colourfulness": 0.0}, "truth_colourfulness": 35.0}

    assert verdict(summary(24.0, 9.0)).startswith("the model beat leaving them grey on both PSNR (24.00 against 23.00 dB)")
    assert verdict(summary(22.0, 12.0)) == "the model did NOT beat leaving them grey: worse on PSNR and on CIEDE2000"
    assert verdict(summary(24.0, 12.0)) == "the model beat leaving them grey on PSNR only, not on CIEDE2000"


def test_hints_from_truth_are_scored_beside_the_automatic_colour(colour_folder, tmp_path):
    """A model that copies its hints (and ignores L) must score better with hints than without."""
    import torch

    from archivecolor.nets import GeneratorConfig, UNetGenerator
    from archivecolor.weights import save_generator

    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(width=4, depth=3, dropout=0.0, hint_channels=3)).eval()
    weights = tmp_path / "hinted.safetensors"
    save_generator(weights, generator)
    out = tmp_path / "eval"
    cli = CliRunner().invoke(main, ["evaluate", str(colour_folder), "--weights", str(weights), "--out", str(out), "--render-size", "32",
                                    "--backend", "onnx", "--hints-from-truth", "3", "--hints-from-truth", "40"])
    assert cli.exit_code == 0, cli.output
    assert "with 3 hints" in cli.output and "with 40 hints" in cli.output
    data = json.loads((out / "evaluation.json").read_text())
    assert set(data["with_hints_from_truth"]) == {"3", "40"}
    # a random network's response to hints is not zero: the hinted figures differ from the automatic ones
    assert data["with_hints_from_truth"]["40"]["model"]["ciede2000"] != data["summary"]["model"]["ciede2000"]


def test_hints_from_truth_sit_on_the_truth_and_follow_the_seed():
    from archivecolor.hints import truth_hints

    ab = np.random.default_rng(0).uniform(-50, 50, (20, 30, 2)).astype(np.float32)
    hints = truth_hints(ab, 5, np.random.default_rng(1))
    assert len(hints) == 5
    for h in hints:
        assert (h.a, h.b) == (float(ab[int(h.y), int(h.x), 0]), float(ab[int(h.y), int(h.x), 1]))
    assert hints == truth_hints(ab, 5, np.random.default_rng(1))
