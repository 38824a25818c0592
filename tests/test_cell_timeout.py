"""A sampler that hangs, in its sampling or its fit, with a per-cell time limit (`--cell-timeout`, TOML
`cell_timeout`): its cell is recorded as failed with "timed out after ...", and the other cells still
run. Locally the limit interrupts a sleep and a pure-Python busy loop alike; on Dask the hung cell is
cancelled and its worker restarted."""

from __future__ import annotations

import json
import time

import pytest

import aebench.plugins
from aebench.cli import main
from aebench.hookspecs import hookimpl
from aebench.samplers.gaussian import GaussianSampler


class Sleeps(GaussianSampler):
    name = "sleeps"
    description = "sleeps for ten minutes when asked to sample"

    def _sample(self, n, generator):
        time.sleep(600)


class Spins(GaussianSampler):
    name = "spins"
    description = "a Python loop that never ends, swallowing every Exception"

    def _sample(self, n, generator):
        while True:
            try:
                sum(range(1000))
            except Exception:
                pass


class FitHangs(GaussianSampler):
    name = "fit_hangs"
    description = "its fit never ends"

    def _fit(self, latents, stats):
        time.sleep(600)


class Plugin:
    @hookimpl
    def register_samplers(self, register):
        for cls in (Sleeps, Spins, FitHangs):
            register(cls)


@pytest.fixture
def hanging_samplers():
    aebench.plugins.get_plugin_manager().register(Plugin(), name="hanging-samplers")


def _args(tiny_model, out, samplers, *extra):
    checkpoint, cache = tiny_model
    return ["run", "--checkpoint", str(checkpoint), "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--sampler", samplers, "--metrics", "fid,latent_fd", "--quiet", "--no-figures", "--threads", "1",
            "--out", str(out), "--cache-dir", str(cache), *extra]


def _rows(out):
    return {r["name"]: r for r in json.loads((out / "results.json").read_text())["samplers"]}


def test_hung_cells_time_out_and_the_others_run(tmp_path, tiny_model, hanging_samplers, capsys):
    started = time.monotonic()
    rc = main(_args(tiny_model, tmp_path / "out", "gaussian,sleeps,spins,fit_hangs,pca", "--cell-timeout", "3s"))
    elapsed = time.monotonic() - started
    assert rc == 1, capsys.readouterr().err
    rows = _rows(tmp_path / "out")
    assert rows["gaussian"]["status"] == "ok" and rows["pca"]["status"] == "ok"
    assert rows["sleeps"]["error"] == "seed 0: timed out after 3s (--cell-timeout)"
    assert rows["spins"]["error"] == "seed 0: timed out after 3s (--cell-timeout)"
    assert rows["fit_hangs"]["error"] == "seed 0: fit timed out after 3s (--cell-timeout)"
    assert elapsed < 120  # three limits of 3 s, not three ten-minute hangs


def test_the_time_limit_comes_from_the_suite_file_too_and_bad_values_are_refused(tmp_path, tiny_model,
                                                                                hanging_samplers, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text('cell_timeout = "0.05m"\n')
    assert main(_args(tiny_model, tmp_path / "out", "gaussian,sleeps", "--config", str(suite))) == 1
    assert _rows(tmp_path / "out")["sleeps"]["error"] == "seed 0: timed out after 3s (--cell-timeout)"
    for bad in ("soon", "-5", "0"):
        capsys.readouterr()
        assert main(_args(tiny_model, tmp_path / "bad", "gaussian", "--cell-timeout", bad)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("Error: --cell-timeout (cell_timeout) must be a") and repr(bad) in err, err


def test_parse_and_format_durations():
    from aebench.run.timeouts import format_duration, parse_duration

    assert [parse_duration(v) for v in (600, "600", "90s", "10m", "1.5h", " 2 min ")] == [600, 600, 90, 600, 5400, 120]
    assert [format_duration(s) for s in (600, 90, 5400, 7200, 0.5, 61)] == ["10m", "90s", "90m", "2h", "0.5s", "61s"]


def test_a_hung_cell_on_dask_is_cancelled_its_worker_restarted_and_the_others_run(tmp_path, tiny_model,
                                                                                hanging_samplers):
    pytest.importorskip("distributed")
    rc = main(_args(tiny_model, tmp_path / "out", "gaussian,sleeps,pca", "--seeds", "2", "--cell-timeout", "5s",
                    "--executor", "dask", "--workers", "2"))
    assert rc == 1
    rows = _rows(tmp_path / "out")
    assert rows["gaussian"]["status"] == "ok" and rows["pca"]["status"] == "ok"
    assert rows["sleeps"]["error"] == ("seed 0: timed out after 5s (--cell-timeout); "
                                       "seed 1: timed out after 5s (--cell-timeout)")
