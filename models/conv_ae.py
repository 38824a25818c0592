"""The built-in architecture `conv_ae`: a plain (deterministic) convolutional autoencoder.

Encoder: k stride-2 4x4 convolutions (each halves the image side), flatten, linear to N latents.
Decoder: the mirror image, a linear layer then k stride-2 4x4 transposed convolutions, sigmoid
output in [0, 1]. This is the model family of the source blog series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from aebench.dataset import default_latent_dim
from aebench.errors import OptionError
from aebench.hookspecs import hookimpl
from aebench.model import Architecture
from aebench.options import option

DEFAULT_CHANNELS = (32, 64, 128, 256)
MIN_FEATURE_SIDE = 4  # config_for stops halving before the feature map gets smaller than this


@dataclass(frozen=True)
class ConvAEConfig:
    """Shape of a ConvAutoencoder; stored in every checkpoint so it can be rebuilt without pickles."""

    in_channels: int = option(1, "image channels (1 grey, 3 colour)", min=1)
    image_size: int = option(64, "image side in pixels (square images); divisible by 2**len(channels)", min=2)
    channels: tuple[int, ...] = option(DEFAULT_CHANNELS, "channels of the stride-2 conv layers, encoder order", min=1)
    latent_dim: int = option(64, "number of latent components N", min=1)
    norm: Literal["batch", "group", "none"] = option("batch", "normalisation after each hidden conv layer")
    activation: Literal["leaky_relu", "relu"] = option("leaky_relu", "hidden activation")

    def __post_init__(self) -> None:
        if not self.channels:
            raise OptionError("conv_ae: channels is empty; give at least one layer, e.g. channels=32,64,128,256.")
        factor = 2 ** len(self.channels)
        if self.image_size % factor:
            raise OptionError(
                f"conv_ae: image_size {self.image_size} is not divisible by 2**{len(self.channels)} = {factor} "
                f"(one halving per conv layer); use an image size that is a multiple of {factor} or fewer channels."
            )

    @property
    def feature_side(self) -> int:
        return self.image_size // 2 ** len(self.channels)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


def _act(kind: str) -> nn.Module:
    return nn.LeakyReLU(0.2) if kind == "leaky_relu" else nn.ReLU()


class ConvAutoencoder(nn.Module):
    """encode(images float [0,1] [n,c,s,s]) -> [n,N]; decode([n,N]) -> images float [0,1]."""

    architecture = "conv_ae"

    def __init__(self, config: ConvAEConfig):
        super().__init__()
        self.config = config
        self.latent_dim = int(config.latent_dim)
        self.image_shape = (int(config.in_channels), int(config.image_size), int(config.image_size))
        bias = config.norm == "none"
        side, last = config.feature_side, config.channels[-1]
        self._hidden_shape = (last, side, side)

        layers: list[nn.Module] = []
        prev = config.in_channels
        for ch in config.channels:
            layers += [nn.Conv2d(prev, ch, 4, 2, 1, bias=bias), _norm(config.norm, ch), _act(config.activation)]
            prev = ch
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(last * side * side, config.latent_dim))

        self.project = nn.Sequential(nn.Linear(config.latent_dim, last * side * side), _act(config.activation))
        layers = []
        for ch in reversed(config.channels[:-1]):
            layers += [nn.ConvTranspose2d(prev, ch, 4, 2, 1, bias=bias), _norm(config.norm, ch), _act(config.activation)]
            prev = ch
        layers += [nn.ConvTranspose2d(prev, config.in_channels, 4, 2, 1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        hidden = self.project(latents).view(latents.shape[0], *self._hidden_shape)
        return self.decoder(hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))


class ConvAE(Architecture):
    name = "conv_ae"
    description = "Convolutional autoencoder: stride-2 4x4 convs -> linear -> N latents, mirrored decoder, sigmoid output."
    Options = ConvAEConfig

    def build(self) -> ConvAutoencoder:
        return ConvAutoencoder(self.options)

    @classmethod
    def config_for(cls, image_shape: tuple[int, int, int], latent_dim: int | None = None,
                   dataset_name: str | None = None, **extra: Any) -> dict[str, Any]:
        """Options for a data set's images: as many halvings (up to len(DEFAULT_CHANNELS)) as the image
        side allows while the smallest feature map stays at least MIN_FEATURE_SIDE pixels wide."""
        c, h, w = (int(v) for v in image_shape)
        if h != w:
            raise OptionError(
                f"conv_ae needs square images, got {h}x{w}; set the data set's image size option to a square size."
            )
        layers = 0
        while (layers < len(DEFAULT_CHANNELS) and h % 2 ** (layers + 1) == 0
               and h // 2 ** (layers + 1) >= MIN_FEATURE_SIDE):
            layers += 1
        if layers == 0:
            raise OptionError(
                f"conv_ae cannot halve a {h}x{w} image; use an even image size of at least {2 * MIN_FEATURE_SIDE}."
            )
        if latent_dim is None:
            latent_dim = default_latent_dim(dataset_name or "")
        config = {"in_channels": c, "image_size": h, "channels": DEFAULT_CHANNELS[:layers], "latent_dim": int(latent_dim)}
        config.update(extra)
        return config


@hookimpl
def register_architectures(register):
    register(ConvAE)
