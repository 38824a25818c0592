"""Scaled chi-square parts as approximately standard-normal scores, so parts with few and with many degrees
of freedom can be compared on one scale (the subspace regions take the larger of two such scores)."""

from __future__ import annotations

import math

import torch
from scipy.stats import chi2


def chi2_normal_score(x: torch.Tensor, median: float, dof: float) -> torch.Tensor:
    """Approximate standard-normal score of x ~ g chi2_dof whose median is `median` (Wilson-Hilferty:
    (chi2_nu / nu)^(1/3) is close to N(1 - 2/(9 nu), 2/(9 nu)))."""
    v = 2.0 / (9.0 * dof)
    unit = x * (float(chi2.median(dof)) / (median * dof))  # x as chi2_nu / nu
    return (unit.clamp_min(0).pow(1.0 / 3.0) - (1.0 - v)) / math.sqrt(v)


def moment_dof(x: torch.Tensor) -> float:
    """Degrees of freedom of the scaled chi-square g chi2_nu with the mean and variance of x (Satterthwaite),
    at least 1 (below that the cube-root normal approximation breaks down)."""
    var = float(x.var())
    return max(1.0, 2.0 * float(x.mean()) ** 2 / var) if var > 0 else 1.0
