"""`aebench compare`: the regression gate between two results files. Documents come from real tiny
runs (tests/conftest.py `toy_run`), with values set where a case needs them."""

from __future__ import annotations

import copy
import json
import math

import pytest
from rich.console import Console

from aebench.cli import main
from aebench.commands.compare import comparison_renderables
from aebench.errors import AebenchError
from aebench.testing import row_of, set_value
from aebench.verdict.compare import compare_results, judge_change, parse_tolerances
from aebench.verdict.ranking import Estimate


def rerun_of(doc):
    """The same run as if written again: identical numbers, another timestamp."""
    new = copy.deepcopy(doc)
    new["created"] = new["finished"] = "2031-01-01T00:00:00+00:00"
    return new


def compare(tmp_path, capsys, old, new, *args):
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    rc = main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json"), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def verdicts(stdout: str) -> dict[str, str]:
    return {f"{c['sampler']}/{c['metric']}": c["verdict"] for c in json.loads(stdout)["changes"]}


def test_an_equal_run_passes_and_says_by_which_rule(tmp_path, capsys, toy_run):
    old = toy_run()
    rc, out, err = compare(tmp_path, capsys, old, rerun_of(old))
    assert rc == 0 and err.strip() == ""
    assert "PASS: no regressions in" in " ".join(out.split())
    assert "new 95% interval wholly on the bad side of the old one" in " ".join(out.split())
    rc, out, _ = compare(tmp_path, capsys, old, rerun_of(old), "--json")
    data = json.loads(out)
    assert rc == 0 and data["passed"] and data["regressions"] == [] and data["rule"].startswith("regression = new 95%")
    assert set(verdicts(out).values()) <= {"same", "info"}


def test_other_seeds_of_the_same_run_pass(tmp_path, capsys, toy_run):
    """Seed noise alone is not a regression: the intervals over seeds overlap."""
    rc, out, _ = compare(tmp_path, capsys, toy_run(), toy_run(seeds=(3, 4, 5)), "--json")
    data = json.loads(out)
    assert rc == 0, data["regressions"]
    assert any("seeds differ" in note for note in data["notes"])


