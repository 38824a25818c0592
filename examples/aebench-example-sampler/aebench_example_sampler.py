"""An example aebench sampler plugin: `jitter`, training latents plus Gaussian noise.

Each sample is a random training latent moved by noise scaled by every component's own std. It
probes how far off the encoded training points the decoder still produces faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class JitterOptions:
    noise: float = option(0.25, "noise std as a multiple of each component's training std", min=0)


class JitterSampler(Sampler):
    name = "jitter"
    description = "A random training latent plus Gaussian noise scaled by each component's std."
    Options = JitterOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.train = train_latents  # float64, CPU (the base class converted it)
        self.noise_std = self.options.noise * stats.std.to(torch.float64)

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # randomness only from `generator`, so a seed reproduces the samples on every device
        rows = torch.randint(self.train.shape[0], (n,), generator=generator)
        noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.train[rows] + noise * self.noise_std


@hookimpl
def register_samplers(register):
    register(JitterSampler)
