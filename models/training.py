"""Training an autoencoder on a data set's training split, deterministically, and saving it.

Recipe (chosen on ORL faces; the numbers are in docs/measurements.md, "Training recipe"): Adam (lr 1e-3)
with a cosine decay to zero over a fixed number of steps (a fixed budget ends on a small learning rate
instead of mid-noise), MSE loss, mini-batches of 16, random horizontal flips and shifts of up to 2 pixels
on training images only (320 faces overfit fast; held-out images are never augmented). The held-out MSE
is checked after every epoch and the best weights are kept, so a run that starts to overfit still returns
its best model. Note that this makes the held-out split a validation set: the reported held-out MSE is
the selected epoch's.

Determinism: the weights are initialised under `torch.manual_seed(seed)` inside a forked RNG (the
caller's global RNG is untouched), shuffling and augmentation draw from their own seeded CPU
Generator, and `torch.use_deterministic_algorithms` is on while training: the same seed gives
identical weights on the CPU.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
from torch import nn

from aebench.dataset import ImageDataset
from aebench.errors import AebenchError, CheckpointError, OptionError
from aebench.infra.device import resolve_device
from aebench.model import Architecture
from aebench.options import build_options, option, options_to_dict

AUTO_STEPS = 1000  # optimiser steps when epochs=0 (automatic): 50 ORL epochs, about 70-130 s on 2 CPU cores
MIN_AUTO_EPOCHS = 3
GRID_IMAGES = 16
DEFAULT_ARCHITECTURE = "conv_ae"  # trained when a caller names none (registered by aebench.models.conv_ae)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; stored in the checkpoint sidecar."""

    epochs: int = option(0, "passes over the training images; 0 = automatic (about 1000 optimiser steps, at least 3 epochs)", min=0)
    batch_size: int = option(16, "images per optimiser step", min=1)
    lr: float = option(1e-3, "Adam learning rate at the start", min=0.0, min_exclusive=True)
    schedule: Literal["cosine", "constant"] = option("cosine", "learning-rate schedule over the epochs")
    flip: bool = option(True, "random horizontal flips of training images (faces, clothes: mirror-symmetric)")
    max_shift: int = option(2, "random shifts of training images by up to this many pixels", min=0)
    time_budget_s: float | None = option(None, "stop after the epoch that passes this many seconds (breaks exact reproducibility)",
                                         min=0.0, min_exclusive=True)


@dataclass
class TrainedModel:
    """What `train_and_save` produced."""

    module: nn.Module
    metrics: dict[str, Any]
    sidecar: dict[str, Any]
    checkpoint: Path
    image: Path | None


def epochs_for(n_train: int, config: TrainingConfig) -> int:
    """Epochs to run: the configured number, or enough for AUTO_STEPS optimiser steps."""
    if config.epochs > 0:
        return config.epochs
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    return max(MIN_AUTO_EPOCHS, math.ceil(AUTO_STEPS / steps_per_epoch))


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    before, warn_before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    # Some CUDA kernels have no deterministic version: warn there instead of failing the run.
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)


