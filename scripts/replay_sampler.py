"""A memorising sampler for checking `latent_copies`: training latents replayed with a little noise.

    aebench --plugin scripts/replay_sampler.py run --sampler replay --metrics latent_copies

Each sample is a training latent (drawn without replacement while there are enough, so that n samples
replay n distinct latents) plus Gaussian noise of `noise` times each component's training std. Written
from the public author API only (docs/plugins.md), as a third party would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import LatentStats, Sampler, hookimpl, option


@dataclass(frozen=True)
class ReplayOptions:
    noise: float = option(0.01, "noise std as a multiple of each component's training std (0.01 = 1%)", min=0)


class ReplaySampler(Sampler):
    name = "replay"
    description = "Training latents replayed with Gaussian noise of a small share of each component's std."
    Options = ReplayOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        self.train = train_latents
        self.noise_std = self.options.noise * stats.std.to(torch.float64)
        self.fit_info = {"n_train": int(train_latents.shape[0]), "noise": self.options.noise}

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        n_train = self.train.shape[0]
        rows = torch.cat([torch.randperm(n_train, generator=generator) for _ in range(-(-n // n_train))])[:n]
        noise = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.train[rows] + noise * self.noise_std


@hookimpl
def register_samplers(register):
    register(ReplaySampler)
