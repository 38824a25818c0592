"""The source post's samplers that live in the principal subspace: `correlated` (subspace covariance),
`elliptic` (truncated principal coordinates, trimmed core) and `shell`, with the shared principal
model and trimmed core.

The N=256-like case: few latents (n < N) on a low-dimensional signal plus a small noise floor, as an
AE's latents of a small data set are. There the old Ledoit-Wolf `correlated` put 0% of its samples in
the ellipsoid region.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import chi, chi2, kstest, norm

from aebench.errors import AebenchError, OptionError
from aebench.maths.principal import fit_principal, out_of_fold_residual, subspace_dims
from aebench.maths.trimmed_core import consistency_factor, mahalanobis2, trimmed_core
from aebench.regions.ellipsoid import EllipsoidRegion
from aebench.samplers.correlated import CorrelatedSampler
from aebench.samplers.elliptic import EllipticSampler
from aebench.samplers.shell import ShellSampler
from aebench.stats import compute_stats


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def low_rank_latents(n: int, dim: int = 128, rank: int = 12, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Latents like a small data set's at large N: a rank-`rank` signal with decaying variances, a noise
    floor in every direction, centred away from the origin."""
    g = gen(100)  # the same distribution for every seed
    basis = torch.linalg.qr(torch.randn(dim, rank, generator=g, dtype=torch.float64))[0].T  # [rank, dim]
    scales = torch.logspace(0.6, -0.4, rank, dtype=torch.float64)
    centre = torch.randn(dim, generator=g, dtype=torch.float64)
    s = gen(seed)
    signal = torch.randn(n, rank, generator=s, dtype=torch.float64) * scales
    return centre + signal @ basis + noise * torch.randn(n, dim, generator=s, dtype=torch.float64)


@pytest.fixture(scope="module")
def few():
    """n=96 training and 200 held-out latents at N=128 (n < N, as ORL's 320 at N=256)."""
    train, heldout = low_rank_latents(96, seed=1), low_rank_latents(200, seed=2)
    region = EllipsoidRegion().fit(train, compute_stats(train))
    region.calibrate(heldout)
    return train, heldout, compute_stats(train), region


def hit(region, z) -> float:
    return float(region.contains(z).double().mean())


# -- correlated at n < N ---------------------------------------------------------------------------

def test_correlated_lands_in_the_ellipsoid_when_latents_are_fewer_than_dimensions(few):
    train, heldout, stats, region = few
    assert hit(region, heldout) == pytest.approx(0.95, abs=0.01)
    sampler = CorrelatedSampler().fit(train, stats)
    assert sampler.fit_info["covariance"] == "subspace" and sampler.fit_info["subspace_dims"] <= 48
    assert hit(region, sampler.sample(2000, gen(3)).latents) >= 0.8
    # the Ledoit-Wolf full covariance inflates the empty directions: its samples miss the region
    shrunk = CorrelatedSampler(covariance="full").fit(train, stats)
    assert shrunk.fit_info["method"] == "ledoit_wolf"
    assert hit(region, shrunk.sample(2000, gen(3)).latents) < 0.05


def test_correlated_residual_spread_matches_held_out_latents(few):
    train, heldout, stats, _ = few
    sampler = CorrelatedSampler().fit(train, stats)
    sub = sampler.subspace
    _, r2_held = sub.project(heldout)
    _, r2_train = sub.project(train)
    _, r2_fake = sub.project(sampler.sample(4000, gen(4)).latents.double())
    # training latents sit closer to their own subspace than new latents; the out-of-fold spread does not
    assert float(r2_train.mean()) < 0.8 * float(r2_held.mean())
    assert float(r2_fake.mean()) == pytest.approx(float(r2_held.mean()), rel=0.2)
    assert sampler.fit_info["residual_scale"] > 1.2
    train_only = CorrelatedSampler(residual="train").fit(train, stats)
    _, r2_train_mode = train_only.subspace.project(train_only.sample(4000, gen(4)).latents.double())
    assert float(r2_train_mode.mean()) == pytest.approx(float(r2_train.mean()), rel=0.1)


def test_subspace_covariance_with_residual_train_is_the_raw_covariance():
    z = low_rank_latents(400, dim=12, rank=5, noise=0.2, seed=5)
    model, info = fit_principal(z, share=0.9, residual="train")
    assert info["subspace_dims"] < 12
    cov = (model.axes.T * model.variance) @ model.axes + (model.residual_axes.T * model.residual_variance) @ model.residual_axes
    torch.testing.assert_close(cov, torch.cov(z.T), rtol=1e-8, atol=1e-10)


def test_subspace_dims_follow_the_regions_rule():
    var = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.5], dtype=torch.float64)
    assert subspace_dims(var, 100, 0.8, None) == 2  # 8 / 10
    assert subspace_dims(var, 100, 0.81, None) == 3
    assert subspace_dims(var, 4, 0.99, None) == 2  # capped at n / 2
    assert subspace_dims(var, 100, 0.99, 1) == 1
    with pytest.raises(AebenchError, match="do not vary"):
        subspace_dims(torch.zeros(3, dtype=torch.float64), 10, 0.9, None)


