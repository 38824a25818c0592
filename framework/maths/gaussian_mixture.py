"""Gaussian mixtures over latents: fitted with sklearn's EM, evaluated and sampled with torch.

Ex-post density estimation (Ghosh et al. 2020) fits a mixture to an AE's training latents. With few
latents in high dimension EM can collapse onto single points: on 320 ORL latents at N=256 a k=10
mixture with a fixed tiny regulariser stopped after 2 iterations with held-out log-likelihood
-3.7e6 per point against -133 for a shrunk single Gaussian. So `fit_mixture` standardises the
latents by their overall scale (the regulariser is then relative to the data's variance), checks
held-out log-likelihood against a shrunk single Gaussian, and falls back or fails clearly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from aebench.errors import AebenchError, OptionError, did_you_mean
from aebench.maths.covariance import ShrinkageMode, as_latent_matrix, covariance_factor, estimate_covariance

CovarianceType = Literal["full", "diag", "tied", "spherical"]
COVARIANCE_TYPES: tuple[str, ...] = ("full", "diag", "tied", "spherical")
OnCollapse = Literal["fallback", "error"]
# A mixture counts as collapsed when its held-out log-likelihood per point is more than this many nats
# per latent dimension below a shrunk single Gaussian's. One nat per dimension is what a Gaussian loses
# when it underestimates the variance ~4.5-fold in every direction (0.5 (log r + 1/r - 1) at r = 1/4.5),
# while a mixture that is merely over-smoothed (variance 10x too large) loses only ~0.7; a collapsed fit
# (components shrunk onto single points) loses thousands.
COLLAPSE_MARGIN_PER_DIM = 1.0
# The default cap on the latents EM sees in the `gmm` sampler and the `density` region (see fit_mixture)
MAX_FIT_POINTS = 30000
_LOG_2PI = math.log(2 * math.pi)


class MixtureCollapseError(AebenchError):
    """A fitted mixture explains held-out latents far worse than a single Gaussian."""


@dataclass
class FittedMixture:
    """A Gaussian mixture in latent space: weights [k], means [k, N], covariances [k, N, N] (float64)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    _cholesky: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _factors: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64).reshape(-1)
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.covariances = torch.as_tensor(self.covariances, dtype=torch.float64)
        k = self.weights.shape[0]
        dim = self.means.shape[-1] if self.means.ndim else -1
        if self.means.ndim != 2 or self.means.shape[0] != k or tuple(self.covariances.shape) != (k, dim, dim):
            raise AebenchError(
                f"Mixture shapes disagree: weights {tuple(self.weights.shape)}, means {tuple(self.means.shape)}, "
                f"covariances {tuple(self.covariances.shape)}; expected [k], [k, N], [k, N, N]."
            )
        if k < 1 or (self.weights < 0).any() or abs(float(self.weights.sum()) - 1) > 1e-6:
            raise AebenchError("Mixture weights must be non-negative and sum to 1; renormalise them.")

    @property
    def k(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log density of each row of `z` [n, N] under the mixture, float64 [n]."""
        z = torch.as_tensor(z).detach().to("cpu", torch.float64)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise AebenchError(f"Mixture log_prob expects latents [n, {self.dim}], got {tuple(z.shape)}.")
        chol = self._cholesky_factors()
        per_component = torch.empty(z.shape[0], self.k, dtype=torch.float64)
        for j in range(self.k):
            white = torch.linalg.solve_triangular(chol[j], (z - self.means[j]).T, upper=False)
            log_det = 2 * torch.log(torch.diagonal(chol[j])).sum()
            per_component[:, j] = -0.5 * (white.square().sum(0) + self.dim * _LOG_2PI + log_det)
        return torch.logsumexp(per_component + torch.log(self.weights), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` points [n, N] float64 and the component each came from [n] int64; randomness only from
        `generator`."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise OptionError(f"The number of samples must be a non-negative integer, got {n!r}.")
        if n == 0:
            return torch.empty(0, self.dim, dtype=torch.float64), torch.empty(0, dtype=torch.int64)
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        factors = self._sampling_factors()
        z = torch.empty(n, self.dim, dtype=torch.float64)
        for j in range(self.k):
            rows = component == j
            if rows.any():
                z[rows] = self.means[j] + noise[rows] @ factors[j].T
        return z, component

    def _cholesky_factors(self) -> torch.Tensor:
        if self._cholesky is None:
            chol, info = torch.linalg.cholesky_ex(self.covariances)
            if int(info.max()) != 0:
                bad = int(torch.nonzero(info)[0])
                raise AebenchError(
                    f"Mixture component {bad} has a singular covariance, so densities are undefined; "
                    f"fit with a positive reg or with shrinkage."
                )
            self._cholesky = chol
        return self._cholesky

    def _sampling_factors(self) -> torch.Tensor:
        if self._factors is None:
            self._factors = torch.stack([covariance_factor(c) for c in self.covariances])
        return self._factors


def fit_gaussian(latents: torch.Tensor | np.ndarray, shrinkage: ShrinkageMode = "auto") -> FittedMixture:
    """A single Gaussian (k=1 mixture) with the latents' mean and a (Ledoit-Wolf shrunk) covariance."""
    est = estimate_covariance(latents, shrinkage)
    return FittedMixture(torch.ones(1, dtype=torch.float64), est.mean[None], est.covariance[None],
                         info={"k": 1, "k_requested": 1, "model": "gaussian", "covariance": est.to_dict()})


def fit_mixture(latents: torch.Tensor | np.ndarray, k: int, *, seed: int = 0, reg: float = 1e-3,
                covariance: CovarianceType = "full", max_iter: int = 200, validation: float = 0.2,
                on_collapse: OnCollapse = "fallback",
                collapse_margin: float = COLLAPSE_MARGIN_PER_DIM, max_points: int | None = None) -> FittedMixture:
    """Fit a k-component Gaussian mixture by EM on standardised latents, with a collapse check.

    `reg` is added to every covariance's diagonal in units of the latents' mean per-component
    variance. A random `validation` share of the latents is held out: the mixture fitted on the
    rest must reach a held-out log-likelihood per point no more than `collapse_margin` nats per
    dimension below a shrunk single Gaussian's. Otherwise `on_collapse="error"` raises
    MixtureCollapseError and "fallback" halves k until it passes (down to 2, then the shrunk single
    Gaussian itself). The accepted mixture is then refitted on all latents, starting from its parameters.
    `validation=0` skips the check.

    `max_points` caps the latents EM sees (a random subset drawn with `seed`; None: all). EM's iteration
    count grows with the set, so its cost grew worse than linearly: on 60k Fashion-MNIST latents at N=256
    (k=10, full) the fit took 411 s against 66 s on 30k, for a held-out log-likelihood of -168.8 against
    -170.4 per point (0.006 nats per dimension).
    """
    _check_mixture_args(k, seed, reg, covariance, max_iter, validation, on_collapse, collapse_margin, max_points)
    z = as_latent_matrix(latents, "Latents for the mixture")
    n_all = z.shape[0]
    if max_points is not None and n_all > max_points:
        z = z[torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(n_all)[:max_points]))]
    n, dim = z.shape
    if k > n:
        raise OptionError(f"A mixture of k={k} components needs at least k latents, got {n}; lower k.")
    centre = z.mean(0)
    scale = float(z.var(0).mean().sqrt())
    if scale <= 0:
        raise AebenchError("Latents do not vary at all, so no mixture can be fitted; check the encoder and data.")
    x = ((z - centre) / scale).numpy()
    log_scale = dim * math.log(scale)  # log-densities in latent units = standardised ones - dim*log(scale)
    info: dict[str, Any] = {"k_requested": k, "covariance_type": covariance, "reg": reg, "seed": seed,
                            "validation": validation, "fallback": None, "fit_points": n, "latents": n_all}
    if validation == 0:
        gm = _em(x, k, covariance, reg, seed, max_iter)
        info.update(k=k, checked=False, **_convergence(gm))
        return _to_latent_units(gm, centre, scale, covariance, info)

    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(validation * n)))
    fit_rows, val_rows = order[n_val:], order[:n_val]
    if len(fit_rows) < max(k, 2):
        raise OptionError(
            f"With validation={validation} only {len(fit_rows)} of {n} latents remain to fit k={k} components; "
            f"lower k or validation."
        )
    x_fit, x_val = x[fit_rows], x[val_rows]
    baseline = float(fit_gaussian(x_fit, "auto").log_prob(torch.from_numpy(x_val)).mean())
    info["gaussian_heldout_loglik"] = baseline - log_scale
    info["attempts"] = []
    candidates = [k] if on_collapse == "error" else _halving(k)
    for kk in candidates:
        try:
            gm = _em(x_fit, kk, covariance, reg, seed, max_iter)
            heldout = float(gm.score(x_val))
        except ValueError:  # sklearn: "ill-defined empirical covariance" -- collapsed beyond repair
            gm, heldout = None, -math.inf
        info["attempts"].append({"k": kk, "heldout_loglik": heldout - log_scale})
        if gm is not None and math.isfinite(heldout) and heldout >= baseline - collapse_margin * dim:
            final = _em(x, kk, covariance, reg, seed, max_iter, start=gm)
            info.update(k=kk, checked=True, heldout_loglik=heldout - log_scale, **_convergence(final))
            if kk != k:
                info["fallback"] = "fewer components"
            return _to_latent_units(final, centre, scale, covariance, info)
        if on_collapse == "error":
            raise MixtureCollapseError(
                f"The k={kk} Gaussian mixture collapsed: held-out log-likelihood {heldout - log_scale:.4g} per point "
                f"vs {baseline - log_scale:.4g} for a single shrunk Gaussian; raise reg (now {reg:g}), lower k, "
                f"or set on_collapse=fallback."
            )
    single = fit_gaussian(z, "auto")
    info.update(k=1, checked=True, fallback="single gaussian", model="gaussian",
                heldout_loglik=info["gaussian_heldout_loglik"], covariance=single.info["covariance"])
    single.info = info
    return single


