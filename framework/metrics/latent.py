"""Latent-space metrics: where a sampler's points land, before any decoding.

- `region_hits`: share of points each calibrated region accepts (with a bootstrap interval);
- `latent_coverage`: k-NN precision/recall/density/coverage of the held-out latents by the samples,
  the companion of hit rate. Collapse shows in *recall*: points bunched at the centre have tiny k-NN
  balls that hold no held-out latent. Naeem's *coverage* does not expose it in high dimension, where
  the centre lies inside every held-out k-NN ball (docs/measurements.md, "Coverage in high dimension");
- `latent_distance`: distance to the nearest training latent, relative to held-out latents, and the share
  of far draws (runaway points no real latent resembles);
- `reencode`: how far E(D(z)) drifts from z, relative to real held-out latents.

Real-side k-NN work is cached in `real.cache[<metric name>]`, so many samplers pay for it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aebench import hookimpl
from aebench.errors import AebenchError
from aebench.maths.bootstrap import bootstrap_mean_ci
from aebench.maths.knn import kth_neighbour_distance, nearest_distance
from aebench.maths.prdc import compute_prdc_two_k
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide
from aebench.options import option

# Ladders (see aebench.metric.LADDERS) each key was measured to worsen along, step by step, on the ORL and
# Fashion-MNIST models. These are diagnostics: each also rewards some other failure (see the descriptions).
HIT_DETECTS = ("spread", "contamination")  # rewards collapse and copies
RECALL_DETECTS = ("collapse", "mode_drop")  # rewards spread and contamination (uniform points recall 100%)
PRECISION_DETECTS = ("spread", "contamination", "moments")  # blind to collapse and dropped modes
DENSITY_DETECTS = ("spread", "contamination", "moments")  # rewards collapse (points bunched where data is dense)
COVERAGE_DETECTS = ("spread", "contamination")  # blind to collapse in high dimension
REENCODE_DETECTS = ("spread", "contamination", "moments")  # blind to collapse
FAR_FACTOR = 2.0  # a far draw lies beyond twice the largest nearest-training distance of any held-out latent


def _check_latents(fake: FakeSide, real: RealSide, metric: str) -> torch.Tensor:
    z = fake.latents
    if z.ndim != 2 or z.shape[1] != real.train_latents.shape[1]:
        raise AebenchError(f"Metric '{metric}': sampler '{fake.name}' gave latents of shape {tuple(z.shape)}, "
                           f"expected [n, {real.train_latents.shape[1]}]; the sampler and the model disagree on N.")
    if z.shape[0] == 0:
        raise AebenchError(f"Metric '{metric}': sampler '{fake.name}' gave no points; draw at least one sample.")
    return z.detach().to("cpu")


def heldout_training_distance(real: RealSide) -> torch.Tensor:
    """Distance of each held-out latent to its nearest training latent, once per run (the reference of
    `latent_distance` and `latent_copies`)."""
    cache = real.cache.setdefault("nearest_training", {})
    if "heldout" not in cache:
        cache["heldout"], _ = nearest_distance(real.heldout_latents, real.train_latents)
    return cache["heldout"]


def nearest_training(fake: FakeSide, real: RealSide, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance [n] and row [n] of each sample's nearest training latent, once per sample set whichever
    metrics (or the memorisation gallery) ask."""
    key = f"nearest_training:{id(real.train_latents)}"
    if key not in fake.cache:
        fake.cache[key] = nearest_distance(z, real.train_latents)
    return fake.cache[key]


def training_distance(fake: FakeSide, real: RealSide, z: torch.Tensor) -> torch.Tensor:
    """Distance of each sample to its nearest training latent, once per sample set whichever metrics ask."""
    return nearest_training(fake, real, z)[0]


class RegionHits(Metric):
    """Share of the sampler's points inside each calibrated region."""

    name = "region_hits"
    description = "share of sampled latents inside each calibrated region (hit_<region>), with bootstrap 95% CI"
    columns = (
        Column("hit_*", "hit *", True, group="region", unit="rate", role="diagnostic", detects=HIT_DETECTS,
               description="share of samples the calibrated region accepts (95% of held-out latents are inside); "
                           "falls when points leave the data, but rewards collapse: points bunched at the centre "
                           "hit 100%. Read it with latent_recall."),
    )

    @dataclass(frozen=True)
    class Options:
        n_boot: int = option(1000, "bootstrap resamples for the 95% interval", min=1)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        if not real.regions:
            raise AebenchError("Metric 'region_hits' has no fitted regions; select at least one with --regions.")
        out = {}
        for name, region in real.regions.items():
            inside = region.contains(z)
            low, high = bootstrap_mean_ci(inside.to(torch.float64), self.options.n_boot, seed=fake.seed)
            info = {"target": real.target, "region": name}
            out[f"hit_{name}"] = MetricValue(float(inside.double().mean()), True, low, high, int(z.shape[0]), info)
        return out


