"""`kde`: a Gaussian kernel density on the training latents; sampling = a random training latent plus
kernel noise.

Space (`space`):
- `principal` (default): the kernel is N(0, h^2 Lambda) in the principal subspace carrying
  `variance` of the total variance (whitened coordinates get an isotropic kernel of width h); the
  chosen training latent keeps its own residual off the subspace. Kernel noise in the near-empty
  directions of few latents in high dimension would only add noise where real latents have none.
- `full`: an isotropic kernel N(0, h^2 s^2 I) in the whole latent space, s^2 the mean variance per
  component.

Bandwidth (`bandwidth`, in whitened units; default: chosen): the h on a log grid around Scott's rule
n^(-1/(d+4)), refined between the best grid point's neighbours, that maximises the held-out
log-likelihood. The sampler only sees training latents, so
the likelihood is cross-validated within them: k-fold (`folds`, fold assignment from `fit_seed`),
each fold's points scored under the kernel density of all other training latents. On large sets at
most `cv_points` points in total are scored (a seeded subset spread over the folds), still against all
other training latents. `fit_info` records the chosen h, the grid, the held-out log-likelihood per
point (in the whitened coordinates) at the best h and at Scott's, and whether the best h sits at the edge of the grid.

Draws from a KDE have the training covariance inflated by (1 + h^2) in the smoothed directions; with few
latents in many dimensions the likelihood-optimal h is large (docs/measurements.md, "kde").
`shrink=true` rescales each draw about the mean by 1 / sqrt(1 + h^2) in those directions (Silverman's
variance-corrected smoothed bootstrap), keeping the training covariance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.maths.principal import fit_principal
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats

_LOG_2PI = math.log(2 * math.pi)
_ROWS = 256  # held-out points per block when scoring


@dataclass(frozen=True)
class KdeOptions:
    space: Literal["principal", "full"] = option(
        "principal", "kernel in the whitened principal subspace (residuals kept), or isotropic in the full space")
    bandwidth: float | None = option(None, "kernel width h in whitened units; default: chosen by held-out likelihood",
                                     min=0, min_exclusive=True)
    grid: int = option(17, "bandwidths tried, log-spaced from 0.03 to 3 times Scott's rule", min=2)
    folds: int = option(5, "folds of the cross-validated likelihood", min=2)
    cv_points: int = option(1000, "at most this many training latents are scored in the cross-validation", min=10)
    shrink: bool = option(False, "rescale draws about the mean by 1/sqrt(1 + h^2) to keep the training covariance")
    variance: float = option(0.99, "share of the variance the principal subspace carries (space=principal)",
                             min=0, max=1, min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    fit_seed: int = option(0, "seed of the folds", min=0, max=2**32 - 1)


class KdeSampler(Sampler):
    name = "kde"
    description = "Gaussian kernel density on the training latents, bandwidth by cross-validated likelihood."
    Options = KdeOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        o = self.options
        n = train_latents.shape[0]
        if n < 2 * o.folds and o.bandwidth is None:
            raise OptionError(f"{self.name}: {n} training latents are too few for {o.folds}-fold cross-validation; "
                              f"give a bandwidth or lower folds.")
        self.train = train_latents
        self.mean = train_latents.mean(0)
        if o.space == "principal":
            self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims, residual="none")
            coords, _ = self.subspace.project(train_latents)
            self.points = coords / self.subspace.variance.sqrt()  # whitened
            self.kernel_scale = self.subspace.variance.sqrt()
        else:
            info = {"latent_dim": train_latents.shape[1]}
            mean_var = float(train_latents.var(0).mean())
            if not mean_var > 0:
                raise OptionError(f"{self.name}: the training latents do not vary; nothing to smooth.")
            self.subspace = None
            self.points = (train_latents - train_latents.mean(0)) / math.sqrt(mean_var)
            self.kernel_scale = torch.full((train_latents.shape[1],), math.sqrt(mean_var), dtype=torch.float64)
        d = self.points.shape[1]
        scott = n ** (-1.0 / (d + 4))
        info.update(space=o.space, scott_bandwidth=scott)
        if o.bandwidth is not None:
            self.bandwidth = float(o.bandwidth)
            info.update(bandwidth=self.bandwidth, bandwidth_from="option")
        else:
            grid = scott * torch.logspace(math.log10(0.03), math.log10(3.0), o.grid, dtype=torch.float64)
            loglik = cross_validated_loglik(self.points, grid, folds=o.folds, max_points=o.cv_points, seed=o.fit_seed)
            best = int(torch.argmax(loglik))
            edge = best in (0, len(grid) - 1)
            # the likelihood peaks sharply in many dimensions: refine between the best point's neighbours
            lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
            fine = torch.exp(torch.linspace(math.log(float(lo)), math.log(float(hi)), 9, dtype=torch.float64))
            grid = torch.cat([grid, fine])
            loglik = torch.cat([loglik, cross_validated_loglik(self.points, fine, folds=o.folds, max_points=o.cv_points,
                                                               seed=o.fit_seed)])
            best = int(torch.argmax(loglik))
            at_scott = cross_validated_loglik(self.points, torch.tensor([scott], dtype=torch.float64), folds=o.folds,
                                              max_points=o.cv_points, seed=o.fit_seed)
            self.bandwidth = float(grid[best])
            info.update(bandwidth=self.bandwidth, bandwidth_from="cross_validated_loglik", folds=o.folds,
                        cv_points=min(n, o.cv_points), heldout_loglik_whitened=float(loglik[best]),
                        heldout_loglik_whitened_scott=float(at_scott[0]), grid_min=float(grid[0]),
                        grid_max=float(grid[o.grid - 1]), at_grid_edge=edge)
        self.fit_info = info

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(self.train.shape[0], (n,), generator=generator)
        noise = torch.randn(n, self.points.shape[1], generator=generator, dtype=torch.float64)
        noise = noise * self.bandwidth * self.kernel_scale
        if self.subspace is not None:
            noise = noise @ self.subspace.axes
        z = self.train[idx] + noise
        if not self.options.shrink:
            return z
        factor = 1.0 / math.sqrt(1.0 + self.bandwidth ** 2)
        centred = z - self.mean
        if self.subspace is None:
            return self.mean + factor * centred
        inside = (centred @ self.subspace.axes.T) @ self.subspace.axes  # the smoothed part
        return self.mean + centred - (1.0 - factor) * inside


def cross_validated_loglik(points: torch.Tensor, bandwidths: torch.Tensor, *, folds: int, max_points: int,
                           seed: int) -> torch.Tensor:
    """Mean held-out log-likelihood per point [len(bandwidths)] of an isotropic Gaussian KDE on `points`
    [n, d]: k-fold, each scored point against the kernels of the points outside its fold."""
    n, d = points.shape
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    scored = order[:min(n, max_points)]
    fold_of = torch.empty(n, dtype=torch.int64)
    fold_of[order] = torch.arange(n) % folds
    sq = points.pow(2).sum(1)
    h2 = bandwidths.pow(2)
    norm = 0.5 * d * (_LOG_2PI + torch.log(h2))  # [b]
    total = torch.zeros(len(bandwidths), dtype=torch.float64)
    for start in range(0, len(scored), _ROWS):
        rows = scored[start:start + _ROWS]
        dist2 = (sq[rows, None] + sq[None, :] - 2 * points[rows] @ points.T).clamp_min(0)  # [r, n]
        same = fold_of[rows, None] == fold_of[None, :]
        dist2 = dist2.masked_fill(same, math.inf)
        centres = (~same).sum(1).to(torch.float64)  # [r]
        log_centres = torch.log(centres)
        for b in range(len(bandwidths)):  # log mean_j N(x; p_j, h^2 I), one bandwidth at a time to bound memory
            logk = torch.logsumexp(-dist2 / (2 * h2[b]), dim=1) - log_centres
            total[b] += float((logk - norm[b]).sum())
    return total / len(scored)


@hookimpl
def register_samplers(register):
    register(KdeSampler)
