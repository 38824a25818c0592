"""Known-answer ladders: real latents degraded step by step in one known direction.

Every ladder starts from the same base set of real latents (step 0) and is described as row picks from
a few latent *pools* (the base, uniform points, Gaussian draws, copies of training latents, scaled
copies of the base). The expensive part of scoring a step, decoding and image features, is paid once
per pool; a step only gathers rows. Mixture ladders replace rows in one fixed random order, by fixed
points: a row replaced at one step stays replaced, by the same point, at every later step, so
successive steps differ by the degradation alone, not by fresh sampling noise.

| ladder | level | step 0 -> last step |
|---|---|---|
| collapse | shrink factor towards the centre (mean of the training latents) | 1 -> 0.1 |
| spread | factor away from the centre | 1 -> 3 |
| contamination | share replaced by uniform points over the training latents' per-component range | 0 -> 1 |
| mode_drop | k-means clusters (of the training latents) whose base rows are kept; the others resampled from the kept ones | all -> 1 |
| moments | share replaced by draws from the Gaussian with the training latents' mean and covariance | 0 -> 1 |
| memorisation | share replaced by copies of training latents | 0 -> 1 |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from aebench.errors import OptionError, did_you_mean
from aebench.metric import LADDERS
from aebench.stats import LatentStats

BASE = "base"
MIN_STEPS = 3  # a rank correlation needs at least three points to mean anything
COLLAPSE_END = 0.1  # the last collapse step keeps a tenth of the distance to the centre (0 would make all points equal)
SPREAD_END = 3.0

PARAMS = {
    "collapse": "shrink factor towards the centre",
    "spread": "spread factor away from the centre",
    "contamination": "share of points replaced by uniform points",
    "mode_drop": "clusters kept",
    "moments": "share of points replaced by Gaussian draws with the same mean and covariance",
    "memorisation": "share of points replaced by copies of training latents",
}


@dataclass(frozen=True)
class Step:
    """One rung: for each of the m rows, which pool it comes from and which row of that pool."""

    level: float
    pool: torch.Tensor  # [m] int64, index into LadderSet.pool_names
    row: torch.Tensor  # [m] int64, row in that pool


@dataclass
class Ladder:
    name: str
    param: str
    steps: list[Step]

    @property
    def levels(self) -> list[float]:
        return [s.level for s in self.steps]


@dataclass
class LadderSet:
    """The pools of latents and the ladders that pick rows from them."""

    pools: dict[str, torch.Tensor]  # name -> latents [rows, N] float32
    ladders: dict[str, Ladder]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def pool_names(self) -> list[str]:
        return list(self.pools)

    def gather(self, step: Step, per_pool: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Rows of `per_pool[name]` (latents, images, features: anything with one row per pool row) for
        one step, in the step's row order."""
        names = self.pool_names
        first = per_pool[names[int(step.pool[0])]]
        out = first.new_empty((step.pool.shape[0], *first.shape[1:]))
        for index in torch.unique(step.pool).tolist():
            mask = step.pool == index
            out[mask] = per_pool[names[index]][step.row[mask]]
        return out

    def latents(self, step: Step) -> torch.Tensor:
        return self.gather(step, self.pools)


def levels_for(ladder: str, steps: int, clusters: int | None = None) -> list[float]:
    """The level of each step of a ladder: collapse 1 -> 0.1, spread 1 -> 3, shares 0 -> 1, and for
    mode dropping the number of clusters kept, from all of them down to one."""
    if ladder == "collapse":
        return [float(x) for x in np.round(np.linspace(1.0, COLLAPSE_END, steps), 4)]
    if ladder == "spread":
        return [float(x) for x in np.round(np.linspace(1.0, SPREAD_END, steps), 4)]
    if ladder == "mode_drop":
        if clusters is None or clusters < 2:
            raise OptionError(f"Mode dropping needs at least 2 clusters holding base points, got {clusters}; "
                              f"raise --clusters or the validation size.")
        kept = sorted({int(np.floor(x + 0.5)) for x in np.linspace(clusters, 1, steps)}, reverse=True)
        return [float(k) for k in kept]
    return [float(x) for x in np.round(np.linspace(0.0, 1.0, steps), 4)]


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < MIN_STEPS:
        raise OptionError(f"Each ladder needs at least {MIN_STEPS} steps for a rank correlation, got {steps!r}; "
                          f"use --steps {MIN_STEPS} or more.")
    return steps


