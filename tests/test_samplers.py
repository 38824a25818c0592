"""Built-in samplers, the covariance and mixture helpers they share, and `aebench samplers`.

Synthetic latents with a known covariance keep these statistical tests fast and exact.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import aebench.plugins
from aebench.cli import main
from aebench.errors import AebenchError, NotFittedError, OptionError, UnknownNameError
from aebench.maths.covariance import covariance_factor, estimate_covariance
from aebench.maths.gaussian_mixture import FittedMixture, MixtureCollapseError, fit_gaussian, fit_mixture
from aebench.options import build_options, parse_assignments
from aebench.sampler import Sampler
from aebench.samplers.correlated import CorrelatedSampler
from aebench.samplers.elliptic import EllipticSampler
from aebench.samplers.flow import FlowSampler
from aebench.samplers.gaussian import GaussianSampler
from aebench.samplers.gmm import GmmSampler
from aebench.samplers.interpolate import InterpolateSampler
from aebench.samplers.kde import KdeSampler
from aebench.samplers.line import LineSampler, OriginLineSampler
from aebench.samplers.pca import PcaSampler
from aebench.samplers.plane_paths import PlanePathsSampler
from aebench.samplers.shell import ShellSampler
from aebench.samplers.standard_normal import StandardNormalSampler
from aebench.samplers.uniform import UniformSampler
from aebench.samplers.vae2 import Vae2Sampler
from aebench.stats import compute_stats

SAMPLER_MODULES = tuple(m for m in aebench.plugins.DEFAULT_PLUGINS if m.startswith("aebench.samplers."))
ALL = (UniformSampler, GaussianSampler, LineSampler, OriginLineSampler, PlanePathsSampler, CorrelatedSampler,
       StandardNormalSampler, GmmSampler, PcaSampler, InterpolateSampler, EllipticSampler, ShellSampler, KdeSampler,
       FlowSampler, Vae2Sampler)
DIM = 16
# small settings that keep the contract tests fast
CONTRACT_OPTIONS = {GmmSampler: {"k": 2}, FlowSampler: {"max_epochs": 5, "transforms": 1, "hidden": 16},
                    Vae2Sampler: {"max_epochs": 5, "hidden": 16}}
needs_zuko = pytest.mark.skipif(FlowSampler.unavailable_reason() is not None, reason="zuko (aebench[flows]) not installed")
CONTRACT = [pytest.param(c, marks=needs_zuko) if c is FlowSampler else c for c in ALL]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def true_cov() -> torch.Tensor:
    g = gen(0)
    q = torch.linalg.qr(torch.randn(DIM, DIM, generator=g, dtype=torch.float64))[0]
    return q @ torch.diag(torch.logspace(1, -1, DIM, dtype=torch.float64)) @ q.T


@pytest.fixture(scope="module")
def latents(true_cov) -> torch.Tensor:
    """2000 x 16 correlated latents, centred away from the origin (as an AE's are)."""
    mean = torch.linspace(-2, 3, DIM, dtype=torch.float64)
    noise = torch.randn(2000, DIM, generator=gen(1), dtype=torch.float64)
    return mean + noise @ torch.linalg.cholesky(true_cov).T


@pytest.fixture(scope="module")
def stats(latents):
    return compute_stats(latents)


@pytest.fixture()
def sampler_plugins_only(monkeypatch):
    """The plugin manager with only the sampler plugins (the other built-ins are tested elsewhere)."""
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", SAMPLER_MODULES)
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()
    yield
    aebench.plugins.reset()


def draw(sampler: Sampler, n: int, seed: int = 7):
    return sampler.sample(n, gen(seed))


# -- independent and correlated Gaussians -----------------------------------------------------

def test_gaussian_reproduces_per_component_mean_and_std(latents, stats):
    z = draw(GaussianSampler().fit(latents, stats), 40000).latents.double()
    assert torch.allclose(z.mean(0), stats.mean, atol=0.05 * float(stats.std.max()))
    assert torch.allclose(z.std(0), stats.std, rtol=0.03)
    off_diagonal = torch.corrcoef(z.T) - torch.eye(DIM, dtype=torch.float64)
    assert float(off_diagonal.abs().max()) < 0.05  # independent, unlike the training latents
    assert float((stats.corr - torch.eye(DIM, dtype=torch.float64)).abs().max()) > 0.3


def test_gaussian_scale_multiplies_std(latents, stats):
    z = draw(GaussianSampler(scale=0.5).fit(latents, stats), 40000).latents.double()
    assert torch.allclose(z.std(0), 0.5 * stats.std, rtol=0.03)


def test_correlated_reproduces_mean_and_covariance(latents, stats):
    sampler = CorrelatedSampler(covariance="full").fit(latents, stats)
    assert sampler.estimate.method == "none"  # well conditioned, n > N: auto does not shrink
    torch.testing.assert_close(sampler.estimate.covariance, stats.cov)
    z = draw(sampler, 60000).latents.double()
    assert torch.allclose(z.mean(0), stats.mean, atol=0.05)
    scale = float(stats.cov.diagonal().max())
    assert float((torch.cov(z.T) - stats.cov).abs().max()) < 0.03 * scale


def test_correlated_shrinks_an_ill_conditioned_covariance(latents, stats):
    few = latents[:12]  # n <= N: the raw covariance is singular
    few_stats = compute_stats(few)
    sampler = CorrelatedSampler(covariance="full").fit(few, few_stats)
    est = sampler.estimate
    assert est.method == "ledoit_wolf" and 0 < est.shrinkage <= 1 and math.isinf(est.raw_condition)
    assert math.isfinite(est.condition)
    z = draw(sampler, 60000).latents.double()
    assert float((torch.cov(z.T) - est.covariance).abs().max()) < 0.03 * float(est.covariance.diagonal().max())
    raw = CorrelatedSampler(covariance="full", shrinkage="none").fit(few, few_stats)
    assert raw.estimate.method == "none"
    assert math.isinf(sampler.estimate.raw_condition) and sampler.fit_info["raw_condition"] is None  # JSON-ready
    torch.testing.assert_close(raw.estimate.covariance, few_stats.cov)


def test_auto_shrinkage_follows_the_condition_limit(latents):
    # condition number of the synthetic covariance is ~100
    assert estimate_covariance(latents, "auto", condition_limit=1e4).method == "none"
    assert estimate_covariance(latents, "auto", condition_limit=10).method == "ledoit_wolf"
    shrunk = estimate_covariance(latents, "ledoit_wolf")
    raw = estimate_covariance(latents, "none").covariance
    target = torch.trace(raw) / DIM * torch.eye(DIM, dtype=torch.float64)
    torch.testing.assert_close(shrunk.covariance, (1 - shrunk.shrinkage) * raw + shrunk.shrinkage * target)
    with pytest.raises(OptionError, match="ledoit_wolf"):
        estimate_covariance(latents, "oas")


def test_covariance_factor_handles_semi_definite_and_rejects_indefinite():
    v = torch.randn(6, 3, generator=gen(2), dtype=torch.float64)
    singular = v @ v.T  # rank 3: Cholesky fails, eigh fallback
    factor = covariance_factor(singular)
    torch.testing.assert_close(factor @ factor.T, singular)
    with pytest.raises(AebenchError, match="not positive semi-definite"):
        covariance_factor(torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)))


