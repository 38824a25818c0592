"""The CI example: its gate passes an equal rerun and fails a worse one, on real tiny runs, and writes
the comparison and the report to the job summary; the workflow calls that gate and the README shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "examples" / "ci"
GAUSSIAN = (("gaussian", "gaussian", ()),)


def gate(tmp_path: Path, name: str, baseline: dict, new: dict) -> tuple[int, str]:
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps(new))
    (run_dir / "report.md").write_text(f"# report of {name}\n")
    summary = tmp_path / f"{name}-summary.md"
    env = {**os.environ, "AEBENCH": str(Path(sys.executable).with_name("aebench")),
           "GITHUB_STEP_SUMMARY": str(summary)}
    proc = subprocess.run(["bash", str(CI / "gate.sh"), str(tmp_path / "baseline.json"), str(run_dir)],
                          env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, summary.read_text()


@pytest.mark.slow
def test_gate_passes_an_equal_run_and_fails_a_worse_one(tmp_path, toy_run, monkeypatch):
    baseline = toy_run(samplers=GAUSSIAN, n=40)
    again = toy_run(samplers=GAUSSIAN, n=40, fresh=True)  # the same code run again: the same numbers
    rc, summary = gate(tmp_path, "equal", baseline, again)
    assert rc == 0, summary
    assert "PASS" in summary and "# report of equal" in summary

    from aebench.samplers.gaussian import GaussianSampler

    sample = GaussianSampler._sample
    monkeypatch.setattr(GaussianSampler, "_sample", lambda self, n, g: 3 * sample(self, n, g))  # a regression
    worse = toy_run(samplers=GAUSSIAN, n=40, fresh=True)
    rc, summary = gate(tmp_path, "worse", baseline, worse)
    assert rc == 1, summary
    assert "radius_error" in summary and "# report of worse" in summary


def test_workflow_runs_the_suite_gates_and_uploads_the_report():
    workflow = (CI / "github-workflow.yml").read_text(encoding="utf-8")
    assert "aebench run --config examples/ci/suite.toml" in " ".join(workflow.split())
    assert "bash examples/ci/gate.sh ci/baseline/results.json new-run" in workflow
    assert "new-run/report.html" in workflow and "new-run/*.png" in workflow
    assert "examples/ci/github-workflow.yml" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_suite_file_is_a_valid_suite():
    from dataclasses import fields

    from aebench.run.config import RunConfig
    from aebench.run.suite_file import check_suite, read_toml

    suite = read_toml(CI / "suite.toml")
    check_suite(suite, CI / "suite.toml", (f.name for f in fields(RunConfig)))  # raises on any mistake
    assert [s["name"] for s in suite["samplers"]] == ["gaussian", "gmm", "uniform"] and suite["features"] == "fast"
