"""FID speed: `aebench.maths.fid` against the formulation of pytorch-fid (numpy mean/cov, then
scipy.linalg.sqrtm of sigma1 @ sigma2 and the trace formula), written out here as the baseline.

Per call: both sides' mean and covariance plus `frechet_distance`. Per sampler: the real side's mean,
covariance and its square root cached, then `frechet_distance_sqrt` (how the `fid` metric runs).
Values must agree to 1e-5 relative."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from helpers import SIZES, ratio, record, run_ours, spectrum_data, time_call

from aebench.maths.fid import frechet_distance, frechet_distance_sqrt, mean_cov, psd_sqrt

CFG = SIZES["fid"]


def pytorch_fid_distance(real: np.ndarray, fake: np.ndarray, eps: float = 1e-6) -> float:
    """pytorch-fid's `calculate_activation_statistics` + `calculate_frechet_distance`."""
    mu1, sigma1 = np.mean(real, axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = np.mean(fake, axis=0), np.cov(fake, rowvar=False)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy deprecates sqrtm's `disp`; pytorch-fid still passes it
        covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def features():
    """ReLU-like non-negative features (as Inception pool features are), real and a shifted fake."""
    n, dim = CFG["n"], CFG["dim"]
    real = np.maximum(spectrum_data(n, dim, 21), 0)
    fake = np.maximum(spectrum_data(n, dim, 22, scale=1.2, shift=0.05), 0)
    return real, fake


def bench_fid(benchmark, features):
    real, fake = features
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    rounds = CFG["rounds"]
    base_s, want = time_call(lambda: pytorch_fid_distance(real, fake), rounds)
    call_s, got = time_call(lambda: frechet_distance(*mean_cov(r), *mean_cov(f)), rounds)
    mu_r, sigma_r = mean_cov(r)
    root = psd_sqrt(sigma_r)
    ours_s, cached = run_ours(benchmark, lambda: frechet_distance_sqrt(mu_r, sigma_r, root, *mean_cov(f)), rounds)
    assert got == pytest.approx(want, rel=1e-5)
    assert cached == pytest.approx(want, rel=1e-5)
    record(benchmark, f"fid d={real.shape[1]}", n_real=len(real), n_fake=len(fake), value=got,
           relative_difference=abs(got - want) / abs(want), pytorch_fid_s=base_s, aebench_call_s=call_s,
           aebench_cached_s=ours_s, speedup_per_call=ratio(base_s, call_s), speedup_per_sampler=ratio(base_s, ours_s))
