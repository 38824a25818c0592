"""A memory-mappable cache of decoded images, so JPEGs, PNGs and IDX files are decoded once.

Each entry is one `.npy` file under `<cache_dir>/images/<key>.npy`, written to a temporary name and
renamed when complete (a crashed run leaves no half-written entry). Reading maps the file instead of
loading it, so a 200k-image CelebA array costs page cache, not process memory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from aebench.errors import DataError
from aebench.infra.io import atomic_path

CACHE_SUBDIR = "images"


def cache_key(parts: Any) -> str:
    """sha256 of a JSON-able description of everything the decoded pixels depend on."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def cache_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / CACHE_SUBDIR / f"{key}.npy"


def open_cached(path: Path, shape: tuple[int, ...] | None = None) -> torch.Tensor | None:
    """The cached uint8 array at `path` as a tensor sharing the mapped file, or None if absent or unusable.

    The map is copy-on-write (`mmap_mode="c"`): the tensor is writable without any chance of writing
    back into the cache file, and torch does not warn about read-only memory.
    """
    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if array.dtype != np.uint8 or array.ndim != 4 or (shape is not None and tuple(array.shape) != tuple(shape)):
        return None
    return torch.from_numpy(array)


def cached_images(cache_dir: str | Path, key: str, shape: tuple[int, int, int, int],
                  fill: Callable[[np.ndarray], None]) -> torch.Tensor:
    """Return the uint8 images [n, c, h, w] cached under `key`, calling `fill(out)` to decode them once.

    `fill` writes into a memory-mapped array of `shape` in place, so memory stays bounded however large
    the data set. An unreadable or mis-shaped cache entry is rebuilt.
    """
    path = cache_path(cache_dir, key)
    cached = open_cached(path, shape)
    if cached is not None:
        return cached
    try:
        with atomic_path(path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=tuple(shape))
            fill(out)
            out.flush()
            del out
    except OSError as exc:
        raise DataError(
            f"Cannot write the image cache {path} ({exc.strerror or exc}); free disk space or set "
            f"AEBENCH_CACHE_DIR / --cache-dir to a writable folder."
        ) from None
    cached = open_cached(path, shape)
    if cached is None:  # pragma: no cover - only if the file system lies
        raise DataError(f"The image cache {path} could not be read back; delete it and retry.")
    return cached
