"""A data set plugin: `stripes`, synthetic 16x16 grey images of stripes at random angles (offline).

    aebench --plugin docs/examples/dataset_plugin.py train --dataset stripes --arch conv_ae
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from aebench import DatasetSource, ImageDataset, hookimpl, option


@dataclass(frozen=True)
class StripesOptions:
    count: int = option(400, "number of images", min=10)
    size: int = option(16, "image side in pixels", min=4)


class Stripes(DatasetSource):
    name = "stripes"
    description = "Synthetic grey stripes at random angles and frequencies (no files needed)."
    Options = StripesOptions

    def load(self, cache_dir: Path) -> ImageDataset:
        g = torch.Generator().manual_seed(0)  # the data and its split are the same on every machine
        n, s = self.options.count, self.options.size
        angle = torch.rand(n, 1, 1, generator=g) * math.pi
        freq = 1 + torch.rand(n, 1, 1, generator=g) * 3
        y, x = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
        wave = torch.sin(2 * math.pi * freq * (x * torch.cos(angle) + y * torch.sin(angle)))
        images = ((wave + 1) * 127.5).round().to(torch.uint8).unsqueeze(1)  # uint8 [n, 1, s, s]
        order = torch.randperm(n, generator=g)
        cut = int(n * 0.8)
        return ImageDataset(self.name, images, train_index=order[:cut], heldout_index=order[cut:],
                            options={"count": n, "size": s}, source="generated")


@hookimpl
def register_datasets(register):
    register(Stripes)
