"""The run's reference image sets: which latents make the decoder-matched reference, and features that
are computed once per run even when two reference sets share images.

The decoder-matched reference (`RealSide.recon_features`) is the features of decoded *real* latents of the
image reference split (train on a small data set, held-out when there are enough held-out images), as
many as the samplers draw, so that `fid_recon` compares equal counts. The reconstruction reference row
decodes held-out latents too; when the reference split is the held-out one, the reference latents are
chosen among the other held-out latents so the row is not scored against its own images (possible when
the split holds at least twice the count; otherwise the overlap is recorded).
"""

from __future__ import annotations

from typing import Callable

import torch

from aebench.infra.hashing import tensor_sha256

SUBSET_SEED = 0  # the fixed permutation of every capped image subset (aebench.run.setup.subset_index)
RECON_SEED = 1  # the decoder-matched subset's own fixed permutation, apart from SUBSET_SEED's


def index_digest(index: torch.Tensor) -> str:
    """A short, stable name for a set of row indices (part of the feature cache key)."""
    return tensor_sha256(index.to(torch.int64))[:16]


def recon_reference_rows(size: int, n: int, exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
    """Sorted indices of min(n, size) latents of a split of `size`: a fixed pseudo-random subset, drawn from
    outside `exclude` when there are enough others. Returns (indices, disjoint from `exclude`)."""
    count = min(n, size)
    perm = torch.randperm(size, generator=torch.Generator().manual_seed(RECON_SEED))
    if exclude is None or exclude.numel() == 0:
        return torch.sort(perm[:count]).values, True
    outside = ~torch.isin(perm, exclude.to(torch.int64))
    others, shared = perm[outside], perm[~outside]
    chosen = torch.cat([others, shared])[:count]
    return torch.sort(chosen).values, bool(others.numel() >= count)


class FeatureBank:
    """Features of the sets featurised in this run, by source (e.g. 'image' rows of the data set, or
    'decoded-heldout' latents) and row index: a set whose rows were all featurised already is gathered by
    index instead of going through the extractor (Inception runs at a few images per second on a CPU)."""

    def __init__(self) -> None:
        self._sets: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.reused = 0  # rows served from an earlier set

    def find(self, source: str, index: torch.Tensor) -> torch.Tensor | None:
        index = index.to(torch.int64)
        for rows, feats in self._sets.get(source, []):
            order = torch.argsort(rows)
            pos = torch.searchsorted(rows[order], index).clamp_max(rows.numel() - 1)
            if torch.equal(rows[order][pos], index):
                return feats[order[pos].to(feats.device)]
        return None

    def get(self, source: str, index: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        found = self.find(source, index)
        if found is not None:
            self.reused += int(index.numel())
            return found
        feats = compute()
        self._sets.setdefault(source, []).append((index.to(torch.int64).cpu(), feats))
        return feats
