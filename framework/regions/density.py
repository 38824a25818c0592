"""The `density` region: a level set of a Gaussian mixture fitted to the training latents (ex-post
density estimation, Ghosh et al. 2020), fitted in the principal subspace plus a residual-norm test.

Fitted in all N directions, the mixture's variance-scaled regulariser inflated the near-empty
directions, so its own samples sat far off the data's subspace and were all rejected (0% at N=256,
320 latents on a rank-30 subspace). So (see `aebench.regions.subspace`) the mixture lives in the
principal subspace that carries `variance` of the total variance, where no direction is near-empty,
and the residual off the subspace is tested by its norm. (The coordinates are not whitened: k-means
initialisation on whitened coordinates missed two clusters 12 standard deviations apart.)

The subspace part is 2 (log p_max - log p(z)), where p_max = sum_j w_j N_j(mu_j) bounds the mixture
density from above: non-negative, and for one component exactly the squared Mahalanobis distance. The mixture comes from
`aebench.maths.gaussian_mixture.fit_mixture`, which guards against EM
collapse by falling back to fewer components (see `mixture.info`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.maths.chi_square import moment_dof
from aebench.maths.gaussian_mixture import MAX_FIT_POINTS, FittedMixture, fit_mixture
from aebench.options import option
from aebench.regions.subspace import SubspaceRegion

_MODEL_DRAWS = 4000  # mixture draws that set the subspace part's model median and degrees of freedom
_ROWS = 16384  # rows per block when scoring, to bound memory


class DensityRegion(SubspaceRegion):
    """Points whose Gaussian-mixture log-density (in the principal subspace) and residual norm pass a calibrated level."""

    name = "density"
    description = "level set of a Gaussian mixture fitted in the principal subspace, plus a residual-norm test"

    @dataclass(frozen=True)
    class Options:
        k: int = option(10, "mixture components (fewer if EM collapses; see the fit's info)", min=1)
        covariance: Literal["full", "diag", "tied", "spherical"] = option("full", "covariance type of each component")
        reg: float = option(1e-3, "added to covariance diagonals, in units of the subspace coordinates' mean variance",
                            min=0)
        seed: int = option(0, "EM initialisation seed", min=0, max=2**32 - 1)
        variance: float = option(0.99, "share of total variance the mixture's principal subspace must carry",
                                 min=0, max=1, min_exclusive=True)
        max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
        max_points: int | None = option(MAX_FIT_POINTS, "EM fits a random subset of at most this many latents "
                                        "(bounds the fit's time; None = all)", min=2)

    def _fit_subspace(self, coords: torch.Tensor) -> None:
        o = self.options
        self.mixture: FittedMixture = fit_mixture(coords, o.k, seed=o.seed, reg=o.reg,
                                                  covariance=o.covariance, max_points=o.max_points)
        _, log_det = torch.linalg.slogdet(self.mixture.covariances)
        peaks = torch.log(self.mixture.weights) - 0.5 * log_det - 0.5 * self.dims * math.log(2 * math.pi)
        self.log_peak = float(torch.logsumexp(peaks, 0))

    def _subspace_part(self, coords: torch.Tensor) -> torch.Tensor:
        out = torch.empty(coords.shape[0], dtype=torch.float64)
        for start in range(0, coords.shape[0], _ROWS):
            log_p = self.mixture.log_prob(coords[start:start + _ROWS])
            out[start:start + _ROWS] = 2 * (self.log_peak - log_p)
        return out.clamp_min(0)  # the bound holds exactly; clamp only rounding

    def _subspace_model(self) -> tuple[float, float]:
        """From mixture draws: the part's median, and its dof by moment matching (about d for k=1)."""
        draws = self.mixture.sample(_MODEL_DRAWS, torch.Generator().manual_seed(self.options.seed))[0]
        part = self._subspace_part(draws)
        return float(part.median()), moment_dof(part)

    def _sample_coords(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws from the fitted mixture, in subspace coordinates."""
        return self.mixture.sample(n, generator)[0]


@hookimpl
def register_regions(register):
    register(DensityRegion)
