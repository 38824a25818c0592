"""Metrics: turn one sampler's samples (latents, images, features) into named numbers.

The real side (`RealSide`) is computed once per run and shared by every sampler; metrics keep their
own precomputations (k-NN radii, feature mean and covariance) in `real.cache` under their name, so a
benchmark of many samplers pays only for each sampler's own samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import torch

from aebench.errors import AebenchError, did_you_mean
from aebench.plugin_base import Plugin
from aebench.region import Region
from aebench.stats import LatentStats

# What a metric may need of a sampler's side (`FakeSide`): its latents, their path positions t, the decoded
# images, their image features and their re-encodings E(D(z)). The runner scores a metric only when all it needs
# is there, so a word outside this list would skip the metric silently: registration refuses it.
NEEDS = ("latents", "t", "images", "features", "reencoded")

# The known-answer ladders of `aebench validate`: real latents degraded step by step in one direction.
LADDERS = ("collapse", "spread", "contamination", "mode_drop", "moments", "memorisation")

# A run with several feature extractors (`--features inception,domain`) scores every image metric once per
# extractor ("judge"): the first keeps the metric's own keys (`fid_recon`), each other one gets them with
# this separator and its name (`fid_recon@domain`). A metric never sees the suffix: it computes as always,
# on a FakeSide and RealSide that carry that judge's features.
JUDGE_SEPARATOR = "@"


def judge_key(key: str, judge: str | None) -> str:
    """`key` as scored by `judge` (None or '' for the run's first extractor: the key itself)."""
    return f"{key}{JUDGE_SEPARATOR}{judge}" if judge else key


def split_judge_key(key: str) -> tuple[str, str | None]:
    """('fid_recon', 'domain') for 'fid_recon@domain'; (key, None) for a key of the first extractor."""
    base, sep, judge = key.partition(JUDGE_SEPARATOR)
    return (base, judge) if sep and judge else (key, None)

Role = Literal["headline", "diagnostic", "info"]


@dataclass(frozen=True)
class Column:
    """What one key a metric produces means, declared by the metric itself: reports, the verdict and
    `compare` read this instead of guessing from the key's name.

    `key` is exact, or a family prefix ending in '*' (`hit_*` covers `hit_box`, `hit_knn`, ...).
    `role`: 'headline' may rank samplers once it has passed the ladders it claims to detect;
    'diagnostic' is shown with its meaning but never ranks alone (it rewards collapse or spread);
    'info' has no better direction. `detects` names the ladders (see LADDERS) the metric must
    worsen along, step by step, to be trusted. `ideal`: the best value is this point, not an end of the
    scale (a two-sample accuracy's 0.5); the verdict, `compare` and the leaderboard then rank by the
    distance to it, and `higher_is_better` says which side the metric normally lies on. `margin` is a
    headline metric's equivalence margin: the difference that does not matter, as a share of the value
    ("3%") or in the metric's unit ("0.01"). Two samplers whose difference lies inside it with 95%
    confidence count as equivalent on this metric (see aebench.verdict.equivalence); keep it below the
    change the second step of each claimed ladder makes, so a degraded sample is never equivalent to a
    good one. None: never equivalent.
    """

    key: str
    label: str
    higher_is_better: bool | None
    group: str = "other"  # 'region', 'latent', 'image' (vs real images), 'image_recon' (vs decoded real latents)
    unit: str = ""  # 'rate': a share in [0, 1] shown as a percentage; else a unit name or '' for plain numbers
    role: Role = "diagnostic"
    detects: tuple[str, ...] = ()
    description: str = ""
    ideal: float | None = None
    margin: str | None = None

    def matches(self, key: str) -> bool:
        return key.startswith(self.key[:-1]) if self.key.endswith("*") else key == self.key

    def for_key(self, key: str) -> dict[str, Any]:
        """The `metric_info` entry of the results document for one concrete key (`fid_recon@domain`: the
        declaration of `fid_recon`, labelled and described as scored by the judge `domain`)."""
        key, judge = split_judge_key(key)
        label = self.label
        if self.key.endswith("*"):
            label = label.replace("*", key[len(self.key) - 1:])
        if judge:
            label = f"{label} {JUDGE_SEPARATOR}{judge}"
        entry = {"label": label, "higher_is_better": self.higher_is_better, "group": self.group, "unit": self.unit,
                 "role": self.role, "detects": list(self.detects), "description": self.description}
        if judge:
            entry["judge"] = judge
        if self.ideal is not None:
            entry["ideal"] = float(self.ideal)
        if self.margin is not None:
            entry["margin"] = self.margin
        return entry


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
    # decoder-matched image reference: features of decoded real latents (the decoder's blur is common to
    # every sampler, so comparing against these isolates the sampler's effect), and which latents they are
    recon_features: torch.Tensor | None = None
    recon_latents: torch.Tensor | None = None
    recon_info: dict[str, Any] = field(default_factory=dict)  # which latents: split, indices' digest, count
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
    # work on these samples that several metrics share (e.g. the nearest training latent), computed once
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # features of the same images by the run's other extractors, by name (`--features inception,domain`:
    # {'domain': [n, d']}); metrics read `features`, the pipeline hands them each judge's in turn
    judge_features: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


class Metric(Plugin):
    """Base of metric plugins. `needs` says which parts of `FakeSide` must be filled (words of NEEDS)."""

    needs: ClassVar[frozenset[str]] = frozenset({"latents"})
    columns: ClassVar[tuple[Column, ...]] = ()  # every key `compute` may return, declared

    @classmethod
    def check_definition(cls) -> None:
        super().check_definition()
        needs = cls.needs
        if isinstance(needs, str) or not all(isinstance(word, str) for word in needs):
            raise AebenchError(f"needs must be a set of words, e.g. frozenset({{'latents'}}), got {needs!r}.")
        unknown = sorted(set(needs) - set(NEEDS))
        if unknown:
            raise AebenchError(f"needs {unknown[0]!r}, which is no part of a sampler's side.{did_you_mean(unknown[0], NEEDS)} "
                               f"Use words of {', '.join(NEEDS)}.")

    @classmethod
    def column(cls, key: str) -> Column | None:
        """The declaration covering `key`, exact keys before families; a judge's key (`fid_recon@domain`)
        is covered by the declaration of its base key."""
        key = split_judge_key(key)[0]
        exact = [c for c in cls.columns if c.key == key]
        return exact[0] if exact else next((c for c in cls.columns if c.matches(key)), None)

    def compute(self, fake: FakeSide, real: RealSide) -> dict[str, MetricValue]:
        raise NotImplementedError


@dataclass(frozen=True)
class CopyEvidence:
    """Which samples a memorisation metric counts as copies of training latents, and why: what the report's
    memorisation gallery shows (each copy's decoded sample beside the training image whose latent is
    nearest, its score against the threshold).

    A metric that flags copies exposes it as `copy_evidence(fake, real) -> CopyEvidence` next to `compute`,
    built from the same numbers its value is built from, so the pictures and the number cannot disagree.
    `score` is the per-sample statistic a copy is flagged by (lower: more of a copy), `threshold` its
    bound (`copied` = score < threshold); `statistic` and `rule` say in words what they are."""

    score: torch.Tensor  # [n] float64, the statistic compared with the threshold (lower: more of a copy)
    threshold: float
    copied: torch.Tensor  # [n] bool
    nearest_train: torch.Tensor  # [n] int64, row of the nearest training latent
    train_distance: torch.Tensor  # [n] distance to that training latent
    statistic: str  # e.g. "distance to the nearest training latent"
    rule: str  # e.g. "below the 5% quantile of held-out latents' distances to their nearest training latent"
    heldout_distance: torch.Tensor | None = None  # [n] distance to the nearest held-out latent, where used

    def most_copied(self, k: int) -> torch.Tensor:
        """Rows of the (at most) `k` copies with the lowest score, most copied first."""
        rows = torch.nonzero(self.copied).flatten()
        order = torch.argsort(self.score[rows], stable=True)
        return rows[order[:k]]
