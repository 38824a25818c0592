"""How many CPU threads a run uses, in one place (torch's intra-op pool and every BLAS/OpenMP pool
numpy, scipy and scikit-learn use).

On a machine whose cores are shared, more threads than free cores make things slower, not faster:
idle-waiting OpenMP threads made small operations (scikit-learn's EM, small matrix products) up to
50x slower with 2 threads on a busy 2-core machine. So the default, `auto`, takes the cores this
process may run on minus the ones other processes keep busy (the 1-minute load average), at least 1;
an `OMP_NUM_THREADS` set by the user wins over it. Results do not depend on the thread count beyond
float rounding in a few reductions.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

from aebench.errors import OptionError


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count where that is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Free cores: `cores` (default: available) minus the rounded 1-minute load average, at least 1."""
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))


def resolve_threads(threads: int | str | None) -> int:
    """The thread count for setting `threads`: a positive int, or None/'auto' (see module doc)."""
    if threads is None or (isinstance(threads, str) and threads.strip().lower() == "auto"):
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return max(1, torch.get_num_threads())
        return auto_threads()
    if isinstance(threads, str) and threads.strip().isdigit():
        threads = int(threads)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise OptionError(f"threads must be a positive integer or 'auto', got {threads!r}; e.g. --threads 2.")
    return threads


@contextmanager
def thread_limit(threads: int | str | None) -> Iterator[int]:
    """Run the body with torch's and the BLAS/OpenMP pools' thread count set for setting `threads`;
    both are restored afterwards. Yields the count."""
    n = resolve_threads(threads)
    before = torch.get_num_threads()
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(n)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
        if limiter is not None:
            limiter.restore_original_limits()
