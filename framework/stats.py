"""Latent statistics: what the encoder made of the training set (the source post's parts II-IV, as numbers).

Stored beside the checkpoint as safetensors (arrays) with a JSON metadata header and a sha256 of the arrays
(checked on reading): never a pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from aebench.errors import AebenchError, CheckpointError
from aebench.infra.hashing import tensors_sha256
from aebench.infra.io import atomic_path

QUANTILE_LEVELS = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
TOP_PAIRS = 20
STATS_FORMAT = "aebench-latent-stats/1"


@dataclass
class LatentStats:
    """Per-component and joint statistics of encoded training latents (float64 tensors on CPU)."""

    mean: torch.Tensor  # [N] the centre of the region
    std: torch.Tensor  # [N]
    min: torch.Tensor  # [N]
    max: torch.Tensor  # [N]
    quantile_levels: torch.Tensor  # [q]
    quantiles: torch.Tensor  # [q, N]
    cov: torch.Tensor  # [N, N] (unbiased)
    corr: torch.Tensor  # [N, N]
    pca_axes: torch.Tensor  # [N, N], row i = i-th principal direction (descending variance)
    pca_variance: torch.Tensor  # [N]
    dominance: torch.Tensor  # [N] root mean square of each component: sqrt(mean^2 + std^2)
    dominant: torch.Tensor  # [k] int64, dominant component indices, most dominant first (k >= 2)
    pairs: torch.Tensor  # [m, 2] int64, most strongly correlated component pairs
    pair_corr: torch.Tensor  # [m]
    n: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def centre(self) -> torch.Tensor:
        return self.mean

    @property
    def centre_norm(self) -> float:
        return float(self.mean.norm())

    @property
    def pca_ratio(self) -> torch.Tensor:
        total = self.pca_variance.sum()
        return self.pca_variance / total if total > 0 else self.pca_variance

    @property
    def dominance_order(self) -> torch.Tensor:
        """All components, most dominant first."""
        return torch.argsort(self.dominance, descending=True)

    @property
    def condition_number(self) -> float:
        v = self.pca_variance
        return float(v.max() / v.min()) if float(v.min()) > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-ready summary (for results files and `aebench stats --json`)."""
        return {
            "n": self.n,
            "latent_dim": self.latent_dim,
            "centre_norm": self.centre_norm,
            "dominant": self.dominant.tolist(),
            "explained_variance_top10": self.pca_ratio[:10].tolist(),
            "condition_number": self.condition_number if self.condition_number != float("inf") else None,
            "top_pairs": [[int(i), int(j), float(r)] for (i, j), r in zip(self.pairs.tolist(), self.pair_corr)],
        }


def compute_stats(latents: torch.Tensor, meta: dict[str, Any] | None = None) -> LatentStats:
    """Compute `LatentStats` from training latents [n, N]."""
    if latents.ndim != 2 or latents.shape[0] < 2:
        raise AebenchError(f"Latent statistics need at least 2 latents of shape [n, N], got {tuple(latents.shape)}.")
    z = latents.detach().to("cpu", torch.float64)
    if not torch.isfinite(z).all():
        raise AebenchError("Latents contain NaN or Inf; the model is broken or diverged: retrain it.")
    n, dim = z.shape
    mean = z.mean(0)
    std = z.std(0)
    levels = torch.tensor(QUANTILE_LEVELS, dtype=torch.float64)
    quantiles = torch.quantile(z, levels, dim=0)
    centred = z - mean
    cov = centred.T @ centred / (n - 1)
    safe_std = torch.where(std > 0, std, torch.ones_like(std))
    corr = cov / safe_std[:, None] / safe_std[None, :]
    corr = corr.clamp(-1, 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)
    pca_variance = evals[order].clamp_min(0)
    pca_axes = evecs[:, order].T.contiguous()
    dominance = torch.sqrt(mean**2 + std**2)
    dominant = dominant_components(mean, std)
    pairs, pair_corr = strongest_pairs(corr, TOP_PAIRS)
    return LatentStats(mean, std, z.min(0).values, z.max(0).values, levels, quantiles, cov, corr, pca_axes,
                       pca_variance, dominance, dominant, pairs, pair_corr, n=n, meta=dict(meta or {}))


def dominant_components(mean: torch.Tensor, std: torch.Tensor, threshold: float = 2.0) -> torch.Tensor:
    """Components whose typical value lies clearly further from the origin than most (seed part II).

    A component counts as dominant when its root mean square sqrt(mean^2 + std^2) exceeds the median
    over components by `threshold` robust spreads (1.4826 * MAD). At least two are always returned so
    that a plane of two dominant components exists.
    """
    score = torch.sqrt(mean**2 + std**2)
    med = score.median()
    mad = 1.4826 * (score - med).abs().median()
    order = torch.argsort(score, descending=True)
    flagged = order[score[order] > med + threshold * max(float(mad), 1e-12)]
    if flagged.numel() < 2:
        flagged = order[:2]
    return flagged.to(torch.int64)


def strongest_pairs(corr: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k component pairs (i < j) with the largest |correlation|."""
    dim = corr.shape[0]
    iu = torch.triu_indices(dim, dim, offset=1)
    values = corr[iu[0], iu[1]]
    k = min(k, values.numel())
    top = torch.argsort(values.abs(), descending=True)[:k]
    return iu[:, top].T.contiguous().to(torch.int64), values[top]


def save_stats(stats: LatentStats, path: str | Path) -> Path:
    """Write stats as safetensors with JSON metadata, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f.name: getattr(stats, f.name).contiguous() for f in fields(stats)
               if isinstance(getattr(stats, f.name), torch.Tensor)}
    metadata = {"format": STATS_FORMAT, "n": str(stats.n), "meta": json.dumps(stats.meta),
                "sha256": tensors_sha256(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_stats(path: str | Path) -> LatentStats:
    """Read stats written by `save_stats`; a corrupt or foreign file gives a clear error."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Latent statistics file {path} does not exist; run `aebench stats` to create it.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(
            f"Latent statistics file {path} is corrupt or not a safetensors file ({type(exc).__name__}); "
            f"delete it and rerun `aebench stats`."
        ) from None
    if metadata.get("format") != STATS_FORMAT:
        raise CheckpointError(f"{path} is not an aebench latent statistics file; rerun `aebench stats`.")
    names = [f.name for f in fields(LatentStats) if f.name not in ("n", "meta")]
    missing = [n for n in names if n not in tensors]
    if missing:
        raise CheckpointError(f"Latent statistics file {path} lacks {missing[0]}; delete it and rerun `aebench stats`.")
    if "sha256" in metadata and metadata["sha256"] != tensors_sha256(tensors):
        raise CheckpointError(f"Latent statistics file {path} fails its sha256 checksum (changed after it was written); "
                              f"delete it and rerun `aebench stats`.")
    return LatentStats(**{n: tensors[n] for n in names}, n=int(metadata.get("n", 0)),
                       meta=json.loads(metadata.get("meta", "{}")))
