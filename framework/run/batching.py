"""Batch sizes and the out-of-memory back-off, for decoding (the AE) and feature extraction.

The two get separate sizes because their memory differs by orders of magnitude: a conv AE decodes a
64x64 image with well under 1 MiB of activations, while Inception resizes every image to 299x299 and
keeps about 15 MiB of activations per image alive at its peak. One shared size either starved the AE or
made Inception's batch the largest thing in the process (128 images: about 2 GB).

Rule for the feature batch size when none is given: the run's batch memory (`batch_memory`, default
256 MiB on a CPU and a quarter of the GPU's memory on CUDA) divided by the extractor's
`memory_per_image_mb`, between 1 and `MAX_FEATURE_BATCH`. Inception on a CPU thus gets 16 images per
batch, which was measured slightly faster per image than 32 on a 2-core CPU. A run's peak resident memory is then about the interpreter
and torch (~0.3 GB), the networks, the data set and latents, this batch memory, and what the C
allocator keeps from earlier batches (as much again, measured). Batches never go below 16 images
where there are that many (`aebench.feature_extractor.MIN_BATCH`: the numbers stay the same).

Out of memory in a batch (CUDA's OutOfMemoryError, or the CPU allocator refusing a block) halves the
batch size and retries, down to one image; the smaller size is kept for the rest of the run.
"""

from __future__ import annotations

import re
from typing import Callable, TypeVar

import torch

from aebench.errors import OptionError

T = TypeVar("T")

DEFAULT_BATCH_MEMORY_CPU_MB = 256
MAX_FEATURE_BATCH = 512
DEFAULT_AE_BATCH = {"cpu": 128, "cuda": 1024}
_UNITS = {"": 1.0, "m": 1.0, "mb": 1.0, "mib": 1.0, "g": 1024.0, "gb": 1024.0, "gib": 1024.0, "k": 1 / 1024,
          "kb": 1 / 1024, "kib": 1 / 1024}


def parse_memory_mb(value: int | float | str) -> float:
    """'512M', '1.5G', '2GB', 800 (MiB) -> MiB."""
    if isinstance(value, bool):
        raise OptionError(f"batch memory must be a size like 512M or 2G, got {value!r}.")
    if isinstance(value, (int, float)):
        mb = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise OptionError(f"batch memory {value!r} is not a size; write e.g. 512M, 1.5G or 800 (MiB).")
        mb = float(match.group(1)) * _UNITS[unit]
    if not mb > 0:
        raise OptionError(f"batch memory must be positive, got {value!r}; write e.g. 512M.")
    return mb


def batch_memory_mb(setting: int | float | str | None, device: torch.device) -> float:
    """The batch memory budget in MiB: the setting, else the device's default (see module doc)."""
    if setting is not None:
        return parse_memory_mb(setting)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 4 / 2**20
    return float(DEFAULT_BATCH_MEMORY_CPU_MB)


def feature_batch_size(memory_per_image_mb: float, device: torch.device, *, given: int | None = None,
                       batch_memory: int | float | str | None = None) -> int:
    """Images per feature-extraction batch: `given`, else batch memory / memory per image."""
    if given is not None:
        return int(given)
    budget = batch_memory_mb(batch_memory, device)
    return max(1, min(MAX_FEATURE_BATCH, int(budget // max(memory_per_image_mb, 1e-6))))


def ae_batch_size(device: torch.device, given: int | None = None) -> int:
    """Latents/images per decode or encode batch: `given`, else 128 on a CPU and 1024 on a GPU."""
    return int(given) if given is not None else DEFAULT_AE_BATCH.get(device.type, 128)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or a RuntimeError from an allocator that could not get a block."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text
        or "cannot allocate memory" in text)


def with_backoff(work: Callable[[int], T], batch_size: int, *, what: str = "batch",
                 on_backoff: Callable[[int, BaseException], None] | None = None) -> tuple[T, int]:
    """Run `work(batch_size)`; on out of memory halve the size and retry, down to 1. Returns the result
    and the batch size that worked. Other errors (and running out at size 1) propagate."""
    size = max(1, int(batch_size))
    while True:
        try:
            return work(size), size
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
            size = max(1, size // 2)
            if on_backoff is not None:
                on_backoff(size, exc)
        # outside the except clause: the failed attempt's tensors (held by the traceback) are gone now
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
