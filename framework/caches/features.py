"""The real side's image features, computed once per (data set, image subset, model, extractor, device,
precision) and kept as safetensors under the cache folder; every later run and sampler reuses them.

Each entry carries the sha256 of its tensor's bytes in its metadata. An entry that cannot be read,
is truncated, or whose bytes no longer match (a disk or copy error) is recomputed with a warning, never
used: a silently wrong reference would shift every FID of every later run. Runs that share the cache
folder compute each entry once (`aebench.infra.cache_entries`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from aebench.infra.cache_entries import DamagedEntry, load_or_compute
from aebench.infra.hashing import tensor_sha256
from aebench.infra.io import atomic_path

FORMAT = "aebench-features/2"


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def read_verified(path: Path) -> torch.Tensor:
    """The tensor stored at `path`; DamagedEntry (saying why) if it is incomplete or fails its checksum."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            value = f.get_tensor("value")
    except Exception as exc:  # truncated, not safetensors, unreadable
        raise DamagedEntry(f"unreadable: {' '.join(str(exc).split())[:80]}") from None
    if meta.get("format") != FORMAT:
        raise DamagedEntry(f"format {meta.get('format')!r}, not {FORMAT}")
    if meta.get("sha256") != tensor_sha256(value):
        raise DamagedEntry("its bytes fail their sha256 checksum")
    return value


def load_verified(path: Path) -> torch.Tensor | None:
    """The tensor stored at `path` if it is complete and its checksum matches, else None."""
    try:
        return read_verified(path)
    except DamagedEntry:
        return None


def cached_tensor(folder: Path, key: str, compute: Callable[[], torch.Tensor],
                  what: str = "image features") -> tuple[torch.Tensor, bool]:
    """Load `folder/key.safetensors` (verified) or compute and store it. Returns (tensor, was_cached)."""
    from safetensors.torch import save_file

    path = Path(folder) / f"{key}.safetensors"

    def make() -> torch.Tensor:
        value = compute()
        stored = value.detach().contiguous().cpu()
        with atomic_path(path) as tmp:
            save_file({"value": stored}, str(tmp), metadata={"format": FORMAT, "sha256": tensor_sha256(stored)})
        return value

    return load_or_compute(path, read_verified, make, what)
