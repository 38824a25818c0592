"""Memorisation as a rankable number: how many more samples are copies of a training latent than new
draws of the training distribution would be.

A copy is a sample much closer to the training latents than to unseen (held-out) latents. Each sample
z gets the ratio

    r(z) = d(z, nearest training latent) / d(z, nearest held-out latent)

and counts as a copy when r(z) < c. The threshold c is calibrated so that new draws from the training
distribution are copies at the chance rate `quantile`: c is the k-th smallest of the same ratio for
the n *training* latents each left out of the training set (its nearest *other* training latent over
its nearest held-out latent), k = floor(quantile * (n + 1)); n is all training latents, or
`calibration_size` of them drawn at random on a large training set. A new point exchangeable with the
training latents then falls below c with probability k / (n + 1) <= quantile (the conformal rank
argument), and the metric is the excess over that chance rate, clipped at 0:

    latent_copies = max(0, P(r(z) < c) - k / (n + 1))

c is also capped at 1: a sample at least as close to some unseen latent as to every training latent is
never a copy.

Why this and not the distance to the training set alone (the earlier version: a sample was a copy when
nearer to a training latent than 95% of held-out latents are): in high dimension with few training
latents, points near the centre of the latent cloud are closer to *every* latent, seen or unseen,
than latents are to each other. Lines through the centre of a 256-d face model scored 95% "copies"
that way without touching a training latent. The ratio cancels that: the centre is as close to unseen
latents as to training ones (r near 1). Why training latents for the null and not held-out latents
(held-out leave-one-out): a held-out set need not be a sample of the training distribution (the last
10% of a folder are often other people); then held-out latents sit nearer each other than any sampler
of the training distribution can, and their ratios put c near 1. Why not training latents subsampled
to the held-out count: a replayed training latent is a copy only of its source, which a random subset
of m of the n training latents holds with probability m / n (11% for 40 held-out of 400 images).

One-sided and rankable: spread and collapse keep r near 1 (0 copies); replaying training latents
with small noise drives r to the noise over the latent spacing (near 0: every sample a copy). Interval:
percentile bootstrap over both the samples and the training latents that set c (exact resampling of
an order statistic and a share, so it costs O(resamples)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from aebench import hookimpl
from aebench.errors import AebenchError
from aebench.maths.knn import kth_neighbour_distance, nearest_distance
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide
from aebench.metrics.latent import _check_latents, training_distance
from aebench.options import option

MAX_THRESHOLD = 1.0  # never a copy when at least as close to an unseen latent as to every training latent


def copy_ratio(d_train: torch.Tensor, d_heldout: torch.Tensor) -> torch.Tensor:
    """d_train / d_heldout, float64; +inf where the nearest held-out latent is at distance 0 (a point on
    an unseen latent is never a copy)."""
    d_train, d_heldout = d_train.to(torch.float64), d_heldout.to(torch.float64)
    return torch.where(d_heldout > 0, d_train / d_heldout.clamp_min(torch.finfo(torch.float64).tiny),
                       torch.full_like(d_train, math.inf))


@dataclass(frozen=True)
class CopyThreshold:
    """The calibrated threshold c and what it rests on."""

    null: np.ndarray  # sorted ratios of the left-out training latents (the null)
    rank: int  # c is the rank-th smallest null ratio (1-based)
    value: float  # min(null[rank - 1], MAX_THRESHOLD)

    @property
    def chance(self) -> float:
        """Share of new draws of the training distribution below c: rank / (n + 1)."""
        return self.rank / (self.null.size + 1)


def left_out_training_distance(train: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Distance of training latents `rows` (default all) to their nearest *other* training latent, exactly:
    the nearest among the rest of the training set, or among the chosen rows themselves, whichever is nearer.
    Choosing rows keeps the cost at rows x n instead of n x n on a large training set."""
    if rows is None or rows.numel() == train.shape[0]:
        return kth_neighbour_distance(train, 1)
    chosen = train[rows]
    rest = torch.ones(train.shape[0], dtype=torch.bool)
    rest[rows] = False
    to_rest, _ = nearest_distance(chosen, train[rest])
    return torch.minimum(to_rest, kth_neighbour_distance(chosen, 1)) if rows.numel() > 1 else to_rest


def copy_threshold(train: torch.Tensor, heldout: torch.Tensor, quantile: float, calibration_size: int | None = None,
                   seed: int = 0) -> CopyThreshold:
    """Calibrate c on the training latents, each left out in turn (see the module docstring); on at most
    `calibration_size` of them, drawn at random with `seed`, when the training set is larger."""
    n = int(train.shape[0])
    rows = None
    if calibration_size is not None and n > calibration_size:
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:calibration_size]
    size = n if rows is None else int(rows.numel())
    rank = math.floor(quantile * (size + 1))
    if rank < 1:
        raise AebenchError(f"Metric 'latent_copies' needs at least {math.ceil(1 / quantile) - 1} training latents "
                           f"to calibrate quantile {quantile:g}, got {size}; raise --set latent_copies.quantile, "
                           f"latent_copies.calibration_size or the training data.")
    queries = train if rows is None else train[rows]
    d_heldout, _ = nearest_distance(queries, heldout)
    if float((d_heldout == 0).to(torch.float64).mean()) >= quantile:
        raise AebenchError("Metric 'latent_copies': held-out latents coincide with training latents; use a "
                           "held-out split disjoint from the training set.")
    null = np.sort(copy_ratio(left_out_training_distance(train, rows), d_heldout).numpy())
    if not null[rank - 1] > 0:
        raise AebenchError(f"Metric 'latent_copies': at least {rank} training latents have an exact duplicate in "
                           f"the training set, so no copy can be told from chance; remove duplicate training "
                           f"images or lower --set latent_copies.quantile.")
    return CopyThreshold(null, rank, min(float(null[rank - 1]), MAX_THRESHOLD))


