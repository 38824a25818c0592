"""Precision, recall (Kynkäänniemi et al. 2019) and density, coverage (Naeem et al. 2020) with
chunked exact k-NN, so that no n_real x n_fake matrix is ever held whole. Definitions follow the
reference `prdc` package exactly (strict inequalities, k-th neighbour excluding self); the real side's
radii can be passed in so a benchmark of many samplers computes them once. The real x fake distances
are formed once for all four numbers, and once for both k of the published pair
(`aebench.maths.knn.cross_counts_multi`)."""

from __future__ import annotations

from typing import Callable

import torch

from aebench.errors import DataError
from aebench.maths.knn import cross_counts, cross_counts_multi, kth_neighbour_distance


def compute_prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5, *, real_radii: torch.Tensor | None = None,
                 fake_radii: torch.Tensor | None = None, block_bytes: int | None = None) -> dict[str, float]:
    """The four numbers for feature (or latent) sets real [n, d] and fake [m, d]."""
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise DataError(f"PRDC with k={k} needs more than {k} real and fake points, got {real.shape[0]} and "
                        f"{fake.shape[0]}; draw more samples or lower k.")
    if real_radii is None:
        real_radii = kth_neighbour_distance(real, k, block_bytes=block_bytes)
    if fake_radii is None:
        fake_radii = kth_neighbour_distance(fake, k, block_bytes=block_bytes)
    counts = cross_counts(real, fake, real_radii, fake_radii, block_bytes=block_bytes)
    inside = counts.inside_real_balls
    return {
        "precision": (inside > 0).double().mean().item(),  # fake points inside some real k-NN ball
        "recall": counts.in_fake_ball.double().mean().item(),  # real points inside some fake k-NN ball
        "density": inside.double().mean().item() / k,
        "coverage": counts.ball_covered.double().mean().item(),  # real balls that hold a fake point
    }


def compute_prdc_two_k(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int,
                       real_radii: Callable[[int], torch.Tensor], *,
                       block_bytes: int | None = None) -> dict[str, float]:
    """Precision/recall at k_pr and density/coverage at k_dc (the published choices are 3 and 5),
    with the real side's radii from a cache (`real_radii(k)`), the fake radii computed once (only
    recall reads them) and the real x fake distances formed in a single pass for both k."""
    k_max = max(k_pr, k_dc)
    if real.shape[0] <= k_max or fake.shape[0] <= k_max:
        raise DataError(f"PRDC with k={k_max} needs more than {k_max} real and fake points, got {real.shape[0]} and "
                        f"{fake.shape[0]}; draw more samples or lower k.")
    fake_radii = kth_neighbour_distance(fake, k_pr, block_bytes=block_bytes)
    ks = [k_pr] if k_dc == k_pr else [k_pr, k_dc]
    counts = dict(zip(ks, cross_counts_multi(real, fake, [real_radii(k) for k in ks], fake_radii,
                                             block_bytes=block_bytes)))
    pr, dc = counts[k_pr], counts[k_dc]
    return {
        "precision": (pr.inside_real_balls > 0).double().mean().item(),
        "recall": pr.in_fake_ball.double().mean().item(),
        "density": dc.inside_real_balls.double().mean().item() / k_dc,
        "coverage": dc.ball_covered.double().mean().item(),
    }
