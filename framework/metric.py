"""Metrics: turn one sampler's samples (latents, images, features) into named numbers.

The real side (`RealSide`) is computed once per run and shared by every sampler; metrics keep their
own precomputations (k-NN radii, feature mean and covariance) in `real.cache` under their name, so a
benchmark of many samplers pays only for each sampler's own samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from aebench.plugin_base import Plugin
from aebench.region import Region
from aebench.stats import LatentStats


@dataclass
class MetricValue:
    """One number, which direction is better, its 95% interval where known, and how it was made."""

    value: float
    higher_is_better: bool | None  # None: informational, no better direction
    low: float | None = None
    high: float | None = None
    n: int | None = None  # samples the number is computed from
    info: dict[str, Any] = field(default_factory=dict)  # e.g. extractor, reference set, k

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


@dataclass
class RealSide:
    """Everything about the real data that does not depend on the sampler."""

    train_latents: torch.Tensor  # [n_train, N] float32 CPU
    heldout_latents: torch.Tensor  # [n_heldout, N]
    stats: LatentStats
    regions: dict[str, Region] = field(default_factory=dict)  # fitted and calibrated
    target: float = 0.95
    features: torch.Tensor | None = None  # real reference image features [m, d]
    extractor: str | None = None
    reference: str = "heldout"  # which real images `features` come from: 'heldout' or 'train'
    reencode_error: torch.Tensor | None = None  # |E(D(z)) - z| of real held-out latents [n_heldout]
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSide:
    """One sampler's output at one seed."""

    name: str
    latents: torch.Tensor  # [n, N] float32 CPU
    path: torch.Tensor | None = None
    t: torch.Tensor | None = None
    images: torch.Tensor | None = None  # decoded, uint8 [n, c, h, w]
    features: torch.Tensor | None = None  # [n, d]
    reencoded: torch.Tensor | None = None  # E(D(z)) [n, N]
    seed: int = 0


class Metric(Plugin):
    """Base of metric plugins. `needs` says which parts of `FakeSide` must be filled."""

    needs: ClassVar[frozenset[str]] = frozenset({"latents"})

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        raise NotImplementedError