def test_worse_beyond_the_intervals_fails_and_names_every_regressed_row(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    for name in ("gaussian", "correlated"):
        e = row_of(old, name)["metrics"]["radius_error"]
        set_value(new, name, "radius_error", e["value"] + 1.0, e["value"] + 0.9, e["value"] + 1.1)
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    data = json.loads(out)
    assert rc == 1 and not data["passed"]
    assert [(r["sampler"], r["metric"]) for r in data["regressions"]] == [("gaussian", "radius_error"),
                                                                          ("correlated", "radius_error")]
    assert data["regressions"][0]["reason"].startswith("intervals apart, beyond 5%")
    rc, out, _ = compare(tmp_path, capsys, old, new)
    flat = " ".join(out.split())
    assert rc == 1 and "FAIL: 2 regression(s): gaussian radius_error (+" in flat and "correlated radius_error (+" in flat
    assert "regressed: gaussian radius_error: intervals apart" in flat
    rc, out, _ = compare(tmp_path, capsys, old, new, "--markdown")
    assert rc == 1 and out.startswith("# aebench compare")
    assert "## Regressions" in out and "- **gaussian** radius_error:" in out and "- **correlated** radius_error:" in out
    assert "| sampler | metric | old | new | change | verdict |" in out


def test_worse_inside_the_intervals_passes_as_worse(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    set_value(old, "gaussian", "radius_error", 0.10, 0.05, 0.15)
    set_value(new, "gaussian", "radius_error", 0.13, 0.08, 0.18)  # +30%, but the intervals overlap
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    change = next(c for c in json.loads(out)["changes"] if c["sampler"] == "gaussian" and c["metric"] == "radius_error")
    assert rc == 0 and change["verdict"] == "worse" and change["reason"] == "intervals overlap"
    assert change["old_low"] == 0.05 and change["new_high"] == 0.18


def test_a_value_near_zero_does_not_fail_on_noise(tmp_path, capsys, toy_run):
    """KID-like numbers near zero: +11% from a seed change is noise, inside the intervals or below the floor."""
    old = toy_run()
    new = rerun_of(old)
    set_value(old, "gaussian", "radius_error", 0.0120, 0.0060, 0.0190)
    set_value(new, "gaussian", "radius_error", 0.0133, 0.0070, 0.0200)
    assert compare(tmp_path, capsys, old, new)[0] == 0
    # without intervals the floor decides: 5% of the metric's typical size on this run, not of 0.004
    set_value(old, "gaussian", "radius_error", 0.0040)
    set_value(new, "gaussian", "radius_error", 0.0046)
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    change = next(c for c in json.loads(out)["changes"] if c["sampler"] == "gaussian" and c["metric"] == "radius_error")
    assert rc == 0 and change["verdict"] == "worse" and change["reason"].startswith("below the floor")
    set_value(new, "gaussian", "radius_error", 0.4)  # a real jump still fails
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    assert rc == 1 and verdicts(out)["gaussian/radius_error"] == "regressed"
    assert json.loads(out)["regressions"][0]["reason"].startswith("no intervals: point values")
    rc, _, _ = compare(tmp_path, capsys, old, new, "--abs-tolerance", "radius_error=1.0")
    assert rc == 0  # an explicit absolute floor


@pytest.mark.parametrize("change, message", [
    (lambda d: d["features"].update(extractor="inception"), "feature extractor differs (fast vs inception)"),
    (lambda d: d["model"].update(checksum="0" * 64), "model checksum differs"),
    (lambda d: d["dataset"].update(fingerprint="f" * 16), "data set fingerprint differs"),
    (lambda d: d["config"].update(n=512), "sample count n differs (48 vs 512)"),
    (lambda d: d["features"].update(n_real=100), "real image count n_real differs (320 vs 100)"),
    (lambda d: d["config"].update(metric_options={"toy_radius": {"k": 5}}), "metric options differ"),
    (lambda d: d["config"].update(region_options={"knn": {"k": 5}}), "region options differ"),
    (lambda d: d["features"].update(precision="tf32"), "precision of decode and features differs (fp32 vs tf32)"),
    (lambda d: row_of(d, "plane_conditional")["options"].update(others="centre"),
     "plane_conditional: sampler options differ (others='conditional' vs 'centre')"),
])
def test_runs_with_different_settings_are_refused(tmp_path, capsys, toy_run, change, message):
    old = toy_run()
    new = rerun_of(old)
    change(new)
    rc, out, err = compare(tmp_path, capsys, old, new)
    assert rc == 2 and out == ""
    assert err.startswith("Error: Refusing to compare: ") and message in err and "--allow-different-settings" in err
    assert len(err.strip().splitlines()) == 1
    rc, out, err = compare(tmp_path, capsys, old, new, "--allow-different-settings", "--json")
    assert rc == 0 and any(message in d for d in json.loads(out)["differences"]) and message in err
    rc, out, _ = compare(tmp_path, capsys, old, new, "--allow-different-settings")
    assert "compared although" in out


def test_another_device_at_the_same_precision_is_compared_with_a_note(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    new["features"]["device"] = "cuda:0"
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    assert rc == 0
    assert any(note.startswith("devices differ (cpu vs cuda:0)") for note in json.loads(out)["notes"])


def test_the_same_file_twice_is_refused(tmp_path, capsys, toy_run):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(toy_run()))
    assert main(["compare", str(path), str(path)]) == 2
    assert "OLD and NEW are the same file" in capsys.readouterr().err
    (tmp_path / "copy.json").write_bytes(path.read_bytes())
    assert main(["compare", str(path), str(tmp_path / "copy.json")]) == 2
    assert "byte-identical copies of one run" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--tolerance", "radius_eror=0.5"], "--tolerance: unknown metric 'radius_eror'. Did you mean 'radius_error'?"),
    (["--abs-tolerance", "nearshare=0.1"], "--abs-tolerance: unknown metric 'nearshare'. Did you mean 'near_share'?"),
    (["--metric", "fdi"], "--metric: unknown metric 'fdi'."),
    (["--tolerance", "radius_error=x"], "Cannot read tolerance 'radius_error=x'"),
    (["--json", "--markdown"], "either --json or --markdown"),
])
def test_option_mistakes_are_refused(tmp_path, capsys, toy_run, args, message):
    old = toy_run()
    rc, out, err = compare(tmp_path, capsys, old, rerun_of(old), *args)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_information_never_gates_and_only_selected_metrics_are_compared(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    set_value(new, "gaussian", "dimension", 1000.0)
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    assert rc == 0 and verdicts(out)["gaussian/dimension"] == "info"
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json", "--metric", "near_share")
    assert rc == 0 and {k.split("/")[1] for k in verdicts(out)} == {"near_share"}


def test_missing_failed_and_new_samplers(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    new["samplers"] = [r for r in new["samplers"] if r["name"] != "uniform"]
    rc, out, _ = compare(tmp_path, capsys, old, new, "--json")
    data = json.loads(out)
    assert rc == 1 and data["missing"] == ["uniform"] and data["regressions"] == []
    failed = rerun_of(old)
    row_of(failed, "uniform").update(status="failed", error="ValueError: boom", metrics={})
    rc, out, _ = compare(tmp_path, capsys, old, failed, "--json")
    assert rc == 1 and json.loads(out)["missing"] == ["uniform"]
    assert any("ValueError: boom" in n for n in json.loads(out)["notes"])
    rc, out, _ = compare(tmp_path, capsys, old, failed)
    assert "uniform (missing or failed)" in " ".join(out.split())
    rc, out, _ = compare(tmp_path, capsys, failed, rerun_of(old), "--json")  # fixed in the new run: fine
    assert rc == 0


def test_the_compare_table_fits_80_columns(tmp_path, capsys, toy_run):
    old = toy_run()
    new = rerun_of(old)
    set_value(new, "gaussian", "radius_error", 9.0, 8.9, 9.1)
    rc, out, _ = compare(tmp_path, capsys, old, new)  # the CLI console is 80 wide when not a terminal
    assert rc == 1 and "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for row in old["samplers"]:
        assert row["name"] in out
    long = rerun_of(old)
    for doc in (old, long):
        row_of(doc, "plane_conditional")["name"] = "plane_paths_conditional_with_a_long_label_for_this_test"
    comparison = compare_results(old, long)
    console = Console(width=80, record=True, color_system=None)
    for part in comparison_renderables(comparison, console, "old.json", "new.json"):
        console.print(part)
    text = console.export_text()
    assert "…" not in text and "plane_paths_conditional_with_a_long_label_for_this_test" in text
    assert "radius error ↓" in text


def test_judge_change_rules():
    point = lambda v: Estimate(v, v, v, False)  # noqa: E731
    assert judge_change(point(1.0), point(2.0), True, tolerance=0.05, floor=0.0) == ("better", "")
    assert judge_change(point(1.0), point(1.0), True, tolerance=0.05, floor=0.0) == ("same", "")
    assert judge_change(point(0.412), point(0.412 + 1e-9), False, tolerance=0.05, floor=0.0) == ("same", "")
    assert judge_change(point(1.0), point(1.05), False, tolerance=0.05, floor=0.0)[0] == "worse"  # at the tolerance
    assert judge_change(point(0.0), point(0.1), False, tolerance=0.05, floor=0.0)[0] == "regressed"  # from zero
    assert judge_change(point(1.0), None, False, tolerance=0.05, floor=0.0)[0] == "regressed"
    assert judge_change(None, point(1.0), False, tolerance=0.05, floor=0.0)[0] == "incomparable"
    assert judge_change(point(1.0), point(9.0), False, tolerance=0.05, floor=0.0, gates=False)[0] == "info"
    touching = judge_change(Estimate(1.0, 0.9, 1.1, True), Estimate(1.3, 1.1, 1.5, True), False, tolerance=0.05, floor=0.0)
    assert touching == ("worse", "intervals overlap")
    with pytest.raises(AebenchError, match="must be a finite number"):
        compare_results({"metric_info": {}}, {"metric_info": {}}, tolerance=-1)
    with pytest.raises(AebenchError, match="must be a finite number"):
        compare_results({"metric_info": {}}, {"metric_info": {}}, tolerance=math.nan)


def test_a_metric_with_an_ideal_point_regresses_when_it_moves_away_from_it():
    """latent_1nn declares 0.5 ideal: 0.60 -> 0.42 is closer to 0.5 (better), 0.55 -> 0.40 further (worse)."""
    point = lambda v: Estimate(v, v, v, False)  # noqa: E731
    kwargs = dict(tolerance=0.05, floor=0.0, ideal=0.5)
    assert judge_change(point(0.60), point(0.42), False, **kwargs) == ("better", "")
    assert judge_change(point(0.55), point(0.40), False, **kwargs)[0] == "regressed"
    assert judge_change(point(0.55), point(0.40), False, tolerance=0.05, floor=0.0)[0] == "better"  # without the ideal
    # an interval holding the ideal is 0 away at its near end: not apart from an old point 0.02 off
    assert judge_change(point(0.52), Estimate(0.56, 0.49, 0.63, True), False, **kwargs) == ("worse", "intervals overlap")


def test_parse_tolerances():
    assert parse_tolerances(["0.1", "fid=0.2"]) == (0.1, {"fid": 0.2})
    for bad, kwargs in [(["fid=x"], {}), (["0.1"], {"require_key": True}), (["=0.1"], {})]:
        with pytest.raises(AebenchError, match="Cannot read tolerance"):
            parse_tolerances(bad, **kwargs)
