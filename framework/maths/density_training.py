"""Training small learned densities on latents (the `flow` and `vae2` samplers): a seeded validation
split, mini-batch Adam, early stopping on the held-out loss with the best weights restored.

Determinism: initialisation and every random draw of training (shuffles, the reparameterisation
noise of a VAE) come from a seed, inside `torch.random.fork_rng`, so the caller's global random state
is untouched and the same seed on the same machine gives the same weights. Training runs on the CPU
in float32: the latents are small.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from aebench.errors import OptionError


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the global torch RNG seeded, restoring the caller's random state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def validation_split(n: int, share: float, seed: int, *, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the training part and the held-out part (at least one point each), seeded."""
    if not 0 < share < 1:
        raise OptionError(f"{what}: the validation share must be in (0, 1), got {share}.")
    n_val = int(round(n * share))
    if n_val < 1 or n - n_val < 2:
        raise OptionError(f"{what}: {n} training latents are too few to hold out {share:.0%} for early stopping; "
                          f"use more latents.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_val:], order[:n_val]


def auto_batch_size(batch_size: int | None, n: int) -> int:
    """`batch_size`, or by default an eighth of the `n` training points within [32, 512]: small sets still get
    several optimiser steps per epoch, large ones batches big enough to be cheap per point."""
    return int(batch_size) if batch_size is not None else int(min(512, max(32, n // 8)))


@dataclass
class TrainingSettings:
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 500
    patience: int = 20
    weight_decay: float = 0.0
    warmup_epochs: int = 0  # epochs before the held-out loss is tracked (e.g. a VAE's KL warm-up)
    max_steps: int | None = None  # stop after the epoch in which this many optimiser steps were reached


def train_early_stopping(module: torch.nn.Module, loss: Callable[[torch.Tensor], torch.Tensor],
                         train: torch.Tensor, heldout: torch.Tensor, settings: TrainingSettings,
                         seed: int, on_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Minimise `loss(batch)` (a mean per point) on `train` with Adam; after every epoch evaluate it on
    `heldout` and keep the best weights; stop after `patience` epochs without improvement. The first
    `warmup_epochs` epochs are neither kept nor counted; `on_epoch(epoch)` runs before each epoch. With
    `max_steps` the fit time is bounded on large sets (a whole number of epochs, so it stays deterministic).

    Returns a summary: epochs run, best epoch, best held-out loss, final training loss, and why it stopped.
    """
    train = train.to(torch.float32)
    heldout = heldout.to(torch.float32)
    shuffle = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    best, best_state, best_epoch, since = math.inf, copy.deepcopy(module.state_dict()), 0, 0
    start = time.perf_counter()
    stopped, epoch, train_loss, steps = "max_epochs", 0, math.nan, 0
    batch = max(1, min(settings.batch_size, train.shape[0]))
    for epoch in range(1, settings.max_epochs + 1):
        if on_epoch is not None:
            on_epoch(epoch)
        module.train()
        total, count = 0.0, 0
        for idx in torch.randperm(train.shape[0], generator=shuffle).split(batch):
            opt.zero_grad(set_to_none=True)
            value = loss(train[idx])
            value.backward()
            opt.step()
            steps += 1
            total += float(value.detach()) * len(idx)
            count += len(idx)
        train_loss = total / count
        module.eval()
        with torch.no_grad():
            held = float(loss(heldout))
        if not math.isfinite(held) or not math.isfinite(train_loss):
            stopped = "diverged"
            break
        if epoch > settings.warmup_epochs and held < best - 1e-6 * max(1.0, abs(best) if math.isfinite(best) else 1.0):
            best, best_state, best_epoch, since = held, copy.deepcopy(module.state_dict()), epoch, 0
        elif epoch > settings.warmup_epochs:
            since += 1
            if since >= settings.patience:
                stopped = "early_stopping"
                break
        if settings.max_steps is not None and steps >= settings.max_steps:
            stopped = "max_steps"
            break
    module.load_state_dict(best_state)
    module.eval()
    return {"epochs": epoch, "steps": steps, "best_epoch": best_epoch, "best_heldout_loss": best,
            "final_train_loss": train_loss,
            "stopped": stopped, "train_points": int(train.shape[0]), "heldout_points": int(heldout.shape[0]),
            "train_s": time.perf_counter() - start}
