"""Several feature extractors in one run (`--features fast,domain`): per-judge metric keys, the first
judge's numbers unchanged, the judges section and its agreement (checked against scipy.stats.spearmanr),
per-judge validation, and the verdict reading each judge's own ladders."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from scipy.stats import spearmanr

from aebench.cli import main
from aebench.dataset import load_dataset
from aebench.errors import OptionError
from aebench.metric import judge_key, split_judge_key
from aebench.models.judge_training import train_and_save_judge
from aebench.results.schema import ResultsDocument, check_results
from aebench.run.config import RunConfig
from aebench.testing import shape_mismatches
from aebench.verdict.agreement import agreement
from aebench.verdict.ranking import judge

TINY_NET = {"channels": (4, 8), "width": 16}
IMAGE_METRICS = "fid,kid,prdc,latent_fd"


@pytest.fixture(scope="module")
def tiny_judge32(tmp_path_factory):
    """A domain judge for 32x32 ORL faces (the tiny model's images), trained in a second or two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=tmp_path_factory.mktemp("orl32"))
        out = tmp_path_factory.mktemp("judge32") / "judge.safetensors"
        return train_and_save_judge(dataset, out, training={"epochs": 3}, net_options=TINY_NET, seed=0,
                                    progress=False).checkpoint
    finally:
        torch.set_num_threads(before)


def run_args(checkpoint, out, features, judge_checkpoint=None, extra=()):
    args = ["run", "--checkpoint", str(checkpoint), "--set", "dataset.size=32", "--n", "40", "--quiet",
            "--no-figures", "--sampler", "gaussian,origin_line,uniform", "--seeds", "2", "--metrics", IMAGE_METRICS,
            "--features", features, "--out", str(out), *extra]
    if judge_checkpoint is not None:
        args += ["--set", f"domain.checkpoint={judge_checkpoint}"]
    return args


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_orl_checkpoint, tiny_judge32):
    """(single-judge document, two-judge document) of the same run."""
    base = tmp_path_factory.mktemp("judges-runs")
    assert main(run_args(tiny_orl_checkpoint, base / "one", "fast")) == 0
    assert main(run_args(tiny_orl_checkpoint, base / "two", "fast,domain", tiny_judge32)) == 0
    return (json.loads((base / "one" / "results.json").read_text()),
            json.loads((base / "two" / "results.json").read_text()), base)


def test_judge_keys_round_trip():
    assert judge_key("fid_recon", "domain") == "fid_recon@domain" and judge_key("fid_recon", None) == "fid_recon"
    assert split_judge_key("fid_recon@domain") == ("fid_recon", "domain")
    assert split_judge_key("fid_recon") == ("fid_recon", None)


def test_the_first_judge_keeps_its_keys_and_numbers(two_runs):
    one, two, _ = two_runs
    for section in ("references", "samplers"):
        for a, b in zip(one[section], two[section]):
            own = {k: v for k, v in b["metrics"].items() if "@" not in k}
            assert own == a["metrics"]  # every key and number of the single-judge run, exactly
    assert "judges" not in one and "judge_options" not in one["config"]
    assert one["features"] == two["features"]


def test_other_judges_score_the_image_metrics_only(two_runs):
    _, two, _ = two_runs
    keys = set(two["samplers"][0]["metrics"])
    domain = {k for k in keys if k.endswith("@domain")}
    assert {"fid_recon@domain", "kid_recon@domain", "fid@domain", "coverage_recon@domain"} <= domain
    assert "latent_fd@domain" not in keys  # latent metrics do not read features
    info = two["metric_info"]["fid_recon@domain"]
    assert info["judge"] == "domain" and info["label"] == "FID recon @domain"
    assert {k: v for k, v in info.items() if k not in ("judge", "label")} == \
        {k: v for k, v in two["metric_info"]["fid_recon"].items() if k != "label"}
    # the domain judge's features really differ from fast's: so do the values
    assert two["samplers"][0]["metrics"]["fid_recon@domain"]["value"] != two["samplers"][0]["metrics"]["fid_recon"]["value"]


def test_judges_section_and_agreement_are_written_and_declared(two_runs):
    _, two, _ = two_runs
    check_results(two)
    assert shape_mismatches(two, ResultsDocument) == []
    records = two["judges"]["extractors"]
    assert [r["extractor"] for r in records] == ["fast", "domain"] and records[1]["suffix"] == "@domain"
    assert records[1]["provenance"]["num_classes"] == 40
    stored = {a["metric"]: a for a in two["judges"]["agreement"]}
    assert set(stored) == {"fid_recon", "kid_recon", "coverage_recon"}  # the image headline metrics run
    assert stored == {a.metric: a.record() for a in agreement(two)}