def test_standard_normal_is_standard(latents, stats):
    z = draw(StandardNormalSampler().fit(latents, stats), 40000).latents.double()
    assert float(z.mean(0).abs().max()) < 0.03
    assert torch.allclose(z.std(0), torch.ones(DIM, dtype=torch.float64), rtol=0.03)


# -- uniform ------------------------------------------------------------------------------------

def test_uniform_fills_the_overall_range(latents, stats):
    z = draw(UniformSampler().fit(latents, stats), 20000).latents.double()
    lo, hi = float(latents.min()), float(latents.max())
    assert float(z.min()) >= lo - 1e-5 and float(z.max()) <= hi + 1e-5
    # every component spans the common interval (not its own range)
    assert torch.all(z.min(0).values < lo + 0.01 * (hi - lo)) and torch.all(z.max(0).values > hi - 0.01 * (hi - lo))
    assert abs(float(z.mean()) - (lo + hi) / 2) < 0.01 * (hi - lo)


def test_uniform_honours_an_explicit_interval(latents, stats):
    z = draw(UniformSampler(low=-1, high=0.5).fit(latents, stats), 5000).latents
    assert float(z.min()) >= -1 and float(z.max()) <= 0.5 and float(z.max()) > 0.49


# -- lines --------------------------------------------------------------------------------------

