"""The sampler contract: fitted on training latents and their statistics, returns latent vectors.

Samplers never decode, pick a device on their own, or write files; the runner does that. Randomness
comes only from the `torch.Generator` passed to `sample` (a CPU generator), so identical seeds give
identical samples on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from aebench.errors import AebenchError, NotFittedError, OptionError
from aebench.plugin_base import Plugin
from aebench.stats import LatentStats


@dataclass
class Samples:
    """Latent vectors [n, N] float32; path samplers also give each point's path index and position t."""

    latents: torch.Tensor
    path: torch.Tensor | None = None  # [n] int64: which path the point lies on (an id >= 0)
    # [n] float32: position along that path (0 = start, 1 = end); finite, and may lie outside [0, 1] for a
    # path drawn beyond its end points (the `line` sampler's t_min < 0 or t_max > 1)
    t: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def check_path(self, who: str, path_sampler: bool) -> None:
        """Raise AebenchError unless `path` and `t` come together (always, for a path sampler), each with one
        entry per point, path ids whole numbers >= 0 and every t finite: a mismatch would otherwise mislabel
        the hit rate along t and the path figures."""
        if self.path is None and self.t is None:
            if path_sampler:
                raise AebenchError(f"Sampler '{who}' is a path sampler but returned no path and t; return "
                                   f"Samples(latents, path=..., t=...) with one path id and one position per point.")
            return
        if self.path is None or self.t is None:
            given, missing = ("path", "t") if self.t is None else ("t", "path")
            raise AebenchError(f"Sampler '{who}' returned `{given}` without `{missing}`; a path sampler gives both, "
                               f"one entry per point.")
        n = len(self)
        for what, values in (("path", self.path), ("t", self.t)):
            if not isinstance(values, torch.Tensor) or values.ndim != 1 or values.shape[0] != n:
                shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
                raise AebenchError(f"Sampler '{who}' returned `{what}` of shape {shape} for {n} latents; give one "
                                   f"entry per point, a tensor [{n}].")
        whole = not (self.path.is_complex() or self.path.dtype == torch.bool) and (
            not self.path.is_floating_point() or bool((self.path == self.path.round()).all()))
        if not whole:
            raise AebenchError(f"Sampler '{who}' returned path ids that are not whole numbers ({self.path.dtype}); "
                               f"give each point the integer id of its path.")
        if n and int(self.path.min()) < 0:
            raise AebenchError(f"Sampler '{who}' returned a negative path id ({int(self.path.min())}); number the "
                               f"paths 0, 1, 2, ...")
        bad = ~torch.isfinite(self.t.to(torch.float64))
        if bool(bad.any()):
            first = int(torch.nonzero(bad)[0])
            raise AebenchError(f"Sampler '{who}' returned t = {float(self.t[first])} at point {first}; every point "
                               f"needs a finite position along its path.")

    def to(self, device: torch.device | str) -> "Samples":
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return Samples(self.latents.to(device), move(self.path), move(self.t))


