"""k-NN speed: aebench's chunked exact k-NN against the tools people use otherwise.

- k-NN region (union of k-NN balls around training latents): radii + score of every sample, against
  scikit-learn's NearestNeighbors (brute force) and its memory-bounded `pairwise_distances_chunked`.
- precision/recall/density/coverage: `aebench.maths.prdc.compute_prdc` against the `prdc` package, and the
  run's published pair (P/R at k=3, D/C at k=5: `compute_prdc_two_k`, one real x fake pass) against
  the two `prdc` calls it takes to get the same four numbers.
- the floor: the float32 GEMM rate of this CPU (torch.mm at the block shapes k-NN uses), and how close
  the per-sampler PRDC comes to the time its unavoidable distance products take at that rate.

Each reports two aebench timings: per call (the real side's radii computed inside, like the baselines)
and per sampler (real radii cached: how a run uses it, "the real side is computed once"), the
values (equal within 1e-6), and the peak memory of each implementation measured in its own process.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from helpers import SIZES, peak_memory_mb, ratio, real_fake, record, run_ours, time_call

from aebench.maths import knn
from aebench.maths.prdc import compute_prdc, compute_prdc_two_k

CFG = SIZES["knn"]
REGION_K = 3  # the knn region's default k


@pytest.fixture(scope="module", params=CFG["dims"], ids=lambda d: f"d{d}")
def data(request):
    real, fake = real_fake(CFG["n_real"], CFG["n_fake"], request.param)
    return request.param, real, fake


def sklearn_region_scores(real: np.ndarray, fake: np.ndarray, k: int) -> np.ndarray:
    """The same k-NN-ball score with scikit-learn, brute force: radii from NearestNeighbors, then
    min_j ||z - x_j|| / r_j over memory-bounded distance chunks."""
    from sklearn.metrics import pairwise_distances_chunked
    from sklearn.neighbors import NearestNeighbors

    radii = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(real).kneighbors(real)[0][:, k]
    chunks = pairwise_distances_chunked(fake, real, reduce_func=lambda d, start: (d / radii[None, :]).min(1))
    return np.concatenate(list(chunks))


def bench_knn_region(benchmark, data, tmp_path):
    dim, real, fake = data
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    rounds = CFG["rounds"]
    base_s, want = time_call(lambda: sklearn_region_scores(real, fake, REGION_K), rounds)
    call_s, got = time_call(lambda: knn.min_ratio(f, r, knn.kth_neighbour_distance(r, REGION_K)), rounds)
    radii = knn.kth_neighbour_distance(r, REGION_K)
    ours_s, cached = run_ours(benchmark, lambda: knn.min_ratio(f, r, radii), rounds)

    # equal scores (sklearn returns float32 distances: relative 1e-6), and equal hit rates at a
    # threshold calibrated on the scores themselves
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert torch.equal(got, cached)
    threshold = float(np.quantile(want, 0.5))
    hits_ours, hits_sklearn = float((got <= threshold).double().mean()), float((want <= threshold).mean())
    assert abs(hits_ours - hits_sklearn) <= 1.0 / len(want) + 1e-6

    memory = memory_columns("sklearn", {"real": real, "fake": fake}, tmp_path, dim, REGION_K,
                            ("sklearn_region", "aebench_region", "aebench_region_score"))
    record(benchmark, f"knn region d={dim}", n_real=len(real), n_fake=len(fake), k=REGION_K,
           sklearn_s=base_s, aebench_call_s=call_s, aebench_cached_s=ours_s,
           speedup_per_call=ratio(base_s, call_s), speedup_per_sampler=ratio(base_s, ours_s),
           hit_rate=hits_ours, **memory)


def prdc_package(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    import prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sample counts
        return {key: float(v) for key, v in prdc.compute_prdc(real, fake, k).items()}


def bench_prdc(benchmark, data, tmp_path):
    dim, real, fake = data
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    k, rounds = CFG["k"], CFG["rounds"]
    base_s, want = time_call(lambda: prdc_package(real, fake, k), rounds)
    call_s, got = time_call(lambda: compute_prdc(r, f, k), rounds)
    radii = knn.kth_neighbour_distance(r, k)
    ours_s, cached = run_ours(benchmark, lambda: compute_prdc(r, f, k, real_radii=radii), rounds)

    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert cached == got

    memory = memory_columns("prdc", {"real": real, "fake": fake}, tmp_path, dim, k,
                            ("prdc_package", "aebench_prdc", "aebench_prdc_cached"))
    record(benchmark, f"prdc d={dim}", n_real=len(real), n_fake=len(fake), k=k, prdc_s=base_s,
           aebench_call_s=call_s, aebench_cached_s=ours_s, speedup_per_call=ratio(base_s, call_s),
           speedup_per_sampler=ratio(base_s, ours_s), **{f"value_{key}": v for key, v in got.items()}, **memory)


def memory_columns(baseline: str, arrays: dict, tmp_path, dim: int, k: int, tasks: tuple[str, str, str]) -> dict:
    """Peak memory (MiB above the loaded inputs) of the baseline, aebench per call and per sampler,
    each in its own process; only for the dimensions the preset lists (child processes are slow)."""
    if dim not in CFG["memory_dims"]:
        return {}
    base, call, cached = (peak_memory_mb(task, arrays, tmp_path, k=k) for task in tasks)
    return {f"peak_mb_{baseline}": base, "peak_mb_aebench": call, "peak_mb_aebench_cached": cached,
            "memory_ratio": ratio(base, call), "block_mb": knn.DEFAULT_BLOCK_BYTES / 2**20}


def bench_prdc_two_k(benchmark, data):
    """What a run does per sampler: P/R at k=3 and D/C at k=5 with the real radii cached, against the
    prdc package called at k=3 and at k=5 (it computes one k per call)."""
    dim, real, fake = data
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    rounds = CFG["rounds"]
    t3, want3 = time_call(lambda: prdc_package(real, fake, 3), 1)
    t5, want5 = time_call(lambda: prdc_package(real, fake, 5), 1)
    radii = {k: knn.kth_neighbour_distance(r, k) for k in (3, 5)}
    ours_s, got = run_ours(benchmark, lambda: compute_prdc_two_k(r, f, 3, 5, radii.__getitem__), rounds)
    for key, want in (("precision", want3), ("recall", want3), ("density", want5), ("coverage", want5)):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    record(benchmark, f"prdc two k d={dim}", n_real=len(real), n_fake=len(fake), prdc_k3_s=t3, prdc_k5_s=t5,
           aebench_cached_s=ours_s, speedup_per_sampler=ratio(t3 + t5, ours_s))


def gemm_rate(inner: int, rows: int, cols: int, rounds: int = 3) -> float:
    """float32 FLOP/s of torch.mm for a [rows, inner] x [inner, cols] product (true float32), best of
    `rounds` after a warm-up: the rate the k-NN blocks can at best run at."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(rows, inner, generator=gen), torch.randn(cols, inner, generator=gen)
    with knn.full_precision_matmul():
        a @ b.T  # warm-up
        best, _ = time_call(lambda: a @ b.T, rounds)
    return 2.0 * rows * cols * inner / best