def test_origin_line_points_are_collinear_with_origin_and_centre(latents, stats):
    out = draw(OriginLineSampler(t_max=1.5).fit(latents, stats), 31)
    t = out.t.double()
    torch.testing.assert_close(t, torch.linspace(0, 1.5, 31, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.latents.double(), t[:, None] * stats.mean, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.path, torch.zeros(31, dtype=torch.int64))
    assert OriginLineSampler.is_path_sampler
    assert OriginLineSampler().fit(latents, stats).path_labels == ["origin → centre"]


def test_line_between_training_latent_and_centre_with_random_spacing(latents, stats):
    sampler = LineSampler(start="train:5", end="centre", t_min=-0.5, t_max=2, spacing="random").fit(latents, stats)
    out = draw(sampler, 500)
    t = out.t.double()
    assert float(t.min()) >= -0.5 and float(t.max()) <= 2 and float(t.std()) > 0.5
    expected = latents[5] + t[:, None] * (stats.mean - latents[5])
    torch.testing.assert_close(out.latents.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("values, message", [
    ({"start": "heldout"}, "not a point"),
    ({"start": "centre", "end": "centre"}, "different points"),
    ({"t_min": 1, "t_max": 1}, "below t_max"),
    ({"spacing": "log"}, "not one of"),
])
def test_line_rejects_bad_options(values, message):
    with pytest.raises(OptionError, match=message):
        LineSampler(**values)


def test_line_rejects_training_index_out_of_range(latents, stats):
    with pytest.raises(OptionError, match="train:2000.*out of range"):
        LineSampler(start="train:2000").fit(latents, stats)


# -- plane paths --------------------------------------------------------------------------------

def plane_coordinates(z: torch.Tensor, stats, axes) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = axes
    return (z[:, a] - stats.mean[a]) / stats.std[a], (z[:, b] - stats.mean[b]) / stats.std[b]


def test_plane_paths_move_only_the_two_axes_along_the_requested_angles(latents, stats):
    angles = (0.0, 30.0, 90.0, 150.0)
    sampler = PlanePathsSampler(axes=(3, 11), angles=angles, extent=2.5).fit(latents, stats)
    assert sampler.plot_axes == (3, 11) and sampler.path_labels[1] == "angle 30°"
    out = draw(sampler, 203)  # not a multiple of 4
    z = out.latents.double()
    others = [i for i in range(DIM) if i not in (3, 11)]
    torch.testing.assert_close(z[:, others], stats.mean[others].expand(203, -1).contiguous(), atol=1e-5, rtol=1e-6)
    assert torch.bincount(out.path).tolist() == [51, 51, 51, 50]
    x, y = plane_coordinates(z, stats, (3, 11))
    radius = torch.hypot(x, y)
    assert abs(float(radius.max()) - 2.5) < 1e-4
    on_path = radius > 0.05
    direction = torch.rad2deg(torch.atan2(y, x))[on_path] % 180  # a path runs both ways through the centre
    wanted = torch.tensor(angles, dtype=torch.float64)[out.path[on_path]]
    delta = (direction - wanted + 90) % 180 - 90
    assert float(delta.abs().max()) < 1e-3
    # t runs evenly from -extent to +extent along each path
    signed = x[on_path] * torch.cos(torch.deg2rad(wanted)) + y[on_path] * torch.sin(torch.deg2rad(wanted))
    torch.testing.assert_close(signed, 2.5 * (2 * out.t.double()[on_path] - 1), atol=1e-4, rtol=0)
    last = out.t.double()[out.path == 3]
    torch.testing.assert_close(last, torch.linspace(0, 1, 50, dtype=torch.float64), atol=1e-6, rtol=0)


def test_plane_paths_default_axes_are_the_two_most_dominant(latents, stats):
    sampler = PlanePathsSampler().fit(latents, stats)
    assert sampler.axes.tolist() == stats.dominant[:2].tolist()
    z = draw(sampler, 40).latents.double()
    moved = ((z - stats.mean).abs() > 1e-4).any(0).nonzero().flatten()
    assert sorted(moved.tolist()) == sorted(stats.dominant[:2].tolist())


def test_plane_paths_points_per_path_cycles_a_grid(latents, stats):
    out = draw(PlanePathsSampler(axes=(0, 1), angles=(0, 90), points_per_path=5).fit(latents, stats), 23)
    assert out.path.tolist()[:12] == [0] * 5 + [1] * 5 + [0, 0]
    assert sorted(set(out.t.tolist())) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_plane_paths_conditional_variant_uses_the_conditional_mean(latents, stats):
    axes = (2, 9)
    out = draw(PlanePathsSampler(axes=axes, others="conditional").fit(latents, stats), 41)
    z = out.latents.double().numpy()
    mu, cov = stats.mean.numpy(), stats.cov.numpy()
    p = list(axes)
    o = [i for i in range(DIM) if i not in axes]
    expected = mu[o] + (cov[np.ix_(o, p)] @ np.linalg.inv(cov[np.ix_(p, p)]) @ (z[:, p] - mu[p]).T).T
    np.testing.assert_allclose(z[:, o], expected, atol=1e-4)
    assert np.abs(z[:, o] - mu[o]).max() > 0.1  # really differs from the centre variant


@pytest.mark.parametrize("values, message", [
    ({"axes": (3, 3)}, "two different"),
    ({"axes": (1, 2, 3)}, "exactly two"),
    ({"axes": (-1, 2)}, ">= 0"),
    ({"axes": "a,b"}, "cannot read"),
    ({"angles": ()}, "at least one angle"),
    ({"extent": 0}, "> 0"),
    ({"others": "mean"}, "not one of"),
])
def test_plane_paths_rejects_bad_options(values, message):
    with pytest.raises(OptionError, match=message):
        PlanePathsSampler(**values)


def test_plane_paths_rejects_axis_beyond_the_latent_dimension(latents, stats):
    with pytest.raises(OptionError, match="axis 16 is out of range for this model's N=16"):
        PlanePathsSampler(axes=(0, 16)).fit(latents, stats)
    with pytest.raises(OptionError, match="axis 16 is out of range"):  # checked before any fitting, too
        PlanePathsSampler(axes=(0, 16)).check_space(16, 100)
    PlanePathsSampler(axes=(0, 15)).check_space(16, 100)


# -- Gaussian mixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def true_mixture() -> FittedMixture:
    g = gen(3)
    means = torch.randn(3, DIM, generator=g, dtype=torch.float64) * 4
    factors = torch.randn(3, DIM, DIM, generator=g, dtype=torch.float64) / math.sqrt(DIM)
    covs = factors @ factors.transpose(1, 2) + 0.1 * torch.eye(DIM, dtype=torch.float64)
    return FittedMixture(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), means, covs)


def test_mixture_log_prob_matches_scipy(true_mixture):
    z = torch.randn(50, DIM, generator=gen(4), dtype=torch.float64) * 3
    per_component = [math.log(float(w)) + multivariate_normal(m.numpy(), c.numpy()).logpdf(z.numpy())
                     for w, m, c in zip(true_mixture.weights, true_mixture.means, true_mixture.covariances)]
    expected = logsumexp(np.stack(per_component), axis=0)
    np.testing.assert_allclose(true_mixture.log_prob(z).numpy(), expected, rtol=1e-8)


def test_mixture_sample_follows_weights_and_components(true_mixture):
    z, component = true_mixture.sample(30000, gen(5))
    share = torch.bincount(component, minlength=3).double() / 30000
    assert torch.allclose(share, true_mixture.weights, atol=0.015)
    for j in range(3):
        rows = z[component == j]
        assert float((torch.cov(rows.T) - true_mixture.covariances[j]).abs().max()) < 0.15
        assert float((rows.mean(0) - true_mixture.means[j]).abs().max()) < 0.1


def test_gmm_samples_are_as_likely_as_real_latents(true_mixture):
    """Under the true density, gmm samples score like real held-out latents; a single Gaussian does not."""
    train, _ = true_mixture.sample(2000, gen(6))
    heldout, _ = true_mixture.sample(2000, gen(7))
    train_stats = compute_stats(train)
    sampler = GmmSampler(k=3).fit(train, train_stats)
    assert sampler.fit_info["fallback"] is None and sampler.fit_info["k"] == 3
    real = float(true_mixture.log_prob(heldout).mean())
    fake = float(true_mixture.log_prob(draw(sampler, 2000).latents).mean())
    single = float(true_mixture.log_prob(draw(CorrelatedSampler(covariance="full").fit(train, train_stats), 2000).latents).mean())
    assert abs(fake - real) < 1.0
    assert single < real - 5  # the test can tell a poor density apart


def test_gmm_collapse_falls_back_or_errors():
    """k close to n with a negligible regulariser: every component collapses onto a point or two."""
    few = torch.randn(30, DIM, generator=gen(8), dtype=torch.float64)
    fitted = fit_mixture(few, 10, reg=1e-9)
    assert fitted.info["fallback"] is not None and fitted.k < 10
    assert fitted.info["attempts"][0]["heldout_loglik"] < fitted.info["gaussian_heldout_loglik"] - DIM
    assert torch.isfinite(fitted.log_prob(few)).all()
    with pytest.raises(MixtureCollapseError, match="collapsed.*raise reg"):
        fit_mixture(few, 10, reg=1e-9, on_collapse="error")
    with pytest.raises(MixtureCollapseError):
        GmmSampler(k=10, reg=1e-9, on_collapse="error").fit(few, compute_stats(few))


def test_gmm_without_validation_skips_the_check(true_mixture):
    train, _ = true_mixture.sample(600, gen(9))
    fitted = fit_mixture(train, 3, validation=0)
    assert fitted.info["checked"] is False and fitted.k == 3


def test_mixture_fit_on_a_capped_subset_is_seeded_and_still_fits(true_mixture):
    """max_points bounds EM's input: a seeded subset of that size, recorded in the fit's info; the
    mixture fitted on it still explains held-out latents about as well as one fitted on all."""
    train, _ = true_mixture.sample(3000, gen(10))
    heldout, _ = true_mixture.sample(2000, gen(11))
    capped = fit_mixture(train, 3, max_points=1000)
    assert capped.info["fit_points"] == 1000 and capped.info["latents"] == 3000
    again = fit_mixture(train, 3, max_points=1000)
    torch.testing.assert_close(capped.means, again.means, rtol=0, atol=0)
    other = fit_mixture(train, 3, max_points=1000, seed=1)  # another seed, another subset
    assert not torch.equal(capped.covariances, other.covariances)
    whole = fit_mixture(train, 3)
    assert whole.info["fit_points"] == 3000
    gap = float(whole.log_prob(heldout).mean() - capped.log_prob(heldout).mean())
    assert 0 <= gap < 0.5  # fewer points fit slightly worse, not badly
    assert fit_mixture(train, 3, max_points=5000).info["fit_points"] == 3000  # a cap above n changes nothing
    with pytest.raises(OptionError, match="max_points must be an integer >= 2"):
        fit_mixture(train, 3, max_points=1)
    assert GmmSampler(max_points="none").options.max_points is None


def test_fit_gaussian_is_a_one_component_mixture(latents, stats):
    single = fit_gaussian(latents)
    assert single.k == 1
    torch.testing.assert_close(single.means[0], stats.mean)
    torch.testing.assert_close(single.covariances[0], stats.cov)


@pytest.mark.parametrize("values, message", [
    ({"k": 0}, ">= 1"),
    ({"k": "ten"}, "not an integer"),
    ({"reg": -1}, ">= 0"),
    ({"covariance": "banded"}, "not one of"),
    ({"validation": 1.0}, "<= 0.9"),
])
def test_gmm_rejects_bad_options(values, message):
    with pytest.raises(OptionError, match=message):
        GmmSampler(**values)


def test_gmm_rejects_more_components_than_latents(latents, stats):
    few = latents[:5]
    with pytest.raises(OptionError, match="k=10 mixture components exceed the 5 training latents"):
        GmmSampler().fit(few, compute_stats(few))


# -- pca and interpolation --------------------------------------------------------------------

def test_pca_samples_lie_in_the_top_k_subspace(latents, stats):
    sampler = PcaSampler(k=4).fit(latents, stats)
    z = draw(sampler, 20000).latents.double() - stats.mean
    axes = stats.pca_axes[:4]
    residual = z - (z @ axes.T) @ axes
    assert float(residual.abs().max()) < 1e-4
    torch.testing.assert_close((z @ axes.T).var(0), stats.pca_variance[:4], rtol=0.04, atol=0)


def test_pca_variance_fraction_picks_the_fewest_directions(latents, stats):
    sampler = PcaSampler(variance_fraction=0.9).fit(latents, stats)
    explained = torch.cumsum(stats.pca_ratio, 0)
    assert explained[sampler.k - 1] >= 0.9 > explained[sampler.k - 2]
    with pytest.raises(OptionError, match="k=17 exceeds this model's latent dimension N=16"):
        PcaSampler(k=17).fit(latents, stats)


def test_interpolate_lerp_points_lie_on_segments_between_training_latents(latents, stats):
    train = latents[:40]
    out = draw(InterpolateSampler().fit(train, compute_stats(train)), 60)
    z, t = out.latents.double(), out.t.double()
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    # for every point some pair (a, b) of distinct training latents gives z = a + t (b - a)
    candidates = (1 - t)[:, None, None, None] * train[None, :, None] + t[:, None, None, None] * train[None, None, :]
    err = (candidates - z[:, None, None]).norm(dim=-1)
    err = err + torch.eye(40, dtype=torch.float64) * 1e9  # a == b is not a pair
    assert float(err.flatten(1).min(1).values.max()) < 1e-4
    assert out.path.tolist() == list(range(60))


def test_interpolate_slerp_keeps_the_arc_about_the_pivot(latents, stats):
    train = latents[:40]
    train_stats = compute_stats(train)
    out = draw(InterpolateSampler(mode="slerp", pairs=3).fit(train, train_stats), 90)
    assert set(out.path.tolist()) == {0, 1, 2}
    u = out.latents.double() - train_stats.mean
    for p in range(3):
        rows = u[out.path == p]
        # points on one arc span a plane through the pivot: rank 2
        s = torch.linalg.svdvals(rows)
        assert float(s[2] / s[0]) < 1e-5
    # along each arc the angle from the earliest point and the distance to the pivot are linear in t
    rows, t = u[out.path == 0], out.t.double()[out.path == 0]
    order = torch.argsort(t)
    rows, t = rows[order], t[order] - t[order][0]
    angle = torch.arccos(torch.nn.functional.cosine_similarity(rows, rows[:1]).clamp(-1, 1))
    radius = rows.norm(dim=1)
    for value in (angle, radius):
        slope = (value[-1] - value[0]) / t[-1]
        torch.testing.assert_close(value, value[0] + slope * t, atol=2e-4 * float(value.abs().max()), rtol=0)


# -- contract: seeds, fit, sizes, registration ------------------------------------------------

@pytest.mark.parametrize("cls", CONTRACT, ids=lambda c: c.name)
def test_seeds_reproduce_and_outputs_keep_the_contract(cls, latents, stats):
    values = CONTRACT_OPTIONS.get(cls, {})
    rng_before = torch.get_rng_state()
    sampler = cls(**values).fit(latents[:500], compute_stats(latents[:500]))
    assert torch.equal(torch.get_rng_state(), rng_before)  # fitting leaves the global random state alone
    a, b, c = draw(sampler, 64, 1), draw(sampler, 64, 1), draw(sampler, 64, 2)
    assert a.latents.dtype == torch.float32 and a.latents.shape == (64, DIM)
    assert torch.isfinite(a.latents).all()
    assert torch.equal(a.latents, b.latents)
    deterministic = cls in (PlanePathsSampler, LineSampler, OriginLineSampler)  # even spacing
    assert torch.equal(a.latents, c.latents) == deterministic
    assert (a.path is not None) == cls.is_path_sampler == (a.t is not None)
    assert draw(sampler, 0).latents.shape == (0, DIM)
    # a second fit with the same options gives the same sampler: samples are identical
    again = cls(**values).fit(latents[:500], compute_stats(latents[:500]))
    assert torch.equal(draw(again, 64, 1).latents, a.latents)
    assert isinstance(sampler.fit_info, dict) and json.dumps(sampler.fit_info, allow_nan=False)  # JSON-ready


@pytest.mark.parametrize("cls", CONTRACT, ids=lambda c: c.name)
def test_sample_before_fit_and_negative_n_are_errors(cls, latents, stats):
    with pytest.raises(NotFittedError, match="before fit"):
        draw(cls(), 3)
    values = CONTRACT_OPTIONS.get(cls, {})
    sampler = cls(**values).fit(latents[:200], compute_stats(latents[:200]))
    with pytest.raises(OptionError, match="non-negative integer"):
        draw(sampler, -1)


@pytest.mark.parametrize("values, message", [
    ({"low": 1, "high": 1}, "below high"),
    ({"low": 2, "high": -1}, "below high"),
    ({"low": "zero"}, "cannot read"),
])
def test_uniform_rejects_bad_intervals(values, message):
    with pytest.raises(OptionError, match=message):
        UniformSampler(**values)


def test_uniform_rejects_an_interval_emptied_by_the_data(latents, stats):
    with pytest.raises(OptionError, match="empty"):
        UniformSampler(low=float(latents.max()) + 1).fit(latents, stats)


def test_options_from_cli_assignments_reach_the_sampler(latents, stats):
    sets = parse_assignments(["plane_paths.axes=4,7", "plane_paths.angles=0,45", "plane_paths.others=conditional"])
    sampler = PlanePathsSampler(build_options(PlanePathsSampler.Options, sets["plane_paths"], owner="plane_paths"))
    assert sampler.options.axes == (4, 7) and sampler.options.angles == (0.0, 45.0)
    with pytest.raises(OptionError, match="Did you mean 'angles'"):
        PlanePathsSampler(build_options(PlanePathsSampler.Options, {"angle": "0"}, owner="plane_paths"))


def test_every_sampler_registers_through_the_hook(sampler_plugins_only):
    registry = aebench.plugins.get_registry("sampler")
    assert registry.names() == sorted(c.name for c in ALL)
    for cls in ALL:
        assert registry.get(cls.name) is cls
        assert cls.description and "\n" not in cls.description
    with pytest.raises(UnknownNameError, match="Did you mean 'plane_paths'"):
        registry.get("plane_path")


def test_samplers_command_lists_samplers_and_options(sampler_plugins_only, capsys):
    assert main(["samplers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {c.name for c in ALL}
    assert rows["plane_paths"]["path_sampler"] and not rows["gmm"]["path_sampler"]
    gmm_options = {o["name"]: o for o in rows["gmm"]["options"]}
    assert gmm_options["k"] == {"name": "k", "type": "int", "default": 10, "help": "number of mixture components"}
    assert rows["plane_paths"]["options"][1]["default"] == [0.0, 45.0, 90.0, 135.0]
    assert main(["samplers", "gmm"]) == 0
    table = capsys.readouterr().out
    assert "on_collapse" in table and "fallback" in table
    assert main(["samplers", "gmn"]) != 0
    assert "Did you mean 'gmm'" in capsys.readouterr().err
