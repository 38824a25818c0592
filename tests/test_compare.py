"""`aebench compare`: the regression gate between two results files."""

from __future__ import annotations

import copy
import json
import math

import pytest

from aebench.cli import main
from aebench.compare import ResultsError, compare_results, judge_change, load_results, parse_tolerances
from aebench.errors import AebenchError


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path / "cache"))


def sampler(name, fid, hit, reenc=0.1):
    return {
        "name": name, "kind": "sampler", "status": "ok", "options": {}, "is_path_sampler": False, "n": 256, "seeds": [0],
        "metrics": {
            "fid": {"value": fid, "higher_is_better": False, "n": 256},
            "hit_box": {"value": hit, "higher_is_better": True, "n": 256},
            "reencode_error": {"value": reenc, "higher_is_better": None, "n": 256},
        },
    }


def results(*samplers) -> dict:
    return {
        "schema": "aebench-results/1", "status": "complete", "created": "2025-01-01T00:00:00", "finished": "2025-01-01T00:01:00",
        "config": {"dataset": "orl_faces", "n": 256, "seeds": [0], "target": 0.95},
        "dataset": {"name": "orl_faces", "fingerprint": "abc"},
        "model": {"checksum": "m1"},
        "features": {"extractor": "inception", "reference": "train", "n_real": 320, "judge": True},
        "metric_info": {"fid": {"higher_is_better": False}, "hit_box": {"higher_is_better": True},
                        "reencode_error": {"higher_is_better": None}},
        "references": [],
        "samplers": list(samplers) or [sampler("gmm", 200.0, 0.8), sampler("line", 300.0, 1.0)],
    }


def run(tmp_path, capsys, old, new, *args):
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    rc = main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json"), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def verdicts(stdout: str) -> dict[str, str]:
    return {f"{c['sampler']}/{c['metric']}": c["verdict"] for c in json.loads(stdout)["changes"]}


def test_worse_fid_beyond_tolerance_fails(tmp_path, capsys):
    old, new = results(), results()
    new["samplers"][0]["metrics"]["fid"]["value"] = 211.0  # +5.5% > 5%
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    assert rc == 1
    data = json.loads(out)
    assert data["regressed"] and data["regressions"] == ["gmm/fid"]
    change = next(c for c in data["changes"] if c["sampler"] == "gmm" and c["metric"] == "fid")
    assert change["old"] == 200.0 and change["new"] == 211.0 and change["abs_change"] == pytest.approx(11.0)
    assert change["rel_change"] == pytest.approx(0.055)
    rc, out, _ = run(tmp_path, capsys, old, new)  # the table says so too
    assert rc == 1 and "regressed" in out and "1 regression(s)" in out


def test_worse_within_tolerance_and_improvements_pass(tmp_path, capsys):
    old, new = results(), results()
    new["samplers"][0]["metrics"]["fid"]["value"] = 209.0  # +4.5%
    new["samplers"][1]["metrics"]["fid"]["value"] = 150.0  # much better
    new["samplers"][1]["metrics"]["hit_box"]["value"] = 1.0  # same
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    assert rc == 0
    v = verdicts(out)
    assert v["gmm/fid"] == "worse" and v["line/fid"] == "better" and v["line/hit_box"] == "same"
    rc, out, _ = run(tmp_path, capsys, old, new, "--json", "--tolerance", "0.04")
    assert rc == 1 and verdicts(out)["gmm/fid"] == "regressed"


def test_direction_is_respected(tmp_path, capsys):
    old, new = results(), results()
    new["samplers"][0]["metrics"]["hit_box"]["value"] = 0.7  # higher is better: a 12.5% drop
    new["samplers"][0]["metrics"]["fid"]["value"] = 100.0  # lower is better: an improvement
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    assert rc == 1 and verdicts(out)["gmm/hit_box"] == "regressed" and verdicts(out)["gmm/fid"] == "better"
    new["samplers"][0]["metrics"]["hit_box"]["value"] = 0.95
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    assert rc == 0 and verdicts(out)["gmm/hit_box"] == "better"


def test_informational_metrics_never_gate(tmp_path, capsys):
    old, new = results(), results()
    new["samplers"][0]["metrics"]["reencode_error"]["value"] = 5.0  # 50x larger, but direction null
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    assert rc == 0 and verdicts(out)["gmm/reencode_error"] == "info"


def test_missing_failed_and_new_samplers(tmp_path, capsys):
    old = results()
    new = results(sampler("gmm", 200.0, 0.8), sampler("fresh", 250.0, 0.9))
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    data = json.loads(out)
    assert rc == 1 and data["missing"] == ["line"] and data["added"] == ["fresh"] and data["regressions"] == []
    failed = copy.deepcopy(old)
    failed["samplers"][1] = {"name": "line", "kind": "sampler", "status": "failed", "error": "ValueError: boom", "metrics": {}}
    rc, out, err = run(tmp_path, capsys, old, failed, "--json")
    assert rc == 1 and json.loads(out)["missing"] == ["line"] and "ValueError: boom" in err
    rc, out, _ = run(tmp_path, capsys, failed, old, "--json")  # fixed in the new run: fine
    assert rc == 0