def test_agreement_is_spearman_of_the_judges_values(two_runs):
    _, two, _ = two_runs
    for a in agreement(two):
        first = [r["metrics"][a.keys[0]]["value"] for r in two["samplers"]]
        second = [r["metrics"][a.keys[1]]["value"] for r in two["samplers"]]
        expected = spearmanr(first, second).statistic
        assert a.n == 3 and a.spearman == pytest.approx(expected)


def _doc(values_a, values_b, interval=0.5):
    """A results document with one image headline metric under two judges (lower is better)."""
    info = {"label": "FID recon", "higher_is_better": False, "group": "image_recon", "unit": "", "role": "headline",
            "detects": [], "description": ""}
    rows = []
    for i, (a, b) in enumerate(zip(values_a, values_b)):
        rows.append({"name": f"s{i}", "kind": "sampler", "status": "ok", "metrics": {
            "fid_recon": {"value": a, "low": a - interval, "high": a + interval},
            "fid_recon@domain": {"value": b, "low": b - interval, "high": b + interval}}})
    return {"metric_info": {"fid_recon": info, "fid_recon@domain": {**info, "judge": "domain"}},
            "samplers": rows, "references": [],
            "judges": {"extractors": [{"extractor": "inception"}, {"extractor": "domain"}]}}


def test_agreement_against_scipy_and_the_pairs_in_opposite_orders():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [1.2, 5.0, 2.9, 4.1, 2.0]
    (found,) = agreement(_doc(a, b))
    assert found.spearman == pytest.approx(spearmanr(a, b).statistic) and found.n == 5
    # intervals are ±0.5, so a gap counts above 1.0: the first judge orders s0 < s1 < ... < s4 (only pairs two
    # apart or more are clear); of those, only s1 vs s4 is clear the other way round (5.0 vs 2.0); s1 vs s3
    # (5.0 vs 4.1) and s2 vs s4 (2.9 vs 2.0) are within the intervals
    pairs = {(d["ahead_first"], d["ahead_second"]) for d in found.disagreements}
    assert pairs == {("s1", "s4")}
    assert "the judges disagree" in found.sentence and "neither order is taken as the answer" in found.sentence
    assert found.sentence.count(". ") == 0  # one sentence


def test_overlapping_intervals_are_no_disagreement():
    (found,) = agreement(_doc([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], interval=1.0))
    assert found.disagreements == [] and "never put two of them in opposite orders" in found.sentence
    (wide,) = agreement(_doc([1.0, 2.0], [2.0, 1.0]))
    assert wide.spearman is None and "too few" in wide.sentence


def test_the_report_says_where_the_judges_disagree(two_runs):
    from aebench.reports.sections import Report, render_markdown_sections

    _, two, base = two_runs
    doc = copy.deepcopy(two)
    row = doc["samplers"]  # make the judges disagree on gaussian vs uniform with intervals apart
    for r, (a, b) in zip(row, [(10.0, 30.0), (50.0, 50.0), (30.0, 10.0)]):
        r["metrics"]["fid_recon"].update(value=a, low=a - 1, high=a + 1)
        r["metrics"]["fid_recon@domain"].update(value=b, low=b - 1, high=b + 1)
    text = "\n".join(render_markdown_sections(Report(doc, "markdown")))
    assert "## Judges: do the feature spaces agree?" in text
    assert ("FID recon: the judges disagree — fast puts gaussian ahead of uniform, domain puts uniform ahead of "
            "gaussian") in text
    saved = (base / "two" / "report.md").read_text()
    assert "## Judges: do the feature spaces agree?" in saved and "Spearman ρ" in saved


