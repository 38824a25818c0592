"""The real side's image features, computed once per (data set, image subset, model, extractor, device,
precision) and kept as safetensors under the cache folder; every later run and sampler reuses them.

Each entry carries the sha256 of its tensor's bytes in its metadata. An entry that cannot be read,
is truncated, or whose bytes no longer match (a disk or copy error) is deleted and recomputed, never
used: a silently wrong reference would shift every FID of every later run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from aebench.infra.hashing import tensor_sha256
from aebench.infra.io import atomic_path

FORMAT = "aebench-features/2"


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def load_verified(path: Path) -> torch.Tensor | None:
    """The tensor stored at `path` if it is complete and its checksum matches, else None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            value = f.get_tensor("value")
    except Exception:  # truncated, not safetensors, unreadable
        return None
    if meta.get("format") != FORMAT or meta.get("sha256") != tensor_sha256(value):
        return None
    return value


def cached_tensor(folder: Path, key: str, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, bool]:
    """Load `folder/key.safetensors` (verified) or compute and store it. Returns (tensor, was_cached)."""
    from safetensors.torch import save_file

    path = Path(folder) / f"{key}.safetensors"
    if path.is_file():
        value = load_verified(path)
        if value is not None:
            return value, True
        path.unlink(missing_ok=True)  # a corrupt entry is recomputed, never trusted
    value = compute()
    stored = value.detach().contiguous().cpu()
    with atomic_path(path) as tmp:
        save_file({"value": stored}, str(tmp), metadata={"format": FORMAT, "sha256": tensor_sha256(stored)})
    return value, False
