"""Image-quality metrics in feature space: FID, KID, and precision/recall/density/coverage.

Each compares one sampler's decoded-image features (`fake.features`) with the run's real reference
features (`real.features`). The real side's work (mean and covariance, KID's real kernel terms, k-NN
radii) is done once per run and kept in `real.cache[<metric name>]`, tied to the very tensor
`real.features` it was computed from. Every value names the extractor, the reference set and both
sample counts: these scores are only comparable at equal counts with the same extractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aebench import hookimpl
from aebench.errors import DataError
from aebench.fid import frechet_distance_sqrt, mean_cov, psd_sqrt
from aebench.kid import draw_subsets, kid_scores, real_terms
from aebench.knn import kth_neighbour_distance
from aebench.metric import Column, FakeSide, Metric, MetricValue, RealSide
from aebench.options import option
from aebench.prdc import compute_prdc_two_k

# Ladders each key worsens along step by step (decoded degraded real latents, Inception): none measured yet.
FID_DETECTS: tuple[str, ...] = ()
KID_DETECTS: tuple[str, ...] = ()


def feature_pair(fake: FakeSide, real: RealSide, metric: str, min_n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(fake, real) features [n, d], [m, d] on the fake side's device, checked for shape, count and NaN."""
    if fake.features is None or real.features is None:
        side = "fake" if fake.features is None else "real"
        raise DataError(f"{metric} needs image features but the {side} side has none; run it with a feature "
                        f"extractor (e.g. --extractor inception).")
    f, r = fake.features, real.features
    if f.ndim != 2 or r.ndim != 2 or f.shape[1] != r.shape[1]:
        raise DataError(f"{metric}: fake features {tuple(f.shape)} and real features {tuple(r.shape)} do not match; "
                        f"compute both with one extractor ({real.extractor or 'unknown'}).")
    if f.shape[0] < min_n or r.shape[0] < min_n:
        raise DataError(f"{metric} needs at least {min_n} fake and {min_n} real samples, got {f.shape[0]} and "
                        f"{r.shape[0]}; draw more samples.")
    for side, t in (("fake", f), ("real", r)):
        if not torch.isfinite(t).all():
            raise DataError(f"{metric}: {side} features contain NaN or inf; check the images and the extractor.")
    return f, r.to(f.device)


def real_cache(real: RealSide, metric: str) -> dict[str, Any]:
    """This metric's cache entry for `real.features`, emptied when the features are another tensor."""
    entry = real.cache.get(metric)
    shape = tuple(real.features.shape) if real.features is not None else None
    if not isinstance(entry, dict) or entry.get("source") is not real.features or entry.get("shape") != shape:
        entry = {"source": real.features, "shape": shape}
        real.cache[metric] = entry
    return entry


def provenance(real: RealSide, n_fake: int, **extra: Any) -> dict[str, Any]:
    return {"extractor": real.extractor, "reference": real.reference, "n_real": int(real.features.shape[0]),
            "n_fake": int(n_fake), **extra}


class FID(Metric):
    name = "fid"
    description = ("Fréchet distance between Gaussians fitted to real and generated image features (lower is "
                   "better). Biased by sample count: compare only equal counts.")
    needs = frozenset({"features"})
    columns = (
        Column("fid", "FID", False, group="image", role="diagnostic", detects=FID_DETECTS,
               description="FID of the decoded samples against real images: decoder + sampler quality. The "
                           "decoder's blur is common to every sampler and dominates it, so it barely separates "
                           "samplers (a collapsed sampler can beat a good one); biased by the sample count."),
    )

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        f, r = feature_pair(fake, real, self.name)
        cache = real_cache(real, self.name)
        if "gaussian" not in cache:  # mean, covariance and its square root of the real features
            mu_r, sigma_r = mean_cov(r)
            cache["gaussian"] = (mu_r, sigma_r, psd_sqrt(sigma_r))
        mu_f, sigma_f = mean_cov(f)
        value = frechet_distance_sqrt(*cache["gaussian"], mu_f, sigma_f)
        return {"fid": MetricValue(value, higher_is_better=False, n=f.shape[0], info=provenance(real, f.shape[0]))}


