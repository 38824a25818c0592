"""`line` and `origin_line`: points on a straight path between two named latent points.

The seed walks from the origin to the centre of the latent region (and beyond): `origin_line` is that
preset, `line` joins any two of "origin", "centre" and "train:<index>" (a training latent).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.options import option
from aebench.sampler import Sampler, Samples
from aebench.stats import LatentStats

_POINT = re.compile(r"^(origin|centre|train:(\d+))$")
POINT_HELP = "origin, centre or train:<index> (a training latent)"


def check_point(spec: str, what: str) -> None:
    """Reject a malformed point name early (index ranges are checked in fit, once n is known)."""
    if not _POINT.match(spec.strip()):
        raise OptionError(f"{what} {spec!r} is not a point; use {POINT_HELP}.")


def check_point_index(spec: str, n_train: int, what: str) -> None:
    """A `train:<index>` point must name one of the `n_train` training latents."""
    spec = spec.strip()
    if spec.startswith("train:") and int(spec.split(":", 1)[1]) >= n_train:
        raise OptionError(
            f"{what} {spec!r} is out of range: there are {n_train} training latents "
            f"(train:0 .. train:{n_train - 1}); choose an index below {n_train}."
        )


def resolve_point(spec: str, train_latents: torch.Tensor, stats: LatentStats, what: str) -> torch.Tensor:
    """The latent vector [N] a point name stands for."""
    spec = spec.strip()
    if spec == "origin":
        return torch.zeros(train_latents.shape[1], dtype=torch.float64)
    if spec == "centre":
        return stats.centre.to(torch.float64)
    check_point_index(spec, train_latents.shape[0], what)
    index = int(spec.split(":", 1)[1])
    return train_latents[index].clone()


def check_t_range(t_min: float, t_max: float) -> None:
    if not (math.isfinite(t_min) and math.isfinite(t_max)) or not t_min < t_max:
        raise OptionError(f"t_min ({t_min}) must be below t_max ({t_max}) and both finite.")


@dataclass(frozen=True)
class LineOptions:
    start: str = option("origin", f"where the path starts (t=0): {POINT_HELP}")
    end: str = option("centre", f"where the path ends (t=1): {POINT_HELP}")
    t_min: float = option(0.0, "first position on the path (0 = start; negative extends before it)")
    t_max: float = option(1.0, "last position on the path (1 = end; above 1 extends beyond it)")
    spacing: Literal["even", "random"] = option("even", "even: evenly spaced t; random: uniform random t")

    def __post_init__(self) -> None:
        check_point(self.start, "start")
        check_point(self.end, "end")
        if self.start.strip() == self.end.strip():
            raise OptionError(f"start and end are both {self.start!r}; choose two different points.")
        check_t_range(self.t_min, self.t_max)


@dataclass(frozen=True)
class OriginLineOptions:
    t_min: float = option(0.0, "first position (0 = origin)")
    t_max: float = option(1.0, "last position (1 = centre; above 1 extends beyond the centre)")
    spacing: Literal["even", "random"] = option("even", "even: evenly spaced t; random: uniform random t")

    def __post_init__(self) -> None:
        check_t_range(self.t_min, self.t_max)


class LineSampler(Sampler):
    name = "line"
    description = "Points on the straight path between two named points (origin, centre, train:<index>)."
    Options = LineOptions
    is_path_sampler = True
    # an even grid runs from start to end: the first n of more points would all lie near the start (random
    # positions are independent draws, so `_fit` lifts the cap for spacing=random)
    max_latent_draws = 0

    def _endpoints(self) -> tuple[str, str]:
        return self.options.start, self.options.end

    def check_space(self, latent_dim: int, n_train: int) -> None:
        for what, spec in zip(("start", "end"), self._endpoints()):
            check_point_index(spec, n_train, f"{self.name}.{what}")

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        start, end = self._endpoints()
        self.start = resolve_point(start, train_latents, stats, "start")
        self.end = resolve_point(end, train_latents, stats, "end")
        if torch.equal(self.start, self.end):
            raise OptionError(f"{self.name}: {start} and {end} are the same latent vector; choose other points.")
        self.path_labels = [f"{start.strip()} → {end.strip()}"]  # row title in the runner's path figure
        self.max_latent_draws = None if self.options.spacing == "random" else 0

    def _sample(self, n: int, generator: torch.Generator) -> Samples:
        opts = self.options
        if opts.spacing == "even":
            t = torch.linspace(opts.t_min, opts.t_max, n, dtype=torch.float64)
        else:
            t = opts.t_min + (opts.t_max - opts.t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
        latents = self.start + t[:, None] * (self.end - self.start)
        return Samples(latents, path=torch.zeros(n, dtype=torch.int64), t=t)


class OriginLineSampler(LineSampler):
    name = "origin_line"
    description = "Points on the line from the origin to the centre of the training latents (the source post's walk)."
    Options = OriginLineOptions  # type: ignore[assignment]  # a narrower option set of the same sampler

    def _endpoints(self) -> tuple[str, str]:
        return "origin", "centre"


@hookimpl
def register_samplers(register):
    register(LineSampler)
    register(OriginLineSampler)
