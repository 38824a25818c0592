"""Cells and resume: each sampler is fitted once whatever the number of seeds; the document is the
same whatever order the cells finish in; `--resume` refuses another plan's results, and a run killed
mid-cell (a real SIGKILL) resumes computing only the missing cells, ending equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aebench.errors import AebenchError
from aebench.executors.local import LocalExecutor
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.plan import resolve_plan
from aebench.run.runner import run_benchmark
from aebench.testing import sigkill_when

VOLATILE = ("created", "finished", "plan")


def numbers_only(doc: dict) -> dict:
    """The document without wall-clock stamps, timings, the output folder and the resume bookkeeping."""
    doc = json.loads(json.dumps(doc))
    for key in VOLATILE:
        doc.pop(key, None)
    doc["config"].pop("out", None)
    doc["environment"].pop("threads", None)
    for row in doc["samplers"] + doc["references"] + doc["cells"] + list(doc["fits"].values()):
        row.pop("timing", None)
    return doc


def tiny_config(tiny_model, out, samplers=("gaussian", "gmm"), seeds=(0, 1, 2), **extra) -> RunConfig:
    checkpoint, cache = tiny_model
    config = RunConfig(dataset="orl_faces", dataset_options={"size": 32}, checkpoint=str(checkpoint),
                       samplers=[SamplerSpec(s) for s in samplers], n=32, seeds=list(seeds), features="fast",
                       metrics=["fid", "region_hits", "latent_fd"], out=str(out), cache_dir=str(cache),
                       figures=False, threads=1, **extra)
    config.check()
    return config


def test_the_plan_is_resolved_once_and_leaves_the_config_alone(tiny_model, tmp_path):
    config = tiny_config(tiny_model, tmp_path)
    config.n = None
    plan = resolve_plan(config)
    assert config.n is None and config.n_real is None  # the caller's config is not mutated
    assert plan.config.n == 128 and plan.config.n_real == 1000 and plan.device == "cpu" and plan.fit_seed == 0
    assert plan.cells() == [("gaussian", 0), ("gaussian", 1), ("gaussian", 2), ("gmm", 0), ("gmm", 1), ("gmm", 2)]
    assert resolve_plan(config).hash == plan.hash
    config.out = str(tmp_path / "elsewhere")  # where the results go is not part of the plan
    assert resolve_plan(config).hash == plan.hash
    config.seeds = [0, 1]
    assert resolve_plan(config).hash != plan.hash


def test_three_seeds_fit_each_sampler_once(tiny_model, tmp_path, monkeypatch):
    from aebench.samplers.gmm import GmmSampler

    fits = []
    real_fit = GmmSampler._fit
    monkeypatch.setattr(GmmSampler, "_fit", lambda self, *a: (fits.append(1), real_fit(self, *a))[1])
    doc = run_benchmark(tiny_config(tiny_model, tmp_path / "out"), quiet=True)
    assert len(fits) == 1
    row = {r["name"]: r for r in doc["samplers"]}["gmm"]
    assert row["seeds"] == [0, 1, 2] and len(row["metrics"]["fid"]["per_seed"]) == 3
    assert row["fit_info"]["k_requested"] == 10 and doc["fits"]["gmm"]["fit_info"] == row["fit_info"]
    assert [(c["sampler"], c["seed"]) for c in doc["cells"]] == resolve_plan(tiny_config(tiny_model, tmp_path)).cells()


class ReversedExecutor(LocalExecutor):
    """Computes every cell locally, then reports fits and cells in the reverse order."""

    name = "reversed"

    def run(self, setup, work, options, on_fit, on_cell):
        fits, cells = [], []
        super().run(setup, work, options, fits.append, cells.append)
        for fit in reversed(fits):
            on_fit(fit)
        for cell in reversed(cells):
            on_cell(cell)


def test_the_document_does_not_depend_on_the_order_cells_finish_in(tiny_model, tmp_path):
    a = run_benchmark(tiny_config(tiny_model, tmp_path / "a"), quiet=True)
    b = run_benchmark(tiny_config(tiny_model, tmp_path / "b"), quiet=True, executor=ReversedExecutor())
    assert json.dumps(numbers_only(a)) == json.dumps(numbers_only(b))  # same values, same key order
    assert [r["name"] for r in a["samplers"]] == ["gaussian", "gmm"]


def test_resume_refuses_another_plan_and_force_with_resume(tiny_model, tmp_path):
    out = tmp_path / "out"
    run_benchmark(tiny_config(tiny_model, out, seeds=(0,)), quiet=True)
    with pytest.raises(AebenchError, match="different plan"):
        run_benchmark(tiny_config(tiny_model, out, seeds=(0, 1)), quiet=True, resume=True)
    with pytest.raises(AebenchError, match="not both"):
        run_benchmark(tiny_config(tiny_model, out, seeds=(0,)), quiet=True, resume=True, force=True)
    again = run_benchmark(tiny_config(tiny_model, out, seeds=(0,)), quiet=True, resume=True)  # complete: nothing to do
    assert again["plan"]["cells_reused"] == 2 and again["plan"]["cells_computed"] == 0


KILLED_RUN = textwrap.dedent('''
    import os, pathlib, sys, time
    import aebench.plugins
    from aebench.cli import main
    from aebench.hookspecs import hookimpl
    from aebench.samplers.gaussian import GaussianSampler

    class Sleepy(GaussianSampler):
        name = "sleepy"
        description = "a Gaussian sampler that stalls (to be killed) while STALL_MARKER is set"

        def _sample(self, n, generator):
            if os.environ.get("STALL_MARKER"):
                pathlib.Path(os.environ["STALL_MARKER"]).write_text("sampling")
                time.sleep(600)
            return super()._sample(n, generator)

    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            register(Sleepy)

    aebench.plugins.get_plugin_manager().register(Plugin(), name="sleepy-plugin")
    args = ["run", "--checkpoint", sys.argv[1], "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--sampler", "gaussian,sleepy,uniform", "--seeds", "2", "--metrics", "fid,region_hits,latent_fd",
            "--quiet", "--no-figures", "--threads", "1", "--out", sys.argv[2], *sys.argv[3:]]
    sys.exit(main(args))
''')


def _cli(script, *args, env=None):
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                                                         **(env or {})})


def kill_mid_cell(script, checkpoint, out, marker, *args) -> dict:
    """Run the script until the sleepy sampler stalls in its first cell, SIGKILL it, return its document."""
    proc = _cli(script, checkpoint, out, *args, env={"STALL_MARKER": str(marker)})
    sigkill_when(proc, marker)
    return json.loads((out / "results.json").read_text())


def finish(script, checkpoint, out, *args) -> dict:
    proc = _cli(script, checkpoint, out, *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads((out / "results.json").read_text())


def test_a_killed_run_resumes_computing_only_the_missing_cells(tiny_model, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    checkpoint = tiny_model[0]
    killed = kill_mid_cell(script, checkpoint, tmp_path / "out", tmp_path / "marker")
    assert killed["status"] == "running" and killed["finished"] is None
    assert [(c["sampler"], c["seed"], c["status"]) for c in killed["cells"]] == [("gaussian", 0, "ok"),
                                                                                  ("gaussian", 1, "ok")]
    assert [r["name"] for r in killed["samplers"]] == ["gaussian"]
    resumed = finish(script, checkpoint, tmp_path / "out", "--resume")
    assert resumed["status"] == "complete"
    assert resumed["plan"]["cells_reused"] == 2 and resumed["plan"]["cells_computed"] == 4
    whole = finish(script, checkpoint, tmp_path / "whole")
    assert whole["plan"]["cells_computed"] == 6
    assert numbers_only(resumed) == numbers_only(whole)
    assert [r["name"] for r in whole["samplers"]] == ["gaussian", "sleepy", "uniform"]


def test_executor_flags_are_checked_before_any_work(tmp_path, capsys):
    from aebench.cli import main

    base = ["run", "--dataset", "orl_faces", "--sampler", "gaussian", "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*base, "--workers", "2"]) != 0
    assert "--workers is a setting of --executor dask, not of local" in capsys.readouterr().err
    assert main([*base, "--executor", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) != 0
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
