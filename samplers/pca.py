"""`pca`: a Gaussian restricted to the top principal subspace of the training latents.

Keeps the directions that carry most of the variance and holds all others at the mean, so samples
stay on the (approximately) low-dimensional part of the latent space the encoder uses.
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
class PcaOptions:
    k: int = option(8, "number of principal directions kept", min=1)
    variance_fraction: float | None = option(
        None, "keep the fewest directions explaining at least this share of variance (overrides k)",
        min=0, max=1, min_exclusive=True)


class PcaSampler(Sampler):
    name = "pca"
    description = "Gaussian in the top-k principal subspace of the training latents; other directions at the mean."
    Options = PcaOptions

    def check_space(self, latent_dim: int, n_train: int) -> None:
        if self.options.variance_fraction is None and self.options.k > latent_dim:
            raise OptionError(f"{self.name}: k={self.options.k} exceeds this model's latent dimension N={latent_dim}; "
                              f"use k <= {latent_dim} (--set {self.name}.k={latent_dim}).")

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        dim = train_latents.shape[1]
        self.check_space(dim, train_latents.shape[0])
        variance = stats.pca_variance.to(torch.float64)
        if float(variance.sum()) <= 0:
            raise OptionError(f"{self.name}: the training latents do not vary, so there is no principal subspace.")
        if self.options.variance_fraction is not None:
            explained = torch.cumsum(variance, 0) / variance.sum()
            wanted = torch.tensor(self.options.variance_fraction, dtype=torch.float64)
            k = min(int(torch.searchsorted(explained, wanted)) + 1, dim)
        else:
            k = self.options.k
            if k > dim:
                raise OptionError(f"{self.name}: k={k} exceeds the latent dimension N={dim}; use k <= {dim}.")
        self.k = k
        self.mean = stats.mean.to(torch.float64)
        self.axes = stats.pca_axes.to(torch.float64)[:k]  # [k, N], orthonormal rows
        self.axis_std = variance[:k].sqrt()
        self.fit_info = {"k": k, "explained_variance": float(variance[:k].sum() / variance.sum())}

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        coords = torch.randn(n, self.k, generator=generator, dtype=torch.float64) * self.axis_std
        return self.mean + coords @ self.axes


@hookimpl
def register_samplers(register):
    register(PcaSampler)
