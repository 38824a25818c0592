"""Models: the autoencoder interface aebench needs, and the plugin base for architectures.

Any object with `encode(images) -> latents`, `decode(latents) -> images` and `latent_dim` can be
judged; images are float in [0, 1], [n, c, h, w]. aebench's own architectures are `nn.Module`s built
by an `Architecture` plugin from a typed config.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from aebench.plugin_base import Plugin


@runtime_checkable
class Autoencoder(Protocol):
    latent_dim: int

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


class Architecture(Plugin):
    """Base of architecture plugins: `build()` returns an untrained `nn.Module` autoencoder whose
    shape is given by `self.options` (its config dataclass, stored in every checkpoint)."""

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def config_for(cls, image_shape: tuple[int, int, int], latent_dim: int | None = None, **extra: Any) -> dict[str, Any]:
        """Options that fit a data set's image shape (subclasses may override)."""
        raise NotImplementedError
