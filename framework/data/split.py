"""Deterministic train/held-out splits: no randomness, so every machine gets the same split."""

from __future__ import annotations

import numpy as np
import torch

from aebench.errors import DataError


def indices_from_mask(heldout: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_index, heldout_index) as int64 tensors from a boolean held-out mask."""
    heldout = np.asarray(heldout, dtype=bool)
    train_index = torch.from_numpy(np.flatnonzero(~heldout).astype(np.int64))
    heldout_index = torch.from_numpy(np.flatnonzero(heldout).astype(np.int64))
    if train_index.numel() < 2:
        raise DataError(
            f"The split leaves {train_index.numel()} training image(s) of {heldout.size}; "
            f"add images or hold out fewer."
        )
    return train_index, heldout_index


def spread_heldout(n: int, fraction: float) -> np.ndarray:
    """Hold out floor(n * fraction) items spread evenly over the order (item i is held out when
    floor((i + 1) * fraction) > floor(i * fraction)); fraction 0.1 holds out every 10th item."""
    i = np.arange(n, dtype=np.float64)
    # The small epsilon absorbs binary rounding (0.1 * 10 = 1.0000000000000002 must count as 1).
    return np.floor((i + 1) * fraction + 1e-9) > np.floor(i * fraction + 1e-9)


def tail_heldout(n: int, fraction: float) -> np.ndarray:
    """Hold out the last round(n * fraction) items in order."""
    k = int(round(n * fraction))
    mask = np.zeros(n, dtype=bool)
    if k:
        mask[n - k:] = True
    return mask
