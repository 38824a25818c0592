"""Covariance estimates that stay usable when latents are few or nearly degenerate.

An AE's latent covariance is often badly conditioned (on ORL at N=256 the raw estimate had condition
number 2e6), which makes Gaussian samplers and densities follow noise directions. Ledoit-Wolf
shrinkage towards a scaled identity fixes that with a data-driven intensity (sklearn estimates it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from aebench.errors import AebenchError, OptionError, did_you_mean

ShrinkageMode = Literal["auto", "ledoit_wolf", "none"]
SHRINKAGE_MODES: tuple[str, ...] = ("auto", "ledoit_wolf", "none")
# "auto" shrinks when the raw covariance's condition number exceeds this (or when n <= N).
DEFAULT_CONDITION_LIMIT = 1e4


@dataclass(frozen=True)
class CovarianceEstimate:
    """Mean [N] and covariance [N, N] (float64) with how they were obtained."""

    mean: torch.Tensor
    covariance: torch.Tensor
    method: str  # "ledoit_wolf" or "none"
    shrinkage: float  # Ledoit-Wolf intensity in [0, 1]; 0 when not shrunk
    raw_condition: float  # condition number of the unshrunk covariance (inf if singular)

    @property
    def condition(self) -> float:
        return condition_number(self.covariance)

    def to_dict(self) -> dict[str, float | str]:
        """Provenance for results files."""
        return {"method": self.method, "shrinkage": self.shrinkage,
                "raw_condition": self.raw_condition, "condition": self.condition}


def as_latent_matrix(latents: torch.Tensor | np.ndarray, what: str = "latents", min_rows: int = 2) -> torch.Tensor:
    """`latents` as a finite float64 CPU tensor [n, N] with at least `min_rows` rows, or a clear error."""
    z = torch.as_tensor(latents).detach().to("cpu", torch.float64)
    if z.ndim != 2:
        raise AebenchError(f"{what} must be a matrix [n, N], got shape {tuple(z.shape)}; reshape them.")
    if z.shape[0] < min_rows:
        raise AebenchError(f"{what} need at least {min_rows} rows, got {z.shape[0]}; use more training latents.")
    if not torch.isfinite(z).all():
        raise AebenchError(f"{what} contain NaN or Inf; re-encode the data set.")
    return z


def condition_number(cov: torch.Tensor) -> float:
    """Largest over smallest eigenvalue of a symmetric matrix; inf when it is singular."""
    evals = torch.linalg.eigvalsh(cov)
    lo, hi = float(evals[0]), float(evals[-1])
    return hi / lo if lo > 0 else math.inf


def estimate_covariance(latents: torch.Tensor | np.ndarray, shrinkage: ShrinkageMode = "auto", *,
                        condition_limit: float = DEFAULT_CONDITION_LIMIT) -> CovarianceEstimate:
    """Mean and (unbiased) covariance of `latents`, shrunk with Ledoit-Wolf when asked or needed.

    The shrunk matrix is (1 - d) S + d (tr S / N) I with Ledoit-Wolf's intensity d; "auto" applies it
    only when S has a condition number above `condition_limit` or there are no more rows than columns.
    """
    if shrinkage not in SHRINKAGE_MODES:
        raise OptionError(f"Unknown shrinkage {shrinkage!r}.{did_you_mean(str(shrinkage), SHRINKAGE_MODES)} "
                          f"Use one of {', '.join(SHRINKAGE_MODES)}.")
    z = as_latent_matrix(latents)
    n, dim = z.shape
    mean = z.mean(0)
    centred = z - mean
    cov = centred.T @ centred / (n - 1)
    cov = (cov + cov.T) / 2
    raw_condition = condition_number(cov)
    if shrinkage == "none" or (shrinkage == "auto" and n > dim and raw_condition <= condition_limit):
        return CovarianceEstimate(mean, cov, "none", 0.0, raw_condition)
    if float(torch.trace(cov)) <= 0:
        raise AebenchError("Latents do not vary at all; their covariance is zero. Check the encoder and data.")
    from sklearn.covariance import ledoit_wolf_shrinkage

    intensity = float(ledoit_wolf_shrinkage(centred.numpy(), assume_centered=True))
    target = torch.trace(cov) / dim
    shrunk = (1 - intensity) * cov + intensity * target * torch.eye(dim, dtype=torch.float64)
    return CovarianceEstimate(mean, shrunk, "ledoit_wolf", intensity, raw_condition)


def covariance_factor(cov: torch.Tensor) -> torch.Tensor:
    """A matrix A with A @ A.T == cov: the Cholesky factor, or for a merely semi-definite matrix the
    symmetric square root from eigh (negative rounding-error eigenvalues clipped to 0)."""
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise AebenchError(f"A covariance must be a square matrix, got shape {tuple(cov.shape)}.")
    if not torch.isfinite(cov).all():
        raise AebenchError("The covariance contains NaN or Inf; re-encode the data set or use shrinkage.")
    cov = (cov + cov.T) / 2
    factor, info = torch.linalg.cholesky_ex(cov)
    if int(info) == 0:
        return factor
    evals, evecs = torch.linalg.eigh(cov)
    scale = float(evals.abs().max()) if evals.numel() else 0.0
    if float(evals.min()) < -1e-8 * max(scale, 1e-300):
        raise AebenchError(
            f"The covariance is not positive semi-definite (smallest eigenvalue {float(evals.min()):.3g}); "
            f"use shrinkage='ledoit_wolf'."
        )
    return evecs * evals.clamp_min(0).sqrt()