def bench_prdc_gemm_floor(benchmark, data):
    """The distance products a per-sampler PRDC cannot avoid (real x fake once; the fake set's own
    k-NN, one triangle of it), timed at this CPU's measured GEMM rate, against the whole per-sampler
    PRDC (two k, real radii cached). efficiency = floor / ours: 1.0 would mean nothing but the
    products; each part is also timed alone against its own floor."""
    dim, real, fake = data
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    n_real, n_fake, inner = len(real), len(fake), dim + 2  # the folded product has d + 2 columns
    rows = max(1, knn.DEFAULT_BLOCK_BYTES // (4 * n_fake))  # the row block cross_counts uses
    rate = gemm_rate(inner, min(rows, n_real), n_fake)
    cross = 2.0 * n_real * n_fake * inner
    own = 2.0 * inner * n_fake * (n_fake + 1) / 2  # one triangle of the fake x fake distances: the minimum
    floor_s = (cross + own) / rate
    radii = {k: knn.kth_neighbour_distance(r, k) for k in (3, 5)}
    ours_s, _ = run_ours(benchmark, lambda: compute_prdc_two_k(r, f, 3, 5, radii.__getitem__), CFG["rounds"])
    t_cross, _ = time_call(lambda: knn.cross_counts_multi(r, f, [radii[3], radii[5]], None), 1)
    t_own, _ = time_call(lambda: knn.kth_neighbour_distance(f, 3), 1)
    record(benchmark, f"prdc gemm floor d={dim}", gemm_gflops=rate / 1e9, floor_s=floor_s, aebench_cached_s=ours_s,
           efficiency=floor_s / ours_s, cross_s=t_cross, cross_floor_s=cross / rate, fake_radii_s=t_own,
           fake_radii_floor_s=own / rate, torch_threads=torch.get_num_threads())
