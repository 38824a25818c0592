"""A feature extractor plugin: `histogram`, a 32-bin grey-level histogram per image (not a judge).

    aebench --plugin docs/examples/extractor_plugin.py run --sampler gaussian --features histogram
"""

from __future__ import annotations

import torch
from torch import nn

from aebench import FeatureExtractor, hookimpl

BINS = 32


class GreyHistogram(nn.Module):
    """uint8 [n, c, h, w] -> float32 [n, BINS]: the share of pixels in each grey-level bin."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        grey = images.float().mean(1).flatten(1)  # [n, h*w] in [0, 255]
        bins = (grey * BINS / 256).long().clamp_(0, BINS - 1)
        counts = torch.zeros(len(images), BINS, device=images.device).scatter_add_(1, bins, torch.ones_like(grey))
        return counts / grey.shape[1]


class HistogramExtractor(FeatureExtractor):
    name = "histogram"
    description = "NOT a judge: a 32-bin grey-level histogram per image."
    num_features = BINS
    judge = False  # only validated extractors are offered as defaults and reported as FID

    def build(self, device: torch.device | str = "cpu") -> nn.Module:
        return GreyHistogram().to(device).eval()


@hookimpl
def register_feature_extractors(register):
    register(HistogramExtractor)