def test_out_of_fold_residual_is_seeded_and_exceeds_the_in_sample_one(few):
    train = few[0]
    a = out_of_fold_residual(train, 10, seed=0)
    assert a == out_of_fold_residual(train, 10, seed=0) != out_of_fold_residual(train, 10, seed=1)
    model, _ = fit_principal(train, dims=10, residual="train")
    assert a > float(model.residual_variance.sum())


# -- elliptic ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wide():
    """Well-conditioned correlated latents, n >> N: with variance=1 the subspace is the whole space."""
    g = gen(7)
    q = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    cov = q @ torch.diag(torch.logspace(1, -0.5, 8, dtype=torch.float64)) @ q.T
    noise = torch.randn(5000, 8, generator=g, dtype=torch.float64)
    z = torch.linspace(-1, 2, 8, dtype=torch.float64) + noise @ torch.linalg.cholesky(cov).T
    return z, compute_stats(z)


def whitened(sampler, z: torch.Tensor) -> torch.Tensor:
    coords, _ = sampler.subspace.project(z.double())
    return coords / sampler.subspace.variance.sqrt()


@pytest.mark.parametrize("method", ["inverse_cdf", "rejection"])
def test_elliptic_radius_truncation_follows_the_truncated_chi(wide, method):
    z, stats = wide
    sampler = EllipticSampler(variance=1.0, truncate="radius", level=0.9, method=method).fit(z, stats)
    assert sampler.subspace.dims == 8 and not sampler.subspace.has_residual
    y = whitened(sampler, sampler.sample(4000, gen(1)).latents)
    radius = y.norm(dim=1).numpy()
    bound = math.sqrt(chi2.ppf(0.9, 8))
    assert radius.max() <= bound * (1 + 1e-5)
    assert sampler.fit_info["radius_bound"] == pytest.approx(bound)
    truncated_cdf = lambda r: chi.cdf(np.minimum(r, bound), 8) / 0.9  # noqa: E731
    assert kstest(radius, truncated_cdf).pvalue > 0.01
    # directions stay uniform: no preferred axis
    assert float((y / y.norm(dim=1, keepdim=True)).mean(0).abs().max()) < 0.06


@pytest.mark.parametrize("method", ["inverse_cdf", "rejection"])
def test_elliptic_axis_truncation_bounds_every_principal_coordinate(wide, method):
    z, stats = wide
    sampler = EllipticSampler(variance=1.0, truncate="axis", level=0.8, method=method).fit(z, stats)
    y = whitened(sampler, sampler.sample(4000, gen(2)).latents)
    q = norm.ppf(0.9)
    assert float(y.abs().max()) <= q * (1 + 1e-5)
    assert sampler.fit_info["accepted_share"] == pytest.approx(0.8 ** 8)
    # each coordinate is a normal truncated to [-q, q]
    truncated_cdf = lambda x: (norm.cdf(np.clip(x, -q, q)) - norm.cdf(-q)) / 0.8  # noqa: E731
    assert kstest(y[:, 0].numpy(), truncated_cdf).pvalue > 0.01
    assert kstest(y[:, 7].numpy(), truncated_cdf).pvalue > 0.01


def test_elliptic_without_truncation_reproduces_the_covariance(wide):
    z, stats = wide
    sampler = EllipticSampler(variance=1.0, truncate="none").fit(z, stats)
    fake = sampler.sample(40000, gen(3)).latents.double()
    assert float((torch.cov(fake.T) - stats.cov).abs().max()) < 0.04 * float(stats.cov.diagonal().max())
    torch.testing.assert_close(fake.mean(0), stats.mean, atol=0.05, rtol=0)


def test_elliptic_rejection_gives_up_with_a_clear_error(wide):
    z, stats = wide
    sampler = EllipticSampler(variance=1.0, truncate="axis", level=0.05, method="rejection", max_attempts=2).fit(z, stats)
    with pytest.raises(AebenchError, match="rejection sampling kept .* use method=inverse_cdf"):
        sampler.sample(100, gen(4))


@pytest.mark.parametrize("values, message", [
    ({"level": 1.0}, "below 1"), ({"level": 0}, "> 0"), ({"truncate": "box"}, "not one of"),
    ({"trim_level": 1.0}, "below 1"), ({"max_attempts": 0}, ">= 1"), ({"core": "robust"}, "not one of"),
])
def test_elliptic_rejects_bad_options(values, message):
    with pytest.raises(OptionError, match=message):
        EllipticSampler(**values)


