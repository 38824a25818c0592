"""Memorisation as a rankable number: how many more samples sit on top of a training latent than new
real data would.

`nn_distance_ratio` (aebench.metrics.latent) flags copies, but it cannot rank samplers: spreading
points away from the data raises it as much as copying lowers it. `latent_copies` is one-sided
instead. With tau the `quantile` (default 5%) of the held-out latents' distances to their nearest
training latent, a sample "sits on" a training latent when it is closer than tau. New real data does
so at the rate `quantile` by construction; the metric is the share beyond that, clipped at 0:

    latent_copies = max(0, P(d_nn(sample) < tau) - quantile)

0 for real held-out data, for good samplers and for samplers that spread (they are far from every
training latent), rising to 1 - quantile for a sampler that replays training latents. So it detects
memorisation without rewarding spread or collapse, and can sit beside the distribution metrics in the
verdict. Interval: percentile bootstrap over the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.errors import AebenchError
from aebench.maths.bootstrap import bootstrap_mean_ci
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide
from aebench.metrics.latent import _check_latents, heldout_training_distance, training_distance
from aebench.options import option


class LatentCopies(Metric):
    """Share of samples closer to a training latent than almost all new real data, beyond chance."""

    name = "latent_copies"
    description = ("share of samples closer to their nearest training latent than the given quantile of held-out "
                   "latents are, beyond the share expected of new real data (0 = no excess copies)")
    columns = (
        Column("latent_copies", "latent copies", False, group="latent", unit="rate", role="headline",
               detects=("memorisation",),
               description="share of samples that sit on a training latent (closer to it than 95% of held-out "
                           "latents are to theirs), beyond the 5% that new real data shows: 0 is like new data; "
                           "it rises as a sampler replays training latents, and neither spread nor collapse "
                           "lower it below 0.", margin="0.02"),
    )

    @dataclass(frozen=True)
    class Options:
        quantile: float = option(0.05, "held-out quantile of nearest-training distances that defines 'on top of' "
                                       "a training latent", min=0.001, max=0.5)
        n_boot: int = option(1000, "bootstrap resamples for the 95% interval", min=1)

    def _threshold(self, real: RealSide) -> float:
        cache = real.cache.setdefault(self.name, {})
        key = (self.options.quantile, int(real.heldout_latents.shape[0]), int(real.train_latents.shape[0]))
        if key not in cache:
            cache[key] = float(torch.quantile(heldout_training_distance(real), self.options.quantile))
        return cache[key]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        tau = self._threshold(real)
        if not tau > 0:
            raise AebenchError("Metric 'latent_copies': held-out latents coincide with training latents; use a "
                               "held-out split disjoint from the training set.")
        dist = training_distance(fake, real, z)
        close = (dist < tau).to(torch.float64)
        q = self.options.quantile
        low, high = bootstrap_mean_ci(close, self.options.n_boot, seed=fake.seed)
        info = {"reference": "training latents", "quantile": q, "threshold": tau, "share_close": float(close.mean())}
        return {"latent_copies": MetricValue(max(0.0, float(close.mean()) - q), False, max(0.0, low - q),
                                             max(0.0, high - q), int(z.shape[0]), info)}


@hookimpl
def register_metrics(register):
    register(LatentCopies)