def test_metric_missing_or_nan_in_new_run_is_a_regression(tmp_path, capsys):
    old, new = results(), results()
    del new["samplers"][0]["metrics"]["fid"]
    new["samplers"][1]["metrics"]["hit_box"]["value"] = float("nan")
    rc, out, _ = run(tmp_path, capsys, old, new, "--json")
    data = json.loads(out)
    assert rc == 1 and set(data["regressions"]) == {"gmm/fid", "line/hit_box"}
    assert all(c["new"] is None for c in data["changes"] if c["verdict"] == "regressed")  # strict JSON: no NaN
    rc, out, _ = run(tmp_path, capsys, old, new, "--json", "--metric", "reencode_error")
    assert rc == 0 and set(verdicts(out)) == {"gmm/reencode_error", "line/reencode_error"}


def test_per_metric_and_absolute_tolerances(tmp_path, capsys):
    old, new = results(), results()
    new["samplers"][0]["metrics"]["fid"]["value"] = 220.0  # +10%
    new["samplers"][0]["metrics"]["hit_box"]["value"] = 0.79  # -1.25%, i.e. one point
    assert run(tmp_path, capsys, old, new, "--tolerance", "fid=0.15")[0] == 0
    assert run(tmp_path, capsys, old, new, "--tolerance", "fid=0.15", "--abs-tolerance", "hit_box=0.005")[0] == 1
    assert run(tmp_path, capsys, old, new, "--tolerance", "fid=0.15", "--abs-tolerance", "hit_box=0.02")[0] == 0


def test_incomparable_runs_warn_or_fail_under_strict(tmp_path, capsys):
    old, new = results(), results()
    new["config"]["n"] = 512
    new["features"]["extractor"] = "fast"
    rc, _, err = run(tmp_path, capsys, old, new)
    assert rc == 0 and "sample count n differs (256 vs 512)" in err and "feature extractor differs" in err
    rc, _, err = run(tmp_path, capsys, old, new, "--strict")
    assert rc == 2 and err.startswith("Error: Results are not comparable: sample count n differs") and "--strict" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"foo": 1}', "is not an aebench results file"),
        ("[1, 2]", "is not an aebench results file"),
        ("{not json", "is not valid JSON"),
        ('{"schema": "aebench-results/2", "samplers": []}', "has schema 'aebench-results/2'"),
        ('{"schema": "aebench-results/1", "status": "complete", "samplers": [{"metrics": {}}]}', "named rows"),
        ('{"schema": "aebench-results/1", "status": "running", "samplers": []}', "--allow-incomplete"),
    ],
)
def test_bad_results_files_give_one_line_errors(tmp_path, capsys, content, message):
    (tmp_path / "bad.json").write_text(content)
    (tmp_path / "good.json").write_text(json.dumps(results()))
    rc = main(["compare", str(tmp_path / "good.json"), str(tmp_path / "bad.json")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_file_and_allow_incomplete(tmp_path, capsys):
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(tmp_path / "nope.json")
    running = results()
    running["status"] = "running"
    (tmp_path / "r.json").write_text(json.dumps(running))
    assert load_results(tmp_path / "r.json", allow_incomplete=True)["status"] == "running"


def test_judge_change_edges():
    assert judge_change(0.0, 0.1, True, tolerance=0.05)[0] == "better"
    assert judge_change(0.0, 0.1, False, tolerance=0.05)[0] == "regressed"  # worse from zero: no relative scale
    assert judge_change(1.0, math.inf, False, tolerance=0.05)[0] == "regressed"
    assert judge_change(math.nan, 1.0, False, tolerance=0.05)[0] == "incomparable"
    assert judge_change(100.0, 105.0, False, tolerance=0.05)[0] == "worse"  # exactly at the tolerance passes


def test_option_parsing_and_unknown_metric():
    assert parse_tolerances(["0.1", "fid=0.2"]) == (0.1, {"fid": 0.2})
    for bad, kwargs in [(["fid=x"], {}), (["0.1"], {"require_key": True}), (["=0.1"], {"require_key": True})]:
        with pytest.raises(AebenchError, match="Cannot read tolerance"):
            parse_tolerances(bad, **kwargs)
    with pytest.raises(AebenchError, match="Metric 'fdi' is in neither"):
        compare_results(results(), results(), metrics=["fdi"])
    with pytest.raises(AebenchError, match="must be a finite number"):
        compare_results(results(), results(), tolerance=-1)
