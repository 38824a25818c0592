"""Sliced Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015) between a sample set and a fixed
reference set: the p-Wasserstein distance of the two sets' projections on random unit directions,
averaged over directions (as W_p^p), then the p-th root:

    SW_p = ( mean_theta W_p^p(theta . x, theta . y) )^(1/p)

In one dimension W_p is a matching of sorted values, so each direction costs a sort: n log n work, no
n x m matrix, and its sample error shrinks as 1/sqrt(n) whatever the dimension (a full Wasserstein
distance in d dimensions converges as n^(-1/d)). Sets of different sizes n and m are matched through
their quantile functions: on the quantile levels {i/n} united with {j/m}, each interval between two
levels pairs one sorted value of each set, weighted by the interval's length (`quantile_pairs`).

`SlicedReference` fixes the directions (seeded, so every sampler of a run is scored on the same ones)
and the reference's sorted projections once. `distance_of_halves` scores random halves of one sample
set without sorting again: a half's sorted values are the full set's sorted values, filtered.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch

from aebench.errors import DataError


def random_directions(dim: int, count: int, seed: int) -> torch.Tensor:
    """`count` unit vectors uniform on the sphere in `dim` dimensions [count, dim], float64, seeded."""
    if dim < 1 or count < 1:
        raise DataError(f"Sliced Wasserstein needs a dimension and a number of directions >= 1, got {dim} and {count}.")
    g = torch.randn(count, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True).clamp_min(1e-300)


@lru_cache(maxsize=32)
def quantile_pairs(n: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights [k], i [k], j [k]): W_p^p of sorted sets a [n] and b [m] is sum_k w_k |a[i_k] - b[j_k]|^p.

    In units of 1/(n m) the levels are i m and j n; between consecutive levels L_{k-1} < q <= L_k the
    quantile functions are a[ceil(L_k / m) - 1] and b[ceil(L_k / n) - 1] (integer arithmetic: exact)."""
    if n < 1 or m < 1:
        raise DataError(f"Wasserstein distance needs non-empty sets, got sizes {n} and {m}.")
    levels = torch.unique(torch.cat([torch.arange(1, n + 1, dtype=torch.int64) * m,
                                     torch.arange(1, m + 1, dtype=torch.int64) * n]))
    weights = torch.diff(levels, prepend=torch.zeros(1, dtype=torch.int64)).to(torch.float64) / (n * m)
    return weights, (levels + m - 1) // m - 1, (levels + n - 1) // n - 1


def wasserstein_sorted(a: torch.Tensor, b: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between rows of sorted a [r, n] and sorted b [r, m] (one value per row), float64."""
    weights, i, j = quantile_pairs(int(a.shape[-1]), int(b.shape[-1]))
    gap = (a[..., i] - b[..., j]).abs_()
    return (gap.pow_(p) if p != 1 else gap) @ weights


@dataclass(frozen=True)
class SlicedReference:
    """A reference set's sorted projections on fixed random directions: `distance(samples)` is the
    sliced p-Wasserstein distance of the samples to it."""

    directions: torch.Tensor  # [k, d] unit vectors
    sorted_projections: torch.Tensor  # [k, m]
    p: float

    @classmethod
    def of(cls, reference: torch.Tensor, directions: int = 128, seed: int = 0, p: float = 2.0) -> "SlicedReference":
        ref = _points(reference, "reference")
        if ref.shape[0] < 1:
            raise DataError("Sliced Wasserstein: the reference set is empty.")
        if not p >= 1:
            raise DataError(f"Sliced Wasserstein needs p >= 1, got {p}.")
        dirs = random_directions(ref.shape[1], directions, seed)
        return cls(dirs, torch.sort(dirs @ ref.T, dim=1).values, float(p))

    def project(self, samples: torch.Tensor) -> torch.Tensor:
        """The samples' projections on the directions [k, n] (unsorted)."""
        x = _points(samples, "samples")
        if x.shape[1] != self.directions.shape[1]:
            raise DataError(f"Sliced Wasserstein: samples of dimension {x.shape[1]} against a reference of "
                            f"dimension {self.directions.shape[1]}; use one model or extractor for both.")
        return self.directions @ x.T

    def distance(self, samples: torch.Tensor) -> float:
        projected = torch.sort(self.project(samples), dim=1).values
        return self._root(wasserstein_sorted(projected, self.sorted_projections, self.p).mean())

    def distance_of_halves(self, samples: torch.Tensor, halves: Sequence[torch.Tensor]) -> torch.Tensor:
        """The distance of each subset of rows in `halves` (all of one size), from one sort of all samples:
        [len(halves)] float64."""
        projected = self.project(samples)
        n = projected.shape[1]
        values, order = torch.sort(projected, dim=1)
        out = torch.empty(len(halves), dtype=torch.float64)
        for r, rows in enumerate(halves):
            member = torch.zeros(n, dtype=torch.bool)
            member[rows] = True
            keep = member[order]  # [k, n]: which sorted entries belong to the half, in sorted order
            sub = values[keep].reshape(values.shape[0], -1)
            out[r] = self._root(wasserstein_sorted(sub, self.sorted_projections, self.p).mean())
        return out

    def _root(self, mean_pp: torch.Tensor) -> float:
        return float(mean_pp.clamp_min(0)) ** (1.0 / self.p)


def _points(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x).to(torch.float64)
    if x.ndim != 2:
        raise DataError(f"Sliced Wasserstein: {what} must be points [n, d], got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise DataError(f"Sliced Wasserstein: {what} contain NaN or inf; remove or fix those points first.")
    return x
