"""Ctrl-C (SIGINT) and SIGTERM during `aebench run`, sent to a real process mid-cell: the results document
says "interrupted" (and why), keeps the finished cells, the exit status is 130 / 143 with one line that
says what is kept and how to finish, and `--resume` then completes a document equal to an uninterrupted
run's. And `--resume` into a folder with nothing to resume says so in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from test_cells import numbers_only

from aebench.cli import main
from aebench.results.schema import check_results

RUN = textwrap.dedent('''
    import os, pathlib, signal, sys, time
    import aebench.plugins
    from aebench.cli import main
    from aebench.hookspecs import hookimpl
    from aebench.samplers.gaussian import GaussianSampler

    class Stall(GaussianSampler):
        name = "stall"
        description = "the gaussian sampler, which the first time waits in its sampling to be stopped"

        def _sample(self, n, generator):
            marker = pathlib.Path(os.environ["STALL_MARKER"])
            if not marker.exists():
                marker.write_text("sampling")
                time.sleep(600)
            return super()._sample(n, generator)

    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            register(Stall)

    aebench.plugins.get_plugin_manager().register(Plugin(), name="stall-plugin")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, however this test was started
    sys.exit(main(sys.argv[1:]))
''')


def _args(checkpoint, cache, out):
    return ["run", "--checkpoint", str(checkpoint), "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--seeds", "2", "--sampler", "gaussian,stall,pca", "--metrics", "fid,region_hits,latent_fd", "--quiet",
            "--no-figures", "--threads", "1", "--cache-dir", str(cache), "--out", str(out)]


def _run(script, args, marker, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "STALL_MARKER": str(marker)}
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_mid_run_keeps_the_finished_cells_and_resume_completes_it(tmp_path, tiny_model, signum, code, said):
    checkpoint, cache = tiny_model
    script, marker = tmp_path / "run.py", tmp_path / "marker"
    script.write_text(RUN)
    out = tmp_path / "out"
    proc = _run(script, _args(checkpoint, cache, out), marker)
    deadline = time.monotonic() + 240
    while not marker.exists():  # the stall sampler's first cell has started: gaussian's two cells are done
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the run never reached the stalling sampler"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0] == (f"Interrupted by {said}: 2 of 6 cells finished and are kept in {out / 'results.json'} (status "
                        f"interrupted); run the same command with --resume to compute the other 4.")
    doc = check_results(json.loads((out / "results.json").read_text()))
    assert doc["status"] == "interrupted" and doc["interrupted"]["reason"] == said and doc["finished"] is None
    assert [(c["sampler"], c["seed"]) for c in doc["cells"]] == [("gaussian", 0), ("gaussian", 1)]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    # the same command with --resume (the sampler no longer stalls) finishes it, as if never stopped
    resumed = _run(script, [*_args(checkpoint, cache, out), "--resume"], marker)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1].decode()
    whole = _run(script, _args(checkpoint, cache, tmp_path / "whole"), marker)
    assert whole.wait(timeout=300) == 0, whole.communicate()[1].decode()
    a, b = (json.loads((folder / "results.json").read_text()) for folder in (out, tmp_path / "whole"))
    assert a["status"] == "complete" and "interrupted" not in a
    assert a["plan"]["cells_reused"] == 2 and a["plan"]["cells_computed"] == 4
    assert numbers_only(a) == numbers_only(b)


def test_resume_into_an_empty_or_foreign_folder_says_it_starts_afresh(tmp_path, tiny_orl_checkpoint, capsys):
    args = ["run", "--checkpoint", str(tiny_orl_checkpoint), "--set", "dataset.size=32", "--features", "fast",
            "--n", "32", "--sampler", "gaussian", "--metrics", "latent_fd", "--quiet", "--no-figures", "--resume"]
    assert main([*args, "--out", str(tmp_path / "new")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"--resume: {tmp_path / 'new'} does not exist yet; nothing to resume, so this is a fresh run."]
    (tmp_path / "empty").mkdir()
    assert main([*args, "--out", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"--resume: {tmp_path / 'empty'} is empty; nothing to resume, so this is a fresh run."]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main([*args, "--out", str(foreign)]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"--resume: {foreign} holds no results.json of an earlier run (only 1 other file(s), left alone: notes.txt); "
        f"nothing to resume, so this is a fresh run."]
    assert (foreign / "notes.txt").read_text() == "mine" and (foreign / "results.json").is_file()
    assert main([*args, "--out", str(foreign)]) == 0  # now there is a run to resume: nothing said
    assert not capsys.readouterr().err.strip()