def build_ladders(base: torch.Tensor, train: torch.Tensor, stats: LatentStats, *, steps: int = 6,
                  clusters: int = 8, ladders: Sequence[str] = LADDERS, seed: int = 0) -> LadderSet:
    """Pools and ladders degrading `base` (real latents [m, N], disjoint from whatever the metrics compare
    against) using the training latents `train` and their statistics for the centre, the uniform range,
    the Gaussian's moments, the clusters and the copies."""
    check_steps(steps)
    unknown = [name for name in ladders if name not in LADDERS]
    if unknown:
        raise OptionError(f"Unknown ladder {unknown[0]!r}.{did_you_mean(unknown[0], LADDERS)} "
                          f"Choose from {', '.join(LADDERS)}.")
    base = base.detach().to("cpu", torch.float32)
    train = train.detach().to("cpu", torch.float32)
    m, dim = base.shape
    if m < 2:
        raise OptionError(f"Validation needs at least 2 base latents, got {m}; raise --size or use more held-out data.")
    gen = torch.Generator().manual_seed(seed)
    centre = stats.mean.to(torch.float32)
    pools: dict[str, torch.Tensor] = {BASE: base}
    out: dict[str, Ladder] = {}
    settings: dict[str, Any] = {"centre": "mean of the training latents"}
    identity = torch.arange(m)
    # one replacement order shared by the mixture ladders: row order[i] is replaced once i < round(share * m)
    order = torch.randperm(m, generator=gen)

    def base_step(level: float) -> Step:
        return Step(level, torch.zeros(m, dtype=torch.long), identity.clone())

    def pool_step(level: float, name: str, latents: torch.Tensor) -> Step:
        pools[name] = latents
        return Step(level, torch.full((m,), len(pools) - 1, dtype=torch.long), identity.clone())

    def mixture(name: str, pool_name: str, replacement: torch.Tensor) -> Ladder:
        pools[pool_name] = replacement
        index = len(pools) - 1
        rungs = []
        for share in levels_for(name, steps):
            pool = torch.zeros(m, dtype=torch.long)
            pool[order[:int(round(share * m))]] = index
            rungs.append(Step(share, pool, identity.clone()))
        return Ladder(name, PARAMS[name], rungs)

    for name in ladders:
        if name in ("collapse", "spread"):
            rungs = []
            for factor in levels_for(name, steps):
                if factor == 1.0:
                    rungs.append(base_step(factor))
                else:
                    rungs.append(pool_step(factor, f"{name}:{factor:g}", centre + factor * (base - centre)))
            out[name] = Ladder(name, PARAMS[name], rungs)
        elif name == "contamination":
            low, high = train.min(0).values, train.max(0).values
            uniform = low + (high - low) * torch.rand(m, dim, generator=gen)
            out[name] = mixture(name, "uniform", uniform)
            settings["uniform_range"] = "per-component min and max of the training latents"
        elif name == "moments":
            from aebench.maths.covariance import covariance_factor

            chol = covariance_factor(stats.cov.to(torch.float64))
            draws = stats.mean.to(torch.float64) + torch.randn(m, dim, generator=gen, dtype=torch.float64) @ chol.T
            out[name] = mixture(name, "gaussian", draws.to(torch.float32))
            settings["gaussian"] = "mean and (unbiased, unshrunk) covariance of the training latents"
        elif name == "memorisation":
            n_train = train.shape[0]
            rows = (torch.randperm(n_train, generator=gen)[:m] if n_train >= m
                    else torch.randint(n_train, (m,), generator=gen))
            out[name] = mixture(name, "train_copies", train[rows].clone())
            settings["copies"] = f"{int(rows.unique().numel())} distinct training latents"
        elif name == "mode_drop":
            out[name], info = _mode_drop(base, train, steps, clusters, seed, gen)
            settings["mode_drop"] = info
    return LadderSet(pools, {name: out[name] for name in ladders}, settings)


