"""Fréchet distance between two Gaussians fitted to feature sets (the formula behind FID).

`frechet_distance` takes the trace of the matrix square root as torchmetrics does: the sum of the square
roots of the eigenvalues of sigma1 @ sigma2 (real parts, negatives from rounding clamped to 0), in float64.
This avoids scipy's `sqrtm` (slow, and complex-valued on near-singular products).

`frechet_distance_sqrt` is the same number for a fixed reference: the eigenvalues of sigma1 @ sigma2 are
those of the symmetric A sigma2 A with A = sqrt(sigma1), so with A computed once per run (`psd_sqrt`) each
sampler needs two matrix products and a symmetric eigensolve, several times cheaper than the general
eigensolve at d = 2048 (where the latter takes tens of seconds on a 2-core CPU).

`FrechetReference` goes one step further for the usual case of fewer samples than dimensions (n = 128
generated images, d = 2048 Inception features): with X the centred samples, A X^T X A / (n - 1) has the
same non-zero eigenvalues as the n x n matrix (X A)(X A)^T / (n - 1), so one n x d x d product and an
n x n eigensolve replace every d x d operation. Scoring subsets of one sample set (FID at several
sizes, for the bias-corrected FID-infinity) then costs only the subset's n x n eigensolve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aebench.errors import DataError

ArrayLike = torch.Tensor | np.ndarray


def _f64(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def mean_cov(features: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [d] and unbiased covariance [d, d] (divided by n - 1, as numpy and torchmetrics) in float64."""
    x = _f64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise DataError(f"mean_cov needs features [n, d] with n >= 2, got shape {tuple(x.shape)}; pass more samples.")
    if not torch.isfinite(x).all():
        raise DataError("mean_cov: features contain NaN or inf; check the images and the feature extractor.")
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def trace_sqrt_product(sigma1: ArrayLike, sigma2: ArrayLike) -> float:
    """tr(sqrt(sigma1 @ sigma2)) for covariance matrices, from the eigenvalues of the product."""
    eig = torch.linalg.eigvals(_f64(sigma1) @ _f64(sigma2))
    return float(eig.real.clamp_min(0).sqrt().sum())


def psd_sqrt(sigma: ArrayLike) -> torch.Tensor:
    """The symmetric square root of a covariance matrix (eigenvalues from rounding below 0 set to 0)."""
    sigma = _f64(sigma)
    w, v = torch.linalg.eigh((sigma + sigma.T) / 2)
    root = (v * w.clamp_min(0).sqrt()) @ v.T
    return (root + root.T) / 2


def _check(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> None:
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise DataError(
            f"frechet_distance needs means [d] and covariances [d, d] of one d, got {tuple(mu1.shape)}, "
            f"{tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}; use features from one extractor."
        )
    for t in (mu1, mu2, sigma1, sigma2):
        if not torch.isfinite(t).all():
            raise DataError("frechet_distance: a mean or covariance contains NaN or inf; check the features.")


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), in float64."""
    mu1, mu2, sigma1, sigma2 = _f64(mu1), _f64(mu2), _f64(sigma1), _f64(sigma2)
    _check(mu1, sigma1, mu2, sigma2)
    mean_term = float((mu1 - mu2).square().sum())
    return mean_term + float(sigma1.trace() + sigma2.trace()) - 2.0 * trace_sqrt_product(sigma1, sigma2)


def frechet_distance_sqrt(mu1: ArrayLike, sigma1: ArrayLike, sigma1_sqrt: ArrayLike, mu2: ArrayLike,
                          sigma2: ArrayLike) -> float:
    """`frechet_distance` with the reference's square root `psd_sqrt(sigma1)` precomputed."""
    mu1, mu2, sigma1, sigma2, root = _f64(mu1), _f64(mu2), _f64(sigma1), _f64(sigma2), _f64(sigma1_sqrt)
    _check(mu1, sigma1, mu2, sigma2)
    if root.shape != sigma1.shape:
        raise DataError(f"frechet_distance_sqrt: sigma1_sqrt {tuple(root.shape)} does not match sigma1 "
                        f"{tuple(sigma1.shape)}; pass psd_sqrt(sigma1).")
    inner = root @ sigma2 @ root
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = float(eig.clamp_min(0).sqrt().sum())
    return float((mu1 - mu2).square().sum()) + float(sigma1.trace() + sigma2.trace()) - 2.0 * trace_sqrt


@dataclass(frozen=True)
class FrechetReference:
    """A fixed reference Gaussian (mean, covariance, its square root and trace, float64) that many sample
    sets are scored against: `distance(samples)` is `frechet_distance(mu, sigma, *mean_cov(samples))`."""

    mu: torch.Tensor
    sigma: torch.Tensor
    root: torch.Tensor
    trace: float

    @classmethod
    def of(cls, features: ArrayLike) -> "FrechetReference":
        """The Gaussian fit of `features` [n, d]. With fewer points than dimensions the square root comes
        from the thin SVD of the centred points (rank n - 1, n^2 d work) instead of a d x d eigensolve."""
        x = _f64(features)
        mu, sigma = mean_cov(x)
        n, d = x.shape
        if n - 1 < d:
            _, s, vh = torch.linalg.svd((x - mu) / (n - 1) ** 0.5, full_matrices=False)
            root = (vh.T * s) @ vh
            root = (root + root.T) / 2
        else:
            root = psd_sqrt(sigma)
        return cls(mu, sigma, root, float(sigma.trace()))

    def project(self, samples: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(samples, samples @ root) in float64: the two arrays `distance_of_rows` reads."""
        x = _f64(samples).to(self.mu.device)
        if x.ndim != 2 or x.shape[1] != self.mu.shape[0] or x.shape[0] < 2:
            raise DataError(f"Frechet distance: samples of shape {tuple(x.shape)} do not match the reference's "
                            f"dimension {self.mu.shape[0]} (or n < 2); use features from one extractor.")
        if not torch.isfinite(x).all():
            raise DataError("Frechet distance: samples contain NaN or inf; check the images and the extractor.")
        return x, x @ self.root

    def distance(self, samples: ArrayLike) -> float:
        x, y = self.project(samples)
        return self.distance_of_rows(x, y, None)

    def distance_of_rows(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None) -> float:
        """The distance of the sample subset `rows` (all when None), from `project`'s arrays."""
        if rows is not None:
            x, y = x[rows], y[rows]
        n, d = x.shape
        mu = x.mean(0)
        xc = x - mu
        yc = y - y.mean(0)  # = xc @ root
        if n - 1 < d:  # non-zero eigenvalues of root sigma root from the n x n Gram matrix
            inner = yc @ yc.T
        else:
            inner = yc.T @ yc
        eig = torch.linalg.eigvalsh((inner + inner.T) / (2 * (n - 1)))
        trace_sqrt = float(eig.clamp_min(0).sqrt().sum())
        trace_f = float(xc.square().sum()) / (n - 1)
        return float((self.mu - mu).square().sum()) + self.trace + trace_f - 2.0 * trace_sqrt
