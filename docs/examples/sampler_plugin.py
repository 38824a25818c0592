"""A sampler plugin: `jitter`, a random training latent plus Gaussian noise scaled per component.

    aebench --plugin docs/examples/sampler_plugin.py run --sampler jitter --features fast --n 64
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import LatentStats, Sampler, hookimpl, option


@dataclass(frozen=True)
class JitterOptions:
    noise: float = option(0.25, "noise std as a multiple of each component's training std", min=0)


class JitterSampler(Sampler):
    name = "jitter"
    description = "A random training latent plus Gaussian noise scaled by each component's std."
    Options = JitterOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.train = train_latents  # float64 on the CPU: the base class converted it
        self.noise_std = self.options.noise * stats.std.to(torch.float64)
        # declared extras the runner reads: a fit summary recorded in the results, the plane of the scatter figure
        self.fit_info = {"n_train": int(train_latents.shape[0]), "noise": self.options.noise}
        self.plot_axes = (int(stats.dominant[0]), int(stats.dominant[1]))

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # randomness only from `generator`: a seed reproduces the samples on every device
        rows = torch.randint(self.train.shape[0], (n,), generator=generator)
        noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.train[rows] + noise * self.noise_std


@hookimpl
def register_samplers(register):
    register(JitterSampler)
