"""Encoded latents and their statistics, computed once per (model, data set) and cached beside the model.

Cache files live in `model.cache_dir` (the checkpoint's folder, or a folder keyed by an external
model's checksum) and are named by the data set fingerprint. Each records the model checksum, data set
name and fingerprint, and the sha256 of its arrays; a file that is truncated, fails its checksum or
whose record does not match is recomputed with a warning, never trusted (`aebench.infra.cache_entries`,
which also makes runs sharing the cache compute each file once). Users may also bring their own
latents as .npy or .safetensors arrays; pickle-based formats are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aebench.dataset import ImageDataset
from aebench.errors import AebenchError, DataError
from aebench.infra.cache_entries import DamagedEntry, OutdatedEntry, load_or_compute
from aebench.infra.hashing import tensors_sha256
from aebench.infra.io import atomic_path
from aebench.stats import LatentStats, compute_stats, load_stats, save_stats

LATENTS_FORMAT = "aebench-latents/1"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def cache_record(model: Any, dataset: ImageDataset) -> dict[str, str]:
    """What a cached latents/stats file must match to be reused."""
    return {"model_checksum": str(model.checksum), "dataset": dataset.name, "fingerprint": dataset.fingerprint()}


def latents_path(model: Any, dataset: ImageDataset) -> Path:
    return Path(model.cache_dir) / f"latents-{dataset.fingerprint()}.safetensors"


def stats_path(model: Any, dataset: ImageDataset) -> Path:
    return Path(model.cache_dir) / f"stats-{dataset.fingerprint()}.safetensors"


def _read_cached_latents(path: Path, record: dict[str, str], latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, heldout) from a latents cache file; DamagedEntry (saying why) when it cannot be trusted."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in ("train", "heldout")}
    except Exception as exc:  # truncated, not safetensors, a tensor missing
        raise DamagedEntry(f"unreadable: {' '.join(str(exc).split())[:80]}") from None
    if meta.get("format") != LATENTS_FORMAT:
        raise DamagedEntry(f"format {meta.get('format')!r}, not {LATENTS_FORMAT}")
    if json.loads(meta.get("record", "{}")) != record:
        raise DamagedEntry("written for another model or data set")
    if "sha256" not in meta:
        raise OutdatedEntry("no checksum")
    if meta["sha256"] != tensors_sha256(tensors):
        raise DamagedEntry("its arrays fail their sha256 checksum")
    if tensors["train"].shape[1:] != (latent_dim,):
        raise DamagedEntry(f"latents of shape {tuple(tensors['train'].shape)}, not [n, {latent_dim}]")
    return tensors["train"], tensors["heldout"]


def encoded_latents(model: Any, dataset: ImageDataset, device: str | torch.device = "cpu",
                    batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [n, N], heldout [m, N]) float32 CPU latents of `dataset` under `model`, encoded once and cached.

    All images are encoded in storage order (batches are slices of a possibly memory-mapped array, so
    nothing is copied whole), then split by index.
    """
    from aebench.models.encoding import encode_images

    record = cache_record(model, dataset)
    path = latents_path(model, dataset)

    def make() -> tuple[torch.Tensor, torch.Tensor]:
        from safetensors.torch import save_file

        latents = encode_images(model.module, dataset.images, batch_size=batch_size, device=device,
                                description=f"encoding {dataset.images.shape[0]} {dataset.name} images")
        tensors = {"train": latents[dataset.train_index].contiguous(),
                   "heldout": latents[dataset.heldout_index].contiguous()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": LATENTS_FORMAT, "record": json.dumps(record),
                                                   "sha256": tensors_sha256(tensors)})
        return tensors["train"], tensors["heldout"]

    value, _ = load_or_compute(path, lambda p: _read_cached_latents(p, record, int(model.latent_dim)), make,
                               f"latents of {dataset.name}")
    return value