def augment(batch: torch.Tensor, config: TrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """Random flips and shifts (reflect-padded) of a float batch [b, c, h, w] on the CPU."""
    if config.flip:
        flip = torch.rand(batch.shape[0], generator=generator) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
    s = config.max_shift
    if s > 0:
        h, w = batch.shape[-2:]
        padded = nn.functional.pad(batch, (s, s, s, s), mode="replicate")
        offsets = torch.randint(0, 2 * s + 1, (batch.shape[0], 2), generator=generator).tolist()
        batch = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    return batch


def _uint8_batches(images: torch.Tensor, index: torch.Tensor | None, batch_size: int) -> Iterator[torch.Tensor]:
    """uint8 batches of `images` (rows `index`, or all), gathered one batch at a time: a memory-mapped
    data set is never copied whole, and no float copy of it is ever made."""
    n = images.shape[0] if index is None else index.shape[0]
    for start in range(0, n, batch_size):
        yield images[start:start + batch_size] if index is None else images[index[start:start + batch_size]]


def reconstruction_mse(module: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256,
                       index: torch.Tensor | None = None) -> float:
    """Mean squared error (pixels in [0, 1]) of reconstructing uint8 images (rows `index` of them, or
    all), in eval mode, one batch at a time."""
    was_training = module.training
    module.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in _uint8_batches(images, index, batch_size):
            x = batch.to(device).float().div_(255.0)
            total += float(((module(x) - x) ** 2).sum())
            count += x.numel()
    module.train(was_training)
    return total / max(count, 1)


def mean_image_mse(train: torch.Tensor, heldout: torch.Tensor, *, train_index: torch.Tensor | None = None,
                   heldout_index: torch.Tensor | None = None, batch_size: int = 4096) -> float:
    """Baseline: MSE of predicting every held-out image by the mean training image. Streams both sets
    in uint8 batches with float64 sums, so memory does not grow with the data set."""
    total = torch.zeros(train.shape[1:], dtype=torch.float64)
    n = 0
    for batch in _uint8_batches(train, train_index, batch_size):
        total += batch.sum(0, dtype=torch.float64)
        n += batch.shape[0]
    mean = (total / max(n, 1) / 255.0).to(torch.float32)
    sq, count = 0.0, 0
    for batch in _uint8_batches(heldout, heldout_index, batch_size):
        sq += float(((batch.float().div_(255.0) - mean) ** 2).sum(dtype=torch.float64))
        count += batch.numel()
    return sq / max(count, 1)


def _architecture(config: Any) -> Architecture:
    """`config` itself when it is an Architecture, else the options (a dict or config) of the default one."""
    if isinstance(config, Architecture):
        return config
    from aebench.plugins import get_registry

    return get_registry("architecture").get(DEFAULT_ARCHITECTURE)(config)


def training_config(training: TrainingConfig | dict | None, **overrides: Any) -> TrainingConfig:
    """`training` as a checked TrainingConfig, with the overrides that are not None applied."""
    cfg: TrainingConfig = (training if isinstance(training, TrainingConfig)
                           else build_options(TrainingConfig, training or {}, owner="train"))
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        cfg = build_options(TrainingConfig, {**options_to_dict(cfg), **given}, owner="train")
    return cfg


def train_model(dataset: ImageDataset, config: Any, *, training: TrainingConfig | dict | None = None,
                epochs: int | None = None, time_budget_s: float | None = None, seed: int = 0,
                device: str | torch.device = "cpu", progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train the architecture `config` (an Architecture, or conv_ae options / dict) on `dataset`'s
    training split; returns (best module in eval mode, on CPU; metrics dict)."""
    arch = _architecture(config)
    cfg = training_config(training, epochs=epochs, time_budget_s=time_budget_s)
    dev = resolve_device(str(device))
    # images are gathered per batch by index: no whole copy of the (possibly memory-mapped) data set,
    # uint8 or float, is ever held
    images, train_index, heldout_index = dataset.images, dataset.train_index, dataset.heldout_index
    n_train, n_heldout = int(train_index.numel()), int(heldout_index.numel())
    if n_train == 0 or n_heldout == 0:
        raise AebenchError(f"Data set {dataset.name} has {n_train} training and {n_heldout} held-out images; "
                           f"training needs both splits to be non-empty.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = arch.build()
    model_shape = tuple(getattr(module, "image_shape", dataset.image_shape))
    if model_shape != dataset.image_shape:
        raise OptionError(f"Architecture expects images {model_shape} but {dataset.name} has {dataset.image_shape}; "
                          f"fix the model's in_channels/image_size.")
    module.to(dev).train()
    n_epochs = epochs_for(n_train, cfg)
    optimiser = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=n_epochs)
                 if cfg.schedule == "cosine" else None)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, Any] | None] = (math.inf, -1, None)  # (held-out mse, epoch, state)
    started = time.perf_counter()
    bar_ctx = _progress_bar() if progress else nullcontext(None)
    with _deterministic(dev), bar_ctx as bar:
        task = bar.add_task(f"training {arch.name}", total=n_epochs) if bar is not None else None
        for epoch in range(n_epochs):
            order = torch.randperm(n_train, generator=generator)
            loss_sum, seen = 0.0, 0
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                x = augment(images[train_index[idx]].float().div_(255.0), cfg, generator).to(dev)
                loss = nn.functional.mse_loss(module(x), x)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                loss_sum += float(loss.detach()) * len(idx)
                seen += len(idx)
            if scheduler is not None:
                scheduler.step()
            held = reconstruction_mse(module, images, dev, index=heldout_index)
            history.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "heldout_mse": held})
            if held < best[0]:
                best = (held, epoch + 1, copy.deepcopy(module.state_dict()))
            if bar is not None:
                bar.update(task, advance=1, description=f"training {arch.name}  loss {loss_sum / seen:.2e}  held-out {held:.2e}")
            if cfg.time_budget_s is not None and time.perf_counter() - started > cfg.time_budget_s:
                break
    wall = time.perf_counter() - started
    if best[2] is None:
        raise AebenchError(f"Training diverged (held-out MSE {history[-1]['heldout_mse']}); lower the learning rate, "
                           f"e.g. --set train.lr={cfg.lr / 10:g}.")
    module.load_state_dict(best[2])
    module.eval()
    metrics = {
        "train_mse": reconstruction_mse(module, images, dev, index=train_index),
        "heldout_mse": best[0],
        "baseline_mse": mean_image_mse(images, images, train_index=train_index, heldout_index=heldout_index),
        "best_epoch": best[1],
        "epochs_run": len(history),
        "epochs_planned": n_epochs,
        "wall_time_s": wall,
        "device": str(dev),
        "history": history,
    }
    return module.to("cpu"), metrics


def _progress_bar():
    from aebench.infra.console import progress_bar

    return progress_bar()


def reconstruction_grid(module: nn.Module, images: torch.Tensor, path: str | Path, n: int = GRID_IMAGES,
                        index: torch.Tensor | None = None,
                        title: str = "Held-out images and their reconstructions") -> Path:
    """PNG of `n` evenly spaced images (uint8; rows `index` of `images`, or all), each row of originals
    followed by a row of their reconstructions, rows labelled, under `title`."""
    from aebench.models.encoding import decode_latents, encode_images
    from aebench.reports.figures import image_rows

    size = images.shape[0] if index is None else index.shape[0]
    pick = torch.linspace(0, size - 1, min(n, size)).round().long()
    originals = images[pick] if index is None else images[index[pick]]
    recon = decode_latents(module, encode_images(module, originals))
    per_row = min(8, len(pick))
    rows: list[tuple[str, torch.Tensor, list[str] | None]] = []
    for start in range(0, len(pick), per_row):
        shown = pick[start:start + per_row].tolist()
        rows.append(("held-out", originals[start:start + per_row], [f"#{i}" for i in shown]))
        rows.append(("reconstructed", recon[start:start + per_row], None))
    return image_rows(rows, path, title=title, xlabel="held-out image index (evenly spaced over the held-out set)")


def _rescue(module: nn.Module, sidecar: dict[str, Any]) -> Path:
    """Save a trained model that could not be written where asked into a fresh temporary folder."""
    import tempfile

    from aebench.models.checkpoint import save_checkpoint

    folder = Path(tempfile.mkdtemp(prefix="aebench-rescued-model-"))
    return save_checkpoint(folder / "model.safetensors", module, sidecar).parent


def train_and_save(dataset: ImageDataset, out: str | Path, *, latent_dim: int | None = None,
                   model_options: dict[str, Any] | None = None, training: TrainingConfig | dict | None = None,
                   epochs: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = True, architecture: str = DEFAULT_ARCHITECTURE) -> TrainedModel:
    """Train the registered `architecture` (default conv_ae) for `dataset`, write the checkpoint to `out` and a
    reconstruction PNG beside it."""
    from aebench.models.checkpoint import save_checkpoint, versions
    from aebench.plugins import get_registry

    arch_cls = get_registry("architecture").get(architecture)
    config = arch_cls.config_for(dataset.image_shape, latent_dim, dataset_name=dataset.name, **(model_options or {}))
    arch = arch_cls(config)
    training = training_config(training, epochs=epochs)
    module, metrics = train_model(dataset, arch, training=training, seed=seed, device=device, progress=progress)
    out = Path(out).expanduser()
    sidecar = {
        "dataset": {"name": dataset.name, "options": dataset.options, "fingerprint": dataset.fingerprint(),
                    "image_shape": list(dataset.image_shape), "n_train": int(dataset.train_index.numel()),
                    "n_heldout": int(dataset.heldout_index.numel())},
        "training": {**options_to_dict(training), "epochs": metrics["epochs_planned"]},
        "seed": seed,
        "versions": versions(),
        "metrics": {k: v for k, v in metrics.items() if k != "history"},
        "history": metrics["history"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    from aebench.errors import DiskFullError

    try:
        save_checkpoint(out, module, sidecar)
    except (OSError, DiskFullError) as exc:
        rescued = _rescue(module, sidecar)
        why = "the disk is full" if isinstance(exc, DiskFullError) else (exc.strerror or exc)
        raise CheckpointError(
            f"Cannot write checkpoint {out} ({why}); the trained model was saved to {rescued} instead: "
            f"move model.safetensors and model.json from there together."
        ) from None
    try:
        image = reconstruction_grid(module, dataset.images, out.with_name(f"{out.stem}-reconstructions.png"),
                                    index=dataset.heldout_index,
                                    title=f"{dataset.name}: held-out images and their reconstructions (N={module.latent_dim}, "
                                          f"held-out MSE {metrics['heldout_mse']:.2e})")
    except (OSError, DiskFullError) as exc:
        why = "the disk is full" if isinstance(exc, DiskFullError) else (exc.strerror or exc)
        raise AebenchError(f"The checkpoint {out} was saved, but its reconstruction PNG could not be written "
                           f"({why}); free space or fix permissions in {out.parent}.") from None
    from aebench.models.checkpoint import read_sidecar

    return TrainedModel(module=module, metrics=metrics, sidecar=read_sidecar(out), checkpoint=out, image=image)