def test_validation_scores_every_judge_and_the_verdict_reads_each(tmp_path, tiny_orl_checkpoint, tiny_judge32):
    out = tmp_path / "val"
    rc = main(["validate", "--checkpoint", str(tiny_orl_checkpoint), "--set", "dataset.size=32", "--n", "40",
               "--quiet", "--features", "fast,domain", "--set", f"domain.checkpoint={tiny_judge32}",
               "--metrics", "fid,latent_fd", "--steps", "3", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    section = doc["validation"]
    assert {"fid_recon", "fid_recon@domain", "fid@domain", "latent_fd"} <= set(section["metrics"])
    assert "latent_fd@domain" not in section["metrics"]
    assert section["settings"]["other_extractors"] == ["domain"]
    assert section["metrics"]["fid_recon@domain"]["ladders"]["collapse"]["values"] != \
        section["metrics"]["fid_recon"]["ladders"]["collapse"]["values"]
    assert shape_mismatches(doc, ResultsDocument) == []
    assert [r["extractor"] for r in doc["judges"]["extractors"]] == ["fast", "domain"]
    # the verdict reads the key's own ladders: break domain's, keep the first's (fast taken for a judge here)
    doc["features"]["judge"] = True
    doc["judges"] = {"extractors": [{"extractor": "fast", "judge": True}, {"extractor": "domain", "judge": True}]}
    doc["samplers"] = [{"name": n, "kind": "sampler", "status": "ok", "metrics": {
        "fid_recon": {"value": v}, "fid_recon@domain": {"value": v}}} for n, v in (("a", 1.0), ("b", 2.0))]
    for key in ("fid_recon", "fid_recon@domain"):
        doc["metric_info"][key]["role"] = "headline"
        section["metrics"][key]["verdict"] = "holds"
    section["metrics"]["fid_recon@domain"]["verdict"] = "broken"
    verdict = judge(doc, ["fid_recon", "fid_recon@domain"])
    assert verdict.metrics["fid_recon"].status == "ranks"
    assert verdict.metrics["fid_recon@domain"].status == "untrusted"


def test_a_judge_that_is_not_validated_does_not_rank(two_runs):
    _, two, _ = two_runs
    doc = copy.deepcopy(two)
    doc["features"]["judge"] = True  # as if the first extractor were Inception
    verdict = judge(doc)
    assert verdict.metrics["fid_recon"].status != "untrusted"
    doc["judges"]["extractors"][1]["judge"] = False
    assert "is not a validated judge" in judge(doc).metrics["fid_recon@domain"].reason


def test_judge_settings(tmp_path):
    config = RunConfig(features="inception,domain")
    config.apply_assignments({"domain": {"seed": "1"}, "inception": {"weights": "auto"}})
    assert config.judges == ["inception", "domain"] and config.judge_options == {"domain": {"seed": "1"}}
    assert config.feature_options == {"weights": "auto"} and config.extractor_options("domain") == {"seed": "1"}
    assert RunConfig.from_dict({"features": ["inception", "domain"]}).features == "inception,domain"
    with pytest.raises(OptionError, match="several different ones"):
        RunConfig(features="inception,inception").check()
    with pytest.raises(OptionError, match="judge_options names 'fast'"):
        RunConfig(features="inception,domain", judge_options={"fast": {}}).check()
    assert "judge_options" not in RunConfig().to_dict()


def test_dask_workers_judge_with_the_drivers_bound_extractors(tiny_model, tiny_judge32, tmp_path):
    """The domain judge travels to the workers as the driver's bound extractor (its weights), so a Dask run
    gives the local run's numbers, the other judge's keys included."""
    pytest.importorskip("distributed")
    from test_cells import numbers_only, tiny_config

    from aebench.executors import make_executor
    from aebench.run.runner import run_benchmark

    def config(out):
        c = tiny_config(tiny_model, out, seeds=(0,))
        c.features, c.judge_options = "fast,domain", {"domain": {"checkpoint": str(tiny_judge32)}}
        c.check()
        return c

    local = run_benchmark(config(tmp_path / "local"), quiet=True)
    dask = run_benchmark(config(tmp_path / "dask"), quiet=True, executor=make_executor("dask", workers=2))
    assert "fid_recon@domain" in dask["samplers"][0]["metrics"]
    assert numbers_only(dask) == numbers_only(local)


def test_point_values_never_make_a_disagreement_between_judges():
    from aebench.verdict.agreement import _ahead
    from aebench.verdict.ranking import Estimate

    info = {"higher_is_better": False}
    far_apart = Estimate.of({"value": 10.0, "low": None, "high": None}), Estimate.of({"value": 90.0, "low": None, "high": None})
    assert _ahead(*far_apart, info) is None  # one seed: no interval, so no gap can be called real
    with_intervals = Estimate.of({"value": 10.0, "low": 9.0, "high": 11.0}), Estimate.of({"value": 90.0, "low": 89.0, "high": 91.0})
    assert _ahead(*with_intervals, info) == "x"
