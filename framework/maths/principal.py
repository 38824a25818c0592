"""A Gaussian model of latents that lives where the data varies: the principal subspace plus a residual.

Few latents in high dimension give a covariance whose smallest eigenvalues are mostly estimation noise;
a sampler drawing from a shrunk full covariance inflates those near-empty directions, so its samples
carry residuals real latents never show (docs/measurements.md, "Principal subspace plus residual").
Like the `ellipsoid` region, samplers built on this model split a latent into

- coordinates in the principal subspace carrying `variance` of the total variance (at most n/2
  dimensions, where eigenvalues are estimated well), modelled by the sampler itself;
- the remainder off that subspace, drawn from the zero-mean Gaussian of the remaining principal
  directions, with the spread real latents show there: either the training latents' own
  (`residual="train"`) or, because training latents sit closer to a subspace fitted on them than new
  latents do, the spread measured out of fold (`"cross_validated"`: k-fold within the training
  latents, seeded; the residual variances are scaled so that their sum matches the mean squared
  out-of-fold residual), or none at all (`"none"`, points on the subspace).

`PrincipalSubspace` is the model; the `ellipsoid` and `density` regions (aebench.regions.subspace) use
the same class, so `project` and `lift` behave exactly as the regions' do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from scipy.stats import chi2

from aebench.errors import AebenchError, OptionError, did_you_mean
from aebench.maths.covariance import as_latent_matrix

ResidualMode = Literal["cross_validated", "train", "none"]
RESIDUAL_MODES: tuple[str, ...] = ("cross_validated", "train", "none")
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
    def from_spectrum(cls, mean: torch.Tensor, axes: torch.Tensor, variance: torch.Tensor, n: int, share: float,
                      max_dims: int | None) -> "PrincipalSubspace":
        """The smallest subspace carrying `share` of the variance, capped at `max_dims` (default n/2), from a
        mean [N], principal axes [N, N] (rows, by decreasing variance) and their variances [N]."""
        var = variance.to(torch.float64).clamp_min(0)
        d = subspace_dims(var, n, share, max_dims)
        axes = axes.to(torch.float64)
        return cls(mean.to(torch.float64), axes[:d], var[:d].clamp_min(float(var[0]) * 1e-12), axes[d:], var[d:])

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


def principal_axes(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean [N], principal axes [N, N] (rows, by decreasing variance) and variances [N] (unbiased, >= 0)."""
    z = as_latent_matrix(latents, "latents")
    mean = z.mean(0)
    centred = z - mean
    cov = centred.T @ centred / (z.shape[0] - 1)
    evals, evecs = torch.linalg.eigh((cov + cov.T) / 2)
    order = torch.argsort(evals, descending=True)
    return mean, evecs[:, order].T.contiguous(), evals[order].clamp_min(0)


def subspace_dims(variance: torch.Tensor, n: int, share: float, max_dims: int | None) -> int:
    """The fewest leading directions carrying `share` of the variance, capped at `max_dims` (default n/2):
    the regions' rule, so a sampler and the ellipsoid region agree on the subspace."""
    total = float(variance.sum())
    if not total > 0:
        raise AebenchError("The latents do not vary at all (zero covariance); check the encoder and the data.")
    cumulative = torch.cumsum(variance, 0) / total
    needed = int(torch.searchsorted(cumulative, torch.tensor([share], dtype=torch.float64))[0]) + 1
    return max(1, min(needed, max_dims or max(1, n // 2), variance.shape[0]))


def fit_principal(latents: torch.Tensor, *, share: float = 0.99, max_dims: int | None = None,
                  residual: ResidualMode = "cross_validated", folds: int = 5, seed: int = 0,
                  dims: int | None = None) -> tuple[PrincipalSubspace, dict[str, Any]]:
    """Fit the principal subspace of `latents` [n, N] and the residual Gaussian off it.

    Returns the model and a summary for `fit_info` (dimensions, variance share, residual scale).
    `dims` fixes the subspace dimension (otherwise chosen by `share` and `max_dims`).
    """
    if residual not in RESIDUAL_MODES:
        raise OptionError(f"Unknown residual mode {residual!r}.{did_you_mean(str(residual), RESIDUAL_MODES)} "
                          f"Use one of {', '.join(RESIDUAL_MODES)}.")
    if not 0 < share <= 1:
        raise OptionError(f"The principal subspace must carry a share of the variance in (0, 1], got {share}.")
    z = as_latent_matrix(latents, "training latents", min_rows=3)
    n, dim = z.shape
    mean, axes, var = principal_axes(z)
    d = dims if dims is not None else subspace_dims(var, n, share, max_dims)
    d = max(1, min(int(d), dim))
    top, rest = var[:d].clamp_min(float(var[0]) * 1e-12), var[d:].clone()
    info: dict[str, Any] = {"subspace_dims": d, "latent_dim": dim,
                            "subspace_variance_share": float(var[:d].sum() / var.sum()),
                            "residual": residual}
    scale = 1.0
    if residual == "none":
        rest = torch.zeros_like(rest)
    elif residual == "cross_validated" and rest.numel() and float(rest.sum()) > 0:
        oof = out_of_fold_residual(z, d, folds=folds, seed=seed)
        scale = oof / float(rest.sum())
        rest = rest * scale
        info["residual_out_of_fold_r2"] = oof
    info["residual_scale"] = scale
    info["residual_r2"] = float(rest.sum())
    return PrincipalSubspace(mean, axes[:d], top, axes[d:], rest), info


def out_of_fold_residual(latents: torch.Tensor, dims: int, *, folds: int = 5, seed: int = 0) -> float:
    """Mean squared norm of the residual off a `dims`-dimensional principal subspace, for latents that
    were not used to fit it (k-fold within `latents`, fold assignment from `seed`)."""
    n = latents.shape[0]
    folds = max(2, min(folds, n // 2))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    total, count = 0.0, 0
    for k in range(folds):
        test = order[k::folds]
        keep = torch.ones(n, dtype=torch.bool)
        keep[test] = False
        mean, axes, _ = principal_axes(latents[keep])
        c = latents[test] - mean
        p = c @ axes[:dims].T
        total += float((c - p @ axes[:dims]).pow(2).sum())
        count += int(test.numel())
    return total / count
