"""Scale-out: 8 cells (4 samplers x 2 seeds, `fast` extractor, n samples each) run by the local executor
and by the dask executor with 1 and 2 worker processes, measured in one run.

Reports per run the wall time of the whole `run_benchmark` and of its cell phase (the executor's
`run`: fits, sampling, decoding, features, scoring; the real side is built identically by every run),
then the ratios local / dask-2 (speed-up, target >= 1.6x on 2 cores) and dask-1 / local (overhead,
target <= 1.10). Local runs with one CPU thread (the same per-cell work as one dask worker) and, for
reference, with two. Checks that every run gives identical metric values. Run it under the shared lock:

    flock /tmp/aebench-heavy.lock .venv/bin/python benchmarks/dask_speedup.py [--n 4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from aebench.executors import make_executor
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.runner import run_benchmark

SAMPLERS = ("gaussian", "gmm", "pca", "uniform")
SEEDS = [0, 1]


class Timed:
    """Wraps an executor and records how long its `run` (the cell phase) took."""

    def __init__(self, inner):
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    def run(self, *args):
        t0 = time.perf_counter()
        self.inner.run(*args)
        self.seconds = time.perf_counter() - t0


def one_run(out: Path, n: int, executor: str, workers: int | None, threads: int) -> dict:
    config = RunConfig(dataset="orl_faces", samplers=[SamplerSpec(s) for s in SAMPLERS], n=n, seeds=SEEDS,
                       features="fast", metrics=["fid", "kid", "region_hits", "latent_fd", "latent_mmd"],
                       out=str(out), figures=False, threads=threads)
    config.check()
    timed = Timed(make_executor(executor, workers=workers))
    t0 = time.perf_counter()
    doc = run_benchmark(config, quiet=True, executor=timed)
    total = time.perf_counter() - t0
    values = {(c["sampler"], c["seed"]): {k: v["value"] for k, v in c["values"].items()} for c in doc["cells"]}
    assert all(c["status"] == "ok" for c in doc["cells"]) and len(values) == 8
    return {"total_s": round(total, 2), "cells_s": round(timed.seconds, 2), "values": values}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="samples per cell")
    args = parser.parse_args()
    runs = {"local-1thread": ("local", None, 1), "local-2threads": ("local", None, 2),
            "dask-1worker": ("dask", 1, 1), "dask-2workers": ("dask", 2, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(Path(tmp) / "warm", args.n, "local", None, 1)  # real side into the cache, imports warm
        results = {name: one_run(Path(tmp) / name, args.n, *spec) for name, spec in runs.items()}
    reference = results["local-1thread"]["values"]
    identical = {name: r["values"] == reference for name, r in results.items()}
    summary = {
        "n_per_cell": args.n, "cells": 8,
        "runs": {name: {k: v for k, v in r.items() if k != "values"} for name, r in results.items()},
        "identical_values_vs_local_1thread": identical,
        "speedup_cells_local1_over_dask2": round(results["local-1thread"]["cells_s"] / results["dask-2workers"]["cells_s"], 2),
        "speedup_total_local1_over_dask2": round(results["local-1thread"]["total_s"] / results["dask-2workers"]["total_s"], 2),
        "speedup_cells_local2_over_dask2": round(results["local-2threads"]["cells_s"] / results["dask-2workers"]["cells_s"], 2),
        "overhead_cells_dask1_over_local1": round(results["dask-1worker"]["cells_s"] / results["local-1thread"]["cells_s"], 3),
        "overhead_total_dask1_over_local1": round(results["dask-1worker"]["total_s"] / results["local-1thread"]["total_s"], 3),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
