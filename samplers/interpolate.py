"""`interpolate`: points on paths between random pairs of training latents.

The classic latent-interpolation probe: "lerp" follows the straight segment, "slerp" the great-circle
arc about a chosen pivot (the centre of the training latents or the origin), turning at a constant
rate while the distance to the pivot changes linearly, so it does not sag midway between two points.
Each pair is one path (path = pair index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.options import option
from aebench.sampler import Sampler, Samples
from aebench.stats import LatentStats


@dataclass(frozen=True)
class InterpolateOptions:
    mode: Literal["lerp", "slerp"] = option("lerp", "lerp: straight segment; slerp: spherical arc about the pivot")
    pivot: Literal["centre", "origin"] = option(
        "centre", "slerp's centre of rotation: the training centre or the origin")
    pairs: int | None = option(
        None, "number of random pairs the points share; default: a new pair for every point", min=1)


def slerp(u: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of u and v [n, N] at t [n]: the direction turns at a
    constant rate along the great circle while the length changes linearly from |u| to |v|."""
    nu, nv = u.norm(dim=1), v.norm(dim=1)
    du = u / nu.clamp_min(1e-300)[:, None]
    dv = v / nv.clamp_min(1e-300)[:, None]
    omega = torch.arccos((du * dv).sum(1).clamp(-1, 1))
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-7  # same or opposite direction: no unique great circle, so lerp
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    direction = (torch.sin((1 - t) * omega) / safe)[:, None] * du + (torch.sin(t * omega) / safe)[:, None] * dv
    arc = ((1 - t) * nu + t * nv)[:, None] * direction
    straight = u + t[:, None] * (v - u)
    return torch.where(parallel[:, None], straight, arc)


class InterpolateSampler(Sampler):
    name = "interpolate"
    description = "Points on lerp or slerp paths between random pairs of training latents (path = pair)."
    Options = InterpolateOptions
    is_path_sampler = True

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        if train_latents.shape[0] < 2:
            raise OptionError(f"{self.name} needs at least 2 training latents, got {train_latents.shape[0]}.")
        self.train = train_latents
        pivot = stats.centre if self.options.pivot == "centre" else torch.zeros(train_latents.shape[1])
        self.pivot = pivot.to(torch.float64)

    def _sample(self, n: int, generator: torch.Generator) -> Samples:
        n_pairs = n if self.options.pairs is None else self.options.pairs
        n_train = self.train.shape[0]
        first = torch.randint(n_train, (n_pairs,), generator=generator)
        second = (first + torch.randint(1, n_train, (n_pairs,), generator=generator)) % n_train  # never == first
        path = torch.arange(n) % max(n_pairs, 1)
        t = torch.rand(n, generator=generator, dtype=torch.float64)
        a, b = self.train[first[path]], self.train[second[path]]
        if self.options.mode == "lerp":
            latents = a + t[:, None] * (b - a)
        else:
            latents = self.pivot + slerp(a - self.pivot, b - self.pivot, t)
        return Samples(latents, path=path, t=t)


@hookimpl
def register_samplers(register):
    register(InterpolateSampler)
