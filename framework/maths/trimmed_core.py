"""The trimmed core of a latent cloud: iteratively drop points beyond a Mahalanobis quantile and refit.

The source post's follow-up reports that the dense core of an AE's latent cloud passes normality tests once
outliers beyond about 3 sigma are trimmed, and estimates the covariance on that core only. Here the
Mahalanobis distance is measured in the principal subspace (aebench.maths.principal; the full-space one is
dominated by noise directions when latents are few), the subspace dimension is fixed from all points,
and the fit is repeated on the points inside the `level` quantile of chi2_d until the kept set stops
changing. Every point is re-tested each round, so a point dropped early can come back.

The covariance of a Gaussian truncated to its `level` ellipsoid is c * Sigma with
c = P(chi2_{d+2} <= q) / P(chi2_d <= q) (q the chi2_d quantile); `correct=True` divides the core's
subspace variances by c so that the core estimates the untruncated Gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from scipy.stats import chi2

from aebench.errors import OptionError
from aebench.maths.covariance import as_latent_matrix
from aebench.maths.principal import PrincipalSubspace, ResidualMode, fit_principal


@dataclass
class TrimmedCore:
    """Which latents form the core, the model fitted on them, and how the trimming went."""

    keep: torch.Tensor  # [n] bool
    model: PrincipalSubspace
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return int(self.keep.sum())


def mahalanobis2(model: PrincipalSubspace, latents: torch.Tensor) -> torch.Tensor:
    """Squared Mahalanobis distance [n] of latents inside the model's principal subspace."""
    coords, _ = model.project(latents)
    return (coords.pow(2) / model.variance).sum(1)


def trimmed_core(latents: torch.Tensor, *, level: float = 0.997, share: float = 0.99, max_dims: int | None = None,
                 residual: ResidualMode = "cross_validated", seed: int = 0, max_iter: int = 50,
                 correct: bool = True) -> TrimmedCore:
    """Trim `latents` [n, N] to the points within the chi2_d `level` quantile of the model fitted on them."""
    if not 0 < level < 1:
        raise OptionError(f"The trimming level must be in (0, 1), got {level}; 0.997 is about 3 sigma.")
    z = as_latent_matrix(latents, "training latents", min_rows=3)
    n = z.shape[0]
    model, _ = fit_principal(z, share=share, max_dims=max_dims, residual="train")
    d = model.dims
    q = float(chi2.ppf(level, d))
    keep = torch.ones(n, dtype=torch.bool)
    iterations, converged = 0, False
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported after the loop
        new_keep = mahalanobis2(model, z) <= q
        if int(new_keep.sum()) < d + 2:
            raise OptionError(f"Trimming at level {level} keeps only {int(new_keep.sum())} of {n} latents, too few for "
                              f"a {d}-dimensional covariance; raise the trimming level.")
        if torch.equal(new_keep, keep):
            converged = True
            break
        keep = new_keep
        model, _ = fit_principal(z[keep], dims=d, residual="train")
        if correct:
            model.variance = model.variance / consistency_factor(q, d)
    model, info = fit_principal(z[keep], dims=d, residual=residual, seed=seed)
    factor = consistency_factor(q, d) if correct and not torch.equal(keep, torch.ones_like(keep)) else 1.0
    model.variance = model.variance / factor
    info.update(core_kept=int(keep.sum()), core_total=n, core_share=float(keep.double().mean()), trim_level=level,
                trim_quantile=q, trim_iterations=iterations, trim_converged=converged, trim_correction=factor)
    return TrimmedCore(keep, model, info)


def consistency_factor(q: float, d: int) -> float:
    """Variance of N(0, 1)^d truncated to |x|^2 <= q, per direction: P(chi2_{d+2} <= q) / P(chi2_d <= q)."""
    return float(chi2.cdf(q, d + 2) / chi2.cdf(q, d))
