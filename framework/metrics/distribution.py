"""Latent distribution metrics: how far the sampler's latents are, as a distribution, from held-out
real latents. Unlike hit rates and latent recall, each of these worsens both when points bunch up
(collapse) and when they spread out, so they can rank samplers.

- `latent_fd`: Fréchet distance between Gaussian fits (means and covariances only);
- `latent_mmd`: unbiased MMD^2 with an RBF kernel over a few bandwidths fixed from the held-out latents;
- `latent_1nn`: leave-one-out 1-nearest-neighbour two-sample accuracy on equal-size sets, per set, the
  larger of the two (0.5 ideal); local, so it sees a wrong shape with the right mean and covariance,
  which `latent_fd` cannot.

The held-out side (Gaussian fit and its square root, kernel bandwidths and the real-real kernel term,
the real subset and its nearest-neighbour distances) is computed once per run in `real.cache[<name>]`.
The reference rows, whose latents are held-out latents themselves, get no value from these metrics.
Intervals come from random halves of the sampler's points (`aebench.maths.bootstrap.half_sample_sd`, seeded
from the sampler's seed: value +- 1.96 sd) for `latent_fd` and `latent_mmd`, and from the binomial
standard error of an accuracy over m points for `latent_1nn`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from aebench import hookimpl
from aebench.errors import AebenchError
from aebench.maths.bootstrap import half_sample_rows, half_sample_sd, subset_sd
from aebench.maths.fid import FrechetReference
from aebench.maths.knn import kth_neighbour_distance, nearest_distance
from aebench.maths.mmd import RBFKernel, median_distance, offdiag_mean, row_means, subset_kernel_sums
from aebench.maths.two_sample import one_nn_accuracy
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide
from aebench.metrics.latent import _check_latents
from aebench.options import option

Z95 = 1.959963984540054

# Ladders each metric was measured to worsen along, step by step (rank correlation >= 0.9 with the step,
# mean of 3-5 seeds), on the ORL (N=64) and Fashion-MNIST (N=32) models at n=128, from held-out-like real
# latents: shrink towards the centre (x1 ... 0.1), stretch away from it (x1 ... 3), replace a share by
# uniform points (0 ... 100%), keep only some of 8 k-means clusters (drop 0 ... 5), replace a share by
# Gaussian draws with the real mean and covariance ("moments", 0 ... 100%).
# latent_fd cannot see "moments" (it reads the first two moments only: flat on Fashion-MNIST, 23.6 ->
# 22.3); latent_mmd moves along it but not reliably at n=128 on ORL (one seed in five fell); latent_1nn
# rose along mode drop on average (Fashion-MNIST 0.55, 0.56, 0.58, 0.64, 0.67, 0.77) but not at every step
# for every seed (one in five: rank correlation 0.81), so it does not claim it.
FD_DETECTS = ("collapse", "spread", "contamination", "mode_drop")
MMD_DETECTS = ("collapse", "spread", "contamination", "mode_drop")
ONE_NN_DETECTS = ("collapse", "spread", "contamination", "moments")


def heldout_cache(real: RealSide, metric: str) -> dict[Any, Any]:
    """This metric's cache entry for `real.heldout_latents`, emptied when they are another tensor."""
    entry = real.cache.get(metric)
    source = real.heldout_latents
    if not isinstance(entry, dict) or entry.get("source") is not source or entry.get("shape") != tuple(source.shape):
        entry = {"source": source, "shape": tuple(source.shape)}
        real.cache[metric] = entry
    return entry


def is_heldout_set(z: torch.Tensor, real: RealSide) -> bool:
    """Whether every sample is one of the held-out latents: the reference rows (real held-out images and
    their reconstructions carry the held-out latents themselves). Scored against itself such a set gets
    degenerate values (FD 0, 1-NN accuracy 0 because every point's twin is in the other set), so the
    distribution metrics give it no value rather than a misleading 'ideal'."""
    held = real.heldout_latents
    if z.shape[0] > held.shape[0]:
        return False
    dist, _ = nearest_distance(z, held)
    return bool((dist == 0).all())


