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
    path: torch.Tensor | None = None  # [n] int64: which path the point lies on
    t: torch.Tensor | None = None  # [n] float32: position along that path (0 = start, 1 = end)

    def __len__(self) -> int:
        return int(self.latents.shape[0])

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
        out = Samples(
            out.latents.to(torch.float32),
            None if out.path is None else out.path.to(torch.int64),
            None if out.t is None else out.t.to(torch.float32),
        )
        return out.to(device)

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
