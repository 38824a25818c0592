"""Shared pieces of the speed suites: the size preset, timing a baseline the same way pytest-benchmark
times ours, recording ratios in `benchmark.extra_info`, peak memory in a clean child process, and
synthetic data with a realistic shape (decaying spectrum, non-zero centre)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

MODES = ("quick", "full")
MODE = os.environ.get("AEBENCH_BENCH", "quick").strip().lower() or "quick"
if MODE not in MODES:
    raise SystemExit(f"AEBENCH_BENCH={MODE!r} is not a size preset; use quick or full.")
FULL = MODE == "full"

# Every size of every suite, per preset. quick: the whole suite in one to two minutes on a 2-core CPU.
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "knn": {"n_real": 1500, "n_fake": 750, "dims": (256, 2048), "k": 5, "rounds": 2, "memory_dims": (256,)},
        "fid": {"n": 1000, "dim": 256, "rounds": 2},
        "samplers": {"n_train": 1000, "latent_dim": 32, "n_samples": 2000},
        # fit time of every sampler on training latents shaped like the data sets' (name: n_train, N)
        "sampler_fit": {"shapes": {"orl_faces": (320, 64)}, "n_samples": 1000},
        "decode": {"n": 256, "rounds": 2},
        "inception": {"n": 6},
        # Inception at the run's default feature batch against the GEMM floor: n images (several batches)
        "inception_floor": {"n": 32, "rounds": 2},
        "fast": {"n": 2048},
        "domain": {"n": 2048, "n_inception": 32},  # bench_domain_vs_inception: both on the same images
        "overhead": {"n": 500, "samplers": ("gaussian", "plane_paths"), "features": "fast"},
    },
    "full": {
        "knn": {"n_real": 20000, "n_fake": 10000, "dims": (256, 2048), "k": 5, "rounds": 1, "memory_dims": (256, 2048)},
        "fid": {"n": 10000, "dim": 2048, "rounds": 1},
        "samplers": {"n_train": 20000, "latent_dim": 256, "n_samples": 10000},
        "sampler_fit": {"shapes": {"orl_faces": (320, 64), "orl_faces_n256": (320, 256), "fashion_mnist": (60000, 32)},
                        "n_samples": 10000},
        "decode": {"n": 2048, "rounds": 3},
        "inception": {"n": 64},
        "inception_floor": {"n": 96, "rounds": 3},
        "fast": {"n": 10000},
        "domain": {"n": 10000, "n_inception": 128},
        "overhead": {"n": 64, "samplers": ("gaussian", "plane_paths"), "features": "inception"},
    },
}[MODE]

RESULTS: list[dict[str, Any]] = []  # every ratio recorded in this session, for the terminal summary


def time_call(fn: Callable[[], Any], rounds: int = 1) -> tuple[float, Any]:
    """Best wall time of `rounds` calls (the statistic the ratios use) and the last result."""
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def cpu_time_call(fn: Callable[[], Any], rounds: int = 1) -> tuple[float, Any]:
    """Least CPU time (this process, all threads) of `rounds` calls, and the last result: unlike wall
    time, it does not count time the scheduler gave to other processes."""
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def run_ours(benchmark, fn: Callable[[], Any], rounds: int = 1) -> tuple[float, Any]:
    """Time `fn` with pytest-benchmark (pedantic, no warm-up) and return (best seconds, result)."""
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    return float(benchmark.stats.stats.min), result


def record(benchmark, name: str, **values: Any) -> None:
    """Put values (ratios, times, memory) into the JSON report and the end-of-run summary."""
    clean = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()}
    benchmark.extra_info.update(clean)
    benchmark.extra_info.setdefault("mode", MODE)
    RESULTS.append({"name": name, **clean})
    shown = ", ".join(f"{k}={v}" for k, v in clean.items())
    print(f"\n[aebench-bench] {name}: {shown}")


def ratio(baseline_s: float, ours_s: float) -> float:
    """How many times faster ours is (baseline time / our time)."""
    return baseline_s / max(ours_s, 1e-12)


# ----------------------------------------------------------------------------------------------
# data

def spectrum_data(n: int, dim: int, seed: int, *, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """float32 points with a decaying variance spectrum (like encoded latents or CNN features) around a
    non-zero centre. Axis-aligned: distances, k-NN and FID do not care about the orientation."""
    rng = np.random.default_rng(seed)
    std = np.sqrt(np.logspace(0, -2.5, dim)).astype(np.float32)
    centre = np.random.default_rng(54321).standard_normal(dim).astype(np.float32) * 0.5
    z = rng.standard_normal((n, dim), dtype=np.float32)
    z *= std * np.float32(scale)
    z += centre + np.float32(shift)
    return z


def real_fake(n_real: int, n_fake: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A real set and a fake set that overlaps it partly: two thirds drawn like the real set, one third
    too spread out (so precision, recall, density and coverage all land inside (0, 1))."""
    good = (2 * n_fake) // 3
    fake = np.concatenate([spectrum_data(good, dim, 2), spectrum_data(n_fake - good, dim, 3, scale=1.5, shift=0.05)])
    return spectrum_data(n_real, dim, 1), fake


# ----------------------------------------------------------------------------------------------
# peak memory in a child process

CHILD = Path(__file__).with_name("memory_child.py")


def peak_memory_mb(task: str, arrays: dict[str, np.ndarray], tmp: Path, **params: Any) -> float:
    """Peak resident memory (MiB) of `task` in a fresh Python, above that process's own peak after its
    imports and after loading the input arrays (so the number is the work's, not the interpreter's)."""
    paths = {}
    for key, value in arrays.items():
        path = tmp / f"{key}.npy"
        if not path.exists():
            np.save(path, value, allow_pickle=False)
        paths[key] = str(path)
    spec = json.dumps({"task": task, "arrays": paths, "params": params})
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(CHILD), spec], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {task} failed: {proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"])


def torch_threads() -> int:
    return torch.get_num_threads()


def gemm_flops_per_s(n: int = 2048, rounds: int = 3) -> float:
    """float32 FLOP/s of one large square torch.mm ([n, n] x [n, n]), best of `rounds` after a warm-up:
    the rate this CPU's dense arithmetic reaches with the current thread count, the floor for
    convolution-heavy work."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    a @ b  # warm-up
    best, _ = time_call(lambda: a @ b, rounds)
    return 2.0 * n ** 3 / best
