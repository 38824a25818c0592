"""Bootstrap percentile intervals for means (hit rates, per-point errors), vectorised and seeded, and
half-sampling standard deviations for statistics that duplicate points would bias.

Resamples are drawn in blocks so that memory stays bounded (about `block_values` indices at once)
however many points and resamples there are.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from aebench.errors import AebenchError


def bootstrap_mean_ci(values: torch.Tensor | np.ndarray, n_boot: int = 1000, seed: int = 0, *,
                      level: float = 0.95, block_values: int = 2_000_000) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of the mean of `values` (1-D, finite)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise AebenchError("Bootstrap interval of an empty set of values; draw at least one sample.")
    if not np.isfinite(x).all():
        raise AebenchError("Bootstrap values contain NaN or Inf; drop or repair those points first.")
    if n_boot < 1 or not 0 < level < 1:
        raise AebenchError(f"Bootstrap needs n_boot >= 1 and level in (0, 1), got {n_boot} and {level}.")
    rng = np.random.default_rng(seed)
    n = x.size
    means = np.empty(n_boot, dtype=np.float64)
    step = max(1, block_values // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def half_sample_sd(statistic: Callable[[torch.Tensor], float], n: int, repeats: int = 100, seed: int = 0) -> float:
    """Standard deviation of `statistic(rows)` over `repeats` random halves (floor(n/2) rows drawn without
    replacement) of n points.

    For a mean, the variance over random halves is exactly s^2 / n, the usual estimate of the mean's
    variance on all n points (the finite-population factor 1 - m/n = 1/2 cancels the halved count);
    for smooth statistics such as distances and kernel statistics it estimates the statistic's standard
    deviation at n in the same way. Unlike a bootstrap resample, a half has no duplicate points, which
    would bias covariance, kernel and nearest-neighbour statistics (a duplicate is its own neighbour).
    Where a statistic's variance falls faster than 1/n (MMD^2 and Fréchet distance when the two
    distributions agree, variance ~ 1/n^2), halves overstate it: measured 1.4x (FD) and 2x (MMD^2) the
    spread over fresh draws at N=64, n=128 for identical Gaussians, 1.0-1.1x for shifted ones. The
    interval errs wide, towards calling close samplers a tie.
    """
    values = [statistic(rows) for rows in half_sample_rows(n, repeats, seed)]
    return float(np.std(values, ddof=1))


def half_sample_rows(n: int, repeats: int = 100, seed: int = 0) -> list[torch.Tensor]:
    """The `repeats` random halves `half_sample_sd` scores (each floor(n/2) row indices, seeded): for
    statistics that score every half at once (`aebench.maths.mmd.subset_kernel_sums`) and must draw the
    very same halves."""
    if n < 4 or repeats < 2:
        raise AebenchError(f"Half-sampling needs at least 4 points and 2 repeats, got {n} and {repeats}.")
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=gen)[: n // 2] for _ in range(repeats)]


def subset_sd(values: torch.Tensor | np.ndarray) -> float:
    """The standard deviation `half_sample_sd` reports, of values already computed for every half."""
    return float(np.std(np.asarray(values, dtype=np.float64), ddof=1))
