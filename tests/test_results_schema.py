"""The results schema in code: what the runner writes for each metric key comes from the metric's own
declaration, a third-party metric shows correctly everywhere, and readers refuse malformed files."""

from __future__ import annotations

import copy
import json

import pytest
from toy_metrics import RadiusMetrics, ToyMetricsPlugin

import aebench.plugins
from aebench.cli import main
from aebench.reports.markdown import render_markdown
from aebench.results.schema import SCHEMA, ResultsError, check_results, load_results


def test_runner_writes_metric_info_from_the_declarations(toy_run):
    doc = toy_run()
    assert doc["schema"] == SCHEMA == "aebench-results/2"
    info = doc["metric_info"]
    assert info["radius_error"] == {**RadiusMetrics.column("radius_error").for_key("radius_error"),
                                    "metric": "toy_radius", "declared": True}
    assert info["radius_error"]["role"] == "headline" and info["radius_error"]["detects"] == ["collapse", "spread"]
    assert info["near_share"]["unit"] == "rate" and info["near_share"]["role"] == "diagnostic"
    assert info["toy_zero_a"]["label"] == "zero a"  # a family's '*' filled in from the key
    assert info["feature_gap"]["group"] == "image" and info["feature_gap"]["metric"] == "toy_feature_gap"
    assert check_results(doc) is doc


def test_undeclared_keys_get_a_neutral_entry_and_a_warning(toy_run, capsys):
    doc = toy_run(metrics=("toy_radius", "toy_undeclared"), seeds=(0,))
    err = capsys.readouterr().err
    assert "'toy_undeclared' returned 'fid_like_score' without declaring it" in " ".join(err.split())
    entry = doc["metric_info"]["fid_like_score"]
    assert entry == {"label": "fid_like_score", "higher_is_better": False, "group": "other", "unit": "", "role": "info",
                     "detects": [], "description": "not declared by metric 'toy_undeclared'",
                     "metric": "toy_undeclared", "declared": False}
    md = render_markdown(doc)
    assert "fid_like_score" in md and "undeclared" not in md.split("## Verdict")[0]
    assert "Information, no better direction: dimension, fid_like_score." not in md  # dimension is flat here
    assert "Information, no better direction: fid_like_score." in md


def test_a_third_party_metric_shows_correctly_in_every_report(tmp_path, tiny_model, capsys, monkeypatch):
    """A metric plugin aebench has never heard of: its labels, units, groups and roles reach the
    terminal, report.md and report.html unchanged, with nothing guessed from its keys."""
    checkpoint, cache = tiny_model
    monkeypatch.setenv("COLUMNS", "200")
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(ToyMetricsPlugin(), name="toy-metrics")
    out = tmp_path / "out"
    rc = main(["run", "--checkpoint", str(checkpoint), "--cache-dir", str(cache), "--set", "dataset.size=32",
               "--features", "fast", "--n", "40", "--seeds", "2", "--quiet", "--no-figures", "--out", str(out),
               "--sampler", "gaussian,uniform", "--metrics", "toy_radius"])
    stdout = capsys.readouterr().out
    assert rc == 0
    doc = load_results(out / "results.json")
    near = {r["name"]: r["metrics"]["near_share"]["value"] for r in doc["samplers"]}
    for text in ("radius error ↓", "near share ↑", f"{100 * near['gaussian']:.1f}%", "Ranked by radius error"):
        assert text in stdout, text
    assert "pictures in" not in stdout  # --no-figures: no pictures to point at
    md = (out / "report.md").read_text()
    assert "| sampler | radius error ↓ | near share ↑ |" in md
    assert f"{100 * near['uniform']:.1f}%" in md and "zero a 0.0%" in md  # flat family set aside, named
    html = (out / "report.html").read_text()
    assert ">radius error ↓</th>" in html and 'class="num flat"' in html and ">near share ↑</th>" in html


def _doc_file(tmp_path, doc) -> str:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _set(path):
    """A mutation: set the value at a dotted path (list indexes as numbers)."""
    *parents, last = path.split(".")

    def mutate(doc, value):
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return mutate


_DELETE = object()


@pytest.mark.parametrize("path, value, message", [
    ("schema", "aebench-results/1", "written by an older aebench"),
    ("schema", "aebench-results/3", "written by a newer aebench; this aebench reads 'aebench-results/2': upgrade"),
    ("schema", "something-else/2", "is not an aebench results file"),
    ("status", "half", "status is 'half', not one of running, interrupted, complete"),
    ("metric_info.radius_error.role", "best", "metric_info.radius_error.role is 'best', not one of headline"),
    ("metric_info.radius_error.higher_is_better", "yes", "higher_is_better must be true, false or null"),
    ("metric_info.radius_error", _DELETE, "references[0].metrics.radius_error has no metric_info entry"),
    ("samplers.0.metrics.radius_error.value", "abc", "samplers[0].metrics.radius_error.value must be a finite number"),
    ("samplers.0.metrics.radius_error.high", _DELETE, "has only one end of its interval"),
    ("samplers.1.name", "gaussian", "samplers[1].name repeats the row name 'gaussian'"),
    ("samplers", {"gaussian": {}}, "samplers must be a list"),
    ("validation", {"metrics": {"radius_error": {"verdict": "great"}}},
     "validation.metrics.radius_error.verdict is 'great', not one of holds, broken, flat, untested"),
])
def test_malformed_results_are_refused_with_the_field_named(tmp_path, toy_run, path, value, message):
    doc = toy_run()
    _set(path)(doc, value)
    with pytest.raises(ResultsError) as info:
        load_results(_doc_file(tmp_path, doc))
    text = str(info.value)
    assert message in text and str(tmp_path) in text and "\n" not in text
    with pytest.raises(ResultsError):
        render_markdown(doc)  # the reports check the document too


def test_reading_files(tmp_path, toy_run):
    doc = toy_run()
    running = copy.deepcopy(doc)
    running["status"] = "running"
    path = _doc_file(tmp_path, running)
    with pytest.raises(ResultsError, match="is a running run, not a complete one; .* --allow-incomplete"):
        load_results(path)
    assert load_results(path, allow_incomplete=True)["status"] == "running"
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(tmp_path / "nope.json")
    with pytest.raises(ResultsError, match="is a folder"):
        load_results(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultsError, match="is not valid JSON"):
        load_results(tmp_path / "bad.json")


def test_a_results_file_of_another_version_stops_compare_with_a_clear_message(tmp_path, toy_run, capsys):
    new = toy_run()
    old = copy.deepcopy(new)
    old["schema"] = "aebench-results/1"
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    rc = main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "written by an older aebench" in err and "rerun `aebench run`" in err
    assert len(err.splitlines()) == 1