class LatentCoverage(Metric):
    """k-NN precision/recall (Kynkäänniemi) and density/coverage (Naeem) against held-out latents."""

    name = "latent_coverage"
    description = "latent-space precision/recall (k=3) and density/coverage (k=5) of the held-out latents; recall exposes collapse"
    columns = (
        Column("latent_recall", "latent recall", True, group="latent", unit="rate", role="diagnostic",
               detects=RECALL_DETECTS,
               description="share of held-out latents inside some sample's k-NN ball: exposes collapse, but "
                           "rewards spread (uniform points recall 100%)."),
        Column("latent_precision", "latent precision", True, group="latent", unit="rate", role="diagnostic",
               detects=PRECISION_DETECTS,
               description="share of samples inside some held-out latent's k-NN ball: falls when points leave "
                           "the data, blind to collapse."),
        Column("latent_density", "latent density", True, group="latent", role="diagnostic", detects=DENSITY_DETECTS,
               description="mean number of held-out k-NN balls holding a sample, over k (Naeem et al.); can "
                           "exceed 1, rewards points bunched where the data is dense."),
        Column("latent_coverage", "latent coverage", True, group="latent", unit="rate", role="diagnostic",
               detects=COVERAGE_DETECTS,
               description="share of held-out k-NN balls holding a sample (Naeem et al.); in high dimension "
                           "the centre lies in every ball, so it does not expose collapse."),
    )

    @dataclass(frozen=True)
    class Options:
        k_recall: int = option(3, "k for precision and recall (Kynkäänniemi et al. 2019)", min=1)
        k_coverage: int = option(5, "k for density and coverage (Naeem et al. 2020)", min=1)

    def _real_radii(self, real: RealSide, k: int) -> torch.Tensor:
        cache = real.cache.setdefault(self.name, {})
        key = (k, int(real.heldout_latents.shape[0]))
        if key not in cache:
            cache[key] = kth_neighbour_distance(real.heldout_latents, k)
        return cache[key]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        k3, k5 = self.options.k_recall, self.options.k_coverage
        kmax = max(k3, k5)
        n_real, n_fake = int(real.heldout_latents.shape[0]), int(z.shape[0])
        if n_real <= kmax or n_fake <= kmax:
            raise AebenchError(f"Metric 'latent_coverage' with k={kmax} needs more than {kmax} held-out latents and "
                               f"samples, got {n_real} and {n_fake}; draw more samples or lower k.")
        v = compute_prdc_two_k(real.heldout_latents, z, k3, k5, lambda k: self._real_radii(real, k))
        info = {"reference": "heldout latents", "n_real": n_real}
        return {
            "latent_recall": MetricValue(v["recall"], True, n=n_fake, info={**info, "k": k3}),
            "latent_coverage": MetricValue(v["coverage"], True, n=n_fake, info={**info, "k": k5}),
            "latent_precision": MetricValue(v["precision"], True, n=n_fake, info={**info, "k": k3}),
            "latent_density": MetricValue(v["density"], True, n=n_fake, info={**info, "k": k5}),
        }


