"""`gaussian`: independent normal components, each with its own training mean and std.

Matches every per-component range but ignores correlations between components.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class GaussianOptions:
    scale: float = option(1.0, "multiplies every component's std (1 = the training spread)", min=0)


class GaussianSampler(Sampler):
    name = "gaussian"
    description = "Independent per-component normal with each component's own training mean and std."
    Options = GaussianOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.mean = stats.mean.to(torch.float64)
        self.std = stats.std.to(torch.float64) * self.options.scale

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.mean + noise * self.std


@hookimpl
def register_samplers(register):
    register(GaussianSampler)
