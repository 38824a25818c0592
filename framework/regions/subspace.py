"""Regions that model latents in their dominant principal subspace plus a residual-norm test.

Few latents in high dimension give a covariance whose smallest eigenvalues are mostly estimation
noise, and a model fitted in all N directions then rejects its own samples (docs/measurements.md,
"Principal subspace plus residual"). So these regions split a point into

- its coordinates in the principal subspace carrying `variance` of the total variance (at most
  n_train/2 dimensions, where eigenvalues are estimated well), scored by the region's own model;
- the squared norm `r2` of the remainder, modelled as the zero-mean Gaussian of the remaining
  principal directions (its median via Satterthwaite's chi-square approximation).

Both parts are modelled as scaled chi-squares g * chi2_nu: nu comes from the fitted model (the
subspace dimension, Satterthwaite's for the residual, moment-matched for a mixture), the scale g from
the part's median, first under the model and, once `calibrate` runs, on the held-out latents (so
out-of-sample inflation of either part is absorbed alike). Each part then becomes an approximately
standard normal score by the Wilson-Hilferty cube-root transform, and the region's score is the
larger of the two: dividing by medians alone is not enough, because a part with few degrees of freedom
has a much heavier tail relative to its median and would set the threshold alone. A point far outside in
the noisy directions is still caught by the residual part.
"""

from __future__ import annotations

import math

import torch

from aebench.errors import AebenchError, NotFittedError
from aebench.maths.chi_square import chi2_normal_score
from aebench.maths.principal import PrincipalSubspace
from aebench.region import Region
from aebench.stats import LatentStats


def subspace_of(stats: LatentStats, n_train: int, share: float, max_dims: int | None, region: str) -> PrincipalSubspace:
    """The principal subspace of the training latents' statistics carrying `share` of their variance."""
    if not float(stats.pca_variance.to(torch.float64).clamp_min(0).sum()) > 0:
        raise AebenchError(f"Region '{region}': the training latents have zero variance; retrain the model.")
    return PrincipalSubspace.from_spectrum(stats.mean, stats.pca_axes, stats.pca_variance, n_train, share, max_dims)


class SubspaceRegion(Region):
    """Base of regions scored by a model in the principal subspace plus the residual norm.

    Subclasses need `Options` with `variance` and `max_dims`, and implement `_fit_subspace`,
    `_subspace_part` (a non-negative score, 0 at the model's most likely point), `_subspace_model`
    (its median and degrees of freedom under the model) and `_sample_coords`.
    """

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        n, dim = train_latents.shape
        if stats.latent_dim != dim:
            raise AebenchError(f"Region '{self.name}': statistics have N={stats.latent_dim} but the latents have "
                               f"N={dim}; recompute the statistics with `aebench stats`.")
        self.subspace = subspace_of(stats, n, self.options.variance, self.options.max_dims, self.name)
        coords, _ = self.subspace.project(train_latents)
        self._fit_subspace(coords)
        median, dof = self._subspace_model()
        self.dofs = (dof, self.subspace.residual_dof)
        self.model_scales = (median, self.subspace.residual_median())
        self.scales = self.model_scales

    @property
    def dims(self) -> int:
        """Dimension of the principal subspace."""
        return self.subspace.dims

    @property
    def has_residual(self) -> bool:
        return self.subspace.has_residual

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subspace part (the model's score) and squared residual norm of each point [n] (float64)."""
        coords, r2 = self.subspace.project(z)
        return self._subspace_part(coords), r2

    def part_scores(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal scores [n] of the subspace part and of the residual part (-inf without a residual)."""
        inner, r2 = self.parts(z)
        sub = chi2_normal_score(inner, self.scales[0], self.dofs[0])
        if not self.has_residual:
            return sub, torch.full_like(sub, -math.inf)
        return sub, chi2_normal_score(r2, self.scales[1], self.dofs[1])

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        return torch.maximum(*self.part_scores(z))

    def calibrate(self, heldout_latents: torch.Tensor, target: float = 0.95) -> float:
        """Scale each part by its held-out median, then set the threshold as every region does."""
        self.scales = self.model_scales
        self.score(heldout_latents)  # checks fit state and shape with the shared messages
        z = heldout_latents.detach().to("cpu", torch.float64)
        if not torch.isfinite(z).all():
            raise AebenchError(f"Region '{self.name}': held-out latents contain NaN or Inf; re-encode the held-out set.")
        inner, r2 = self.parts(z)
        floor_inner, floor_r = (s * 1e-12 for s in self.model_scales)
        self.scales = (max(float(inner.median()), floor_inner),
                       max(float(r2.median()), floor_r) if self.has_residual else self.model_scales[1])
        return super().calibrate(heldout_latents, target)

    def sample_model(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws from the fitted model: subspace coordinates from the region's model, plus the residual Gaussian."""
        if not self._fitted:
            raise NotFittedError(f"Region '{self.name}' was used before fit(); call fit(train_latents, stats) first.")
        return self.subspace.lift(self._sample_coords(n, generator), generator)

    # for subclasses
    def _fit_subspace(self, coords: torch.Tensor) -> None:
        raise NotImplementedError

    def _subspace_part(self, coords: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sample_coords(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _subspace_model(self) -> tuple[float, float]:
        """Median and (effective) chi-square degrees of freedom of the subspace part under the fitted model."""
        raise NotImplementedError
