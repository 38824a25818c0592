"""`uniform`: every component drawn independently from one common interval [low, high].

The naive approach the source post shows to fail: with the default interval (the overall min..max of the
training latents) almost no point lands in the region the encoder fills.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class UniformOptions:
    low: float | None = option(None, "lower end of the interval; default: the smallest training latent component")
    high: float | None = option(None, "upper end of the interval; default: the largest training latent component")

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise OptionError(f"low ({self.low}) must be below high ({self.high}); swap or change them.")


class UniformSampler(Sampler):
    name = "uniform"
    description = "Independent components, each uniform on one common interval (default: overall min..max)."
    Options = UniformOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        opts = self.options
        self.low = float(train_latents.min()) if opts.low is None else opts.low
        self.high = float(train_latents.max()) if opts.high is None else opts.high
        if not self.low < self.high:
            raise OptionError(
                f"{self.name}: interval [{self.low:g}, {self.high:g}] is empty once filled from the data; "
                f"set both low and high."
            )

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, self.latent_dim, generator=generator, dtype=torch.float64)
        return self.low + (self.high - self.low) * u


@hookimpl
def register_samplers(register):
    register(UniformSampler)
