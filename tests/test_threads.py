"""Thread counts: the auto rule, explicit values, bad values, and that a run sets and restores them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from aebench.errors import OptionError
from aebench.infra import threads
from aebench.infra.threads import resolve_threads, thread_limit


class FakeProc:
    """A simulated /proc: per-CPU tick counters and per-process (ppid, utime + stime, cutime + cstime),
    advanced between readings by `tick` as the kernel would."""

    def __init__(self, root, cpus=2):
        self.root, self.cpus = root, cpus
        self.cpu = [[0, 0] for _ in range(cpus)]  # [busy, idle] ticks per CPU
        self.procs = {}  # pid -> [ppid, own ticks, waited-for children's ticks]
        self.write()

    def write(self):
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for i, (busy, idle) in enumerate(self.cpu):
            # user nice system idle iowait irq softirq steal guest guest_nice: busy split over user and system
            lines.append(f"cpu{i} {busy - busy // 3} 0 {busy // 3} {idle} 0 0 0 0 0 0")
        (self.root / "stat").write_text("\n".join(lines + ["intr 0", "procs_running 1"]) + "\n")
        for pid, (ppid, own, waited) in self.procs.items():
            folder = self.root / str(pid)
            folder.mkdir(exist_ok=True)
            rest = " ".join(["0"] * 9)  # pgrp .. cmajflt
            (folder / "stat").write_text(f"{pid} (py (x) y) R {ppid} {rest} {own - own // 2} {own // 2} "
                                         f"{waited} 0 20 0 1 0 0\n")

    def tick(self, ticks, busy_by):
        """`ticks` clock ticks pass; busy_by maps pid -> cores that process keeps busy meanwhile."""
        load = [0.0] * self.cpus
        for pid, cores in busy_by.items():
            self.procs[pid][1] += round(cores * ticks)
            for i in range(self.cpus):  # spread over the CPUs
                load[i] += cores / self.cpus
        for i in range(self.cpus):
            used = round(min(1.0, load[i]) * ticks)
            self.cpu[i][0] += used
            self.cpu[i][1] += ticks - used
        self.write()


ME, CHILD, OTHER = os.getpid(), 99001, 99002


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "_allowed_cpus", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    proc = FakeProc(tmp_path, cpus=2)
    proc.procs = {1: [0, 0, 0], ME: [1, 50, 0], CHILD: [ME, 10, 0], OTHER: [1, 500, 0]}
    proc.write()
    return proc


def measure(proc, busy_by):
    return threads.measure_auto(cores=2, proc=proc.root, sleep=lambda s: proc.tick(25, busy_by))


def test_auto_on_an_idle_machine_takes_every_core(fake_proc):
    choice = measure(fake_proc, {})
    assert choice.threads == 2 and choice.others_busy == 0.0 and choice.measured_by == "/proc/stat"


def test_auto_backs_off_by_the_cores_another_process_keeps_busy_now(fake_proc):
    choice = measure(fake_proc, {OTHER: 1.0})
    assert choice.threads == 1 and choice.others_busy == pytest.approx(1.0, abs=0.05)
    assert "cores busy (/proc/stat" in choice.record()["reason"]


def test_auto_ignores_this_process_and_its_children(fake_proc):
    # this process and its child keep both cores busy: none of it is "other processes"
    assert measure(fake_proc, {ME: 1.5, CHILD: 0.5}).threads == 2
    # a little background work (a shell, a monitor) does not cost a core
    assert measure(fake_proc, {ME: 1.0, OTHER: 0.3}).threads == 2


def test_auto_counts_a_reaped_grandchild_as_its_own(fake_proc):
    """A grandchild (a worker's subprocess) that ran and was waited for by its parent during the window:
    its time moved into the parent's cutime, it is still this run's, not another process's."""
    import shutil

    grandchild = 99003
    fake_proc.procs[grandchild] = [CHILD, 0, 0]
    fake_proc.write()

    def run_and_reap(seconds):
        fake_proc.tick(25, {grandchild: 1.0, ME: 1.0})
        fake_proc.procs[CHILD][2] += fake_proc.procs.pop(grandchild)[1]
        shutil.rmtree(fake_proc.root / str(grandchild))
        fake_proc.write()

    choice = threads.measure_auto(cores=2, proc=fake_proc.root, sleep=run_and_reap)
    assert choice.others_busy == pytest.approx(0.0, abs=0.05) and choice.threads == 2


def test_auto_ignores_load_that_is_over(fake_proc, monkeypatch):
    """The old rule's failure: a finished command leaves a 1-minute load average near 1 on an idle machine."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.8, 0.4), raising=False)
    fake_proc.tick(6000, {OTHER: 1.0})  # a minute of load, now over
    assert measure(fake_proc, {}).threads == 2


def test_auto_falls_back_to_the_load_average_without_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.8, 0.4), raising=False)
    choice = threads.measure_auto(cores=2, proc=tmp_path / "missing", sleep=lambda s: None)
    assert choice.threads == 1 and choice.measured_by == "load average"


@pytest.mark.parametrize("cores, busy, want", [(2, 0.0, 2), (2, 0.49, 2), (2, 0.6, 1), (2, 7.0, 1), (16, 3.4, 13),
                                               (1, 0.0, 1)])
def test_the_auto_rule(cores, busy, want):
    assert threads.auto_threads(cores, busy) == want


def test_threads_setting_and_omp_num_threads_win_over_auto(fake_proc, monkeypatch):
    def no_measuring(*args, **kwargs):
        raise AssertionError("auto measured although the count was given")

    monkeypatch.setattr(threads, "measure_auto", no_measuring)
    assert resolve_threads(3) == 3 and resolve_threads("4") == 4
    assert threads.choose_threads(3).source == "threads"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own limit wins over auto
    torch.set_num_threads(1)
    choice = threads.choose_threads("auto")
    assert choice.threads == 1 and choice.source == "OMP_NUM_THREADS"
    assert threads.parse_threads("auto") is None and threads.parse_threads(None) is None


def test_recheck_takes_cores_back_and_backs_off_again(fake_proc, monkeypatch):
    monkeypatch.setattr(threads, "PROC", fake_proc.root)
    monkeypatch.setattr(threads, "WINDOW_S", 0.0)
    monkeypatch.setattr(threads, "MIN_RECHECK_S", 0.0)
    monkeypatch.setattr(threads.time, "sleep", lambda s: fake_proc.tick(25, {OTHER: 1.0}))
    before = torch.get_num_threads()
    with thread_limit("auto") as n:
        assert n == 1 and torch.get_num_threads() == 1  # started beside a busy process
        fake_proc.tick(100, {ME: 1.0})  # it ended
        assert threads.recheck_threads() == 2 and torch.get_num_threads() == 2
        assert threads.threads_record()["threads"] == 1  # the record keeps the first choice; changes follow
        fake_proc.tick(100, {ME: 1.3, OTHER: 0.7})  # another one started
        assert threads.recheck_threads() == 1 and torch.get_num_threads() == 1
        record = threads.threads_record()
        assert record is not None and record["threads"] == 1 and record["source"] == "auto"
        assert [c["threads"] for c in record["changes"]] == [2, 1]
    assert torch.get_num_threads() == before and threads.threads_record() is None
    assert threads.recheck_threads() is None  # outside a run: nothing changes


def test_recheck_never_changes_a_given_count(fake_proc, monkeypatch):
    monkeypatch.setattr(threads, "PROC", fake_proc.root)
    monkeypatch.setattr(threads, "MIN_RECHECK_S", 0.0)
    with thread_limit(2):
        fake_proc.tick(100, {OTHER: 2.0})
        assert threads.recheck_threads() is None and torch.get_num_threads() == 2


def test_this_machine_can_be_measured():
    """On Linux the real /proc parses: a reading exists and others' use is a number of cores."""
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc on this system")
    first = threads.read_counters()
    assert first is not None and first.cpus >= 1 and first.own > 0
    choice = threads.measure_auto(window_s=0.05)
    assert choice.measured_by == "/proc/stat" and 1 <= choice.threads <= threads.available_cores()
    assert choice.others_busy is not None and 0 <= choice.others_busy <= first.cpus + 0.5


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(OptionError, match="threads must be a positive integer"):
        resolve_threads(bad)


def test_thread_limit_sets_torch_and_blas_pools_and_restores_them():
    from threadpoolctl import threadpool_info

    torch.set_num_threads(1)
    with thread_limit(2) as n:
        assert n == 2 and torch.get_num_threads() == 2
        assert all(pool["num_threads"] <= 2 for pool in threadpool_info())
    assert torch.get_num_threads() == 1


def test_run_records_threads_and_precision(tmp_path, monkeypatch):
    from aebench.cli import main

    rng = torch.Generator().manual_seed(0)
    import numpy as np

    np.save(tmp_path / "train.npy", torch.randn(120, 4, generator=rng).numpy())
    np.save(tmp_path / "heldout.npy", torch.randn(40, 4, generator=rng).numpy())
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tiny_ae.py").write_text(
        "import torch\n"
        "class AE:\n"
        "    latent_dim = 4\n"
        "    def encode(self, x): return x.flatten(1)[:, :4]\n"
        "    def decode(self, z): return torch.sigmoid(z[:, :1, None, None].expand(-1, 1, 8, 8))\n"
        "def make(): return AE()\n")
    out = tmp_path / "out"
    rc = main(["run", "--model", "tiny_ae:make", "--train-latents", str(tmp_path / "train.npy"),
               "--heldout-latents", str(tmp_path / "heldout.npy"), "--sampler", "gaussian", "--n", "16",
               "--metrics", "region_hits", "--regions", "box", "--quiet", "--no-figures", "--threads", "1",
               "--out", str(out)])
    assert rc == 0
    env = json.loads((out / "results.json").read_text())["environment"]
    assert env["threads"] == 1 and env["precision"] == "fp32" and env["batch_size"] == 128
    assert env["threads_choice"]["source"] == "threads" and env["threads_choice"]["threads"] == 1


def test_bad_threads_on_the_command_line_is_a_one_line_error(tmp_path, capsys):
    from aebench.cli import main

    rc = main(["run", "--sampler", "gaussian", "--threads", "zero", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("Error:") and "threads" in err and "\n" not in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_toml_key_threads(tmp_path):
    from aebench.run.config import RunConfig

    suite = tmp_path / "suite.toml"
    suite.write_text('threads = 2\nprecision = "tf32"\nbatch_memory = "256M"\nfeature_batch_size = 16\n')
    config = RunConfig.from_sources(suite)
    assert (config.threads, config.precision, config.batch_memory, config.feature_batch_size) == (2, "tf32", "256M", 16)
    suite.write_text("threads = 0\n")
    with pytest.raises(OptionError, match="threads"):
        RunConfig.from_sources(suite)
    suite.write_text('precision = "fp8"\n')
    with pytest.raises(OptionError, match="precision"):
        RunConfig.from_sources(suite)
    suite.write_text('precision = "bf16"\n')
    with pytest.raises(OptionError, match="not offered"):
        RunConfig.from_sources(suite)
