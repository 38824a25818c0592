"""Regions that model latents in their dominant principal subspace plus a residual-norm test.

Few latents in high dimension give a covariance whose smallest eigenvalues are mostly estimation
noise (ORL, N=256, 320 latents: condition number 2.2e6). A model fitted in all N directions then
disagrees with its own samples: a Ledoit-Wolf ellipsoid calibrated on held-out latents accepted 0%
of draws from that same Gaussian, and a mixture's variance-scaled regulariser inflated the
near-empty directions until its own samples were all rejected. So these regions split a point into

- its coordinates in the principal subspace carrying `variance` of the total variance (at most
  n_train/2 dimensions, where eigenvalues are estimated well), scored by the region's own model;
- the squared norm `r2` of the remainder, modelled as the zero-mean Gaussian of the remaining
  principal directions (its median via Satterthwaite's chi-square approximation).

Both parts are modelled as scaled chi-squares g * chi2_nu: nu comes from the fitted model (the
subspace dimension, Satterthwaite's for the residual, moment-matched for a mixture), the scale g from
the part's median, first under the model and, once `calibrate` runs, on the held-out latents (so
out-of-sample inflation of either part is absorbed alike). Each part then becomes an approximately
standard normal score by the Wilson-Hilferty cube-root transform, and the region's score is the
larger of the two. Dividing by medians alone is not enough: a part with few degrees of freedom has a
much heavier tail relative to its median (chi2_2: 95% quantile = 4.3 medians; chi2_14: 1.8), so it
alone would set the threshold and the other part would hardly ever reject (measured: a k=1 and a
k=10 mixture gave the same threshold). A point far outside in the noisy directions is still caught
by the residual part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import chi2

from aebench.errors import AebenchError, NotFittedError
from aebench.region import Region
from aebench.stats import LatentStats

_ROWS = 16384  # rows per block when projecting, to bound memory


@dataclass
class PrincipalSubspace:
    """The training latents' mean, top-`dims` principal axes and the residual Gaussian off them."""

    mean: torch.Tensor  # [N]
    axes: torch.Tensor  # [d, N]
    variance: torch.Tensor  # [d], floored far below the largest
    residual_axes: torch.Tensor  # [N - d, N]
    residual_variance: torch.Tensor  # [N - d]

    @classmethod
    def from_stats(cls, stats: LatentStats, n_train: int, share: float, max_dims: int | None,
                   region: str) -> "PrincipalSubspace":
        """The smallest subspace carrying `share` of the variance, capped at `max_dims` (default n_train/2)."""
        var = stats.pca_variance.to(torch.float64).clamp_min(0)
        total = float(var.sum())
        if not total > 0:
            raise AebenchError(f"Region '{region}': the training latents have zero variance; retrain the model.")
        dim = var.shape[0]
        cap = max_dims or max(1, n_train // 2)
        cumulative = torch.cumsum(var, 0) / total
        needed = int(torch.searchsorted(cumulative, torch.tensor([share], dtype=torch.float64))[0]) + 1
        d = max(1, min(needed, cap, dim))
        axes = stats.pca_axes.to(torch.float64)
        return cls(stats.mean.to(torch.float64), axes[:d], var[:d].clamp_min(float(var[0]) * 1e-12),
                   axes[d:], var[d:])

    @property
    def dims(self) -> int:
        return int(self.axes.shape[0])

    @property
    def has_residual(self) -> bool:
        """False when the subspace is the whole space or the remainder carries no variance."""
        return self.residual_variance.numel() > 0 and float(self.residual_variance.sum()) > float(self.variance[0]) * 1e-12

    @property
    def residual_dof(self) -> float:
        """Satterthwaite: sum_i lambda_i chi2_1 ~ g chi2_nu with nu = (sum lambda)^2 / sum lambda^2."""
        if not self.has_residual:
            return 0.0
        rest = self.residual_variance
        return float(rest.sum()) ** 2 / float(rest.pow(2).sum())

    def residual_median(self) -> float:
        """Median squared residual norm under the residual Gaussian (1.0 when there is no residual)."""
        if not self.has_residual:
            return 1.0
        rest = self.residual_variance
        g = float(rest.pow(2).sum()) / float(rest.sum())
        return g * float(chi2.median(self.residual_dof))

    def project(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subspace coordinates [n, d] and squared residual norms [n] of latents z [n, N] (float64)."""
        coords = torch.empty(z.shape[0], self.dims, dtype=torch.float64)
        r2 = torch.zeros(z.shape[0], dtype=torch.float64)
        for start in range(0, z.shape[0], _ROWS):
            c = z[start:start + _ROWS].to(torch.float64) - self.mean
            p = c @ self.axes.T
            coords[start:start + _ROWS] = p
            if self.has_residual:
                r2[start:start + _ROWS] = (c - p @ self.axes).pow(2).sum(1)
        return coords, r2

    def lift(self, coords: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Latents [n, N] at subspace coordinates `coords` [n, d], plus a draw from the residual Gaussian."""
        z = self.mean + coords @ self.axes
        if self.residual_variance.numel():
            eps = torch.randn(coords.shape[0], self.residual_variance.shape[0], generator=generator,
                              dtype=torch.float64)
            z = z + (eps * self.residual_variance.sqrt()) @ self.residual_axes
        return z


def chi2_normal_score(x: torch.Tensor, median: float, dof: float) -> torch.Tensor:
    """Approximate standard-normal score of x ~ g chi2_dof whose median is `median` (Wilson-Hilferty:
    (chi2_nu / nu)^(1/3) is close to N(1 - 2/(9 nu), 2/(9 nu)))."""
    v = 2.0 / (9.0 * dof)
    unit = x * (float(chi2.median(dof)) / (median * dof))  # x as chi2_nu / nu
    return (unit.clamp_min(0).pow(1.0 / 3.0) - (1.0 - v)) / math.sqrt(v)


def moment_dof(x: torch.Tensor) -> float:
    """Degrees of freedom of the scaled chi-square g chi2_nu with the mean and variance of x (Satterthwaite),
    at least 1 (below that the cube-root normal approximation breaks down)."""
    var = float(x.var())
    return max(1.0, 2.0 * float(x.mean()) ** 2 / var) if var > 0 else 1.0


class SubspaceRegion(Region):
    """Base of regions scored by a model in the principal subspace plus the residual norm.

    Subclasses need `Options` with `variance` and `max_dims`, and implement `_fit_subspace`,
    `_subspace_part` (a non-negative score, 0 at the model's most likely point), `_subspace_model`
    (its median and degrees of freedom under the model) and `_sample_coords`.
    """

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        n, dim = train_latents.shape
        if stats.latent_dim != dim:
            raise AebenchError(f"Region '{self.name}': statistics have N={stats.latent_dim} but the latents have "
                               f"N={dim}; recompute the statistics with `aebench stats`.")
        self.subspace = PrincipalSubspace.from_stats(stats, n, self.options.variance, self.options.max_dims, self.name)
        coords, _ = self.subspace.project(train_latents)
        self._fit_subspace(coords)
        median, dof = self._subspace_model()
        self.dofs = (dof, self.subspace.residual_dof)
        self.model_scales = (median, self.subspace.residual_median())
        self.scales = self.model_scales

    @property
    def dims(self) -> int:
        """Dimension of the principal subspace."""
        return self.subspace.dims

    @property
    def has_residual(self) -> bool:
        return self.subspace.has_residual

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subspace part (the model's score) and squared residual norm of each point [n] (float64)."""
        coords, r2 = self.subspace.project(z)
        return self._subspace_part(coords), r2

    def part_scores(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal scores [n] of the subspace part and of the residual part (-inf without a residual)."""
        inner, r2 = self.parts(z)
        sub = chi2_normal_score(inner, self.scales[0], self.dofs[0])
        if not self.has_residual:
            return sub, torch.full_like(sub, -math.inf)
        return sub, chi2_normal_score(r2, self.scales[1], self.dofs[1])

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        return torch.maximum(*self.part_scores(z))

    def calibrate(self, heldout_latents: torch.Tensor, target: float = 0.95) -> float:
        """Scale each part by its held-out median, then set the threshold as every region does."""
        self.scales = self.model_scales
        self.score(heldout_latents)  # checks fit state and shape with the shared messages
        z = heldout_latents.detach().to("cpu", torch.float64)
        if not torch.isfinite(z).all():
            raise AebenchError(f"Region '{self.name}': held-out latents contain NaN or Inf; re-encode the held-out set.")
        inner, r2 = self.parts(z)
        floor_inner, floor_r = (s * 1e-12 for s in self.model_scales)
        self.scales = (max(float(inner.median()), floor_inner),
                       max(float(r2.median()), floor_r) if self.has_residual else self.model_scales[1])
        return super().calibrate(heldout_latents, target)

    def sample_model(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws from the fitted model: subspace coordinates from the region's model, plus the residual Gaussian."""
        if not self._fitted:
            raise NotFittedError(f"Region '{self.name}' was used before fit(); call fit(train_latents, stats) first.")
        return self.subspace.lift(self._sample_coords(n, generator), generator)

    # for subclasses
    def _fit_subspace(self, coords: torch.Tensor) -> None:
        raise NotImplementedError

    def _subspace_part(self, coords: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sample_coords(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _subspace_model(self) -> tuple[float, float]:
        """Median and (effective) chi-square degrees of freedom of the subspace part under the fitted model."""
        raise NotImplementedError