def json_ready(value: Any) -> Any:
    """`value` with tensors and numpy scalars as plain numbers and NaN/Inf as None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_ready(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Sampler(Plugin):
    """Base class of every sampler plugin. Subclasses set `name`, `description`, `Options` and
    implement `_fit` and `_sample` (CPU, any float dtype); the base class checks and converts.

    Extras a sampler may fill in `_fit` (the runner reads them; all optional):

    - `fit_info`: what the fit learned (bandwidth, epochs, held-out likelihood ...), JSON-ready values
      recorded with the sampler's results.
    - `path_labels`: one title per path (path samplers), shown as row titles of the path figure.
    - `plot_axes`: the two latent components the scatter figure shows (default: the two most dominant).
    """

    is_path_sampler: ClassVar[bool] = False
    # Most latent points drawn per seed for the latent-space metrics (`--n-latent`); None: no cap. The runner
    # draws `latent_draws(n, n_latent)` points and decodes the first n, so never fewer than n: a cap below n
    # (0) means "exactly the decoded points". Path samplers whose first n points are not a fair subset of
    # more (an even grid along each path fills path 0 first) declare 0; a sampler whose draws are expensive
    # may declare a number. An instance may set it in `_fit` when it depends on the options.
    max_latent_draws: int | None = None

    def __init__(self, options: Any = None, **values: Any):
        super().__init__(options, **values)
        self.latent_dim: int | None = None
        self._fitted = False
        # what the fit learned (core size, bandwidth, epochs, held-out likelihood ...): JSON-ready values the
        # runner records with the sampler's results; samplers fill it in `_fit`
        self.fit_info: dict[str, Any] = {}
        self.path_labels: list[str] | None = None
        self.plot_axes: tuple[int, int] | None = None

    # -- public API -----------------------------------------------------------------------
    def fit(self, train_latents: torch.Tensor, stats: LatentStats) -> "Sampler":
        """Learn what the sampler needs from the encoded training set."""
        if train_latents.ndim != 2:
            raise AebenchError(f"{self.name}: training latents must be [n, N], got shape {tuple(train_latents.shape)}.")
        if not torch.isfinite(train_latents).all():
            raise AebenchError(f"{self.name}: training latents contain NaN or Inf; re-encode the data set.")
        if train_latents.shape[1] != stats.latent_dim:
            raise AebenchError(
                f"{self.name}: training latents have N={train_latents.shape[1]} but the statistics have "
                f"N={stats.latent_dim}; recompute the statistics with `aebench stats`."
            )
        self.latent_dim = int(train_latents.shape[1])
        self._fit(train_latents.detach().to("cpu", torch.float64), stats)
        self.fit_info = json_ready(self.fit_info)
        self._fitted = True
        return self

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Samples:
        """Draw `n` latent vectors as float32 on `device`."""
        if not self._fitted:
            raise NotFittedError(f"Sampler '{self.name}' was used before fit(); call fit(train_latents, stats) first.")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise OptionError(f"{self.name}: the number of samples must be a non-negative integer, got {n!r}.")
        out = self._sample(n, generator)
        if isinstance(out, torch.Tensor):
            out = Samples(out)
        if out.latents.shape != (n, self.latent_dim):
            raise AebenchError(
                f"Sampler '{self.name}' returned shape {tuple(out.latents.shape)}, expected ({n}, {self.latent_dim})."
            )
        out.check_path(self.name, self.is_path_sampler)
        out = Samples(
            out.latents.to(torch.float32),
            None if out.path is None else out.path.to(torch.int64),
            None if out.t is None else out.t.to(torch.float32),
        )
        return out.to(device)

    def latent_draws(self, n: int, n_latent: int) -> int:
        """How many points to draw for a cell that decodes `n` and asks `n_latent` for its latent metrics:
        n_latent capped at `max_latent_draws`, never below n."""
        cap = self.max_latent_draws
        wanted = max(n, n_latent)
        return wanted if cap is None else max(n, min(wanted, int(cap)))

    def check_space(self, latent_dim: int, n_train: int) -> None:
        """Raise OptionError when the options cannot work in a latent space of `latent_dim` components
        with `n_train` training latents (an axis beyond N, k above N, an index beyond the training set).
        The runner calls it before any decoding, as soon as both numbers are known; `fit` repeats the
        check. The default accepts everything."""

    @property
    def fitted(self) -> bool:
        return self._fitted

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this sampler cannot run here (an optional dependency missing, with the install hint), or None.
        `aebench samplers` lists unavailable samplers with the reason; fitting one raises it."""
        return None

    # -- for subclasses --------------------------------------------------------------------
    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        """Default: nothing to learn beyond what `stats` holds."""
        self.stats = stats

    def _sample(self, n: int, generator: torch.Generator) -> Samples | torch.Tensor:
        raise NotImplementedError


def available_samplers() -> list[str]:
    """Registered sampler names that can run here (none of their optional dependencies missing)."""
    from aebench.plugins import get_registry

    registry = get_registry("sampler")
    return [name for name in registry.names() if registry.get(name).unavailable_reason() is None]
