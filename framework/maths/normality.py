"""How Gaussian is the latent cloud? What the source post's later parts measured, as numbers.

- per principal component: skewness, excess kurtosis and D'Agostino-Pearson's normality test
  (scipy.stats.normaltest), for all training latents and for the trimmed core;
- Mardia's multivariate skewness and kurtosis tests (Mardia 1970) of the trimmed core and of all
  points, in the whitened principal subspace (the full-space covariance of few latents is singular or
  dominated by noise directions). Neither scipy nor scikit-learn offers a multivariate normality test
  (pingouin's Henze-Zirkler would add pandas and statsmodels for one function), so Mardia is
  implemented here and checked against scipy's univariate moments (for d = 1 Mardia's b1 and b2 are
  the squared skewness and the kurtosis) and a direct double sum;
- Mahalanobis radii against the chi distribution with d degrees of freedom (their quantiles and a
  Kolmogorov-Smirnov distance);
- for pairs of dominant components, the share of points inside the 1, 2 and 3 sigma ellipses of the
  pair's own 2-D Gaussian fit, against the Gaussian's 1 - exp(-k^2 / 2) = 39.3%, 86.5% and 98.9%.

Tests whose cost grows with n^2 (Mardia's skewness) use a seeded subset of at most `max_points`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import stats as sps

from aebench.maths.principal import fit_principal
from aebench.maths.trimmed_core import TrimmedCore, mahalanobis2, trimmed_core

if TYPE_CHECKING:  # the statistics are read, never built, here: maths stays below the contracts
    from aebench.stats import LatentStats

SIGMAS = (1, 2, 3)
GAUSSIAN_ELLIPSE_SHARE = {k: 1 - math.exp(-k * k / 2) for k in SIGMAS}  # 0.393, 0.865, 0.989
_BLOCK = 2048


def mardia(x: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Mardia's multivariate skewness b1 and kurtosis b2 of x [n, d] with their tests.

    b1 = (1/n^2) sum_ij (c_i' S^-1 c_j)^3 and b2 = (1/n) sum_i (c_i' S^-1 c_i)^2 with the maximum-
    likelihood covariance S. Under normality n b1 / 6 ~ chi2 with d (d+1) (d+2) / 6 degrees of freedom,
    and b2 is standardised with its exact finite-sample mean d (d+2) (n-1) / (n+1) and variance
    8 d (d+2) (n-3) (n-d-1) (n-d+1) / ((n+1)^2 (n+3) (n+5)) (Mardia 1974) to a N(0, 1) score (two-sided
    p-value): with the asymptotic d (d+2) and 8 d (d+2) / n, Gaussian data with n = 305, d = 42 were
    rejected at the 5% level in a third of the draws.
    """
    z = torch.as_tensor(x, dtype=torch.float64)
    n, d = z.shape
    if n <= d + 3:
        raise ValueError(f"Mardia's test needs more than d + 3 points, got n={n}, d={d}.")
    c = z - z.mean(0)
    cov = c.T @ c / n
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(cov), c.T, upper=False).T  # rows: L^-1 c_i
    b1 = 0.0
    for start in range(0, n, _BLOCK):
        b1 += float((white[start:start + _BLOCK] @ white.T).pow(3).sum())
    b1 /= n * n
    b2 = float(white.pow(2).sum(1).pow(2).mean())
    dof = d * (d + 1) * (d + 2) / 6
    skew_stat = n * b1 / 6
    kurt_mean = d * (d + 2) * (n - 1) / (n + 1)
    kurt_var = 8 * d * (d + 2) * (n - 3) * (n - d - 1) * (n - d + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    kurt_z = (b2 - kurt_mean) / math.sqrt(kurt_var) if kurt_var > 0 else math.nan
    return {"n": n, "dims": d, "skewness": b1, "skewness_stat": skew_stat, "skewness_dof": dof,
            "skewness_p": float(sps.chi2.sf(skew_stat, dof)), "kurtosis": b2, "kurtosis_expected": kurt_mean,
            "kurtosis_z": kurt_z, "kurtosis_p": float(2 * sps.norm.sf(abs(kurt_z))) if math.isfinite(kurt_z) else None}


def _subset(n: int, max_points: int, seed: int) -> torch.Tensor:
    if n <= max_points:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points].sort().values


def component_rows(coords: torch.Tensor, core: torch.Tensor, variance: torch.Tensor, top: int) -> list[dict[str, Any]]:
    """Per principal component (first `top`): variance share, skewness, excess kurtosis and
    D'Agostino-Pearson p-values for all points and for the core."""
    share = variance / variance.sum()
    rows = []
    for i in range(min(top, coords.shape[1])):
        x, xc = coords[:, i].numpy(), coords[core, i].numpy()
        rows.append({"component": i, "variance_share": float(share[i]), "skewness": float(sps.skew(x)),
                     "excess_kurtosis": float(sps.kurtosis(x)),
                     "p_all": float(sps.normaltest(x).pvalue) if len(x) >= 8 else None,
                     "p_core": float(sps.normaltest(xc).pvalue) if len(xc) >= 8 else None})
    return rows