def _check_mixture_args(k: Any, seed: Any, reg: Any, covariance: Any, max_iter: Any, validation: Any,
                        on_collapse: Any, collapse_margin: Any, max_points: Any) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(k) or k < 1:
        raise OptionError(f"Mixture k must be an integer >= 1, got {k!r}.")
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise OptionError(f"Mixture seed must be an integer in [0, 2^32), got {seed!r}.")
    if not is_int(max_iter) or max_iter < 1:
        raise OptionError(f"Mixture max_iter must be an integer >= 1, got {max_iter!r}.")
    if max_points is not None and (not is_int(max_points) or max_points < 2):
        raise OptionError(f"Mixture max_points must be an integer >= 2 or None, got {max_points!r}.")
    if not isinstance(reg, (int, float)) or not math.isfinite(reg) or reg < 0:
        raise OptionError(f"Mixture reg must be a finite number >= 0, got {reg!r}.")
    if not isinstance(validation, (int, float)) or not 0 <= validation < 1:
        raise OptionError(f"Mixture validation share must be in [0, 1), got {validation!r}.")
    if not isinstance(collapse_margin, (int, float)) or not collapse_margin >= 0:
        raise OptionError(f"Mixture collapse_margin must be >= 0, got {collapse_margin!r}.")
    if covariance not in COVARIANCE_TYPES:
        raise OptionError(f"Unknown mixture covariance {covariance!r}.{did_you_mean(str(covariance), COVARIANCE_TYPES)} "
                          f"Use one of {', '.join(COVARIANCE_TYPES)}.")
    if on_collapse not in ("fallback", "error"):
        raise OptionError(f"Unknown on_collapse {on_collapse!r}.{did_you_mean(str(on_collapse), ('fallback', 'error'))} "
                          f"Use fallback or error.")


