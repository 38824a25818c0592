"""Which model a run uses: a given checkpoint, an external `module:factory`, or the cached model
trained for the data set (trained on first use), returned as one `LoadedModel`.

The cached model is a cache entry like any other (`aebench.infra.cache_entries`): one run trains it while
another that needs it waits, and a cached checkpoint that fails its checksum or cannot be read is
trained again with a warning. A checkpoint the user names (`--checkpoint`) is theirs: damage is an
error there, never a silent retraining."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aebench.dataset import ImageDataset, default_latent_dim
from aebench.errors import CheckpointError
from aebench.infra.cache_entries import DamagedEntry, load_or_compute
from aebench.infra.paths import cache_root

SMALL_DATASET = 2000  # training images below which default training takes about 2 CPU minutes


@dataclass
class LoadedModel:
    """A model ready to use, and what identifies it in caches and reports."""

    module: Any  # eval mode, on the device; has encode/decode/latent_dim
    latent_dim: int
    image_shape: tuple[int, int, int] | None
    checksum: str  # sha256 of the weights (or of an external model's spec + module file)
    config: dict[str, Any]  # checkpoint sidecar, or {"external": spec}
    path: Path | None  # the checkpoint, None for external models
    cache_dir: Path  # folder for files derived from this model (latent stats, ...)


def model_folder_name(dataset: ImageDataset, latent_dim: int, seed: int) -> str:
    return f"{dataset.name}-{dataset.fingerprint()}-n{latent_dim}-s{seed}"


def default_checkpoint_path(dataset: ImageDataset, latent_dim: int, seed: int, cache_dir: str | Path | None = None) -> Path:
    """Where the model aebench trains for this data set, latent dimension and seed is cached."""
    return cache_root(cache_dir) / "models" / model_folder_name(dataset, latent_dim, seed) / "model.safetensors"


def _check_shape(image_shape: Any, dataset: ImageDataset | None, where: str) -> None:
    if dataset is None or image_shape is None:
        return
    if tuple(image_shape) != tuple(dataset.image_shape):
        raise CheckpointError(
            f"{where} expects images {tuple(image_shape)} but data set {dataset.name} has {tuple(dataset.image_shape)}; "
            f"use a model trained on this data set (or set the data set's size option to match)."
        )


def _check_latent_dim(actual: int, wanted: int | None, where: str) -> None:
    if wanted is not None and int(wanted) != int(actual):
        raise CheckpointError(f"{where} has latent dimension {actual}, not the {wanted} asked for; drop --latent-dim or use another model.")


def sidecar_path(path: Path) -> Path:
    from aebench.models.checkpoint import sidecar_path as of

    return of(path)


def _from_checkpoint(path: Path, dataset: ImageDataset | None, device: torch.device, latent_dim: int | None) -> LoadedModel:
    from aebench.models.checkpoint import load_checkpoint, weights_path

    path = weights_path(path)
    module, sidecar = load_checkpoint(path, device)
    shape = getattr(module, "image_shape", None)
    _check_shape(shape, dataset, f"Checkpoint {path}")
    _check_latent_dim(int(module.latent_dim), latent_dim, f"Checkpoint {path}")  # type: ignore[arg-type]
    return LoadedModel(module=module, latent_dim=int(module.latent_dim), image_shape=tuple(shape) if shape else None,  # type: ignore[arg-type]
                       checksum=sidecar["weights_sha256"], config=sidecar, path=path, cache_dir=path.parent)


def _from_spec(spec: str, dataset: ImageDataset | None, device: torch.device, latent_dim: int | None, root: Path) -> LoadedModel:
    from aebench.models.external import load_external, place_on_device

    model, checksum = load_external(spec)
    model = place_on_device(model, device)
    shape = getattr(model, "image_shape", None)
    _check_shape(shape, dataset, f"Model {spec}")
    _check_latent_dim(model.latent_dim, latent_dim, f"Model {spec}")
    return LoadedModel(module=model, latent_dim=int(model.latent_dim), image_shape=tuple(shape) if shape else None,
                       checksum=checksum, config={"external": spec}, path=None,
                       cache_dir=root / "external" / checksum[:16])


def resolve_model(dataset: ImageDataset | None, *, checkpoint: str | Path | None = None, model_spec: str | None = None,
                  cache_dir: str | Path | None = None, device: str | torch.device = "cpu", train_if_missing: bool = True,
                  seed: int = 0, latent_dim: int | None = None, quiet: bool = False) -> LoadedModel:
    """The model to benchmark: `checkpoint`, else `model_spec`, else the cached model for `dataset`
    (trained now, with a message and a progress bar, when it is missing and `train_if_missing`)."""
    from aebench.infra.device import resolve_device

    dev = resolve_device(str(device))
    root = cache_root(cache_dir)
    if checkpoint is not None and model_spec is not None:
        raise CheckpointError("Both a checkpoint and an external model were given; pass only one of --checkpoint and --model.")
    if checkpoint is not None:
        return _from_checkpoint(Path(checkpoint).expanduser(), dataset, dev, latent_dim)
    if model_spec is not None:
        return _from_spec(model_spec, dataset, dev, latent_dim, root)
    if dataset is None:
        raise CheckpointError("No model given: pass --dataset (aebench trains one), --checkpoint PATH or --model module:factory.")

    n = int(latent_dim) if latent_dim is not None else default_latent_dim(dataset.name)
    path = default_checkpoint_path(dataset, n, seed, root)

    def read(p: Path) -> LoadedModel:
        try:
            return _from_checkpoint(p, dataset, dev, latent_dim)
        except CheckpointError as exc:  # its weights or sidecar changed, or are cut short: train it again
            raise DamagedEntry(_reason(str(exc))) from None

    def train() -> LoadedModel:
        if not train_if_missing:
            raise CheckpointError(
                f"No trained model for {dataset.name} in {path.parent}; run `aebench train --dataset {dataset.name} "
                f"--latent-dim {n} --model-seed {seed}` first."
            )
        _train_into(path, dataset, n, seed, dev, quiet)
        return _from_checkpoint(path, dataset, dev, latent_dim)

    # the sidecar is written last: a model folder without it holds no complete checkpoint
    model, _ = load_or_compute(path, read, train, f"model for {dataset.name} (N={n}, seed {seed})",
                               exists=lambda p: p.is_file() or sidecar_path(p).is_file())
    return model


def _reason(message: str) -> str:
    """The middle of a CheckpointError's message: what is wrong, without the advice to retrain."""
    head = message.split("; retrain")[0].split("; keep the")[0]
    return head[:160]


def _train_into(path: Path, dataset: ImageDataset, latent_dim: int, seed: int, device: torch.device, quiet: bool) -> None:
    from aebench.infra.console import err_console
    from aebench.infra.io import check_writable_file
    from aebench.models.training import train_and_save

    check_writable_file(path, "the model cache file")  # before minutes of training, not after
    if not quiet:
        small = dataset.train_index.numel() < SMALL_DATASET
        how_long = "about 2 minutes on a laptop CPU" if small else "this takes a while on a CPU, minutes on a GPU"
        err_console.print(f"No trained model for {dataset.name} in {path.parent}; training one now ({how_long})...",
                          soft_wrap=True, markup=False)
    result = train_and_save(dataset, path, latent_dim=latent_dim, seed=seed, device=device, progress=not quiet)
    if not quiet:
        m = result.metrics
        err_console.print(f"Trained in {m['wall_time_s']:.0f} s: held-out MSE {m['heldout_mse']:.2e} "
                          f"(mean-image baseline {m['baseline_mse']:.2e}); saved {path}", soft_wrap=True, markup=False)