def radius_summary(radii: np.ndarray, dof: int) -> dict[str, Any]:
    """Quantiles of Mahalanobis radii against chi_dof's, and the Kolmogorov-Smirnov distance to chi_dof."""
    levels = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    ks = sps.kstest(radii, sps.chi(dof).cdf)
    return {"dof": dof, "n": int(len(radii)), "levels": list(levels),
            "quantiles": [float(q) for q in np.quantile(radii, levels)],
            "chi_quantiles": [float(sps.chi.ppf(q, dof)) for q in levels],
            "ks_distance": float(ks.statistic), "ks_p": float(ks.pvalue)}


def dominant_pairs(stats: LatentStats, count: int) -> list[tuple[int, int]]:
    """Pairs of the most dominant components: (1st, 2nd), (1st, 3rd), (2nd, 3rd), ... up to `count`."""
    order = stats.dominant.tolist() + [c for c in stats.dominance_order.tolist() if c not in stats.dominant.tolist()]
    pairs = []
    for j in range(1, len(order)):
        for i in range(j):
            pairs.append((int(order[i]), int(order[j])))
            if len(pairs) >= count:
                return pairs
    return pairs


def ellipse_shares(latents: torch.Tensor, pair: tuple[int, int]) -> dict[str, Any]:
    """Share of points inside the k-sigma ellipses (k = 1, 2, 3) of the pair's 2-D Gaussian fit."""
    xy = latents[:, list(pair)].to(torch.float64)
    c = xy - xy.mean(0)
    cov = c.T @ c / (xy.shape[0] - 1)
    m2 = (c @ torch.linalg.inv(cov) * c).sum(1)
    r = float(cov[0, 1] / math.sqrt(float(cov[0, 0] * cov[1, 1])))
    return {"pair": list(pair), "correlation": r,
            "inside": {str(k): float((m2 <= k * k).double().mean()) for k in SIGMAS},
            "gaussian": {str(k): GAUSSIAN_ELLIPSE_SHARE[k] for k in SIGMAS}}


def analyse(train: torch.Tensor, stats: LatentStats, *, heldout: torch.Tensor | None = None, top: int = 10,
            pairs: int = 6, trim_level: float = 0.997, share: float = 0.99, max_points: int = 2000,
            seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The normality report of training latents (JSON-ready) and the arrays its plots need."""
    z = train.detach().to("cpu", torch.float64)
    model, model_info = fit_principal(z, share=share, residual="train")
    core: TrimmedCore = trimmed_core(z, level=trim_level, share=share, residual="train")
    d = model.dims
    coords, _ = model.project(z)
    rows = component_rows(coords, core.keep, model.variance, top)
    pick = _subset(len(z), max_points, seed)
    core_idx = torch.nonzero(core.keep).flatten()
    core_pick = core_idx[_subset(len(core_idx), max_points, seed)]
    core_coords, _ = core.model.project(z[core_pick])
    multivariate: dict[str, Any] = {}
    for name, x in (("core", core_coords), ("all", coords[pick])):
        try:
            multivariate[name] = mardia(x)
        except ValueError as exc:
            multivariate[name] = {"error": str(exc)}
    radii_train = mahalanobis2(model, z).sqrt().numpy()
    radii_core = mahalanobis2(core.model, z[core.keep]).sqrt().numpy()
    radii = {"train": radius_summary(radii_train, d), "core": radius_summary(radii_core, d)}
    arrays: dict[str, Any] = {"radii_train": radii_train, "radii_core": radii_core, "dof": d, "coords": coords,
                              "core": core.keep}
    if heldout is not None and len(heldout):
        radii_held = mahalanobis2(model, heldout.detach().to("cpu", torch.float64)).sqrt().numpy()
        radii["heldout"] = radius_summary(radii_held, d)
        arrays["radii_heldout"] = radii_held
    pair_list = dominant_pairs(stats, pairs)
    arrays["pairs"] = pair_list
    arrays["latents"] = z
    report = {
        "subspace": {"dims": d, "variance_share": model_info["subspace_variance_share"], "latent_dim": z.shape[1]},
        "core": {k: v for k, v in core.info.items() if k.startswith(("core", "trim"))},
        "components": rows,
        "mardia": multivariate,
        "mardia_max_points": max_points,
        "radii": radii,
        "ellipses": [ellipse_shares(z, p) for p in pair_list],
    }
    return report, arrays
