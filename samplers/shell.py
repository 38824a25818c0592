"""`shell`: directions uniform in the whitened principal subspace, radii from the training latents.

A Gaussian in d dimensions is a uniform direction times a chi_d radius, and in high dimension almost
all of its mass sits in a thin shell. This sampler keeps the direction uniform but takes the radius
from the data: the empirical Mahalanobis radii of the training latents (`radii=empirical`, drawn with
replacement), a chi_d distribution (`radii=chi`: exactly the Gaussian of `correlated`, the control),
or every point at the training latents' median radius (`radii=median`, a thin shell). Comparing them
tests whether the radius distribution, not the Gaussian density, is what matters.

The whitening, subspace and residual are those of `elliptic` and `correlated` (aebench.maths.principal):
the radius is measured in the principal subspace, the remainder drawn from the residual Gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from scipy.stats import chi

from aebench import hookimpl
from aebench.maths.principal import fit_principal
from aebench.maths.trimmed_core import mahalanobis2
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class ShellOptions:
    radii: Literal["empirical", "chi", "median"] = option(
        "empirical", "radius of each point: a training latent's Mahalanobis radius, a chi_d draw, or the median one")
    variance: float = option(0.99, "share of the variance the principal subspace carries", min=0, max=1,
                             min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    residual: Literal["cross_validated", "train", "none"] = option(
        "cross_validated", "spread off the subspace: measured out of fold, the training latents' own, or none")
    fit_seed: int = option(0, "seed of the folds that measure the out-of-fold residual", min=0, max=2**32 - 1)


class ShellSampler(Sampler):
    name = "shell"
    description = "Uniform directions in the whitened principal subspace with the training latents' Mahalanobis radii."
    Options = ShellOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        o = self.options
        self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims,
                                            residual=o.residual, seed=o.fit_seed)
        self.radii = mahalanobis2(self.subspace, train_latents).sqrt()
        d = self.subspace.dims
        info.update(radius_median=float(self.radii.median()), radius_mean=float(self.radii.mean()),
                    radius_std=float(self.radii.std()), chi_median=float(chi.median(d)),
                    chi_std=float(chi.std(d)))
        self.fit_info = {"radii": o.radii, **info}

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        d = self.subspace.dims
        direction = torch.randn(n, d, generator=generator, dtype=torch.float64)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-300)
        if self.options.radii == "empirical":
            radius = self.radii[torch.randint(len(self.radii), (n,), generator=generator)]
        elif self.options.radii == "chi":
            u = torch.rand(n, generator=generator, dtype=torch.float64)
            radius = torch.from_numpy(chi.ppf(u.numpy(), d)).to(torch.float64)
        else:
            radius = torch.full((n,), float(self.radii.median()), dtype=torch.float64)
        coords = direction * radius[:, None] * self.subspace.variance.sqrt()
        return self.subspace.lift(coords, generator)


@hookimpl
def register_samplers(register):
    register(ShellSampler)
