"""Unbiased squared maximum mean discrepancy (MMD^2, Gretton et al. 2012) with a Gaussian (RBF) kernel
averaged over a few bandwidths, computed in row blocks so no matrix larger than one block is held.

The bandwidths are fixed from the reference set alone (the median heuristic: the median pairwise
distance of the reference points, times a few scales), so every sample set is scored with the same
kernel. Small scales see local shape (a Gaussian with the right mean and covariance but the wrong
shape), large ones the bulk (shift, spread). The kernel is the mean of the per-bandwidth kernels,
so k(x, x) = 1 and MMD^2 lies in [-2/(n-1), 2].

`subset_kernel_sums` scores many subsets of one sample set at once (the random halves behind the
interval of `latent_mmd`): with b the 0/1 indicator of a subset, its kernel sum is b^T K b, so one pass
over the kernel matrix in square tiles of its upper triangle (K is symmetric) gives K's total and every
subset's sum from a matrix product per tile, instead of gathering a sub-matrix per subset. The same
sums in another order: equal to the per-subset formulation to float64 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from aebench.errors import DataError

BLOCK_BYTES = 8 * 2**20  # kernel blocks small enough to stay in cache through their exp and squarings


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 [n, m] in float64 (rounding below 0 clamped), from centred coordinates."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    centre = y.mean(0)
    x, y = x - centre, y - centre
    d2 = torch.addmm(y.square().sum(1)[None, :], x, y.T, alpha=-2.0)  # one n x m pass after the product
    return d2.add_(x.square().sum(1)[:, None]).clamp_min_(0)


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
        term = torch.empty_like(d2)
        for h, squarings in self._chain():
            if squarings:  # exp(-d2 / 2h^2) = exp(-d2 / 2h'^2)^(2^j) for h' = h 2^(j/2): j squarings, no exp
                for _ in range(squarings):
                    term.square_()
            else:
                torch.div(d2, -2.0 * h * h, out=term)
                term.exp_()
            out += term
        return out.div_(len(self.bandwidths))

    def _chain(self) -> list[tuple[float, int]]:
        """The bandwidths widest first, each with the number of squarings that turn the previous one's
        kernel into its own (0: computed by exp). The default scales 2, 1, 0.5, 0.25 are a factor 2
        apart, so one exp and 2 squarings per step give all four: exp is most of the kernel's cost.
        Squaring j times multiplies the relative rounding error by 2^j (at most 64 ulps here)."""
        chain: list[tuple[float, int]] = []
        for h in sorted(self.bandwidths, reverse=True):
            steps = 0
            if chain:
                ratio = math.log2((chain[-1][0] / h) ** 2)
                if 0.5 <= ratio <= 6.5 and abs(ratio - round(ratio)) < 1e-12:
                    steps = int(round(ratio))
            chain.append((h, steps))
        return chain


# anything that maps point sets x [n, d], y [m, d] to their kernel matrix [n, m] in float64
Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _blocks(n: int, m: int, block_bytes: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    step = max(1, block_bytes // (8 * max(1, m) * 2))
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def row_means(kernel: Kernel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_j k(x_i, y_j) for each i [n], float64."""
    return torch.cat([kernel(x[s:e], y).mean(1) for s, e in _blocks(x.shape[0], y.shape[0])])


def offdiag_mean(kernel: Kernel, x: torch.Tensor) -> float:
    """mean over i != j of k(x_i, x_j) (the diagonal is k(x, x): 1 for the RBF kernel)."""
    n = x.shape[0]
    if n < 2:
        raise DataError(f"Unbiased MMD needs at least 2 points per set, got {n}.")
    total, _ = subset_kernel_sums(kernel, x)  # the upper triangle's tiles only: K is symmetric
    return (total - n * _self_value(kernel)) / (n * (n - 1))


def _self_value(kernel: Kernel) -> float:
    """k(x, x), the same for every x: 1 for RBF kernels (default), 0 for a distance (its `self_value`)."""
    return float(getattr(kernel, "self_value", 1.0))


def mmd2_unbiased(kernel: Kernel, x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 of sets x [n, d] and y [m, d] (sizes may differ)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DataError(f"MMD needs two point sets of one dimension, got {tuple(x.shape)} and {tuple(y.shape)}.")
    return offdiag_mean(kernel, x) + offdiag_mean(kernel, y) - 2.0 * float(row_means(kernel, y, x).mean())


def _tiles(n: int, block_bytes: int) -> list[tuple[int, int]]:
    """Square tiles [s, e) of an n x n float64 matrix, each (with its temporaries) about block_bytes."""
    side = max(1, min(n, math.isqrt(max(1, block_bytes // (8 * 3)))))
    count = -(-n // side)
    side = -(-n // count)  # equal tiles
    return [(s, min(n, s + side)) for s in range(0, n, side)]


def subset_kernel_sums(kernel: Kernel, x: torch.Tensor, subsets: Sequence[torch.Tensor] | torch.Tensor = (),
                       block_bytes: int | None = None) -> tuple[float, torch.Tensor]:
    """(sum over all i, j of k(x_i, x_j), and for each subset S the sum over i, j in S), diagonals included.

    `subsets`: row-index tensors, or a 0/1 indicator matrix [n, r]. A kernel with `exact_diagonal` gets its
    `self_value` on the diagonal rather than what rounding makes of k(x_i, x_i) (a distance's sqrt of a
    rounded 0 is not small). The kernel matrix is formed one tile
    of its upper triangle at a time (an off-diagonal tile stands for its mirror image too), so memory
    stays at a few tiles however large n is."""
    n = x.shape[0]
    x = x.to(torch.float64)
    if isinstance(subsets, torch.Tensor):
        member = subsets.to(torch.float64)
    else:
        member = torch.zeros(n, len(subsets), dtype=torch.float64)
        for r, rows in enumerate(subsets):
            member[rows, r] = 1.0
    if member.shape[0] != n:
        raise DataError(f"Subset indicators cover {member.shape[0]} rows for {n} points; pass one row per point.")
    total = 0.0
    sums = torch.zeros(member.shape[1], dtype=torch.float64)
    tiles = _tiles(n, BLOCK_BYTES if block_bytes is None else block_bytes)
    for a, (s0, e0) in enumerate(tiles):
        for s1, e1 in tiles[a:]:
            k = kernel(x[s0:e0], x[s1:e1])
            if s0 == s1 and getattr(kernel, "exact_diagonal", False):
                k.fill_diagonal_(_self_value(kernel))  # a point's own entry, without rounding
            weight = 1.0 if s0 == s1 else 2.0
            total += weight * float(k.sum())
            if sums.numel():
                sums += weight * (member[s0:e0] * (k @ member[s1:e1])).sum(0)
    return total, sums
