"""The normality analysis of `aebench stats`: Mardia's tests against scipy and a direct double sum,
their calibration, confidence-ellipse shares, radii against chi, and the command's output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats as sps

from aebench.cli import main
from aebench.maths.normality import (
    GAUSSIAN_ELLIPSE_SHARE,
    analyse,
    dominant_pairs,
    ellipse_shares,
    mardia,
    radius_summary,
)
from aebench.reports.stats_plots import plot_component_qq, plot_pair_ellipses, plot_radius_histogram
from aebench.stats import compute_stats


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mardia_in_one_dimension_is_the_squared_skewness_and_the_kurtosis():
    x = np.random.default_rng(0).gamma(2.0, size=(500, 1))
    m = mardia(x)
    assert m["skewness"] == pytest.approx(sps.skew(x[:, 0]) ** 2, rel=1e-10)
    assert m["kurtosis"] == pytest.approx(sps.kurtosis(x[:, 0], fisher=False), rel=1e-10)
    assert m["skewness_dof"] == 1


def test_mardia_matches_the_double_sum_of_its_definition():
    x = np.random.default_rng(1).standard_t(5, size=(40, 3))
    c = x - x.mean(0)
    inv = np.linalg.inv(c.T @ c / len(x))
    g = c @ inv @ c.T
    m = mardia(torch.from_numpy(x))
    assert m["skewness"] == pytest.approx(sum(g[i, j] ** 3 for i in range(40) for j in range(40)) / 1600, rel=1e-10)
    assert m["kurtosis"] == pytest.approx(np.mean(np.diag(g) ** 2), rel=1e-10)


def test_mardia_accepts_gaussian_data_and_rejects_skewed_or_heavy_tailed_data():
    rejected = {"skewness": 0, "kurtosis": 0}
    for seed in range(20):  # few dimensions relative to n as in ORL (n=305, d=42): finite-sample moments matter
        m = mardia(torch.randn(150, 20, generator=gen(seed), dtype=torch.float64))
        rejected["skewness"] += m["skewness_p"] < 0.05
        rejected["kurtosis"] += m["kurtosis_p"] < 0.05
    assert rejected["skewness"] <= 3 and rejected["kurtosis"] <= 3  # about 5% of 20 expected
    rng = np.random.default_rng(2)
    assert mardia(rng.exponential(size=(300, 4)))["skewness_p"] < 1e-6
    assert mardia(rng.standard_t(3, size=(300, 4)))["kurtosis_p"] < 1e-6
    with pytest.raises(ValueError, match="more than d \\+ 3 points"):
        mardia(np.zeros((5, 4)))


def test_ellipse_shares_of_a_gaussian_and_of_a_uniform_square():
    g = torch.randn(200000, 3, generator=gen(3), dtype=torch.float64) @ torch.tensor(
        [[2.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    row = ellipse_shares(g, (0, 1))
    for k in ("1", "2", "3"):
        assert row["inside"][k] == pytest.approx(GAUSSIAN_ELLIPSE_SHARE[int(k)], abs=0.005)
    assert row["gaussian"]["2"] == pytest.approx(0.8647, abs=1e-4)
    assert row["correlation"] == pytest.approx(1 / math.sqrt(5), abs=0.01)  # z0 = 2 x0, z1 = 0.5 x0 + x1
    u = torch.rand(100000, 2, generator=gen(4), dtype=torch.float64)
    square = ellipse_shares(u, (0, 1))
    assert square["inside"]["1"] == pytest.approx(math.pi / 12, abs=0.005)  # a circle of radius sqrt(1/12)
    assert square["inside"]["3"] == 1.0  # no tails: the 3 sigma circle covers the square


def test_radius_summary_against_chi():
    r = torch.randn(5000, 6, generator=gen(5), dtype=torch.float64).norm(dim=1).numpy()
    s = radius_summary(r, 6)
    assert s["ks_distance"] < 0.03 and s["ks_p"] > 0.01
    assert s["quantiles"][2] == pytest.approx(s["chi_quantiles"][2], rel=0.03)
    assert radius_summary(r * 1.3, 6)["ks_distance"] > 0.2


def test_dominant_pairs_start_with_the_most_dominant():
    z = torch.randn(300, 6, generator=gen(6), dtype=torch.float64)
    z[:, 4] += 8
    z[:, 1] += 6
    z[:, 2] *= 4
    pairs = dominant_pairs(compute_stats(z), 3)
    assert pairs == [(4, 1), (4, 2), (1, 2)]


def test_analyse_reports_the_trimmed_core_and_every_part(tmp_path):
    g = gen(7)
    z = torch.randn(600, 5, generator=g, dtype=torch.float64) * torch.tensor([4, 3, 2, 1, 0.5], dtype=torch.float64)
    z[:20] *= 6  # outliers
    held = torch.randn(100, 5, generator=g, dtype=torch.float64)
    report, arrays = analyse(z, compute_stats(z), heldout=held, top=3, pairs=2, max_points=400)
    assert report["core"]["core_total"] == 600 and 575 <= report["core"]["core_kept"] <= 590
    assert len(report["components"]) == 3 and len(report["ellipses"]) == 2
    assert report["mardia"]["core"]["n"] == 400 and report["mardia"]["all"]["n"] == 400  # subset of max_points
    assert report["mardia"]["all"]["kurtosis_p"] < 1e-6  # the outliers
    assert report["mardia"]["core"]["kurtosis"] < report["mardia"]["all"]["kurtosis"]
    assert set(report["radii"]) == {"train", "core", "heldout"}
    json.dumps(report)
    paths = [plot_radius_histogram({"train": arrays["radii_train"], "core": arrays["radii_core"]}, arrays["dof"],
                                   tmp_path / "r.png"),
             plot_pair_ellipses(arrays["latents"], report["ellipses"], tmp_path / "e.png"),
             plot_component_qq(arrays["coords"], arrays["core"], tmp_path / "q.png", top=3)]
    for path in paths:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 300


def test_stats_command_normality_tables_json_and_plots(tmp_path, capsys):
    rng = np.random.default_rng(8)
    np.save(tmp_path / "tr.npy", (rng.normal(size=(300, 6)) * [3, 2, 1, 1, 0.5, 0.2]).astype(np.float32))
    np.save(tmp_path / "he.npy", rng.normal(size=(60, 6)).astype(np.float32))
    args = ["stats", "--train-latents", str(tmp_path / "tr.npy"), "--heldout-latents", str(tmp_path / "he.npy"),
            "--device", "cpu", "--top", "4", "--pairs", "2"]
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    normality = doc["normality"]
    assert set(normality) >= {"subspace", "core", "components", "mardia", "radii", "ellipses"}
    assert len(normality["components"]) == 4 and len(normality["ellipses"]) == 2
    assert normality["radii"]["heldout"]["n"] == 60
    for key in ("radii", "ellipses", "qq"):
        assert Path(doc["figures"][key]).is_file()
    assert main(args) == 0
    text = capsys.readouterr().out
    for heading in ("Normality", "D'Agostino", "Mardia", "against chi", "sigma ellipses", "Radii vs chi:"):
        assert heading in text
    assert main(args + ["--no-normality", "--json"]) == 0
    assert "normality" not in json.loads(capsys.readouterr().out)
    assert main(args + ["--trim-level", "1.5"]) != 0