def _interval(value: float, sd: float | None, lower: float | None = None,
              upper: float | None = None) -> tuple[float | None, float | None]:
    if sd is None or not math.isfinite(sd):
        return None, None
    low, high = value - Z95 * sd, value + Z95 * sd
    return (low if lower is None else max(lower, low)), (high if upper is None else min(upper, high))


class LatentFD(Metric):
    """Fréchet distance between Gaussians fitted to the samples and to the held-out latents."""

    name = "latent_fd"
    description = ("Fréchet distance between Gaussian fits of the sampled and the held-out latents (lower is "
                   "better): sees shifts, spread, collapse and lost modes through the mean and covariance, "
                   "not a wrong shape with the right moments. Biased upwards at small n: compare equal n.")
    columns = (
        Column("latent_fd", "latent FD", False, group="latent", role="headline", detects=FD_DETECTS,
               description="Fréchet distance between Gaussian fits of the sampled and the held-out latents "
                           "(||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)); 0 for identical moments. Blind "
                           "to shape beyond the covariance; biased upwards at small n, so compare equal n.", margin="5%"),
    )

    @dataclass(frozen=True)
    class Options:
        repeats: int = option(100, "random halves of the samples for the interval (0: no interval)", min=0)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        if is_heldout_set(z, real):
            return {}
        cache = heldout_cache(real, self.name)
        if "reference" not in cache:
            cache["reference"] = FrechetReference.of(real.heldout_latents)
        ref: FrechetReference = cache["reference"]
        n = int(z.shape[0])
        if n < 2:
            raise AebenchError(f"Metric 'latent_fd' needs at least 2 samples, got {n}; draw more samples.")
        x, y = ref.project(z)
        value = ref.distance_of_rows(x, y, None)
        sd = None
        if self.options.repeats >= 2 and n >= 8:
            sd = half_sample_sd(lambda rows: ref.distance_of_rows(x, y, rows), n, self.options.repeats, fake.seed)
        low, high = _interval(value, sd, lower=0.0)
        info = {"reference": "heldout latents", "n_real": int(real.heldout_latents.shape[0]),
                "interval": "value +- 1.96 sd over random halves of the samples"}
        return {"latent_fd": MetricValue(value, False, low, high, n, info)}


class LatentMMD(Metric):
    """Unbiased MMD^2 between the samples and the held-out latents, RBF kernel over several bandwidths."""

    name = "latent_mmd"
    description = ("unbiased squared MMD between the sampled and the held-out latents, Gaussian kernel averaged "
                   "over bandwidths (median held-out distance x scales) fixed from the held-out latents (lower "
                   "is better; ~0 for one distribution, may dip slightly below 0).")
    columns = (
        Column("latent_mmd", "latent MMD²", False, group="latent", role="headline", detects=MMD_DETECTS,
               description="unbiased MMD^2 between the sampled and the held-out latents, Gaussian kernel averaged "
                           "over bandwidths median x (0.25, 0.5, 1, 2) fixed from the held-out latents; about 0 "
                           "(slightly negative possible) when the distributions agree.", margin="0.0025"),
    )

    @dataclass(frozen=True)
    class Options:
        scales: tuple[float, ...] = option((0.25, 0.5, 1.0, 2.0), "bandwidths as multiples of the median distance "
                                           "between held-out latents", min=1e-6)
        repeats: int = option(100, "random halves of the samples for the interval (0: no interval)", min=0)

    def _reference(self, real: RealSide) -> tuple[RBFKernel, float, float]:
        cache = heldout_cache(real, self.name)
        key = tuple(self.options.scales)
        if key not in cache:
            held = real.heldout_latents.to(torch.float64)
            median = median_distance(held, seed=real.seed)
            if not median > 0:
                raise AebenchError("Metric 'latent_mmd': the held-out latents all coincide, so no kernel bandwidth "
                                   "can be set from them; check the encoder and the held-out split.")
            kernel = RBFKernel(tuple(s * median for s in key))
            cache[key] = (kernel, median, offdiag_mean(kernel, held))
        return cache[key]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name).to(torch.float64)
        if is_heldout_set(z, real):
            return {}
        n = int(z.shape[0])
        if n < 2:
            raise AebenchError(f"Metric 'latent_mmd' needs at least 2 samples, got {n}; draw more samples.")
        kernel, median, xx = self._reference(real)
        cross = row_means(kernel, z, real.heldout_latents)  # [n]: mean kernel to the held-out latents
        halves = half_sample_rows(n, self.options.repeats, fake.seed) if self.options.repeats >= 2 and n >= 8 else []
        # one pass over the samples' kernel matrix gives its total and every half's sum (b^T K b)
        total, sums = subset_kernel_sums(kernel, z, halves)
        value = xx + (total - n) / (n * (n - 1)) - 2.0 * float(cross.mean())
        sd = None
        if halves:
            m = n // 2
            cross_means = torch.stack([cross[rows].mean() for rows in halves])
            sd = subset_sd(xx + (sums - m) / (m * (m - 1)) - 2.0 * cross_means)
        low, high = _interval(value, sd)
        info = {"reference": "heldout latents", "n_real": int(real.heldout_latents.shape[0]),
                "bandwidths": [round(h, 6) for h in kernel.bandwidths], "median_distance": median,
                "interval": "value +- 1.96 sd over random halves of the samples"}
        return {"latent_mmd": MetricValue(value, False, low, high, n, info)}


