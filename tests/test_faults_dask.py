"""Dask faults: a --scheduler address nobody answers is refused in seconds with a one-line error naming
it (exit 2), before any work; a scheduler lost mid-run (a real scheduler process, killed) stops the run
with one line, the results document marked "interrupted" with the finished cells, and `--resume`
completes it to equal an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from test_cells import numbers_only  # noqa: E402

import aebench.plugins  # noqa: E402
from aebench.cli import main  # noqa: E402
from aebench.hookspecs import hookimpl  # noqa: E402
from aebench.results.schema import check_results  # noqa: E402
from aebench.samplers.gaussian import GaussianSampler  # noqa: E402

TESTS = Path(__file__).parent


class Stall(GaussianSampler):
    name = "stall"
    description = "the gaussian sampler, which the first time waits in its sampling (until its process ends)"

    def _sample(self, n, generator):
        marker = Path(os.environ["STALL_MARKER"])
        if not marker.exists():
            marker.write_text("sampling")
            time.sleep(600)
        return super()._sample(n, generator)


class Plugin:
    @hookimpl
    def register_samplers(self, register):
        register(Stall)


@pytest.fixture
def stall(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("STALL_MARKER", str(marker))
    aebench.plugins.get_plugin_manager().register(Plugin(), name="stall-plugin")
    return marker


def _args(tiny_model, out, *extra, samplers="gaussian,stall,pca"):
    checkpoint, cache = tiny_model
    return ["run", "--checkpoint", str(checkpoint), "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--sampler", samplers, "--metrics", "fid,latent_fd", "--quiet", "--no-figures",
            "--threads", "1", "--out", str(out), "--cache-dir", str(cache), *extra]


def test_an_unreachable_scheduler_is_refused_in_seconds_before_any_work(tmp_path, tiny_model, capsys):
    started = time.monotonic()
    rc = main(_args(tiny_model, tmp_path / "out", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1",
                    samplers="gaussian"))
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.splitlines() == [
        "Error: Cannot reach the Dask scheduler at tcp://127.0.0.1:1 (Timed out trying to connect to "
        "tcp://127.0.0.1:1 after 5 s); start it (`dask scheduler`) or check the --scheduler address (tcp://HOST:PORT)."]
    assert elapsed < 15  # the connection timeout (5 s), not Dask's default 30 s
    assert not (tmp_path / "out").exists()


def _start(module: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_scheduler_lost_mid_run_keeps_the_finished_cells_and_resume_completes(tmp_path, tiny_model, stall, capsys):
    # a real cluster: a scheduler process and a worker process with two threads (one for the stalling cell, one
    # for the others) that can import this module
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    address_file = tmp_path / "scheduler.json"
    scheduler = _start("distributed.cli.dask_scheduler", "--scheduler-file", str(address_file), "--host", "127.0.0.1",
                       "--port", "0", "--no-dashboard", env=env)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not address_file.exists():
            assert scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.5)  # written, not necessarily complete
        address = json.loads(address_file.read_text())["address"]
        worker = _start("distributed.cli.dask_worker", address, "--nthreads", "2", "--nworkers", "1", "--no-dashboard",
                        env=env)

        def cells_written() -> int:
            try:
                return len(json.loads((out / "results.json").read_text()).get("cells") or [])
            except (OSError, ValueError):
                return 0

        def kill_the_scheduler_once_the_other_cells_are_done():
            deadline = time.monotonic() + 300
            while (not stall.exists() or cells_written() < 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            scheduler.kill()

        out = tmp_path / "out"
        killer = threading.Thread(target=kill_the_scheduler_once_the_other_cells_are_done, daemon=True)
        killer.start()
        capsys.readouterr()
        rc = main(_args(tiny_model, out, "--executor", "dask", "--scheduler", address))
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        killer.join(timeout=60)
    finally:
        for proc in (scheduler, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                proc.wait(timeout=60)
    assert rc == 1, err
    doc = check_results(json.loads((out / "results.json").read_text()))
    kept = [(c["sampler"], c["seed"]) for c in doc["cells"]]
    assert kept == [("gaussian", 0), ("pca", 0)], err
    assert len(err) == 1 and err[0].startswith(f"Error: Lost the connection to the Dask scheduler at {address} mid-run ("), err
    assert err[0].endswith(f"{len(kept)} of 3 cells finished and are kept in {out / 'results.json'} (status interrupted); "
                           f"run the same command with --resume to compute the other {3 - len(kept)}."), err
    assert doc["status"] == "interrupted" and doc["interrupted"]["reason"].startswith("Lost the connection")

    # finish it (here on the local executor: the plan, not the executor, decides the numbers)
    assert main([*_args(tiny_model, out), "--resume"]) == 0
    assert main(_args(tiny_model, tmp_path / "whole")) == 0
    a, b = (json.loads((folder / "results.json").read_text()) for folder in (out, tmp_path / "whole"))
    assert a["status"] == "complete" and a["plan"]["cells_reused"] == len(kept)
    for doc in (a, b):
        doc["plan"].pop("executor")
    assert numbers_only(a) == numbers_only(b)


class _Future:
    """A finished task's future: its result, or the exception fetching it raises."""

    def __init__(self, key: str, outcome):
        self.key, self.outcome = key, outcome

    def result(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Client:
    """The executor's view of a cluster whose scheduler dies after the cells are done, before pca's fit summary
    is fetched: fetching it raises what distributed raises then (CommClosedError from its gather)."""

    def __init__(self):
        self.submitted: list[_Future] = []

    def submit(self, fn, *args, key, pure=True):
        from distributed.comm import CommClosedError

        from aebench.run.cells import CellResult, FitResult

        _, _, label, *seed = key.split("-")
        if key.startswith("fitinfo-"):
            outcome = (CommClosedError("ConnectionPool.gather local=tcp://127.0.0.1:1: Stream is closed")
                       if label == "pca" else FitResult(label, None, {}, {}, 0.0))
        elif key.startswith("cell-"):
            outcome = CellResult(label, int(seed[0]))
        else:
            outcome = object()
        future = _Future(key, outcome)
        self.submitted.append(future)
        return future


def test_a_scheduler_lost_between_a_cell_and_its_fit_keeps_neither_and_each_kept_cell_has_its_fit(monkeypatch):
    # the race two of twenty suite runs under load met: a cell's result arrived before its fit's summary and the
    # scheduler died in between; the fit was then recorded as failed (CommClosedError) beside its kept cell,
    # and the resume reused both, so it differed from an uninterrupted run
    from types import SimpleNamespace

    import distributed

    from aebench.executors.dask import DaskExecutor
    from aebench.run.config import SamplerSpec
    from aebench.run.interrupt import RunStopped

    client = _Client()
    monkeypatch.setattr(DaskExecutor, "connect", lambda self, probe=False: client)
    client.close = lambda: None
    executor = DaskExecutor(scheduler="tcp://127.0.0.1:8786")
    monkeypatch.setattr(executor, "_session", lambda setup: (client, "plan"))
    # cells complete first, then the fit summaries
    monkeypatch.setattr(distributed, "as_completed",
                        lambda futures: sorted(futures, key=lambda f: not f.key.startswith("cell-")))
    setup = SimpleNamespace(plan=SimpleNamespace(fit_seed=0), config=SimpleNamespace(cell_timeout=None))
    reported: list[tuple[str, str]] = []
    with pytest.raises(RunStopped, match="Lost the connection to the Dask scheduler at tcp://127.0.0.1:8786 mid-run"):
        executor.run(setup, [(SamplerSpec(name), [0]) for name in ("gaussian", "pca")], None,
                     on_fit=lambda fit: reported.append(("fit", fit.label)),
                     on_cell=lambda cell: reported.append(("cell", cell.sampler)))
    assert reported == [("fit", "gaussian"), ("cell", "gaussian")]