def _read_cached_stats(path: Path, record: dict[str, str]) -> LatentStats:
    try:
        stats = load_stats(path)
    except AebenchError as exc:
        raise DamagedEntry("its arrays fail their sha256 checksum" if "checksum" in str(exc)
                           else "unreadable or incomplete") from None
    if not all(stats.meta.get(k) == v for k, v in record.items()):
        raise DamagedEntry("written for another model or data set")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        if "sha256" not in (f.metadata() or {}):
            raise OutdatedEntry("no checksum")
    return stats


def latent_stats(model: Any, dataset: ImageDataset, device: str | torch.device = "cpu",
                 batch_size: int = 256) -> LatentStats:
    """Statistics of the encoded training set, loaded from `stats_path` when its record and checksum match."""
    record = cache_record(model, dataset)
    path = stats_path(model, dataset)

    def make() -> LatentStats:
        train, heldout = encoded_latents(model, dataset, device=device, batch_size=batch_size)
        meta = {**record, "dataset_options": dataset.options, "n_train": int(train.shape[0]),
                "n_heldout": int(heldout.shape[0])}
        stats = compute_stats(train, meta=meta)
        save_stats(stats, path)
        return stats

    value, _ = load_or_compute(path, lambda p: _read_cached_stats(p, record), make,
                               f"latent statistics of {dataset.name}")
    return value


# -- user-supplied latent arrays ---------------------------------------------------------------------


def _read_array(path: Path, role: str) -> np.ndarray:
    """One 2-D array from .npy (no pickles) or .safetensors (the only tensor, or the one named `role`)."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise DataError(
            f"{path}: {suffix} files are pickles, which aebench never loads; save the latents with "
            f"numpy.save (.npy) or safetensors (.safetensors)."
        )
    if suffix not in (".npy", ".safetensors"):
        raise DataError(f"{path}: unsupported latents format '{suffix or '(none)'}'; use .npy or .safetensors.")
    if not path.is_file():
        raise DataError(f"Latents file {path} does not exist; check the --{role}-latents path.")
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path} is not a plain numeric .npy array ({exc}); save it with numpy.save.") from None
        except OSError as exc:
            raise DataError(f"Cannot read {path} ({exc}); save it again with numpy.save.") from None
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise DataError(f"{path} is not a readable safetensors file ({type(exc).__name__}); save it again.") from None
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    for key in (role, "latents"):
        if key in tensors:
            return tensors[key]
    raise DataError(f"{path} holds tensors {sorted(tensors)}; keep one tensor, or name it '{role}' or 'latents'.")


def _as_latents(array: np.ndarray, path: Path) -> torch.Tensor:
    if array.dtype.kind not in "fiu":
        raise DataError(f"{path} holds {array.dtype} values; latents must be numbers (float32 preferred).")
    if array.ndim != 2:
        raise DataError(f"{path} has shape {array.shape}; latents must be 2-D [n, N], one vector per row.")
    out = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).any(dim=1).sum())
        raise DataError(f"{path} has NaN or Inf in {bad} of {out.shape[0]} rows; remove or re-encode them.")
    return out


def load_latent_arrays(train_path: str | Path, heldout_path: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [n, N], heldout [m, N]) float32 from user files (.npy or .safetensors), validated."""
    train_path = Path(train_path)
    train = _as_latents(_read_array(train_path, "train"), train_path)  # its own problems first
    if heldout_path is None:
        raise DataError("--train-latents needs --heldout-latents too: regions are calibrated on held-out latents.")
    heldout_path = Path(heldout_path)
    heldout = _as_latents(_read_array(heldout_path, "heldout"), heldout_path)
    if train.shape[0] < 2 or heldout.shape[0] < 1:
        raise DataError(f"Need at least 2 training and 1 held-out latent vectors, got {train.shape[0]} and "
                        f"{heldout.shape[0]}; supply more rows.")
    if train.shape[1] != heldout.shape[1]:
        raise DataError(f"Training latents have N={train.shape[1]} but held-out latents have N={heldout.shape[1]}; "
                        f"encode both with the same model.")
    return train, heldout
