"""Regions: acceptance tests in latent space, fitted on training latents and calibrated on held-out
latents so that held-out real data is accepted at a target rate. That calibration gives every
region-hit rate a meaning and makes regions comparable.

A region only defines a nonconformity `score` (larger = further outside); the base class turns it
into a threshold and an acceptance test.
"""

from __future__ import annotations

import math

import torch

from aebench.errors import AebenchError, NotFittedError
from aebench.plugin_base import Plugin
from aebench.stats import LatentStats


class Region(Plugin):
    """Base of region plugins: implement `_fit` and `_score`; optionally `_sample_model`."""

    def __init__(self, options=None, **values):
        super().__init__(options, **values)
        self.latent_dim: int | None = None
        self.threshold: float | None = None
        self.target: float | None = None
        self._fitted = False

    def fit(self, train_latents: torch.Tensor, stats: LatentStats) -> "Region":
        if train_latents.ndim != 2 or not torch.isfinite(train_latents).all():
            raise AebenchError(f"Region '{self.name}': training latents must be a finite [n, N] tensor.")
        self.latent_dim = int(train_latents.shape[1])
        self._fit(train_latents.detach().to("cpu", torch.float64), stats)
        self._fitted = True
        self.threshold = None
        return self

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """Nonconformity of each point [n] (float64): larger means further outside the region."""
        if not self._fitted:
            raise NotFittedError(f"Region '{self.name}' was used before fit(); call fit(train_latents, stats) first.")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise AebenchError(
                f"Region '{self.name}' expects latents [n, {self.latent_dim}], got {tuple(z.shape)}; "
                f"the sampler and the model disagree on the latent dimension."
            )
        out = self._score(z.detach().to("cpu", torch.float64))
        # NaN latents can never be inside a region
        return torch.where(torch.isnan(out), torch.full_like(out, math.inf), out)

    def calibrate(self, heldout_latents: torch.Tensor, target: float = 0.95) -> float:
        """Set the threshold so that a share `target` of the held-out latents is accepted."""
        if not 0 < target <= 1:
            raise AebenchError(f"Calibration target must be in (0, 1], got {target}.")
        if heldout_latents.shape[0] < 2:
            raise AebenchError(f"Region '{self.name}' needs at least 2 held-out latents to calibrate.")
        if not torch.isfinite(heldout_latents).all():
            raise AebenchError(f"Region '{self.name}': held-out latents contain NaN or Inf; re-encode the held-out set.")
        scores = torch.sort(self.score(heldout_latents)).values
        k = min(len(scores) - 1, max(0, math.ceil(target * len(scores)) - 1))
        self.threshold = float(scores[k])
        self.target = target
        return self.threshold

    def contains(self, z: torch.Tensor) -> torch.Tensor:
        """Boolean [n]: which points the calibrated region accepts."""
        if self.threshold is None:
            raise NotFittedError(f"Region '{self.name}' is not calibrated; call calibrate(heldout_latents) first.")
        # a NaN point is never inside, whatever the region's score makes of it
        return (self.score(z) <= self.threshold) & ~torch.isnan(z.detach().to("cpu")).any(dim=1)

    def sample_model(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """Points drawn from the region's own fitted model (self-consistency check), or None."""
        return None

    # for subclasses
    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        raise NotImplementedError

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def hit_rate_along_t(region: Region, latents: torch.Tensor, t: torch.Tensor,
                     bins: int = 10) -> list[tuple[float, float, int]]:
    """Hit rate of a calibrated region in equal-width bins of path position t: (t_centre, rate, count)
    for each non-empty bin. Bins span [0, 1], widened to any t outside it. For path samplers, whose
    hit rate usually falls off along the path; the runner stores and plots it."""
    if bins < 1:
        raise AebenchError(f"hit_rate_along_t needs at least one bin, got {bins}.")
    inside = region.contains(latents)
    t = t.detach().to("cpu", torch.float64).reshape(-1)
    if t.shape[0] != inside.shape[0]:
        raise AebenchError(f"Path positions t have {t.shape[0]} entries for {inside.shape[0]} points; "
                           f"the sampler must give one t per point.")
    finite = torch.isfinite(t)
    if not finite.any():
        return []
    lo = min(0.0, float(t[finite].min()))
    hi = max(1.0, float(t[finite].max()))
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    which = torch.bucketize(t[finite], edges[1:-1], right=True)
    hits = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, inside[finite].to(torch.float64))
    counts = torch.bincount(which, minlength=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    return [(float(centres[b]), float(hits[b] / counts[b]), int(counts[b])) for b in range(bins) if counts[b] > 0]
