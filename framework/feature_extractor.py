"""Feature extractors map images to feature vectors for image metrics (FID, KID, PRDC).

`build(device)` returns an `nn.Module` that takes uint8 images [n, c, h, w] (grey or RGB, any size)
and returns float32 features [n, num_features]; it does its own channel repeat, resizing and scaling.
`judge` says whether the extractor has been validated to rank samplers (see README): only judges are
offered to users as the default.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch

from aebench.plugin_base import Plugin


class FeatureExtractor(Plugin):
    num_features: ClassVar[int] = 0
    judge: ClassVar[bool] = False

    def build(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        raise NotImplementedError

    def identity(self) -> str:
        """Names the exact network (weights file checksum etc.) for caches and provenance."""
        return self.name


@torch.inference_mode()
def extract_features(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 64,
                     device: torch.device | str = "cpu",
                     progress: Callable[[int], None] | None = None, *, precision: str = "fp32",
                     channels_last: bool = False) -> torch.Tensor:
    """Features of uint8 images [n, c, h, w], in batches on `device`; returns float32 on the CPU.

    On a GPU: batches go through pinned memory, features stay on the device until the end (one copy
    back). `precision` ('fp32' default, 'bf16', 'fp16') and `channels_last` trade exact float32
    numbers for speed; only compare scores made with the same settings."""
    from aebench.device import autocast, to_device, use_channels_last

    if channels_last:
        use_channels_last(module)
    out = []
    with autocast(device, precision):
        for start in range(0, images.shape[0], batch_size):
            batch = to_device(images[start:start + batch_size], device)
            out.append(module(batch).float())
            if progress is not None:
                progress(batch.shape[0])
    if not out:
        return torch.empty(0, getattr(module, "num_features", 0))
    return torch.cat(out).cpu()


def check_images(images: torch.Tensor, who: str) -> None:
    """Raise DataError unless `images` is uint8 [n, c, h, w] with 1 (grey) or 3 (RGB) channels."""
    from aebench.errors import DataError

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"{who} takes uint8 images [n, c, h, w], got {got}; convert floats in [0, 1] with (x.clamp(0, 1) * 255).round().to(torch.uint8).")
    if images.shape[1] not in (1, 3):
        raise DataError(f"{who} takes 1 (grey) or 3 (RGB) channels, got {images.shape[1]}; drop alpha or extra channels.")
