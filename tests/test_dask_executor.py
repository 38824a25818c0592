"""The Dask executor on a real local cluster (2 worker processes on the loopback interface): the same
plan gives identical metric values to the local executor, a failing sampler on a worker is recorded as
it is locally, a worker that dies mid-cell is retried once and then recorded failed, and a run resumes
across executors."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("distributed")

from test_cells import numbers_only, tiny_config  # noqa: E402

import aebench.plugins  # noqa: E402
from aebench.executors import make_executor  # noqa: E402
from aebench.hookspecs import hookimpl  # noqa: E402
from aebench.run.runner import run_benchmark  # noqa: E402
from aebench.samplers.gaussian import GaussianSampler  # noqa: E402


class Broken(GaussianSampler):
    name = "broken"
    description = "fits, then raises when sampling"

    def _sample(self, n, generator):
        raise RuntimeError("broken on purpose")


class Crash(GaussianSampler):
    name = "crash"
    description = "kills the process that samples it"

    def _sample(self, n, generator):
        os._exit(3)


class CrashFitOnce(GaussianSampler):
    name = "crash_fit_once"
    description = "kills the process that fits it, the first time only (a marker file remembers)"

    def _fit(self, train_latents, stats):
        marker = os.environ.get("CRASH_FIT_MARKER")
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        return super()._fit(train_latents, stats)


class OomDecode(GaussianSampler):
    name = "oom_decode"
    description = "makes decoding in the process that samples it run out of memory above 8 latents a batch"

    def _sample(self, n, generator):
        import torch

        import aebench.models.encoding

        real = aebench.models.encoding.decode_latents
        if not getattr(real, "oom", False):
            def decode(model, latents, batch_size=256, *args, **kw):
                if batch_size > 8:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
                return real(model, latents, batch_size, *args, **kw)

            decode.oom = True
            aebench.models.encoding.decode_latents = decode
        return super()._sample(n, generator)


class Plugin:
    @hookimpl
    def register_samplers(self, register):
        register(Broken)
        register(Crash)
        register(CrashFitOnce)
        register(OomDecode)


@pytest.fixture
def test_samplers():
    aebench.plugins.get_plugin_manager().register(Plugin(), name="dask-test-samplers")


def test_dask_and_local_give_identical_values(tiny_model, tmp_path):
    local = run_benchmark(tiny_config(tiny_model, tmp_path / "local", seeds=(0, 1)), quiet=True)
    dask = run_benchmark(tiny_config(tiny_model, tmp_path / "dask", seeds=(0, 1)), quiet=True,
                         executor=make_executor("dask", workers=2))
    assert dask["plan"]["executor"] == "dask" and local["plan"]["executor"] == "local"
    assert dask["plan"]["hash"] == local["plan"]["hash"]
    assert numbers_only(dask) == numbers_only(local)
    gmm = {r["name"]: r for r in dask["samplers"]}["gmm"]
    assert gmm["status"] == "ok" and len(gmm["metrics"]["fid"]["per_seed"]) == 2 and gmm["fit_info"]


def test_a_failing_sampler_on_a_worker_is_recorded_like_locally(tiny_model, tmp_path, test_samplers):
    samplers = ("gaussian", "broken")
    local = run_benchmark(tiny_config(tiny_model, tmp_path / "local", samplers=samplers, seeds=(0,)), quiet=True)
    dask = run_benchmark(tiny_config(tiny_model, tmp_path / "dask", samplers=samplers, seeds=(0,)), quiet=True,
                         executor=make_executor("dask", workers=2))
    rows = {r["name"]: r for r in dask["samplers"]}
    assert rows["broken"]["status"] == "failed" and "broken on purpose" in rows["broken"]["error"]
    assert rows["gaussian"]["status"] == "ok" and dask["status"] == "complete"
    assert numbers_only(dask) == numbers_only(local)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_mid_cell_is_retried_alone_then_recorded_failed(tiny_model, tmp_path, test_samplers,
                                                                          workers):
    """With one worker, its death takes every copy of what it held with it: the real side must come back with
    the restarted worker (a worker plugin), or every pending cell, the innocent gaussian's too, is cancelled
    as 'already forgotten' (what happened under load with two workers, once both had died). And Dask blames
    every cell queued on a dying worker: the gaussian cell queued beside the crashing one must be run again
    (alone), not recorded as failed."""
    doc = run_benchmark(tiny_config(tiny_model, tmp_path / "out", samplers=("crash", "gaussian"), seeds=(0,)),
                        quiet=True, executor=make_executor("dask", workers=workers))
    rows = {r["name"]: r for r in doc["samplers"]}
    assert rows["crash"]["status"] == "failed"
    # tried beside the other cells, its worker died; run again alone, it killed its worker again
    assert rows["crash"]["error"].startswith("seed 0: worker died twice, the second time running this cell alone "
                                             "(worker died (KilledWorker: "), rows["crash"]["error"]
    assert rows["gaussian"]["status"] == "ok" and doc["status"] == "complete"


def test_a_fit_whose_worker_died_is_fitted_again_alone(tiny_model, tmp_path, test_samplers, monkeypatch):
    """Dask also blames every fit queued on a dying worker (under load the gaussian's fit sat beside the
    crashing cell and the gaussian was recorded failed): a fit that died with its worker is fitted again
    alone, and its cells run on the new fit. Here the fit itself kills its worker once, then fits."""
    monkeypatch.setenv("CRASH_FIT_MARKER", str(tmp_path / "crashed-once"))
    doc = run_benchmark(tiny_config(tiny_model, tmp_path / "out", samplers=("crash_fit_once", "gaussian"),
                                    seeds=(0,)), quiet=True, executor=make_executor("dask", workers=1))
    rows = {r["name"]: r for r in doc["samplers"]}
    assert (tmp_path / "crashed-once").exists()  # the first fit did kill its worker
    assert rows["crash_fit_once"]["status"] == "ok", rows["crash_fit_once"].get("error")
    assert rows["gaussian"]["status"] == "ok" and doc["status"] == "complete"


def test_a_cancelled_task_is_reported_as_a_lost_worker():
    from types import SimpleNamespace

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    from aebench.executors.dask import worker_failure

    cancelled = worker_failure(FutureCancelledError("cell-x", reason="already forgotten"))
    assert cancelled.startswith("worker died or was lost") and "already forgotten" in cancelled
    killed = worker_failure(KilledWorker("cell-x", SimpleNamespace(address="tcp://127.0.0.1:1"), allowed_failures=1))
    assert killed.startswith("worker died (KilledWorker: ")
    assert worker_failure(ValueError("bad. more")) == "ValueError: bad"


def test_out_of_memory_retries_on_a_worker_reach_the_results(tiny_model, tmp_path, test_samplers, monkeypatch):
    import aebench.models.encoding

    # the local run patches this process's decode (so it runs last); put it back afterwards
    monkeypatch.setattr(aebench.models.encoding, "decode_latents", aebench.models.encoding.decode_latents)
    docs = {name: run_benchmark(tiny_config(tiny_model, tmp_path / name, samplers=("oom_decode",), seeds=(0,)),
                                quiet=True, executor=make_executor(name, **({"workers": 2} if name == "dask" else {})))
            for name in ("dask", "local")}
    for name, doc in docs.items():  # batch 128 halved to 8: four retries, recorded once each
        backoffs = doc["environment"]["backoffs"]
        assert [(b["what"], b["batch_size"]) for b in backoffs] == [("decode", 64), ("decode", 32), ("decode", 16),
                                                                     ("decode", 8)], name
        assert doc["samplers"][0]["status"] == "ok" and "out of memory" in backoffs[0]["error"]
    assert numbers_only(docs["dask"]) == numbers_only(docs["local"])


def test_a_run_resumes_across_executors(tiny_model, tmp_path):
    out = tmp_path / "out"
    whole = run_benchmark(tiny_config(tiny_model, out, seeds=(0, 1)), quiet=True)
    # an interrupted run: the document as it was after the first sampler's cells
    doc = json.loads((out / "results.json").read_text())
    doc["cells"] = [c for c in doc["cells"] if c["sampler"] == "gaussian"]
    doc["samplers"] = [r for r in doc["samplers"] if r["name"] == "gaussian"]
    doc["fits"] = {"gaussian": doc["fits"]["gaussian"]}
    doc["status"], doc["finished"] = "running", None
    (out / "results.json").write_text(json.dumps(doc))
    resumed = run_benchmark(tiny_config(tiny_model, out, seeds=(0, 1)), quiet=True, resume=True,
                            executor=make_executor("dask", workers=2))
    assert resumed["plan"]["cells_reused"] == 2 and resumed["plan"]["cells_computed"] == 2
    assert numbers_only(resumed) == numbers_only(whole)


def test_the_cli_runs_on_dask_and_resumes_a_complete_run_without_work(tiny_model, tmp_path):
    from aebench.cli import main

    args = ["run", "--checkpoint", str(tiny_model[0]), "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--sampler", "gaussian,pca", "--metrics", "fid,latent_fd", "--quiet", "--no-figures", "--threads", "1",
            "--out", str(tmp_path / "out"), "--cache-dir", str(tiny_model[1])]
    assert main([*args, "--executor", "dask", "--workers", "2"]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["plan"]["executor"] == "dask" and doc["plan"]["cells_computed"] == 2 and doc["status"] == "complete"
    assert main([*args, "--resume"]) == 0
    again = json.loads((tmp_path / "out" / "results.json").read_text())
    assert again["plan"]["cells_reused"] == 2 and again["plan"]["cells_computed"] == 0
    assert numbers_only(again) == numbers_only(doc)


def _trim_threshold():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_keep_glibcs_own_trim_threshold():
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 made every cell 2.5x slower (benchmarks/README.md)."""
    from distributed import Client

    from aebench.executors.dask import local_cluster

    with local_cluster(1, "cpu") as cluster, Client(cluster) as client:
        assert list(client.run(_trim_threshold).values()) == [None]
        assert list(client.run(os.environ.get, "OMP_NUM_THREADS").values()) == ["1"]  # dask's other settings stay