def _mode_drop(base: torch.Tensor, train: torch.Tensor, steps: int, clusters: int, seed: int,
               gen: torch.Generator) -> tuple[Ladder, dict[str, Any]]:
    """k-means on the training latents; base rows belong to their nearest centre. Clusters are dropped
    smallest first (fewest base rows), so the largest mode is the last one kept; each row of a dropped
    cluster is replaced by a base row of a kept cluster, drawn with a fixed uniform number per row."""
    from sklearn.cluster import KMeans

    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 2:
        raise OptionError(f"--clusters must be an integer >= 2, got {clusters!r}.")
    clusters = min(clusters, int(train.shape[0]))
    km = KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit(train.numpy().astype(np.float64))
    centres = torch.as_tensor(km.cluster_centers_, dtype=torch.float32)
    label = torch.cdist(base, centres).argmin(dim=1)
    counts = torch.bincount(label, minlength=clusters)
    occupied = [c for c in torch.argsort(counts, descending=True, stable=True).tolist() if counts[c] > 0]
    levels = levels_for("mode_drop", steps, len(occupied))
    u = torch.rand(base.shape[0], generator=gen)
    rungs = []
    for kept_count in levels:
        kept = torch.tensor(occupied[:int(kept_count)])
        keep_row = torch.isin(label, kept)
        kept_rows = torch.nonzero(keep_row).flatten()
        row = torch.arange(base.shape[0])
        draw = kept_rows[(u * kept_rows.numel()).long().clamp_max(kept_rows.numel() - 1)]
        row = torch.where(keep_row, row, draw)
        rungs.append(Step(float(kept_count), torch.zeros(base.shape[0], dtype=torch.long), row))
    info = {"clusters": clusters, "fitted_on": "training latents (k-means, 4 inits)",
            "base_rows_per_cluster": sorted((int(c) for c in counts if c > 0), reverse=True),
            "drop_order": "fewest base rows first"}
    return Ladder("mode_drop", PARAMS["mode_drop"], rungs), info


@dataclass(frozen=True)
class ValidationOptions:
    """What `aebench validate` and `aebench run --validate` let a user choose."""

    size: int | None = None  # base points per step; None: the run's n, at most the usable held-out latents
    steps: int = 6  # steps per ladder, step 0 included
    ladders: tuple[str, ...] = LADDERS
    clusters: int = 8  # k-means clusters for mode dropping

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ValidationOptions":
        data = dict(data or {})
        unknown = sorted(set(data) - {"size", "steps", "ladders", "clusters"})
        if unknown:
            settings = ("size", "steps", "ladders", "clusters")
            raise OptionError(f"Unknown validation setting {unknown[0]!r}.{did_you_mean(unknown[0], settings)} "
                              f"Use size, steps, ladders or clusters.")
        if "ladders" in data:
            value = data["ladders"]
            data["ladders"] = tuple(value.split(",") if isinstance(value, str) else value)
        options = cls(**data)
        options.check()
        return options

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "steps": self.steps, "ladders": list(self.ladders), "clusters": self.clusters}

    def check(self) -> None:
        check_steps(self.steps)
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8):
            raise OptionError(f"--size must be an integer >= 8, got {self.size!r}.")
        if not self.ladders:
            raise OptionError("Select at least one ladder.")
        unknown = [name for name in self.ladders if name not in LADDERS]
        if unknown:
            raise OptionError(f"Unknown ladder {unknown[0]!r}.{did_you_mean(unknown[0], LADDERS)} "
                          f"Choose from {', '.join(LADDERS)}.")
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or self.clusters < 2:
            raise OptionError(f"--clusters must be an integer >= 2, got {self.clusters!r}.")
