"""The domain judge's network: a small CNN classifier of a data set's own classes, at its native resolution.

Why: every image metric otherwise goes through Inception-v3 (ImageNet), fed 28x28 clothing or 64x64 grey
faces upscaled to 299x299. The field scores MNIST-like generators with a classifier trained on the data
set itself; this is that classifier. Its penultimate layer (`features`) is the `domain` extractor's
feature space, a second judge to set beside Inception.

Shape: blocks of [3x3 stride-2 conv, batch norm, ReLU] (each halves the side), flatten, a linear layer
to `width` features (ReLU: the penultimate layer), dropout while training, a linear layer to the class
logits. `config_for` picks as many blocks as keep the last feature map at least 4 pixels wide. Strided
convolutions instead of conv + max pool: 3.7x less CPU time per training step at 64x64 (measured), which
keeps training to a minute or two on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aebench.errors import OptionError
from aebench.options import build_options, option

ARCHITECTURE = "judge_cnn"
MAX_BLOCKS = 4
LAST_CHANNELS = 128  # channels double block by block up to this in the last one
MIN_FEATURE_SIDE = 4
DEFAULT_WIDTH = 128


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of a JudgeClassifier; stored in the judge's sidecar so it can be rebuilt without pickles."""

    in_channels: int = option(1, "image channels (1 grey, 3 colour)", min=1)
    image_size: int = option(32, "image side in pixels (square images); divisible by 2**len(channels)", min=2)
    num_classes: int = option(10, "classes of the data set's labels", min=2)
    channels: tuple[int, ...] = option((32, 64, 128), "channels of the conv blocks (each halves the side)", min=1)
    stem: int = option(0, "channels of a stride-1 3x3 conv before the blocks (0 = none)", min=0)
    width: int = option(DEFAULT_WIDTH, "penultimate features: the `domain` extractor's feature width", min=2)
    dropout: float = option(0.3, "dropout before the class layer while training", min=0.0, max=0.9)

    def __post_init__(self) -> None:
        if not self.channels:
            raise OptionError("judge: channels is empty; give at least one block, e.g. channels=16,32,64.")
        factor = 2 ** len(self.channels)
        if self.image_size % factor:
            raise OptionError(f"judge: image_size {self.image_size} is not divisible by 2**{len(self.channels)} = "
                              f"{factor} (one halving per block); use fewer channels.")

    @property
    def feature_side(self) -> int:
        return self.image_size // 2 ** len(self.channels)


class JudgeClassifier(nn.Module):
    """forward(images float [0, 1] [n, c, s, s]) -> class logits [n, k]; features(...) -> [n, width]."""

    architecture = ARCHITECTURE

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        self.num_features = int(config.width)
        self.image_shape = (int(config.in_channels), int(config.image_size), int(config.image_size))
        layers: list[nn.Module] = []
        prev = config.in_channels
        if config.stem:
            layers += [nn.Conv2d(prev, config.stem, 3, padding=1, bias=False), nn.BatchNorm2d(config.stem),
                       nn.ReLU(inplace=True)]
            prev = config.stem
        for ch in config.channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(ch),
                       nn.ReLU(inplace=True)]
            prev = ch
        side = config.feature_side
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(prev * side * side, config.width),
                                  nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.width, config.num_classes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features of float images in [0, 1]."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


def config_for(image_shape: tuple[int, int, int], num_classes: int, **extra: Any) -> ClassifierConfig:
    """A config that fits a data set's images: as many blocks (up to 4) as keep the last map >= 4 px wide,
    channels doubling up to 128 in the last block (32x32: 32, 64, 128; 64x64: 16, 32, 64, 128), so a
    step costs about the same at either size. `extra` (e.g. `--set judge.width=64`) overrides any field."""
    c, h, w = (int(v) for v in image_shape)
    if h != w:
        raise OptionError(f"The domain judge needs square images, got {h}x{w}; set the data set's size option.")
    blocks = 0
    while blocks < MAX_BLOCKS and h % 2 ** (blocks + 1) == 0 and h // 2 ** (blocks + 1) >= MIN_FEATURE_SIDE:
        blocks += 1
    if blocks == 0:
        raise OptionError(f"The domain judge cannot halve a {h}x{w} image; use an even size of at least 8.")
    values: dict[str, Any] = {"in_channels": c, "image_size": h, "num_classes": int(num_classes),
                              "channels": tuple(LAST_CHANNELS // 2 ** (blocks - 1 - i) for i in range(blocks))}
    values.update(extra)
    return build_options(ClassifierConfig, values, owner="judge")


def build_classifier(config: ClassifierConfig | dict[str, Any]) -> JudgeClassifier:
    """The untrained network for `config` (a dict as stored in a sidecar, or the dataclass)."""
    checked: ClassifierConfig = (config if isinstance(config, ClassifierConfig)
                                 else build_options(ClassifierConfig, dict(config), owner="judge"))
    return JudgeClassifier(checked)
