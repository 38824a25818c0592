"""A third-party metric plugin as an author outside aebench would write it: every key declared with a
`Column`, nothing else registered. The report, verdict and compare tests run real (tiny) benchmarks
with it, so what they read is what the runner writes."""

from __future__ import annotations

import math

import torch

from aebench import hookimpl
from aebench.maths.bootstrap import bootstrap_mean_ci
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide


def _scaled_radius(z: torch.Tensor, real: RealSide) -> torch.Tensor:
    """Each point's distance from the held-out mean in held-out std units, per sqrt(dimension)."""
    h = real.heldout_latents.double()
    mu, sd = h.mean(0), h.std(0).clamp_min(1e-12)
    return ((z.double() - mu) / sd).norm(dim=1) / math.sqrt(z.shape[1])


class RadiusMetrics(Metric):
    """How far from the centre the samples sit, compared with held-out latents."""

    name = "toy_radius"
    description = "toy metric for tests: radius error (headline), near share (diagnostic), a flat family, the dimension"
    columns = (
        Column("radius_error", "radius error", False, group="latent", role="headline", detects=("collapse", "spread"),
               description="|mean scaled radius of samples - that of held-out latents|; 0 is ideal"),
        Column("near_share", "near share", True, group="latent", unit="rate", role="diagnostic",
               description="share of samples inside the held-out median radius; rewards collapse"),
        Column("toy_zero_*", "zero *", True, group="latent", unit="rate", role="headline",
               description="always 0: carries no information"),
        Column("dimension", "dimension", None, group="latent", role="info", description="latent dimension N"),
    )

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        r = _scaled_radius(fake.latents, real)
        target = float(_scaled_radius(real.heldout_latents, real).mean())
        median = float(_scaled_radius(real.heldout_latents, real).median())
        low, high = bootstrap_mean_ci(r, 200, seed=fake.seed)
        error = abs(float(r.mean()) - target)
        lo, hi = sorted((abs(low - target), abs(high - target)))
        if low <= target <= high:
            lo = 0.0
        n = int(r.numel())
        return {
            "radius_error": MetricValue(error, False, lo, hi, n=n),
            "near_share": MetricValue(float((r <= median).double().mean()), True, n=n),
            "toy_zero_a": MetricValue(0.0, True, n=n),
            "dimension": MetricValue(float(fake.latents.shape[1]), None, n=n),
        }


class FeatureGap(Metric):
    """Distance between the mean image features of samples and of the real reference."""

    name = "toy_feature_gap"
    needs = frozenset({"features"})
    columns = (Column("feature_gap", "feature gap", False, group="image", role="headline", detects=("collapse",),
                      description="distance between mean features of samples and real images"),)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        gap = float((fake.features.double().mean(0) - real.features.double().mean(0)).norm())
        return {"feature_gap": MetricValue(gap, False, n=int(fake.features.shape[0]))}


class Undeclared(Metric):
    """Returns a key it never declared: the runner must not guess what it means."""

    name = "toy_undeclared"
    columns = ()

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        return {"fid_like_score": MetricValue(float(fake.latents.abs().mean()), False)}


class ToyMetricsPlugin:
    @hookimpl
    def register_metrics(self, register):
        register(RadiusMetrics)
        register(FeatureGap)
        register(Undeclared)


TOY_METRICS = ["toy_radius", "toy_feature_gap"]
