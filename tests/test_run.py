"""End to end: `aebench run` on a tiny trained ORL model with the fast extractor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import aebench.plugins
from aebench.cli import main
from aebench.hookspecs import hookimpl
from aebench.sampler import Sampler

DATA_OPTS = ["--set", "dataset.size=32"]


def _run(tmp_path: Path, ckpt: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    rc = main(["run", "--checkpoint", str(ckpt), *DATA_OPTS, "--features", "fast", "--n", "48", "--quiet",
               "--out", str(out), *extra])
    return rc, out


def test_run_writes_complete_results_reports_and_figures(tmp_path, tiny_orl_checkpoint):
    rc, out = _run(tmp_path, tiny_orl_checkpoint, "--sampler", "gaussian,origin_line,uniform", "--seeds", "2")
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "aebench-results/2" and doc["status"] == "complete"
    assert doc["features"]["extractor"] == "fast" and doc["features"]["judge"] is False
    assert doc["features"]["reference"] == "train"  # 80 held-out ORL faces are too few to be the reference
    assert doc["model"]["latent_dim"] == 16 and len(doc["model"]["checksum"]) >= 16
    names = [r["name"] for r in doc["samplers"]]
    assert names == ["gaussian", "origin_line", "uniform"]
    assert {r["name"] for r in doc["references"]} == {"real_heldout", "reconstruction"}
    for region, report in doc["regions"].items():
        assert report["heldout_rate"] >= 0.95 - 1e-9, region
    by_name = {r["name"]: r for r in doc["samplers"]}
    for row in doc["samplers"]:
        assert row["status"] == "ok", row.get("error")
        metrics = row["metrics"]
        for key in ("hit_box", "hit_ellipsoid", "hit_knn", "hit_density", "latent_recall", "fid", "kid",
                    "precision", "recall", "reencode_ratio"):
            assert key in metrics, (row["name"], key)
        assert len(metrics["fid"]["per_seed"]) == 2 and metrics["fid"]["n"] == 48
        assert metrics["fid"]["info"]["extractor"] == "fast"
        assert (out / row["figures"]["grid"]).is_file() and (out / row["figures"]["scatter"]).is_file()
    line = by_name["origin_line"]
    assert line["is_path_sampler"] and set(line["along_t"]) == set(doc["regions"])
    assert (out / line["figures"]["strips"]).is_file()
    # the line starts at the origin, far outside the region, and ends at the centre, inside it
    box_t = line["along_t"]["box"]
    assert box_t[0][1] < box_t[-1][1] and box_t[-1][1] == 1.0
    # the source post's finding at small scale: independent uniform components land in the box less often
    # than Gaussian draws with the training statistics (most of which do land there)
    hit_uniform = by_name["uniform"]["metrics"]["hit_box"]["value"]
    hit_gaussian = by_name["gaussian"]["metrics"]["hit_box"]["value"]
    assert hit_gaussian > 0.3 and hit_uniform < hit_gaussian
    assert (out / "report.md").read_text().count("gaussian") >= 1
    assert "data:image/png;base64" in (out / "report.html").read_text()


class _Raises(Sampler):
    name = "raises"
    description = "always fails"

    def _sample(self, n, generator):
        raise RuntimeError("boom from plugin")


class _ReturnsNaN(Sampler):
    name = "returns_nan"
    description = "NaN latents"

    def _sample(self, n, generator):
        z = torch.zeros(n, self.latent_dim)
        z[0, 0] = math.nan
        return z


class _BadPlugin:
    @hookimpl
    def register_samplers(self, register):
        register(_Raises)
        register(_ReturnsNaN)


def test_failing_samplers_are_recorded_and_others_still_run(tmp_path, tiny_orl_checkpoint, capsys):
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(_BadPlugin(), name="bad-plugin")
    rc, out = _run(tmp_path, tiny_orl_checkpoint, "--sampler", "raises,gaussian,returns_nan",
                   "--metrics", "region_hits", "--no-figures")
    assert rc == 1
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "complete"
    rows = {r["name"]: r for r in doc["samplers"]}
    assert rows["raises"]["status"] == "failed" and "boom from plugin" in rows["raises"]["error"]
    assert rows["returns_nan"]["status"] == "failed" and "NaN" in rows["returns_nan"]["error"]
    assert rows["gaussian"]["status"] == "ok" and "hit_box" in rows["gaussian"]["metrics"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sampler", "plane_path"], "Did you mean 'plane_paths'?"),
        (["--sampler", "gaussian", "--n", "0"], "--n must be a positive integer"),
        (["--sampler", "gaussian", "--regions", "boxx"], "Unknown region 'boxx'"),
        (["--sampler", "gaussian", "--features", "incepton"], "Unknown feature extractor 'incepton'"),
        (["--sampler", "plane_paths", "--set", "plane_paths.axes=1,1"], "axes are both 1; choose two different components"),
        (["--sampler", "gaussian", "--set", "nosuch.k=1"], "'nosuch' is not the data set"),
    ],
)
def test_bad_input_gives_one_line_error_and_no_results(tmp_path, tiny_orl_checkpoint, capsys, args, message):
    rc, out = _run(tmp_path, tiny_orl_checkpoint, *args)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert message in err and err.startswith("Error:") and "\n" not in err
    assert not (out / "results.json").exists()


def test_checkpoint_for_other_image_size_is_refused(tmp_path, tiny_orl_checkpoint, capsys):
    out = tmp_path / "out"
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), "--features", "fast", "--n", "8", "--quiet",
               "--out", str(out), "--sampler", "gaussian"])  # data set at its default 64x64
    err = capsys.readouterr().err
    assert rc != 0 and "Error:" in err and "64" in err and "32" in err
    assert not (out / "results.json").exists()


def test_unwritable_out_is_refused(tmp_path, tiny_orl_checkpoint, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--features", "fast", "--quiet",
               "--out", str(blocker / "sub"), "--sampler", "gaussian"])
    assert rc != 0 and "Cannot write to --out folder" in capsys.readouterr().err


def test_latent_files_with_wrong_dimension_are_refused(tmp_path, tiny_orl_checkpoint, capsys):
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32))
    np.save(tmp_path / "heldout.npy", np.random.default_rng(1).normal(size=(20, 8)).astype(np.float32))
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), "--train-latents", str(tmp_path / "train.npy"),
               "--heldout-latents", str(tmp_path / "heldout.npy"), "--metrics", "region_hits", "--quiet",
               "--out", str(tmp_path / "out"), "--sampler", "gaussian"])
    err = capsys.readouterr().err
    assert rc != 0 and "latent dimension" in err


def test_toml_suite_with_labels_and_options(tmp_path, tiny_orl_checkpoint):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'n = 40\nseeds = [3]\nmetrics = ["region_hits", "latent_coverage"]\nfeatures = "fast"\n'
        f'checkpoint = "{tiny_orl_checkpoint}"\ndataset_options = {{ size = 32 }}\n'
        '[[samplers]]\nname = "plane_paths"\nlabel = "plane_centre"\n'
        '[[samplers]]\nname = "plane_paths"\nlabel = "plane_conditional"\noptions = { others = "conditional" }\n'
    )
    out = tmp_path / "out"
    rc = main(["run", "--config", str(suite), "--out", str(out), "--quiet", "--no-figures",
               "--set", "plane_centre.extent=1.5"])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in doc["samplers"]}
    assert rows["plane_centre"]["options"]["extent"] == 1.5
    assert rows["plane_conditional"]["options"]["others"] == "conditional"
    assert rows["plane_centre"]["n"] == 40 and rows["plane_centre"]["seeds"] == [3]


def test_latent_files_replace_the_data_set(tmp_path, tiny_orl_checkpoint):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(200, 16)).astype(np.float32))
    np.save(tmp_path / "heldout.npy", rng.normal(size=(60, 16)).astype(np.float32))
    out = tmp_path / "out"
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), "--train-latents", str(tmp_path / "train.npy"),
               "--heldout-latents", str(tmp_path / "heldout.npy"), "--quiet", "--no-figures", "--n", "64",
               "--out", str(out), "--sampler", "gaussian,uniform"])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["dataset"] is None and doc["features"] is None
    rows = {r["name"]: r for r in doc["samplers"]}
    assert "fid" not in rows["gaussian"]["metrics"] and "hit_box" in rows["gaussian"]["metrics"]
    # per-component Gaussian on Gaussian latents lands in the regions far more often than wide uniform draws
    assert rows["gaussian"]["metrics"]["hit_ellipsoid"]["value"] > rows["uniform"]["metrics"]["hit_ellipsoid"]["value"]
