"""An architecture plugin: a small fully connected autoencoder, trainable with `aebench train --arch mlp_ae`.

    aebench --plugin docs/examples/architecture_plugin.py train --arch mlp_ae --set dataset.size=16
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aebench import Architecture, hookimpl, option


@dataclass(frozen=True)
class MLPConfig:
    """The whole shape of the model: stored in the checkpoint so it can be rebuilt without pickles."""

    in_channels: int = option(1, "image channels", min=1)
    image_size: int = option(16, "image side in pixels", min=2)
    hidden: int = option(128, "width of the hidden layer", min=1)
    latent_dim: int = option(8, "number of latent components N", min=1)


class MLPAutoencoder(nn.Module):
    architecture = "mlp_ae"  # the checkpoint sidecar names the architecture that rebuilds it

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.image_shape = (config.in_channels, config.image_size, config.image_size)
        pixels = config.in_channels * config.image_size ** 2
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, config.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, pixels), nn.Sigmoid())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents).view(latents.shape[0], *self.image_shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))


class MLPAE(Architecture):
    name = "mlp_ae"
    description = "Fully connected autoencoder: pixels -> hidden -> N latents, mirrored decoder."
    Options = MLPConfig

    def build(self) -> MLPAutoencoder:
        return MLPAutoencoder(self.options)

    @classmethod
    def config_for(cls, image_shape: tuple[int, int, int], latent_dim: int | None = None, **extra: Any) -> dict[str, Any]:
        """Options that fit the data set's images; `extra` holds --set model.OPTION values (and dataset_name)."""
        extra.pop("dataset_name", None)
        c, h, _ = image_shape
        return {"in_channels": c, "image_size": h, **({"latent_dim": latent_dim} if latent_dim else {}), **extra}


@hookimpl
def register_architectures(register):
    register(MLPAE)
