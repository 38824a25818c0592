"""The `ellipsoid` region: a Gaussian's Mahalanobis ball, made robust to near-singular covariances.

A full Mahalanobis distance fails on real latents: few latents in many dimensions leave the smallest
eigenvalues mostly estimation noise, and both the raw inverse and a Ledoit-Wolf shrunk one gave an
ellipsoid that disagreed wildly with the Gaussian it came from (docs/measurements.md). So the score
(see `aebench.regions.subspace`) has two parts: the squared Mahalanobis distance inside the principal
subspace that carries `variance` of the total variance, and the squared Euclidean norm of the residual
off that subspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.stats import chi2

from aebench import hookimpl
from aebench.options import option
from aebench.regions.subspace import SubspaceRegion


class EllipsoidRegion(SubspaceRegion):
    """Mahalanobis distance in the dominant principal subspace plus a residual-norm test."""

    name = "ellipsoid"
    description = "Gaussian ellipsoid: Mahalanobis distance in the principal subspace plus a residual-norm test"

    @dataclass(frozen=True)
    class Options:
        variance: float = option(0.99, "share of total variance the Mahalanobis subspace must carry",
                                 min=0, max=1, min_exclusive=True)
        max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)

    def _fit_subspace(self, coords: torch.Tensor) -> None:
        self.sub_variance = self.subspace.variance

    def _subspace_part(self, coords: torch.Tensor) -> torch.Tensor:
        return (coords.pow(2) / self.sub_variance).sum(1)

    def _subspace_model(self) -> tuple[float, float]:
        return float(chi2.median(self.dims)), float(self.dims)

    def _sample_coords(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The fitted Gaussian N(mean, cov) inside the subspace (the residual Gaussian completes it)."""
        eps = torch.randn(n, self.dims, generator=generator, dtype=torch.float64)
        return eps * self.sub_variance.sqrt()


@hookimpl
def register_regions(register):
    register(EllipsoidRegion)
