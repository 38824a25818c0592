"""Planes through the training latents, for the report's latent-plane explorer: the source post looks at
faces decoded along lines and across the plane of two dominant components, one plane at a time. Here a
plane is two axes of a basis (the leading principal axes of the training latents, or the most dominant
coordinate axes, the post's choice); every other coordinate stays at the centre of the training latents.

A basis projects latents to plane coordinates, `(z - offset) @ axes.T`, and lays a grid of latents across
any two of its axes (`grid`), whose decoded images the explorer shows under the projected training and
sampler points: the same coordinates in both, so a point's place on the plane is the place in the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench.errors import AebenchError
from aebench.stats import LatentStats

REACH = 2.5  # a plane shows the centre +- REACH standard deviations of the training latents along each axis


@dataclass(frozen=True)
class PlaneBasis:
    """`k` orthonormal axes in latent space, how coordinates on them are measured and how far a plane reaches."""

    name: str  # 'principal' or 'dominant'
    title: str  # what the axes are, in words
    labels: tuple[str, ...]  # one per axis
    axes: torch.Tensor  # [k, N] float64, orthonormal rows
    offset: torch.Tensor  # [N]: plane coordinates are (z - offset) @ axes.T
    centre: torch.Tensor  # [N]: the training mean; a grid latent keeps it off the plane's two axes
    spread: torch.Tensor  # [k]: standard deviation of the training latents along each axis

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        """Plane coordinates [n, k] of latents [n, N]."""
        return (latents.to(torch.float64) - self.offset) @ self.axes.T

    @property
    def centre_xy(self) -> torch.Tensor:
        return self.project(self.centre[None])[0]

    @property
    def origin_xy(self) -> torch.Tensor:
        return self.project(torch.zeros_like(self.centre)[None])[0]

    def extent(self, reach: float = REACH) -> tuple[torch.Tensor, torch.Tensor]:
        """(low [k], high [k]): the centre +- `reach` standard deviations along each axis."""
        spread = torch.where(self.spread > 0, self.spread, torch.ones_like(self.spread))
        return self.centre_xy - reach * spread, self.centre_xy + reach * spread

    def grid(self, i: int, j: int, size: int, reach: float = REACH) -> torch.Tensor:
        """Latents [size * size, N] float32 across the plane of axes i (x) and j (y), row by row from the
        top (highest y) and left (lowest x): cell (r, c) sits at the centre of its square of the extent."""
        k = self.axes.shape[0]
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise AebenchError(f"A plane needs two different axes in [0, {k}), got {i} and {j}.")
        if size < 1:
            raise AebenchError(f"A plane grid needs at least one cell a side, got {size}.")
        low, high = self.extent(reach)
        frac = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        xs = low[i] + frac * (high[i] - low[i])
        ys = high[j] - frac * (high[j] - low[j])
        centre = self.centre_xy
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        out = (self.centre[None] + (x.reshape(-1, 1) - centre[i]) * self.axes[i]
               + (y.reshape(-1, 1) - centre[j]) * self.axes[j])
        return out.to(torch.float32)


def principal_basis(stats: LatentStats, k: int) -> PlaneBasis:
    """The `k` leading principal axes of the training latents, measured from their mean."""
    k = min(k, stats.latent_dim)
    share = stats.pca_ratio[:k].tolist()
    return PlaneBasis("principal", "leading principal axes of the training latents (coordinates from their mean)",
                      tuple(f"PC{m + 1} ({s:.0%} of variance)" for m, s in enumerate(share)),
                      stats.pca_axes[:k].to(torch.float64), stats.mean.to(torch.float64),
                      stats.mean.to(torch.float64), stats.pca_variance[:k].clamp_min(0).sqrt().to(torch.float64))


def dominant_basis(stats: LatentStats, k: int) -> PlaneBasis:
    """The `k` most dominant latent components (largest sqrt(mean^2 + std^2)), as raw coordinates: the
    planes the source post draws (its origin is the latent space's)."""
    order = stats.dominance_order[:min(k, stats.latent_dim)]
    axes = torch.zeros(order.numel(), stats.latent_dim, dtype=torch.float64)
    axes[torch.arange(order.numel()), order] = 1.0
    return PlaneBasis("dominant", "most dominant latent components (raw coordinates)",
                      tuple(f"component {int(c)}" for c in order), axes,
                      torch.zeros(stats.latent_dim, dtype=torch.float64), stats.mean.to(torch.float64),
                      stats.std[order].to(torch.float64))


def plane_bases(stats: LatentStats, k: int) -> list[PlaneBasis]:
    """The explorer's bases: principal axes first, then dominant components."""
    if stats.latent_dim < 2:
        raise AebenchError(f"Planes need a latent space of at least 2 dimensions, got {stats.latent_dim}.")
    return [principal_basis(stats, k), dominant_basis(stats, k)]


def plane_pairs(k: int) -> list[tuple[int, int]]:
    """Every pair of axes (i < j) of a basis of `k` axes."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def spaced_rows(n: int, count: int) -> torch.Tensor:
    """`count` rows of `n` evenly spaced in order (all of them when n <= count): the points shown of a
    sampler's samples, so path samplers show every path, not just the first."""
    if n <= count:
        return torch.arange(n)
    return torch.unique(torch.linspace(0, n - 1, count).round().long())