class KID(Metric):
    name = "kid"
    description = ("Kernel Inception Distance: unbiased squared MMD, cubic polynomial kernel, mean over random "
                   "subsets (lower is better); interval: 2.5-97.5 percentiles of the subset scores.")
    needs = frozenset({"features"})
    columns = (
        Column("kid", "KID", False, group="image", role="diagnostic", detects=KID_DETECTS,
               description="KID (unbiased polynomial-kernel MMD^2 of Inception features) of the decoded samples "
                           "against real images: decoder + sampler quality, dominated by the decoder's blur."),
    )

    @dataclass(frozen=True)
    class Options:
        subsets: int = option(100, "number of random subsets", min=1)
        subset_size: int = option(1000, "samples per subset, capped at min(n_fake, n_real)", min=2)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        f, r = feature_pair(fake, real, self.name)
        n_fake, n_real = f.shape[0], r.shape[0]
        size = min(self.options.subset_size, n_fake, n_real)
        # with both sets whole, every subset is the same set: one evaluation is the exact answer
        subsets = 1 if size == n_fake == n_real else self.options.subsets
        cache = real_cache(real, self.name).setdefault("subsets", {})
        key = (real.seed, n_fake, size, subsets)
        if key not in cache:
            real_idx, fake_idx = draw_subsets(n_real, n_fake, size, subsets, real.seed)
            cache[key] = (real_idx, fake_idx, real_terms(r, real_idx))
        real_idx, fake_idx, xx_terms = cache[key]
        scores = kid_scores(r, f, real_idx, fake_idx, xx_terms).cpu()
        std = float(scores.std(unbiased=False))
        low = high = None
        if subsets > 1 and std > 0:
            low, high = (float(q) for q in torch.quantile(scores, torch.tensor([0.025, 0.975], dtype=scores.dtype)))
        info = provenance(real, n_fake, std=std, subsets=subsets, subset_size=size, seed=real.seed,
                          kernel="(x.y/d + 1)^3")
        return {"kid": MetricValue(float(scores.mean()), higher_is_better=False, low=low, high=high, n=n_fake,
                                   info=info)}


class PRDC(Metric):
    name = "prdc"
    description = ("Precision and recall (k-NN balls, Kynkäänniemi et al. 2019) and density and coverage "
                   "(Naeem et al. 2020) of generated vs real image features; higher is better, density can "
                   "exceed 1.")
    needs = frozenset({"features"})
    columns = (
        Column("precision", "precision", True, group="image", unit="rate", role="diagnostic",
               description="share of decoded samples inside some real image's k-NN ball in feature space; "
                           "about 0 for every decoded set when the decoder blurs (the balls are tight)."),
        Column("recall", "recall", True, group="image", unit="rate", role="diagnostic",
               description="share of real images inside some decoded sample's k-NN ball in feature space."),
        Column("density", "density", True, group="image", role="diagnostic",
               description="mean number of real k-NN balls holding a decoded sample, over k (Naeem et al.)."),
        Column("coverage", "coverage", True, group="image", unit="rate", role="diagnostic",
               description="share of real images whose k-NN ball holds a decoded sample (Naeem et al.)."),
    )

    @dataclass(frozen=True)
    class Options:
        k_pr: int = option(3, "nearest neighbours for precision and recall", min=1)
        k_dc: int = option(5, "nearest neighbours for density and coverage", min=1)

    def _radii(self, real: RealSide, r: torch.Tensor, k: int) -> torch.Tensor:
        radii = real_cache(real, self.name).setdefault("radii", {})
        if k not in radii:
            radii[k] = kth_neighbour_distance(r, k)
        return radii[k]

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        k_pr, k_dc = self.options.k_pr, self.options.k_dc
        k_max = max(k_pr, k_dc)
        f, r = feature_pair(fake, real, self.name, min_n=k_max + 1)
        values = compute_prdc_two_k(r, f, k_pr, k_dc, lambda k: self._radii(real, r, k))
        k_of = {"precision": k_pr, "recall": k_pr, "density": k_dc, "coverage": k_dc}
        return {key: MetricValue(values[key], higher_is_better=True, n=f.shape[0],
                                 info=provenance(real, f.shape[0], k=k_of[key]))
                for key in ("precision", "recall", "density", "coverage")}


@hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
    register(PRDC)
