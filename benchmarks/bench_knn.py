"""k-NN speed: aebench's chunked exact k-NN against the tools people use otherwise.

- k-NN region (union of k-NN balls around training latents): radii + score of every sample, against
  scikit-learn's NearestNeighbors (brute force) and its memory-bounded `pairwise_distances_chunked`.
- precision/recall/density/coverage: `aebench.prdc.compute_prdc` against the `prdc` package.

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

from aebench import knn
from aebench.prdc import compute_prdc

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
