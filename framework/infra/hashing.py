"""sha256 names for files and tensors: cache keys, checksums and provenance all hash the same way."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch


def file_sha256(path: str | Path, *, cached: bool = False) -> str:
    """sha256 of a file's bytes. `cached=True` reuses the answer for the same (path, size, mtime) in this
    process (large read-only weights); checksums that guard against changed files read the bytes again."""
    p = Path(path)
    if cached:
        st = p.stat()
        return _cached_file_sha256(str(p), st.st_size, st.st_mtime_ns)
    return _read_sha256(p)


def _read_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _cached_file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return _read_sha256(Path(path))


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes, any dtype (bfloat16 too) and any shape (its dtype and shape are the caller's
    to include where they matter): the one tensor checksum of cache entries, cache keys and provenance."""
    data = tensor.detach().cpu().contiguous()
    return hashlib.sha256(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """One sha256 over named tensors (names, dtypes, shapes and bytes, in name order): the checksum a
    multi-tensor cache file carries in its metadata."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return h.hexdigest()
