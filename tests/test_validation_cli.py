"""`aebench validate` and `aebench run --validate` end to end on a tiny ORL model with the fast
extractor; broken metric plugins must come out flat or broken, never trusted."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

import aebench.plugins
from aebench.cli import main
from aebench.hookspecs import hookimpl
from aebench.metric import LADDERS, Column, Metric, MetricValue
from aebench.results.schema import SCHEMA

DATA_OPTS = ["--set", "dataset.size=32"]


class ConstantScore(Metric):
    """Claims every ladder, never moves."""

    name = "constant_score"
    description = "a broken metric: always 1"
    columns = (Column("constant_score", "constant", False, group="latent", role="headline", detects=LADDERS),)

    def compute(self, fake, real):
        return {"constant_score": MetricValue(1.0, False, n=int(fake.latents.shape[0]))}


class RandomScore(Metric):
    """Claims every ladder, returns noise (seeded by the points, so reruns agree)."""

    name = "random_score"
    description = "a broken metric: a random number"
    columns = (Column("random_score", "random", False, group="latent", role="headline", detects=LADDERS),)

    def compute(self, fake, real):
        seed = int(hashlib.sha256(fake.latents.numpy().tobytes()).hexdigest()[:8], 16)
        value = float(torch.rand(1, generator=torch.Generator().manual_seed(seed)))
        return {"random_score": MetricValue(value, False, n=int(fake.latents.shape[0]))}


class SpreadScore(Metric):
    """A sound metric for one ladder: mean distance from the training centre grows under spread (and
    shrinks under collapse, which it does not claim)."""

    name = "spread_score"
    description = "mean distance from the training centre (grows with spread)"
    columns = (Column("spread_score", "spread", False, group="latent", role="headline", detects=("spread",)),)

    def compute(self, fake, real):
        dist = (fake.latents.double() - real.stats.mean).norm(dim=1).mean()
        return {"spread_score": MetricValue(float(dist), False, n=int(fake.latents.shape[0]))}


class _Plugin:
    @hookimpl
    def register_metrics(self, register):
        for metric in (ConstantScore, RandomScore, SpreadScore):
            register(metric)


@pytest.fixture
def broken_metrics():
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(_Plugin(), name="broken-metrics")
    yield
    aebench.plugins.reset()


def _validate(tmp_path: Path, ckpt: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    rc = main(["validate", "--checkpoint", str(ckpt), *DATA_OPTS, "--features", "fast", "--quiet", "--out", str(out),
               *extra])
    return rc, out


def test_validate_json_results_report_and_plot(tmp_path, tiny_orl_checkpoint, capsys):
    rc, out = _validate(tmp_path, tiny_orl_checkpoint, "--json", "--steps", "4")
    assert rc == 0
    section = json.loads(capsys.readouterr().out)
    assert set(section) >= {"settings", "ladders", "metrics", "uncovered"}
    settings = section["settings"]
    assert settings["size"] == 80 and settings["steps"] == {name: 4 for name in LADDERS}
    assert settings["extractor"] == "fast" and settings["seed"] == 0 and settings["split"] == "split training"
    assert "80 held-out latents" in settings["base"] and "160 training latents" in settings["latent_reference"]
    assert settings["images_decoded"] == 80 * 10  # base, 3 + 3 scaled pools, 3 replacement pools
    # the base is the 80 held-out latents whose reconstructions the run already featurised
    assert settings["features"]["reused"] >= 80 and settings["features"]["cached"] == 0
    assert settings["features"]["computed"] + settings["features"]["reused"] == 800
    assert list(section["ladders"]) == list(LADDERS)
    assert section["ladders"]["collapse"]["levels"] == [1.0, 0.7, 0.4, 0.1]
    for key in ("hit_knn", "latent_recall", "nn_distance_ratio", "fid", "kid"):
        entry = section["metrics"][key]
        assert entry["verdict"] in ("holds", "broken", "flat", "untested")
        for name in LADDERS:
            result = entry["ladders"][name]
            assert len(result["values"]) == 4 and result["verdict"] in ("holds", "broken", "flat", "untested")
    # spread pushes points away from every training latent: the nearest-neighbour distance must grow
    nn = section["metrics"]["nn_distance_ratio"]
    spread = nn["ladders"]["spread"]["values"]
    assert spread == sorted(spread) and spread[-1] > 1.5 * spread[0]
    # memorisation: copies of training latents have distance 0 to them, so the ratio falls to 0; that
    # holds exactly when the metric declares that a falling ratio is worse
    memo = nn["ladders"]["memorisation"]
    assert memo["values"][-1] == pytest.approx(0.0, abs=1e-6) and memo["values"][0] > 0.5
    assert memo["spearman"] == pytest.approx(1.0 if nn["higher_is_better"] else -1.0)
    assert memo["verdict"] == ("holds" if nn["higher_is_better"] else "broken")
    doc = json.loads((out / "results.json").read_text())
    from aebench.results.schema import load_results

    assert doc["schema"] == SCHEMA and doc["status"] == "complete" and doc["samplers"] == []
    assert doc["validation"]["metrics"].keys() == section["metrics"].keys()
    assert doc["metric_info"]["fid"]["higher_is_better"] is False
    assert (out / section["figure"]).is_file() and section["figure"] == "figures/validation.png"
    md = (out / "report.md").read_text()
    assert "## Validation: known-answer ladders" in md and "| collapse |" in md and "validation.png" in md
    html = (out / "report.html").read_text()
    # the ladder plot and one strip per ladder (what each step looks like), embedded
    assert section["strips"] == {name: f"figures/ladder_{name}.png" for name in LADDERS}
    assert all((out / path).is_file() for path in section["strips"].values())
    assert "Validation: known-answer ladders" in html and html.count("data:image/png;base64") == 1 + len(LADDERS)
    load_results(out / "results.json")  # the rest of aebench reads (and schema-checks) it


def test_broken_metrics_are_reported_flat_or_broken(tmp_path, tiny_orl_checkpoint, capsys, broken_metrics):
    rc, out = _validate(tmp_path, tiny_orl_checkpoint, "--metrics", "constant_score,random_score,spread_score",
                        "--ladders", "collapse,spread,contamination,moments", "--json")
    assert rc == 0
    section = json.loads(capsys.readouterr().out)
    metrics = section["metrics"]
    assert set(metrics) == {"constant_score", "random_score", "spread_score"}
    const = metrics["constant_score"]
    assert const["verdict"] == "flat" and const["trusted_for"] == []
    assert all(r["verdict"] == "flat" for r in const["ladders"].values())
    rand = metrics["random_score"]
    assert rand["verdict"] == "broken" and len(rand["trusted_for"]) < 4
    good = metrics["spread_score"]
    assert good["verdict"] == "holds" and good["trusted_for"] == ["spread"]
    assert good["ladders"]["collapse"]["verdict"] == "broken"  # it falls under collapse: not claimed, no harm
    assert section["uncovered"] == ["collapse", "contamination", "moments"]
    assert section["settings"]["extractor"] is None and section["settings"]["images_decoded"] == 0
    assert section["settings"]["features"] == {"computed": 0, "reused": 0, "cached": 0, "note": section["settings"]["features"]["note"]}


def test_strict_exits_1_when_a_headline_metric_is_not_trusted(tmp_path, tiny_orl_checkpoint, broken_metrics, capsys):
    rc, _ = _validate(tmp_path, tiny_orl_checkpoint, "--metrics", "constant_score", "--ladders", "spread", "--strict",
                      "--steps", "3", "--no-figures")
    assert rc == 1
    captured = capsys.readouterr()
    assert "constant_score" in captured.out and "uncovered ladders: spread" in captured.err


def test_terminal_table_fits_80_columns():
    from aebench.reports.validation import render_validation_table

    ladder = {"values": [1.0, 2.0, 3.0], "spearman": 1.0, "verdict": "holds"}
    bad = {"values": [3.0, 2.0, 1.0], "spearman": -1.0, "verdict": "broken"}
    metrics = {
        key: {"label": key, "role": role, "higher_is_better": False, "detects": list(LADDERS[:3]),
              "ladders": {name: (ladder if i % 2 else bad) for i, name in enumerate(LADDERS)},
              "verdict": "broken", "trusted_for": ["spread"]}
        for key, role in (("latent_fd", "headline"), ("fid_inf_recon", "headline"), ("hit_ellipsoid", "diagnostic"),
                          ("a_very_long_third_party_metric_key", "headline"))
    }
    section = {"settings": {"size": 40, "steps": {n: 3 for n in LADDERS}, "extractor": "inception", "seed": 0},
               "ladders": {n: {"param": "x", "levels": [0, 1, 2]} for n in LADDERS}, "metrics": metrics,
               "uncovered": ["moments"]}
    buffer = io.StringIO()
    render_validation_table(section, Console(file=buffer, width=80, color_system=None))
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    table = text.split("Trusted headline")[0]
    for word in ("collapse", "spread", "contam", "modes", "moments", "memo", "latent_fd", "fid_inf_recon", "1.00✓",
                 "-1.00✗", "broken"):
        assert word in table, word
    assert "Ladders no trusted headline metric detects: moments." in " ".join(text.split())


def test_run_validate_stores_the_section_in_the_run_results(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "run"
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--features", "fast", "--n", "48", "--quiet",
               "--out", str(out), "--sampler", "gaussian", "--metrics", "region_hits,latent_distance,fid",
               "--validate", "--no-figures"])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "complete" and doc["config"]["validation"] == {}
    section = doc["validation"]
    assert section["settings"]["size"] == 48 and section["settings"]["split"] == "split training"
    assert {"hit_box", "nn_distance_ratio", "fid"} <= set(section["metrics"])
    assert "figure" not in section
    assert [r["name"] for r in doc["samplers"]] == ["gaussian"] and "hit_box" in doc["samplers"][0]["metrics"]
    assert "## Validation: known-answer ladders" in (out / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--size", "81"], "--size 81 is more than the 80 usable held-out latents"),
    (["--steps", "2"], "at least 3 steps"),
    (["--ladders", "colapse"], "Unknown ladder 'colapse'"),
    (["--metrics", "fdi"], "fdi"),
])
def test_bad_options_fail_with_one_line_and_write_nothing(tmp_path, tiny_orl_checkpoint, capsys, args, message):
    rc, out = _validate(tmp_path, tiny_orl_checkpoint, *args)
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "results.json").exists()
