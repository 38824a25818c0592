"""Kernel Inception Distance: the unbiased squared MMD with a cubic polynomial kernel, averaged over
random equal-size subsets (Bińkowski et al. 2018), computed exactly as torchmetrics'
`KernelInceptionDistance` (same kernel, estimator, and subset draws for one seed).

Subsets are drawn like torchmetrics: per subset, `randperm(n_real)` then `randperm(n_fake)` from one
generator. The real-only kernel term of every subset is returned separately so a run can reuse it for
every sampler with the same sample count. When the whole kernel matrices fit in `gram_bytes`, they are
computed once and each subset only gathers its entries (about `subsets` times fewer multiplications);
larger sets fall back to one kernel evaluation per subset, so memory stays bounded.
"""

from __future__ import annotations

import torch

from aebench.errors import DataError

DEFAULT_GRAM_BYTES = 256 * 2**20


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> torch.Tensor:
    """(x y^T * gamma + coef) ** degree, gamma = 1 / d by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def _offdiag_mean(k: torch.Tensor) -> torch.Tensor:
    m = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (m * (m - 1))


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, *, xx_term: torch.Tensor | None = None) -> torch.Tensor:
    """Squared MMD of equal-size sets x, y [m, d]: mean off-diagonal k(x,x) + k(y,y) - 2 mean k(x,y).
    `xx_term` is the precomputed first term (it depends on the real subset only)."""
    if xx_term is None:
        xx_term = _offdiag_mean(polynomial_kernel(x, x))
    return xx_term + _offdiag_mean(polynomial_kernel(y, y)) - 2 * polynomial_kernel(x, y).mean()


def draw_subsets(n_real: int, n_fake: int, subset_size: int, n_subsets: int,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices [n_subsets, subset_size] into the real and the fake set, in torchmetrics' order."""
    if not 2 <= subset_size <= min(n_real, n_fake):
        raise DataError(f"KID subset size {subset_size} must be in [2, min(n_real, n_fake) = {min(n_real, n_fake)}]; "
                        f"draw more samples or lower kid.subset_size.")
    gen = torch.Generator().manual_seed(seed)
    real_idx, fake_idx = [], []
    for _ in range(n_subsets):
        real_idx.append(torch.randperm(n_real, generator=gen)[:subset_size])
        fake_idx.append(torch.randperm(n_fake, generator=gen)[:subset_size])
    return torch.stack(real_idx), torch.stack(fake_idx)


def _fits(n: int, m: int, gram_bytes: int | None) -> bool:
    return n * m * 8 <= (DEFAULT_GRAM_BYTES if gram_bytes is None else gram_bytes)


def real_terms(real: torch.Tensor, real_idx: torch.Tensor, *, gram_bytes: int | None = None) -> torch.Tensor:
    """The real-only kernel term of each subset [n_subsets] (float64)."""
    x = real.to(torch.float64)
    idx = real_idx.to(x.device)
    if _fits(x.shape[0], x.shape[0], gram_bytes):
        k = polynomial_kernel(x, x)
        return torch.stack([_offdiag_mean(k[i][:, i]) for i in idx])
    return torch.stack([_offdiag_mean(polynomial_kernel(x[i], x[i])) for i in idx])


def kid_scores(real: torch.Tensor, fake: torch.Tensor, real_idx: torch.Tensor, fake_idx: torch.Tensor,
               xx_terms: torch.Tensor | None = None, *, gram_bytes: int | None = None) -> torch.Tensor:
    """Squared MMD of each subset pair [n_subsets] in float64; their mean is KID."""
    x, y = real.to(torch.float64), fake.to(torch.float64).to(real.device)
    if xx_terms is None:
        xx_terms = real_terms(x, real_idx, gram_bytes=gram_bytes)
    pairs = zip(real_idx.to(x.device), fake_idx.to(x.device), xx_terms.to(x.device))
    if not _fits(y.shape[0], x.shape[0] + y.shape[0], gram_bytes):
        return torch.stack([mmd2_unbiased(x[ri], y[fi], xx_term=t) for ri, fi, t in pairs])
    k_xy, k_yy = polynomial_kernel(x, y), polynomial_kernel(y, y)
    return torch.stack([t + _offdiag_mean(k_yy[fi][:, fi]) - 2 * k_xy[ri][:, fi].mean() for ri, fi, t in pairs])
