"""`gmm`: a Gaussian mixture fitted to the training latents (ex-post density estimation).

Ghosh et al. 2020 found this the strongest simple sampler for a deterministic AE. Fitting and the
collapse check live in aebench.maths.gaussian_mixture; sampling uses only the given torch generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.maths.gaussian_mixture import COLLAPSE_MARGIN_PER_DIM, MAX_FIT_POINTS, fit_mixture
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class GmmOptions:
    k: int = option(10, "number of mixture components", min=1)
    covariance: Literal["full", "diag", "tied", "spherical"] = option(
        "full", "covariance type of each component (sklearn's)")
    reg: float = option(1e-3, "added to covariance diagonals, relative to the latents' mean variance", min=0)
    fit_seed: int = option(0, "seed of the EM initialisation and the validation split", min=0, max=2**32 - 1)
    max_iter: int = option(200, "maximum EM iterations", min=1)
    validation: float = option(
        0.2, "share of latents held out to detect a collapsed fit (0 = no check)", min=0, max=0.9)
    on_collapse: Literal["fallback", "error"] = option(
        "fallback", "collapsed fit: halve k down to a single shrunk Gaussian, or stop with an error")
    collapse_margin: float = option(
        COLLAPSE_MARGIN_PER_DIM, "held-out nats per dimension a mixture may trail a single Gaussian", min=0)
    max_points: int | None = option(
        MAX_FIT_POINTS, "EM fits a random subset of at most this many latents (bounds the fit's time; "
        "None = all)", min=2)


class GmmSampler(Sampler):
    name = "gmm"
    description = "Gaussian mixture fitted to the training latents (ex-post density estimation, Ghosh et al. 2020)."
    Options = GmmOptions

    def check_space(self, latent_dim: int, n_train: int) -> None:
        if self.options.k > n_train:
            raise OptionError(f"{self.name}: k={self.options.k} mixture components exceed the {n_train} training "
                              f"latents; use k <= {n_train} (--set {self.name}.k=...).")

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        opts = self.options
        self.check_space(train_latents.shape[1], train_latents.shape[0])
        self.mixture = fit_mixture(train_latents, opts.k, seed=opts.fit_seed, reg=opts.reg, covariance=opts.covariance,
                                   max_iter=opts.max_iter, validation=opts.validation, on_collapse=opts.on_collapse,
                                   collapse_margin=opts.collapse_margin, max_points=opts.max_points)
        self.fit_info = dict(self.mixture.info)

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        latents, _component = self.mixture.sample(n, generator)
        return latents


@hookimpl
def register_samplers(register):
    register(GmmSampler)