def test_elliptic_in_the_principal_subspace_on_few_latents(few):
    train, heldout, stats, region = few
    sampler = EllipticSampler().fit(train, stats)
    d = sampler.subspace.dims
    assert d < train.shape[1] and sampler.fit_info["core_kept"] == 96
    fake = sampler.sample(2000, gen(5)).latents
    assert hit(region, fake) >= 0.9
    assert float(mahalanobis2(sampler.subspace, fake.double()).max()) <= chi2.ppf(0.95, d) * (1 + 1e-6)


# -- trimmed core -----------------------------------------------------------------------------------

def test_trimmed_core_drops_outliers_and_recovers_the_covariance():
    g = gen(8)
    inliers = torch.randn(1900, 4, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    outliers = 12 * torch.randn(100, 4, generator=g, dtype=torch.float64)
    z = torch.cat([inliers, outliers])
    core = trimmed_core(z, level=0.997, share=1.0, residual="none")
    assert core.info["trim_converged"] and core.info["trim_iterations"] > 1
    assert core.info["core_total"] == 2000
    assert 1850 <= core.kept <= 1900  # the inliers, less ~0.3% of their own tail
    assert int(core.keep[1900:].sum()) < 15  # almost all outliers dropped (a few land inside by chance)
    torch.testing.assert_close(core.model.variance, torch.tensor([9.0, 4.0, 1.0, 0.25], dtype=torch.float64), rtol=0.12, atol=0)
    plain, _ = fit_principal(z, share=1.0, residual="none")
    assert float(plain.variance[0]) > 1.3 * 9.0  # the outliers inflate the untrimmed covariance
    sampler = EllipticSampler(core="trimmed", variance=1.0).fit(z, compute_stats(z))
    assert sampler.fit_info["core_kept"] == core.kept and sampler.fit_info["core_share"] == pytest.approx(core.kept / 2000)


def test_consistency_factor_matches_a_truncated_gaussian():
    d, q = 5, float(chi2.ppf(0.9, 5))
    x = torch.randn(400000, d, generator=gen(9), dtype=torch.float64)
    inside = x[x.pow(2).sum(1) <= q]
    assert float(inside.var(0).mean()) == pytest.approx(consistency_factor(q, d), rel=0.01)


def test_trimming_too_hard_is_an_error():
    z = torch.randn(50, 3, generator=gen(10), dtype=torch.float64)
    with pytest.raises(OptionError, match="raise the trimming level"):
        trimmed_core(z, level=1e-6, share=1.0)


# -- shell ------------------------------------------------------------------------------------------

def test_shell_radii_come_from_the_training_latents(wide):
    z, stats = wide
    train = z[:300]
    sampler = ShellSampler(variance=1.0).fit(train, compute_stats(train))
    radii = set(np.round(sampler.radii.numpy(), 8))
    y = whitened(sampler, sampler.sample(500, gen(11)).latents)
    drawn = np.round(y.norm(dim=1).numpy(), 3)
    known = np.array(sorted(radii))
    nearest = np.abs(drawn[:, None] - known[None]).min(1)
    assert nearest.max() < 2e-3  # every radius is a training latent's (float32 output)
    median = ShellSampler(variance=1.0, radii="median").fit(train, compute_stats(train))
    r = whitened(median, median.sample(200, gen(12)).latents).norm(dim=1)
    assert float(r.std()) < 1e-4 and float(r.mean()) == pytest.approx(median.fit_info["radius_median"], rel=1e-4)


def test_shell_with_chi_radii_is_the_gaussian(wide):
    z, stats = wide
    sampler = ShellSampler(variance=1.0, radii="chi").fit(z, stats)
    fake = sampler.sample(40000, gen(13)).latents.double()
    assert float((torch.cov(fake.T) - stats.cov).abs().max()) < 0.04 * float(stats.cov.diagonal().max())


def test_shell_keeps_a_heavy_tailed_radius_distribution_that_a_gaussian_loses():
    """Latents whose Mahalanobis radius is far from chi: the shell keeps that radius spread."""
    g = gen(14)
    direction = torch.randn(3000, 6, generator=g, dtype=torch.float64)
    direction /= direction.norm(dim=1, keepdim=True)
    radius = torch.rand(3000, generator=g, dtype=torch.float64) * 4  # uniform radius, unlike chi_6
    z = direction * radius[:, None]
    stats = compute_stats(z)
    shell = ShellSampler(variance=1.0, residual="none").fit(z, stats)
    gauss = EllipticSampler(variance=1.0, truncate="none", residual="none").fit(z, stats)
    r_shell = whitened(shell, shell.sample(3000, gen(15)).latents).norm(dim=1).numpy()
    r_gauss = whitened(gauss, gauss.sample(3000, gen(15)).latents).norm(dim=1).numpy()
    r_real = whitened(shell, z).norm(dim=1).numpy()
    from scipy.stats import ks_2samp

    assert ks_2samp(r_shell, r_real).pvalue > 0.01
    assert ks_2samp(r_gauss, r_real).pvalue < 1e-6
