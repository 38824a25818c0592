"""`correlated`: one multivariate normal with the training latents' mean and full covariance.

Unlike `gaussian` it keeps correlations between components. The raw covariance of AE latents is
often nearly singular (condition number 2e6 on ORL at N=256), so it is Ledoit-Wolf shrunk when
ill-conditioned (see aebench.covariance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.covariance import DEFAULT_CONDITION_LIMIT, covariance_factor, estimate_covariance
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class CorrelatedOptions:
    shrinkage: Literal["auto", "ledoit_wolf", "none"] = option(
        "auto", "auto: Ledoit-Wolf when the covariance is ill-conditioned or n <= N; ledoit_wolf: always; none: never")
    condition_limit: float = option(DEFAULT_CONDITION_LIMIT, "condition number above which 'auto' shrinks", min=1)


class CorrelatedSampler(Sampler):
    name = "correlated"
    description = "Multivariate normal with the training mean and full (shrunk if ill-conditioned) covariance."
    Options = CorrelatedOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.estimate = estimate_covariance(train_latents, self.options.shrinkage,
                                            condition_limit=self.options.condition_limit)
        self.factor = covariance_factor(self.estimate.covariance)
        self.fit_info = self.estimate.to_dict()

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.estimate.mean + noise @ self.factor.T


@hookimpl
def register_samplers(register):
    register(CorrelatedSampler)
