"""FID: the Inception network with random weights (the real ones cannot be downloaded here)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from archivecolor.cli import main
from archivecolor.fid import FEATURE_DIM, FIDInception, features, frechet_distance, load_fid_inception


@pytest.mark.parametrize("n_a,n_b,dim", [(300, 200, 16), (12, 9, 40)])
def test_frechet_distance_matches_the_scipy_formula(n_a, n_b, dim):
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n_a, dim)), rng.normal(size=(n_b, dim)) * 1.3 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-6


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    torch.manual_seed(0)
    model = FIDInception()
    for module in model.modules():  # He init keeps activations alive through ~90 layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    state = model.state_dict()
    state["fc.weight"] = torch.zeros(1008, FEATURE_DIM)  # pytorch-fid's file carries a classifier: ignored
    path = tmp_path_factory.mktemp("fid") / "inception.pth"
    torch.save(state, path)
    return path


def test_features_and_distance_with_random_weights(random_inception_file):
    model = load_fid_inception(random_inception_file)
    rng = np.random.default_rng(1)
    images = [(rng.random((64, 80, 3)) * 255).astype(np.uint8) for _ in range(3)]
    feats = features(model, images, batch_size=2)
    assert feats.shape == (3, FEATURE_DIM) and np.isfinite(feats).all() and feats.std() > 1e-3
    darker = [(img * 0.3).astype(np.uint8) for img in images]
    assert frechet_distance(feats, feats) < 1e-3 < frechet_distance(feats, features(model, darker))


def test_a_file_that_is_not_inception_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not an FID Inception"):
        load_fid_inception(path)


def test_evaluate_reports_fid_beside_grey(colour_folder, tiny_weights, random_inception_file, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", str(colour_folder), "--weights", str(tiny_weights), "--out", str(out),
                                       "--render-size", "32", "--backend", "torch", "--limit", "2", "--fid-weights", str(random_inception_file)])
    assert result.exit_code == 0, result.output
    fid = json.loads((out / "evaluation.json").read_text())["summary"]["fid"]
    assert fid["model"] > 0 and fid["grey"] > 0