class LatentDistance(Metric):
    """Distance to the nearest training latent, relative to that of held-out latents."""

    name = "latent_distance"
    description = "mean distance to the nearest training latent, divided by that of held-out latents (1 = like real)"
    columns = (
        Column("nn_distance_ratio", "nn distance ratio", True, group="latent", role="diagnostic",
               detects=("memorisation",),
               description="mean distance from each sample to its nearest training latent, over that of "
                           "held-out latents: 1 is like new real data; towards 0 the sampler copies training "
                           "latents (memorisation; collapse also lowers it), above 1 its points lie off the data "
                           "(spread). Oriented so that a falling value reads as worse: it is the memorisation "
                           "diagnostic, not a quality score."),
        Column("nn_distance", "nn distance", None, group="latent", role="info",
               description="mean distance from each sample to its nearest training latent (latent units)."),
        Column("far_draws", "far draws", False, group="latent", unit="rate", role="diagnostic",
               description=f"share of samples farther from every training latent than {FAR_FACTOR:g}x the farthest "
                           "held-out latent is: draws no real data resembles, such as a flow's runaway tail "
                           "(points at 1e25 that dominate latent FD) or uniform points in the corners of the box; "
                           "info holds the farthest draw in those units. Rewards collapse, like every test of "
                           "where points land."),
    )

    @dataclass(frozen=True)
    class Options:
        n_boot: int = option(1000, "bootstrap resamples for the 95% interval", min=1)

    def _real_mean(self, real: RealSide) -> float:
        cache = real.cache.setdefault(self.name, {})
        if "heldout_nn_mean" not in cache:
            cache["heldout_nn_mean"] = float(heldout_training_distance(real).mean())
        return cache["heldout_nn_mean"]

    def _real_max(self, real: RealSide) -> float:
        cache = real.cache.setdefault(self.name, {})
        if "heldout_nn_max" not in cache:
            cache["heldout_nn_max"] = float(heldout_training_distance(real).max())
        return cache["heldout_nn_max"]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        dist = training_distance(fake, real, z)
        ref = self._real_mean(real)
        if not ref > 0:
            raise AebenchError("Metric 'latent_distance': held-out latents coincide with training latents; "
                               "use a held-out split disjoint from the training set.")
        low, high = bootstrap_mean_ci(dist / ref, self.options.n_boot, seed=fake.seed)
        n = int(z.shape[0])
        info = {"reference": "training latents", "heldout_nn_distance": ref}
        return {
            "nn_distance_ratio": MetricValue(float(dist.mean()) / ref, True, low, high, n, info),
            "nn_distance": MetricValue(float(dist.mean()), None, n=n, info=info),
            "far_draws": self._far_draws(dist, real, fake.seed),
        }

    def _far_draws(self, dist: torch.Tensor, real: RealSide, seed: int) -> MetricValue:
        """Share of samples beyond FAR_FACTOR x the farthest held-out latent's distance to the training set."""
        farthest = self._real_max(real)
        far = (dist.to(torch.float64) > FAR_FACTOR * farthest).to(torch.float64)
        low, high = bootstrap_mean_ci(far, self.options.n_boot, seed=seed)
        info = {"factor": FAR_FACTOR, "heldout_nn_max": farthest, "count": int(far.sum()),
                "farthest_draw": float(dist.max()) / farthest}
        return MetricValue(float(far.mean()), False, low, high, int(dist.shape[0]), info)


class Reencode(Metric):
    """How far decoding then encoding moves a point, relative to real held-out latents."""

    name = "reencode"
    description = "mean |E(D(z)) - z| divided by that of real held-out latents (1 = like real)"
    columns = (
        Column("reencode_ratio", "re-encode ratio", False, group="latent", role="diagnostic",
               detects=REENCODE_DETECTS,
               description="mean |E(D(z)) - z| over that of real held-out latents: how far decoding then "
                           "encoding moves a point, relative to real data (1 = like real, larger = the decoder "
                           "does not know the point)."),
        Column("reencode_error", "re-encode error", None, group="latent", role="info",
               description="mean |E(D(z)) - z| of the samples (latent units)."),
    )
    needs = frozenset({"latents", "reencoded"})

    @dataclass(frozen=True)
    class Options:
        n_boot: int = option(1000, "bootstrap resamples for the 95% interval", min=1)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        z = _check_latents(fake, real, self.name)
        if fake.reencoded is None or fake.reencoded.shape != z.shape:
            got = None if fake.reencoded is None else tuple(fake.reencoded.shape)
            raise AebenchError(f"Metric 'reencode' needs re-encoded latents of shape {tuple(z.shape)} for "
                               f"'{fake.name}', got {got}; the runner must fill FakeSide.reencoded.")
        if real.reencode_error is None or real.reencode_error.numel() == 0:
            raise AebenchError("Metric 'reencode' needs the real held-out re-encode error (RealSide.reencode_error); "
                               "the runner must compute it, or drop 'reencode' from --metrics.")
        err = (fake.reencoded.detach().to("cpu", torch.float64) - z.to(torch.float64)).norm(dim=1)
        ref = float(real.reencode_error.to(torch.float64).mean())
        n = int(z.shape[0])
        info = {"heldout_reencode_error": ref}
        out = {"reencode_error": MetricValue(float(err.mean()), None, n=n, info=info)}
        if ref > 0:
            low, high = bootstrap_mean_ci(err / ref, self.options.n_boot, seed=fake.seed)
            out["reencode_ratio"] = MetricValue(float(err.mean()) / ref, False, low, high, n, info)
        return out


@hookimpl
def register_metrics(register):
    for metric in (RegionHits, LatentCoverage, LatentDistance, Reencode):
        register(metric)
