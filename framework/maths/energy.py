"""Energy distance (Székely & Rizzo 2013) between two point sets, with the unbiased (U-statistic) terms:

    E^2 = 2 mean_ij |x_i - y_j| - mean_{i != i'} |x_i - x_i'| - mean_{j != j'} |y_j - y_j'|

It is an MMD with the distance kernel k(x, y) = -|x - y|: zero only for equal distributions, no bandwidth
to choose, and every moment and shape difference counts, weighted by distance rather than by a kernel
scale. So it reuses the MMD's block machinery (`aebench.maths.mmd`): row means against the reference,
tiles of the symmetric self-distance matrix, subset sums for the random halves of the interval. Memory:
one block of distances at a time. scipy's `energy_distance` is the square root of the same quantity
with V-statistics (means over all pairs, i = i' included); `energy_distance_v` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench.errors import DataError
from aebench.maths.mmd import offdiag_mean, row_means, squared_distances


@dataclass(frozen=True)
class DistanceKernel:
    """k(x, y) = |x - y| (Euclidean), float64; the energy distance's "kernel" (with the sign flipped)."""

    self_value: float = 0.0
    exact_diagonal: bool = True  # a point's distance to itself is 0, not sqrt of a rounded 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return squared_distances(x, y).sqrt_()


def energy_distance2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared energy distance of sets x [n, d] and y [m, d] (n, m >= 2)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DataError(f"Energy distance needs two point sets of one dimension, got {tuple(x.shape)} and "
                        f"{tuple(y.shape)}.")
    kernel = DistanceKernel()
    return 2.0 * float(row_means(kernel, x, y).mean()) - offdiag_mean(kernel, x) - offdiag_mean(kernel, y)


def energy_distance_v(x: torch.Tensor, y: torch.Tensor) -> float:
    """The V-statistic energy distance (square root, means over all pairs): scipy.stats.energy_distance's
    number for 1-D sets, from the same sums."""
    n, m = x.shape[0], y.shape[0]
    kernel = DistanceKernel()
    within = offdiag_mean(kernel, x) * (n - 1) / n + offdiag_mean(kernel, y) * (m - 1) / m
    return max(0.0, 2.0 * float(row_means(kernel, x, y).mean()) - within) ** 0.5
