"""`fast`: downsampled grey pixels as features, for tests and smoke runs (NOT a validated judge).

Transparent and deterministic: no weights, no randomness, the same numbers on every machine. Pixel
space does not rank samplers the way Inception does (measured: cheap extractors broke the
published order of samplers), so numbers made with it must never be reported as FID.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aebench import hookimpl
from aebench.feature_extractor import FeatureExtractor, check_images
from aebench.options import option

# ITU-R BT.601 luma, as PIL's convert("L"): RGB and grey versions of one image get the same features
LUMA = (0.299, 0.587, 0.114)


class GreyPixels(nn.Module):
    """uint8 [n, 1|3, h, w] -> float32 [n, size*size]: luma in [0, 1], area-averaged to size x size."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.num_features = size * size
        self.register_buffer("luma", torch.tensor(LUMA).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "the fast extractor")
        x = images.float() / 255.0
        if x.shape[1] == 3:
            x = (x * self.luma.to(x.device)).sum(1, keepdim=True)  # type: ignore[operator]  # a buffer
        return F.adaptive_avg_pool2d(x, self.size).flatten(1)


class FastPixels(FeatureExtractor):
    name = "fast"
    description = (
        "NOT a validated judge: grey pixels area-averaged to size x size (default 16x16, 256-d), for tests and "
        "smoke runs only; "
        "use 'inception' for numbers you report."
    )
    num_features = 256
    judge = False
    memory_per_image_mb = 0.1  # one float copy of the image

    @dataclass(frozen=True)
    class Options:
        size: int = option(16, "side of the downsampled grey image; features = size * size", min=2, max=64)

    def __init__(self, options=None, **values):
        super().__init__(options, **values)
        self.num_features = self.options.size ** 2  # type: ignore[misc]  # depends on the option

    def build(self, device: torch.device | str = "cpu") -> nn.Module:
        return GreyPixels(self.options.size).to(device).eval()

    def identity(self) -> str:
        s = self.options.size
        return f"fast:grey-area-{s}x{s}:v1"


@hookimpl
def register_feature_extractors(register):
    register(FastPixels)
