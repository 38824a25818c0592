"""`plane_paths`: straight paths through the centre inside the plane of two latent components.

The source post's part IV: hold every other component at the centre and walk the plane spanned by two
dominant components at several angles. Plane coordinates are measured in each axis's std, so an
angle of 45 degrees moves one std along both. With `others="conditional"` the off-plane components
follow the Gaussian conditional mean given the plane coordinates instead of staying at the centre,
which keeps the point on the training latents' correlation structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from aebench import hookimpl
from aebench.errors import OptionError
from aebench.options import option
from aebench.sampler import Sampler, Samples
from aebench.stats import LatentStats


@dataclass(frozen=True)
class PlanePathsOptions:
    axes: tuple[int, ...] | None = option(
        None, "the two latent components spanning the plane; default: the two most dominant", min=0)
    angles: tuple[float, ...] = option(
        (0.0, 45.0, 90.0, 135.0), "path directions in degrees (0 = along the first axis)")
    extent: float = option(
        2.0, "each path runs from -extent to +extent stds through the centre", min=0, min_exclusive=True)
    points_per_path: int | None = option(
        None, "distinct positions per path, repeated to fill n; default: n split over the paths", min=1)
    others: Literal["centre", "conditional"] = option(
        "centre", "off-plane components: the centre, or the conditional Gaussian mean given the plane point")

    def __post_init__(self) -> None:
        if self.axes is not None:
            if len(self.axes) != 2:
                raise OptionError(f"axes needs exactly two components, got {len(self.axes)}: {list(self.axes)}.")
            if self.axes[0] == self.axes[1]:
                raise OptionError(f"axes are both {self.axes[0]}; choose two different components.")
        if not self.angles:
            raise OptionError("angles is empty; give at least one angle in degrees, e.g. 0,45,90,135.")
        if not all(math.isfinite(a) for a in self.angles):
            raise OptionError(f"angles must be finite numbers of degrees, got {list(self.angles)}.")


def path_positions(n: int, n_paths: int, points_per_path: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Path index [n] and position t in [0, 1] [n] for n points spread over the paths, even spacing.

    Without `points_per_path` path a gets n // n_paths points (the first n % n_paths paths one more);
    with it, the n points cycle through the n_paths x points_per_path grid, path by path.
    """
    if points_per_path is None:
        counts = [n // n_paths + (1 if a < n % n_paths else 0) for a in range(n_paths)]
        path = torch.repeat_interleave(torch.arange(n_paths), torch.tensor(counts, dtype=torch.int64))
        t = torch.cat([_even(c) for c in counts]) if n else torch.empty(0, dtype=torch.float64)
        return path, t
    grid = torch.arange(n) % (n_paths * points_per_path)
    return grid // points_per_path, _even(points_per_path)[grid % points_per_path]


def _even(count: int) -> torch.Tensor:
    """`count` evenly spaced positions in [0, 1]; a single point sits at the centre (0.5)."""
    if count == 1:
        return torch.full((1,), 0.5, dtype=torch.float64)
    return torch.linspace(0, 1, count, dtype=torch.float64)


class PlanePathsSampler(Sampler):
    name = "plane_paths"
    description = "Straight paths through the centre in the plane of two components, at several angles."
    Options = PlanePathsOptions
    is_path_sampler = True
    # an even grid fills path after path: the first n of more points would all lie on the first path(s)
    max_latent_draws = 0

    def check_space(self, latent_dim: int, n_train: int) -> None:
        if latent_dim < 2:
            raise OptionError(f"{self.name} needs a latent space of at least 2 dimensions, got N={latent_dim}.")
        bad = [a for a in (self.options.axes or ()) if not 0 <= a < latent_dim]
        if bad:
            raise OptionError(
                f"{self.name}: axis {bad[0]} is out of range for this model's N={latent_dim} latent components; "
                f"use axes in 0..{latent_dim - 1} (e.g. --set {self.name}.axes=0,1), or drop axes for the two "
                f"most dominant components."
            )

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        dim = train_latents.shape[1]
        self.check_space(dim, train_latents.shape[0])
        axes = self.options.axes if self.options.axes is not None else tuple(int(a) for a in stats.dominant[:2])
        self.axes = torch.tensor(axes, dtype=torch.int64)
        self.plot_axes = (int(axes[0]), int(axes[1]))  # the runner's scatter plot shows this plane
        self.path_labels = [f"angle {a:g}°" for a in self.options.angles]
        std = stats.std.to(torch.float64)[self.axes]
        if not (std > 0).all():
            flat = axes[int((std <= 0).nonzero()[0])]
            raise OptionError(f"{self.name}: axis {flat} has zero variance; choose another axis.")
        self.centre = stats.centre.to(torch.float64)
        self.axis_std = std
        if self.options.others == "conditional":
            cov = stats.cov.to(torch.float64)
            # row j of gain maps a plane offset (x_p - mu_p) to component j's conditional mean offset
            try:
                self.gain = torch.linalg.solve(cov[self.axes][:, self.axes], cov[self.axes]).T  # [N, 2]
            except torch.linalg.LinAlgError:
                raise OptionError(
                    f"{self.name}: axes {axes[0]} and {axes[1]} are perfectly correlated, so no conditional mean "
                    f"exists; choose other axes or others=centre."
                ) from None
        else:
            self.gain = None

    def _sample(self, n: int, generator: torch.Generator) -> Samples:
        angles = torch.deg2rad(torch.tensor(self.options.angles, dtype=torch.float64))
        path, t = path_positions(n, len(angles), self.options.points_per_path)
        radius = self.options.extent * (2 * t - 1)  # in stds, -extent .. +extent
        direction = torch.stack([torch.cos(angles[path]), torch.sin(angles[path])], dim=1)
        offset = direction * radius[:, None] * self.axis_std
        latents = self.centre.expand(n, -1).clone()
        if self.gain is not None:
            latents += offset @ self.gain.T
        latents[:, self.axes] = self.centre[self.axes] + offset
        return Samples(latents, path=path, t=t)


@hookimpl
def register_samplers(register):
    register(PlanePathsSampler)
