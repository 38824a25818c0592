"""Unbiased squared maximum mean discrepancy (MMD^2, Gretton et al. 2012) with a Gaussian (RBF) kernel
averaged over a few bandwidths, computed in row blocks so no matrix larger than one block is held.

The bandwidths are fixed from the reference set alone (the median heuristic: the median pairwise
distance of the reference points, times a few scales), so every sample set is scored with the same
kernel. Small scales see local shape (a Gaussian with the right mean and covariance but the wrong
shape), large ones the bulk (shift, spread). The kernel is the mean of the per-bandwidth kernels,
so k(x, x) = 1 and MMD^2 lies in [-2/(n-1), 2].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench.errors import DataError

BLOCK_BYTES = 64 * 2**20


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 [n, m] in float64 (rounding below 0 clamped), from centred coordinates."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    centre = y.mean(0)
    x, y = x - centre, y - centre
    d2 = x.square().sum(1)[:, None] + y.square().sum(1)[None, :] - 2.0 * (x @ y.T)
    return d2.clamp_min_(0)


def median_distance(x: torch.Tensor, max_points: int = 2000, seed: int = 0) -> float:
    """Median distance between distinct points of x (a fixed random subset of `max_points` when larger)."""
    if x.shape[0] < 2:
        raise DataError(f"The median heuristic needs at least 2 points, got {x.shape[0]}.")
    if x.shape[0] > max_points:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]]
    d2 = squared_distances(x, x)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], 1)
    return float(torch.quantile(d2[i, j].sqrt(), 0.5))  # the midpoint of the two middle values, as numpy


@dataclass(frozen=True)
class RBFKernel:
    """k(x, y) = mean over bandwidths h of exp(-||x - y||^2 / (2 h^2))."""

    bandwidths: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.bandwidths or not all(h > 0 for h in self.bandwidths):
            raise DataError(f"RBF bandwidths must be positive, got {self.bandwidths}; the reference points may all "
                            f"coincide.")

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d2 = squared_distances(x, y)
        out = torch.zeros_like(d2)
        for h in self.bandwidths:
            out += torch.exp(d2 / (-2.0 * h * h))
        return out / len(self.bandwidths)


def _blocks(n: int, m: int, block_bytes: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    step = max(1, block_bytes // (8 * max(1, m) * 2))
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def row_means(kernel: RBFKernel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_j k(x_i, y_j) for each i [n], float64."""
    return torch.cat([kernel(x[s:e], y).mean(1) for s, e in _blocks(x.shape[0], y.shape[0])])


def offdiag_mean(kernel: RBFKernel, x: torch.Tensor) -> float:
    """mean over i != j of k(x_i, x_j) (the diagonal is 1 by construction)."""
    n = x.shape[0]
    if n < 2:
        raise DataError(f"Unbiased MMD needs at least 2 points per set, got {n}.")
    total = sum(float(kernel(x[s:e], x).sum()) for s, e in _blocks(n, n))
    return (total - n) / (n * (n - 1))


def mmd2_unbiased(kernel: RBFKernel, x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 of sets x [n, d] and y [m, d] (sizes may differ)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DataError(f"MMD needs two point sets of one dimension, got {tuple(x.shape)} and {tuple(y.shape)}.")
    return offdiag_mean(kernel, x) + offdiag_mean(kernel, y) - 2.0 * float(row_means(kernel, y, x).mean())
