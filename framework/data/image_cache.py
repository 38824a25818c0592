"""A memory-mappable cache of decoded images, so JPEGs, PNGs and IDX files are decoded once.

Each entry is one `.npy` file under `<cache_dir>/images/<key>.npy`, written to a temporary name and
renamed when complete (a crashed run leaves no half-written entry), with `<key>.json` beside it holding
its size and sha256. Reading maps the file instead of loading it, so a 200k-image CelebA array costs
page cache, not process memory; the checksum is read once per run (about 1 s per GB), and an entry
that fails it, or its size, is rebuilt with a warning, never used. The file is allocated in full
before it is filled: on a full disk that fails with a clear error instead of a SIGBUS (the mapped
pages of a sparse file that cannot grow kill the process).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from aebench.errors import DataError, is_disk_full
from aebench.infra.cache_entries import DamagedEntry, OutdatedEntry, load_or_compute
from aebench.infra.hashing import file_sha256
from aebench.infra.io import atomic_path, write_json_atomic

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


def checksum_path(path: Path) -> Path:
    """The JSON beside a cache entry that records its size and sha256."""
    return path.with_suffix(".json")


def _read_verified(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The entry at `path`, mapped, after checking its recorded size and sha256; DamagedEntry otherwise."""
    import json

    if not checksum_path(path).exists():
        raise OutdatedEntry("no checksum file")
    try:
        record = json.loads(checksum_path(path).read_text(encoding="utf-8"))
        size, digest = int(record["bytes"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DamagedEntry(f"its checksum file {checksum_path(path).name} is unreadable") from None
    actual = path.stat().st_size
    if actual != size:
        raise DamagedEntry(f"{actual} bytes, not the {size} it was written with")
    if file_sha256(path) != digest:
        raise DamagedEntry("its bytes fail their sha256 checksum")
    cached = open_cached(path, shape)
    if cached is None:
        raise DamagedEntry(f"not a uint8 array of shape {tuple(shape)}")
    return cached


def _allocate(path: Path) -> None:
    """Reserve every block of the (sparse) file at `path` now, so a full disk fails here with ENOSPC."""
    import os

    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - macOS, Windows
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        # file systems that cannot preallocate (some network mounts) are filled as before
    finally:
        os.close(fd)


def cached_images(cache_dir: str | Path, key: str, shape: tuple[int, int, int, int],
                  fill: Callable[[np.ndarray], None]) -> torch.Tensor:
    """Return the uint8 images [n, c, h, w] cached under `key`, calling `fill(out)` to decode them once.

    `fill` writes into a memory-mapped array of `shape` in place, so memory stays bounded however large
    the data set. A damaged cache entry is rebuilt with a warning.
    """
    path = cache_path(cache_dir, key)

    def make() -> torch.Tensor:
        try:
            with atomic_path(path) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=tuple(shape))
                _allocate(tmp)
                fill(out)
                out.flush()
                del out
                write_json_atomic(checksum_path(path), {"bytes": tmp.stat().st_size, "sha256": file_sha256(tmp),
                                                        "shape": list(shape)})
        except OSError as exc:
            if is_disk_full(exc):
                raise
            raise DataError(
                f"Cannot write the image cache {path} ({exc.strerror or exc}); free disk space or set "
                f"AEBENCH_CACHE_DIR / --cache-dir to a writable folder."
            ) from None
        cached = open_cached(path, shape)
        if cached is None:  # pragma: no cover - only if the file system lies
            raise DataError(f"The image cache {path} could not be read back; delete it and retry.")
        return cached

    images, _ = load_or_compute(path, lambda p: _read_verified(p, shape), make, "decoded images")
    return images
