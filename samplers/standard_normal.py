"""`standard_normal`: N(0, I), the VAE-style prior often (wrongly) applied to plain AEs."""

from __future__ import annotations

import torch

from aebench import hookimpl
from aebench.sampler import Sampler


class StandardNormalSampler(Sampler):
    name = "standard_normal"
    description = "Standard normal N(0, I), the VAE prior; ignores the training latents entirely."

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)


@hookimpl
def register_samplers(register):
    register(StandardNormalSampler)