def copy_share_interval(ratios: np.ndarray, threshold: CopyThreshold, n_boot: int, seed: int,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of P(r < c) - chance, resampling the samples and the null together.

    Exact per resample, without materialising it: the rank-th smallest of n draws from the sorted null
    is null[ceil(U n) - 1] with U ~ Beta(rank, n + 1 - rank) (order statistic of uniforms); given that
    threshold, the count of resampled samples below it is Binomial(n_samples, share below it)."""
    if n_boot < 1:
        raise AebenchError(f"Bootstrap needs n_boot >= 1, got {n_boot}.")
    rng = np.random.default_rng(seed)
    null, n = threshold.null, threshold.null.size
    u = rng.beta(threshold.rank, n + 1 - threshold.rank, size=n_boot)
    c = np.minimum(null[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)], MAX_THRESHOLD)
    ordered = np.sort(ratios)
    below = np.searchsorted(ordered, c, side="left") / ordered.size
    shares = rng.binomial(ordered.size, below) / ordered.size - threshold.chance
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(shares, [alpha, 1.0 - alpha])
    return float(low), float(high)


def heldout_distance(fake: FakeSide, real: RealSide, z: torch.Tensor) -> torch.Tensor:
    """Distance of each sample to its nearest held-out latent, once per sample set."""
    key = f"nearest_heldout:{id(real.heldout_latents)}"
    if key not in fake.cache:
        fake.cache[key], _ = nearest_distance(z, real.heldout_latents)
    return fake.cache[key]


class LatentCopies(Metric):
    """Share of samples much closer to a training latent than to any unseen latent, beyond chance."""

    name = "latent_copies"
    description = ("share of samples whose nearest training latent is much closer than their nearest held-out "
                   "latent (ratio below what new draws of the training distribution show at the given quantile), "
                   "beyond that chance rate (0 = no excess copies)")
    columns = (
        Column("latent_copies", "latent copies", False, group="latent", unit="rate", role="headline",
               detects=("memorisation",),
               description="share of samples that copy a training latent: their distance to the nearest training "
                           "latent over that to the nearest held-out latent is below the 5% quantile of the same "
                           "ratio for training latents left out in turn, beyond that 5% chance: 0 is like new data; "
                           "it rises toward 95% as a sampler replays training latents. A point as close to unseen "
                           "latents as to training ones (the centre, a spread or collapsed sampler) is never a copy.",
               margin="0.02"),
    )

    @dataclass(frozen=True)
    class Options:
        quantile: float = option(0.05, "chance rate: the share of new draws of the training distribution counted "
                                       "as copies (sets the ratio threshold)", min=0.001, max=0.5)
        calibration_size: int = option(5000, "training latents (at most; drawn at random) whose left-out ratio "
                                             "calibrates the threshold: cost calibration_size x n_train", min=1)
        n_boot: int = option(1000, "bootstrap resamples for the 95% interval", min=1)

    def threshold(self, real: RealSide) -> CopyThreshold:
        """The calibrated threshold, once per run and quantile."""
        cache = real.cache.setdefault(self.name, {})
        opts = self.options
        key = (opts.quantile, opts.calibration_size, real.seed, id(real.train_latents), id(real.heldout_latents))
        if key not in cache:
            cache[key] = copy_threshold(real.train_latents, real.heldout_latents, opts.quantile, opts.calibration_size,
                                        real.seed)
        return cache[key]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        threshold = self.threshold(real)
        ratios = copy_ratio(training_distance(fake, real, z), heldout_distance(fake, real, z)).numpy()
        share = float((ratios < threshold.value).mean())
        low, high = copy_share_interval(ratios, threshold, self.options.n_boot, fake.seed)
        chance = threshold.chance
        info = {"reference": "training vs held-out latents", "quantile": self.options.quantile,
                "threshold": threshold.value, "threshold_capped": bool(threshold.null[threshold.rank - 1] > MAX_THRESHOLD),
                "chance": chance, "share_copies": share, "median_ratio": float(np.median(ratios))}
        return {"latent_copies": MetricValue(max(0.0, share - chance), False, max(0.0, low), max(0.0, high),
                                             int(z.shape[0]), info)}


@hookimpl
def register_metrics(register):
    register(LatentCopies)
