"""Feature extractors map images to feature vectors for image metrics (FID, KID, PRDC).

`build(device)` returns an `nn.Module` that takes uint8 images [n, c, h, w] (grey or RGB, any size)
and returns float32 features [n, num_features]; it does its own channel repeat, resizing and scaling.
`judge` says whether the extractor has been validated to rank samplers (see README): only judges are
offered to users as the default.

An extractor whose network depends on the data set (the `domain` judge, a classifier trained on the data
set's own labels) gets it through `bind(context)`, which a run calls once before `identity()` and
`build()`; extractors that need nothing (Inception, fast) inherit the no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

from aebench.plugin_base import Plugin

if TYPE_CHECKING:
    from aebench.dataset import ImageDataset


@dataclass
class ExtractorContext:
    """What a run knows when it sets up an extractor: its data set (None with latent files only), the cache
    folder (for networks trained on first use), the device, and whether to stay quiet."""

    dataset: "ImageDataset | None"
    cache_dir: Path
    device: torch.device
    quiet: bool = True


class FeatureExtractor(Plugin):
    num_features: ClassVar[int] = 0
    judge: ClassVar[bool] = False
    # working memory of one image in a forward pass (its converted input and the activations alive at
    # the peak), in MiB: the default feature batch size is the run's batch memory divided by this
    memory_per_image_mb: ClassVar[float] = 1.0

    def bind(self, context: ExtractorContext) -> None:
        """Resolve what the network depends on (the data set's judge, say) before `identity` and `build`.
        Called once per run; the bound instance travels to remote workers, so keep what `build` needs on it."""

    def build(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        raise NotImplementedError

    def identity(self) -> str:
        """Names the exact network (weights file checksum etc.) for caches and provenance."""
        return self.name

    def provenance(self) -> dict[str, Any]:
        """Facts about the network beyond its identity (a trained judge's accuracy, say), recorded in the
        results' `features.provenance`; {} when there is nothing to add."""
        return {}


@torch.inference_mode()
def extract_features(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 64,
                     device: torch.device | str = "cpu",
                     progress: Callable[[int], None] | None = None, *, precision: str = "fp32",
                     channels_last: bool = False) -> torch.Tensor:
    """Features of uint8 images [n, c, h, w], in batches on `device`; returns float32 [n, d] ON `device`
    (metrics run where the features are: at 50k x 2048 a trip to the CPU would cost more than Inception).

    Memory: one batch of `batch_size` images is converted (to 299x299 floats for Inception) and run at a
    time; the images themselves stay uint8 on the CPU. On a GPU, batches go through pinned memory.
    `precision` ('fp32' default with TF32 off, 'tf32', 'bf16'; see `aebench.infra.device.precision_mode`) and
    `channels_last` trade exact float32 numbers for speed; only compare scores made with the same
    settings."""
    from aebench.infra.device import precision_mode, to_device, use_channels_last

    if batch_size < 1:
        from aebench.errors import OptionError

        raise OptionError(f"feature batch size must be >= 1, got {batch_size}; pass a positive batch size.")
    if channels_last:
        use_channels_last(module)
    out: torch.Tensor | None = None
    n = images.shape[0]
    with precision_mode(device, precision):
        for start, stop in even_batches(n, batch_size):
            batch = to_device(images[start:stop], device)
            feats = module(batch).float()
            if out is None:  # preallocated: no list of batches and no concatenated copy at the end
                out = torch.empty(n, feats.shape[1], dtype=torch.float32, device=feats.device)
            out[start:stop] = feats
            del batch, feats
            if progress is not None:
                progress(stop - start)
    if out is None:
        return torch.empty(0, getattr(module, "num_features", 0), device=device)
    return out


# PyTorch runs 1x1 convolutions through oneDNN only for batches of at least 16 images (or with more
# than one thread); smaller batches on one thread take another kernel whose float rounding differs in
# the 6th digit. Batches of at least this many images keep features independent of the batch size and
# of the thread count.
MIN_BATCH = 16


def even_batches(n: int, batch_size: int, min_batch: int = MIN_BATCH) -> list[tuple[int, int]]:
    """[start, stop) of batches of near-equal size covering n images: ceil(n / batch_size) of them, or
    fewer when that would make a batch smaller than min(min_batch, batch_size) (then a batch may
    exceed `batch_size`, by less than `min_batch`). No small remainder batch: see MIN_BATCH."""
    if n <= 0:
        return []
    count = -(-n // batch_size)
    smallest = min(min_batch, batch_size)
    if count > 1 and n // count < smallest:
        count = max(1, n // smallest)
    base, extra = divmod(n, count)
    bounds, start = [], 0
    for i in range(count):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def check_images(images: torch.Tensor, who: str) -> None:
    """Raise DataError unless `images` is uint8 [n, c, h, w] with 1 (grey) or 3 (RGB) channels."""
    from aebench.errors import DataError

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"{who} takes uint8 images [n, c, h, w], got {got}; convert floats in [0, 1] with "
                        f"(x.clamp(0, 1) * 255).round().to(torch.uint8).")
    if images.shape[1] not in (1, 3):
        raise DataError(f"{who} takes 1 (grey) or 3 (RGB) channels, got {images.shape[1]}; drop alpha or extra channels.")
