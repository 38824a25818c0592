"""`correlated`: one multivariate normal with the training latents' mean and covariance.

Unlike `gaussian` it keeps correlations between components. The raw covariance of AE latents is
often nearly singular (condition number 3e6 on ORL at N=256 with 320 latents). Shrinking it with
Ledoit-Wolf towards a scaled identity, as this sampler once did, gives every near-empty direction
the average variance: on ORL at N=256 every sample then carried a residual far larger than real
latents show there, and 0% of samples landed in the ellipsoid or density region (held-out latents:
95%). So by default (`covariance=subspace`) the Gaussian lives where the data varies: the full
covariance in the principal subspace carrying `variance` of the total variance (as the ellipsoid
region models it), plus the residual Gaussian off it with the spread real latents show there (see
aebench.maths.principal). `covariance=full` keeps the old estimator for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.maths.covariance import DEFAULT_CONDITION_LIMIT, covariance_factor, estimate_covariance
from aebench.maths.principal import fit_principal
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class CorrelatedOptions:
    covariance: Literal["subspace", "full"] = option(
        "subspace", "subspace: full covariance in the principal subspace plus the residual Gaussian off it; "
        "full: one N x N covariance (Ledoit-Wolf shrunk when ill-conditioned, see shrinkage)")
    variance: float = option(0.99, "share of the variance the principal subspace carries (covariance=subspace)",
                             min=0, max=1, min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    residual: Literal["cross_validated", "train", "none"] = option(
        "cross_validated", "spread off the subspace: measured out of fold (k-fold within the training latents), "
        "the training latents' own, or none")
    fit_seed: int = option(0, "seed of the folds that measure the out-of-fold residual", min=0, max=2**32 - 1)
    shrinkage: Literal["auto", "ledoit_wolf", "none"] = option(
        "auto", "covariance=full only. auto: Ledoit-Wolf when ill-conditioned or n <= N; ledoit_wolf: always; none: never")
    condition_limit: float = option(DEFAULT_CONDITION_LIMIT, "condition number above which 'auto' shrinks", min=1)


class CorrelatedSampler(Sampler):
    name = "correlated"
    description = "Multivariate normal with the training mean and covariance, in the principal subspace plus its residual."
    Options = CorrelatedOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        o = self.options
        if o.covariance == "full":
            self.subspace = None
            self.estimate = estimate_covariance(train_latents, o.shrinkage, condition_limit=o.condition_limit)
            self.factor = covariance_factor(self.estimate.covariance)
            self.fit_info = {"covariance": "full", **self.estimate.to_dict()}
            return
        self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims,
                                            residual=o.residual, seed=o.fit_seed)
        self.fit_info = {"covariance": "subspace", **info}

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.subspace is None:
            noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
            return self.estimate.mean + noise @ self.factor.T
        sub = self.subspace
        coords = torch.randn(n, sub.dims, generator=generator, dtype=torch.float64) * sub.variance.sqrt()
        return sub.lift(coords, generator)


@hookimpl
def register_samplers(register):
    register(CorrelatedSampler)
