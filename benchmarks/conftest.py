"""Benchmark session setup: a private aebench cache, thread limits, and a summary of every ratio.

AEBENCH_BENCH=quick|full picks the sizes (helpers.SIZES). AEBENCH_BENCH_THREADS=N limits torch and
the BLAS/OpenMP pools of numpy, scipy and scikit-learn to N threads for the whole session, baselines
included: on a small shared machine, idle-waiting OpenMP threads can make small operations ten times
slower, so one thread gives the steadier numbers (run_quick.sh uses 1 unless told otherwise)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import helpers` from the bench files

import helpers  # noqa: E402

from aebench.testing import isolated_aebench  # noqa: E402, F401  (the same fixture as tests/)


def pytest_configure(config):
    threads = os.environ.get("AEBENCH_BENCH_THREADS", "").strip()
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        n = int(threads)
        torch.set_num_threads(n)
        config._aebench_thread_limit = threadpool_limits(n)  # kept alive for the session


@pytest.fixture(autouse=True)
def machine_info(request):
    """Every benchmark records the conditions it ran under (threads, load average)."""
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is not None:
        import torch

        bench.extra_info.setdefault("torch_threads", torch.get_num_threads())
        bench.extra_info.setdefault("cpu_count", os.cpu_count())
        if hasattr(os, "getloadavg"):
            bench.extra_info.setdefault("load_avg_1min", round(os.getloadavg()[0], 2))


def pytest_terminal_summary(terminalreporter):
    if not helpers.RESULTS:
        return
    terminalreporter.section(f"aebench speed ratios ({helpers.MODE})")
    for row in helpers.RESULTS:
        keys = [k for k in row if k.startswith(("speedup", "memory_ratio", "overhead", "images_per_s", "total_s", "of_floor"))]
        shown = ", ".join(f"{k}={row[k]}" for k in keys)
        terminalreporter.write_line(f"{row['name']}: {shown}")
