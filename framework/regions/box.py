"""The `box` region: per-component value intervals, the source post's "stay inside each component's range".

Each component j gets an interval around its training median, with lower and upper half-widths from
training quantiles (0.01 and 0.99 by default), so skewed components keep a skewed interval. A point's
score is its largest half-width-normalised deviation over components; calibration then scales the
whole box so that the target share of held-out latents falls inside.

The model a box embodies is independent components: `sample_model` draws each component from that
component's own training values, independently of the others (the product of the empirical marginals).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.errors import AebenchError, NotFittedError, OptionError
from aebench.options import option
from aebench.region import Region
from aebench.stats import LatentStats


def training_quantile(train: torch.Tensor, stats: LatentStats, level: float) -> torch.Tensor:
    """Per-component quantile at `level`: from the stored statistics when present, else from `train`."""
    levels = stats.quantile_levels.to(torch.float64)
    hit = torch.nonzero((levels - level).abs() < 1e-9).flatten()
    if hit.numel():
        return stats.quantiles[int(hit[0])].to(torch.float64)
    return torch.quantile(train, level, dim=0)


class BoxRegion(Region):
    """Axis-aligned box around the per-component medians, with quantile-based half-widths."""

    name = "box"
    description = "per-component value intervals from training quantiles (the source post's ranges), scaled to the target"

    @dataclass(frozen=True)
    class Options:
        lower: float = option(0.01, "training quantile level that sets each component's lower half-width", min=0, max=0.5)
        upper: float = option(0.99, "training quantile level that sets each component's upper half-width", min=0.5, max=1)

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        if stats.latent_dim != train_latents.shape[1]:
            raise AebenchError(f"Region 'box': statistics have N={stats.latent_dim} but the latents have "
                               f"N={train_latents.shape[1]}; recompute the statistics with `aebench stats`.")
        if not self.options.lower < 0.5 < self.options.upper:
            raise OptionError("box: need lower < 0.5 < upper (quantile levels around the median).")
        self.train = train_latents
        self.median = training_quantile(train_latents, stats, 0.5)
        lo = self.median - training_quantile(train_latents, stats, self.options.lower)
        hi = training_quantile(train_latents, stats, self.options.upper) - self.median
        # a constant component would give a zero width (0/0); floor it far below any real spread
        floor = 1e-12 * max(1.0, float(torch.cat([lo, hi]).abs().max()))
        self.lower_width = lo.clamp_min(floor)
        self.upper_width = hi.clamp_min(floor)

    def _score(self, z: torch.Tensor) -> torch.Tensor:
        dev = z - self.median
        width = torch.where(dev >= 0, self.upper_width, self.lower_width)
        return (dev.abs() / width).amax(dim=1)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper corners [N] of the calibrated box (of the unscaled one before calibration)."""
        scale = 1.0 if self.threshold is None else self.threshold
        return self.median - scale * self.lower_width, self.median + scale * self.upper_width

    def sample_model(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Independent per-component marginals: component j of each point is the j-th component of a
        training latent chosen afresh (uniformly) for every component."""
        if not self._fitted:
            raise NotFittedError("Region 'box' was used before fit(); call fit(train_latents, stats) first.")
        rows = torch.randint(self.train.shape[0], (n, self.train.shape[1]), generator=generator)
        return torch.gather(self.train, 0, rows)


@hookimpl
def register_regions(register):
    register(BoxRegion)