def _halving(k: int) -> list[int]:
    """k, k/2, ... down to 2 (a 1-component 'mixture' is left to the shrunk single Gaussian)."""
    out = [k]
    while out[-1] > 2:
        out.append(out[-1] // 2)
    return out


def _em(x: np.ndarray, k: int, covariance: str, reg: float, seed: int, max_iter: int, start: Any = None) -> Any:
    """sklearn EM; `start` (a fitted GaussianMixture) warm-starts it from that fit's parameters."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    init = {}
    if start is not None:
        init = {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}
    gm = GaussianMixture(k, covariance_type=covariance, reg_covar=reg, max_iter=max_iter, random_state=seed, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)
    return gm


def _convergence(gm: Any) -> dict[str, Any]:
    return {"converged": bool(gm.converged_), "n_iter": int(gm.n_iter_)}


def _to_latent_units(gm: Any, centre: torch.Tensor, scale: float, covariance: str, info: dict) -> FittedMixture:
    """Turn an sklearn mixture on standardised latents into a FittedMixture in latent units."""
    k, dim = gm.means_.shape
    cov = torch.as_tensor(gm.covariances_, dtype=torch.float64)
    if covariance == "tied":
        cov = cov.expand(k, dim, dim)
    elif covariance == "diag":
        cov = torch.diag_embed(cov)
    elif covariance == "spherical":
        cov = cov[:, None, None] * torch.eye(dim, dtype=torch.float64)
    means = centre + scale * torch.as_tensor(gm.means_, dtype=torch.float64)
    info = dict(info, model="mixture")
    return FittedMixture(torch.as_tensor(gm.weights_, dtype=torch.float64), means,
                         (scale**2) * cov.contiguous(), info=info)
