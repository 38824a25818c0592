"""The real side's image features, computed once per (data set, image subset, model, extractor) and
kept as safetensors under the cache folder; every later run and sampler reuses them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from aebench.io import atomic_path


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached_tensor(folder: Path, key: str, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, bool]:
    """Load `folder/key.safetensors` or compute and store it. Returns (tensor, was_cached)."""
    from safetensors.torch import load_file, save_file

    path = Path(folder) / f"{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["value"], True
        except Exception:  # a corrupt cache entry is recomputed, never trusted
            path.unlink(missing_ok=True)
    value = compute()
    with atomic_path(path) as tmp:
        save_file({"value": value.contiguous().cpu()}, str(tmp))
    return value, False