class LatentOneNN(Metric):
    """Leave-one-out 1-NN two-sample accuracy of the samples against held-out latents (0.5 ideal), taken
    per set and reported for the set that is easier to tell apart (see `aebench.maths.two_sample`: the pooled
    accuracy, kept in info, reads ~0.5 for uniform points)."""

    name = "latent_1nn"
    description = ("1-nearest-neighbour two-sample accuracy of the sampled vs the held-out latents on equal-size "
                   "sets (leave-one-out), the larger of the two sets' accuracies (0.5 ideal, 1.0 separable): "
                   "local, so it sees a wrong shape with the right mean and covariance.")
    columns = (
        Column("latent_1nn", "latent 1-NN acc", False, group="latent", unit="rate", role="headline",
               detects=ONE_NN_DETECTS, ideal=0.5,
               description="pool the samples and as many held-out latents, classify each point by the set of "
                           "its nearest other point; per set, the share classified right; the larger share is "
                           "reported: 0.5 = indistinguishable, 1 = separable (samples bunched together, or "
                           "held-out latents that only find each other because the samples are elsewhere). "
                           "Lower is better down to 0.5; the pooled accuracy and both shares are in info.", margin="0.05"),
    )

    def _real_subset(self, real: RealSide, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        cache = heldout_cache(real, self.name)
        if m not in cache:
            held = real.heldout_latents
            if held.shape[0] > m:
                held = held[torch.randperm(held.shape[0], generator=torch.Generator().manual_seed(real.seed))[:m]]
            cache[m] = (held, kth_neighbour_distance(held, 1))
        return cache[m]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        if is_heldout_set(z, real):
            return {}
        n, n_real = int(z.shape[0]), int(real.heldout_latents.shape[0])
        m = min(n, n_real)
        if m < 2:
            raise AebenchError(f"Metric 'latent_1nn' needs at least 2 samples and 2 held-out latents, got {n} and "
                               f"{n_real}; draw more samples.")
        held, held_own = self._real_subset(real, m)
        if n > m:
            z = z[torch.randperm(n, generator=torch.Generator().manual_seed(fake.seed))[:m]]
        res = one_nn_accuracy(held, z, real_own=held_own)
        a = res.worst_accuracy
        low, high = _interval(a, math.sqrt(a * (1 - a) / m), lower=0.0, upper=1.0)
        info = {"reference": "heldout latents", "n_real": n_real, "m": m, "real_accuracy": res.real_accuracy,
                "fake_accuracy": res.fake_accuracy, "pooled_accuracy": res.accuracy,
                "interval": "binomial normal approximation over the m points of the reported set"}
        return {"latent_1nn": MetricValue(a, False, low, high, n, info)}


@hookimpl
def register_metrics(register):
    for metric in (LatentFD, LatentMMD, LatentOneNN):
        register(metric)
