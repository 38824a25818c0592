"""Thread counts: the auto rule, explicit values, bad values, and that a run sets and restores them."""

from __future__ import annotations

import json

import pytest
import torch

from aebench.errors import OptionError
from aebench.infra.threads import auto_threads, resolve_threads, thread_limit


@pytest.mark.parametrize("cores, load, want", [
    (2, 0.0, 2),  # an idle 2-core machine: both cores
    (2, 1.2, 1),  # one core kept busy by others: one thread
    (2, 7.0, 1),  # an overloaded machine: still one
    (16, 3.4, 13),
    (1, 0.0, 1),
])
def test_auto_takes_the_cores_others_leave_free(cores, load, want):
    assert auto_threads(cores=cores, load=load) == want


def test_explicit_counts_and_auto(monkeypatch):
    assert resolve_threads(3) == 3 and resolve_threads("4") == 4
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("aebench.infra.threads.auto_threads", lambda: 5)
    assert resolve_threads(None) == 5 and resolve_threads("auto") == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own limit wins over auto
    torch.set_num_threads(1)
    assert resolve_threads("auto") == 1


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
