"""`folder --hints`: an archivist's colour hints, read from a tree that mirrors the scans."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from archivecolor.cli import main

from conftest import synthetic_photo, write_rgb


def _scans(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for rel in ("a.png", "sub/plate-12.png", "b.png"):
        write_rgb(root / rel, synthetic_photo(rng, 64))
    return root


def _run(src, hints, out, weights, *extra):
    args = ["folder", str(src), "-o", str(out), "--weights", str(weights), "--render-size", "64", "--backend", "onnx"]
    return CliRunner().invoke(main, args + (["--hints", str(hints)] if hints else []) + list(extra))


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def test_a_hinted_picture_is_coloured_with_its_hints_and_the_report_says_how_many(tmp_path, hint_weights):
    import cv2

    src = _scans(tmp_path / "scans")
    hints = tmp_path / "hints"
    _write(hints / "sub" / "plate-12.hints.json", {"points": [{"x": 10, "y": 12, "color": "#2f4f8f", "radius": 4},
                                                              {"x": 50, "y": 40, "color": "#c03020"}]})
    plain = _run(src, None, tmp_path / "plain", hint_weights)
    hinted = _run(src, hints, tmp_path / "hinted", hint_weights)
    assert plain.exit_code == 0 and hinted.exit_code == 0, hinted.output
    report = {r["source"]: r for r in json.loads((tmp_path / "hinted" / "archivecolor-report.json").read_text())["files"]}
    assert report["sub/plate-12.png"]["hints"] == 2 and report["a.png"]["hints"] == 0
    read = lambda root, rel: cv2.imread(str(root / rel)).astype(int)
    assert np.abs(read(tmp_path / "hinted", "sub/plate-12.png") - read(tmp_path / "plain", "sub/plate-12.png")).max() > 0
    assert np.array_equal(read(tmp_path / "hinted", "a.png"), read(tmp_path / "plain", "a.png"))  # no file: automatic
    # each output's own mark says what coloured it, hints included (PNG's Software text)
    from PIL import Image

    from archivecolor.files import file_sha256

    marks = {rel: Image.open(tmp_path / "hinted" / rel).text["Software"] for rel in ("sub/plate-12.png", "a.png")}
    made = f"weights {hint_weights.name} sha256 {file_sha256(hint_weights)[:12]}, render size 64, saturation 1"
    assert marks["sub/plate-12.png"].endswith(f"(colorized; not an original): {made}, 2 colour hints")
    assert marks["a.png"].endswith(f": {made}, no colour hints")


@pytest.mark.parametrize("content, says", [
    ("{not json", "not JSON"),
    ({"dots": []}, 'no "points" list'),
    ({"points": [{"x": 500, "y": 3, "color": "#ffffff"}]}, "point 1: (500, 3) is outside the picture (64 × 64 pixels)"),
    ({"points": [{"x": 3, "y": 3, "color": "#fff"}]}, "point 1: colour '#fff' is not a hex sRGB value"),
    ({"points": [{"x": 3, "y": 3, "color": "#ffffff"}, {"x": 3, "y": 3, "color": "#ffffff", "radius": 0}]},
     "point 2: radius must be a number of pixels above 0"),
])
def test_a_bad_hints_file_is_one_line_the_picture_coloured_without_and_counted_failed(tmp_path, hint_weights, content, says):
    src = _scans(tmp_path / "scans")
    hints = tmp_path / "hints"
    _write(hints / "a.hints.json", content)
    result = _run(src, hints, tmp_path / "out", hint_weights)
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert f"{hints / 'a.hints.json'}" in line and says in line and "coloured without its hints" in line
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "b.png").exists()  # coloured all the same, and the rest go on
    summary = json.loads((tmp_path / "out" / "archivecolor-report.json").read_text())["summary"]
    assert summary == {"done": 2, "skipped": 0, "failed": 1}


def test_a_hints_file_with_no_picture_is_named_and_counted_failed(tmp_path, hint_weights):
    src = _scans(tmp_path / "scans")
    hints = tmp_path / "hints"
    _write(hints / "sub" / "plate-13.hints.json", {"points": []})
    result = _run(src, hints, tmp_path / "out", hint_weights)
    assert result.exit_code == 1
    assert "plate-13.hints.json" in result.output and "a hints file with no picture beside it" in " ".join(result.output.split())


def test_hints_for_the_network_with_a_model_that_takes_none_are_refused_before_anything_is_written(tmp_path, tiny_weights):
    src = _scans(tmp_path / "scans")
    (tmp_path / "hints").mkdir()
    result = _run(src, tmp_path / "hints", tmp_path / "out", tiny_weights, "--hint-reach", "0")
    assert result.exit_code == 1 and "this model takes no colour hints" in result.output
    assert not (tmp_path / "out").exists()


def test_a_model_without_hint_channels_takes_hints_by_spreading(tmp_path, tiny_weights):
    """Spreading starts from the automatic colour, which any model gives: no hint channels needed."""
    import cv2

    src = _scans(tmp_path / "scans")
    hints = tmp_path / "hints"
    _write(hints / "a.hints.json", {"points": [{"x": 20, "y": 20, "color": "#2040c0", "radius": 4}]})
    plain = _run(src, None, tmp_path / "plain", tiny_weights)
    hinted = _run(src, hints, tmp_path / "hinted", tiny_weights)
    assert plain.exit_code == 0 and hinted.exit_code == 0, hinted.output
    lab = lambda root: cv2.cvtColor(cv2.imread(str(root / "a.png")), cv2.COLOR_BGR2LAB).astype(int)
    lab_of_hint = cv2.cvtColor(np.uint8([[[0xc0, 0x40, 0x20]]]), cv2.COLOR_BGR2LAB)[0, 0, 1:].astype(int)
    near_blue = lambda img: np.abs(img[18:23, 18:23, 1:] - lab_of_hint).sum(-1).mean()
    assert near_blue(lab(tmp_path / "hinted")) < near_blue(lab(tmp_path / "plain")) - 5
