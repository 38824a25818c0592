"""Data sets: uint8 images [n, c, h, w] with a deterministic train/held-out split, loaded offline."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch

from aebench.plugin_base import Plugin


@dataclass
class ImageDataset:
    """Images and their split. `images` may be backed by a memory-mapped cache file."""

    name: str
    images: torch.Tensor  # uint8 [n, c, h, w]
    train_index: torch.Tensor  # int64 [n_train]
    heldout_index: torch.Tensor  # int64 [n_heldout]
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the files came from
    citation: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [n, c, h, w], got {self.images.dtype} {tuple(self.images.shape)}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def train(self) -> torch.Tensor:
        return self.images[self.train_index]

    @property
    def heldout(self) -> torch.Tensor:
        return self.images[self.heldout_index]

    def fingerprint(self) -> str:
        """A short key for caches: name, options, shape, split and a strided sample of the pixels."""
        h = hashlib.sha256()
        h.update(json.dumps({"name": self.name, "options": self.options}, sort_keys=True, default=str).encode())
        h.update(str(tuple(self.images.shape)).encode())
        h.update(self.train_index.numpy().tobytes())
        h.update(self.heldout_index.numpy().tobytes())
        step = max(1, self.images.shape[0] // 256)
        h.update(self.images[::step].contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


class DatasetSource(Plugin):
    """Base of data set plugins: `load(cache_dir)` returns an `ImageDataset`."""

    citation: ClassVar[str] = ""

    # latent dimension N of the model aebench trains for this data set when no --latent-dim is given
    default_latent_dim: ClassVar[int] = 64

    def load(self, cache_dir: Path) -> ImageDataset:
        raise NotImplementedError


def default_latent_dim(name: str) -> int:
    """N for the data set `name` when the user gives none: its plugin's `default_latent_dim` (the base class's
    for a name no plugin registers, such as an ImageDataset built by hand)."""
    from aebench.plugins import get_registry

    registry = get_registry("dataset")
    return int(registry.get(name).default_latent_dim if name in registry else DatasetSource.default_latent_dim)


def load_dataset(name: str, options: Mapping[str, Any] | None = None, cache_dir: str | Path | None = None) -> ImageDataset:
    """Load the registered data set `name` with `options` (strings allowed, as from the CLI)."""
    from aebench.infra.paths import cache_root
    from aebench.plugins import get_registry

    cls = get_registry("dataset").get(name)
    source = cls(dict(options or {}))
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return source.load(root / "data")
