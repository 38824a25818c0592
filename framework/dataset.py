"""Data sets: uint8 images [n, c, h, w] with a deterministic train/held-out split, loaded offline.

A data set may also carry class labels (`labels`, int64 [n], with `class_names`): the autoencoder never
reads them; the `domain` feature extractor trains its classifier on them (`aebench judge train`). Both
default to None, so data set plugins written without labels keep working unchanged."""

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
    labels: torch.Tensor | None = None  # int64 [n]: class of each image, 0 .. len(class_names) - 1; None = unlabelled
    class_names: list[str] | None = None  # name of each class (default: "0", "1", ...)
    # where the labels came from (a file, the folder layout); without labels: why not and what would give some
    labels_source: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [n, c, h, w], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None:
            labels = torch.as_tensor(self.labels)
            if labels.ndim != 1 or labels.shape[0] != self.images.shape[0] or labels.is_floating_point():
                raise ValueError(f"labels must be integers [n] with n = {self.images.shape[0]} images, got "
                                 f"{labels.dtype} {tuple(labels.shape)}")
            self.labels = labels.to(torch.int64)
            count = int(self.labels.max()) + 1 if labels.numel() else 0
            if labels.numel() and int(self.labels.min()) < 0:
                raise ValueError("labels must be >= 0 (class indices)")
            if self.class_names is None:
                self.class_names = [str(i) for i in range(count)]
            elif len(self.class_names) < count:
                raise ValueError(f"labels go up to {count - 1} but only {len(self.class_names)} class names are given")

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

    @property
    def has_labels(self) -> bool:
        """Whether the data set carries class labels with at least two classes in its training split."""
        return self.labels is not None and int(self.labels[self.train_index].unique().numel()) >= 2

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0

    def require_labels(self, who: str) -> torch.Tensor:
        """The labels, or a DataError that says the data set has none and what would give it some."""
        if self.labels is None or not self.has_labels:
            from aebench.errors import DataError

            why = "only one class in its training split" if self.labels is not None else "no class labels"
            hint = self.labels_source or ("a data set plugin that sets ImageDataset.labels; image_folder reads "
                                          "classes from sub-folders (at least two)")
            raise DataError(f"Data set {self.name} has {why}, so {who} cannot be trained; {hint}.")
        return self.labels

    def fingerprint(self) -> str:
        """A short key for caches: name, options, shape, split and a strided sample of the pixels (not the
        labels: models trained before data sets had labels keep their cache entries)."""
        h = hashlib.sha256()
        h.update(json.dumps({"name": self.name, "options": self.options}, sort_keys=True, default=str).encode())
        h.update(str(tuple(self.images.shape)).encode())
        h.update(self.train_index.numpy().tobytes())
        h.update(self.heldout_index.numpy().tobytes())
        step = max(1, self.images.shape[0] // 256)
        h.update(self.images[::step].contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


class DatasetSource(Plugin):
    """Base of data set plugins: `load(cache_dir)` returns an `ImageDataset`, with `labels` when the data
    set has classes (else, in `labels_source`, why not and what would give it some)."""

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
