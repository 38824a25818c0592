"""`elliptic`: the source post's generator. PCA of the training latents, each principal coordinate drawn from
N(0, lambda_i), optionally truncated to a confidence level of the ellipsoid, mapped back z = mean + V y.

Truncation (`truncate`):
- `none`: the plain Gaussian in principal coordinates;
- `axis`: every coordinate within |y_i| <= q sqrt(lambda_i), q the two-sided normal quantile of
  `level` (each axis keeps `level` of its mass, the box keeps level^d of the Gaussian's);
- `radius`: the Mahalanobis radius within the chi-distribution quantile of `level` for d degrees of
  freedom (the ellipsoid keeps exactly `level` of the Gaussian's mass).
Draws are exact by inverse CDF (`method=inverse_cdf`: a uniform direction times a radius from the
truncated chi distribution, or per-axis truncated normals) or by rejection of untruncated draws
with at most `max_attempts` rounds (`method=rejection`).

Covariance: from all training latents or from their trimmed core (`core=trimmed`: points beyond the
`trim_level` Mahalanobis quantile dropped and the fit repeated until the set is stable; see
aebench.maths.trimmed_core; `fit_info` says how many points the core kept).

Ill-conditioned covariances (ORL: 320 latents at N=64 give condition number ~4e3, at N=256 ~3e6) are
handled as the ellipsoid region handles them: the PCA and the truncation live in the principal
subspace carrying `variance` of the total variance (d <= n/2 dimensions), and the remainder is drawn
from the residual Gaussian with the spread real latents show off that subspace (aebench.maths.principal).
With `variance=1` and enough latents the subspace is the whole space and d = N, as in the source post.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from scipy.stats import chi, chi2

from aebench import hookimpl
from aebench.errors import AebenchError, OptionError
from aebench.maths.principal import fit_principal
from aebench.maths.trimmed_core import trimmed_core
from aebench.options import option
from aebench.sampler import Sampler
from aebench.stats import LatentStats


@dataclass(frozen=True)
class EllipticOptions:
    truncate: Literal["none", "axis", "radius"] = option(
        "radius", "none; axis: |y_i| <= q sqrt(lambda_i) per principal axis; radius: Mahalanobis radius within "
        "the chi quantile for d degrees of freedom")
    level: float = option(0.95, "confidence level of the truncation", min=0, max=1, min_exclusive=True)
    method: Literal["inverse_cdf", "rejection"] = option(
        "inverse_cdf", "exact draws by inverse CDF, or rejection of untruncated draws (bounded by max_attempts)")
    max_attempts: int = option(100, "rounds of rejection sampling before giving up", min=1)
    core: Literal["all", "trimmed"] = option(
        "all", "covariance from all training latents or from their trimmed core (see trim_level)")
    trim_level: float = option(0.997, "core=trimmed: keep points within this chi2_d quantile (0.997: about 3 sigma)",
                               min=0, max=1, min_exclusive=True)
    trim_correction: bool = option(True, "core=trimmed: rescale the core's covariance to the untruncated Gaussian's")
    variance: float = option(0.99, "share of the variance the principal subspace carries", min=0, max=1,
                             min_exclusive=True)
    max_dims: int | None = option(None, "cap on the subspace dimension; default: n_train / 2", min=1)
    residual: Literal["cross_validated", "train", "none"] = option(
        "cross_validated", "spread off the subspace: measured out of fold, the training latents' own, or none")
    fit_seed: int = option(0, "seed of the folds that measure the out-of-fold residual", min=0, max=2**32 - 1)

    def __post_init__(self) -> None:
        for name in ("level", "trim_level"):
            if getattr(self, name) >= 1:
                raise OptionError(f"{name} must be below 1, got {getattr(self, name)}; 0.95 keeps 95% of the Gaussian.")


class EllipticSampler(Sampler):
    name = "elliptic"
    description = "The source post's generator: principal coordinates ~ N(0, lambda_i), truncated to a confidence ellipsoid or box."
    Options = EllipticOptions

    def _fit(self, train_latents: torch.Tensor, stats: LatentStats) -> None:
        o = self.options
        if o.core == "trimmed":
            core = trimmed_core(train_latents, level=o.trim_level, share=o.variance, max_dims=o.max_dims,
                                residual=o.residual, seed=o.fit_seed, correct=o.trim_correction)
            self.subspace, info = core.model, core.info
        else:
            self.subspace, info = fit_principal(train_latents, share=o.variance, max_dims=o.max_dims,
                                                residual=o.residual, seed=o.fit_seed)
            info.update(core_kept=int(train_latents.shape[0]), core_total=int(train_latents.shape[0]))
        d = self.subspace.dims
        if o.truncate == "radius":
            info["radius_bound"] = math.sqrt(float(chi2.ppf(o.level, d)))
            info["accepted_share"] = o.level
        elif o.truncate == "axis":
            info["axis_bound"] = self._axis_bound()
            info["accepted_share"] = o.level ** d
        self.fit_info = {"truncate": o.truncate, "level": o.level, "method": o.method, "core": o.core, **info}

    def _axis_bound(self) -> float:
        return float(torch.special.ndtri(torch.tensor((1 + self.options.level) / 2, dtype=torch.float64)))

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        o, d = self.options, self.subspace.dims
        if o.truncate == "none":
            white = torch.randn(n, d, generator=generator, dtype=torch.float64)
        elif o.method == "inverse_cdf":
            white = self._inverse_cdf(n, d, generator)
        else:
            white = self._rejection(n, d, generator)
        return self.subspace.lift(white * self.subspace.variance.sqrt(), generator)

    def _inverse_cdf(self, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
        if self.options.truncate == "radius":
            direction = torch.randn(n, d, generator=generator, dtype=torch.float64)
            direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-300)
            u = torch.rand(n, generator=generator, dtype=torch.float64) * self.options.level
            radius = torch.from_numpy(chi.ppf(u.numpy(), d)).to(torch.float64)
            return direction * radius[:, None]
        q = self._axis_bound()
        lo = float(torch.special.ndtr(torch.tensor(-q, dtype=torch.float64)))
        u = torch.rand(n, d, generator=generator, dtype=torch.float64)
        return torch.special.ndtri(lo + u * (1 - 2 * lo)).clamp(-q, q)

    def _rejection(self, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
        o = self.options
        if o.truncate == "radius":
            bound = float(chi2.ppf(o.level, d))
            inside = lambda g: g.pow(2).sum(1) <= bound  # noqa: E731
            rate = o.level
        else:
            q = self._axis_bound()
            inside = lambda g: (g.abs() <= q).all(1)  # noqa: E731
            rate = o.level ** d
        batch = max(64, math.ceil(1.2 * n / max(rate, 1e-12)) if rate > 1e-6 else 64 * n)
        batch = min(batch, 1_000_000)
        kept: list[torch.Tensor] = []
        have = 0
        for _ in range(o.max_attempts):
            if have >= n:
                break
            g = torch.randn(batch, d, generator=generator, dtype=torch.float64)
            g = g[inside(g)]
            kept.append(g)
            have += g.shape[0]
        if have < n:
            raise AebenchError(
                f"{self.name}: rejection sampling kept {have} of {n} points in {o.max_attempts} rounds (expected "
                f"acceptance {rate:.2g} in d={d}); use method=inverse_cdf, raise max_attempts or lower the level.")
        return torch.cat(kept)[:n] if kept else torch.empty(0, d, dtype=torch.float64)


@hookimpl
def register_samplers(register):
    register(EllipticSampler)
