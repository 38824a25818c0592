"""Learned densities on the latents: `kde` (bandwidth by cross-validated likelihood), `flow` (zuko,
optional) and `vae2` (second-stage VAE), and the seeded early-stopping trainer they share."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import aebench.plugins
from aebench.cli import main
from aebench.errors import AebenchError, OptionError
from aebench.maths.density_training import TrainingSettings, seeded, train_early_stopping, validation_split
from aebench.samplers.flow import FlowSampler, gaussian_heldout_loglik
from aebench.samplers.kde import KdeSampler, cross_validated_loglik
from aebench.samplers.vae2 import Vae2Sampler
from aebench.stats import compute_stats

needs_zuko = pytest.mark.skipif(FlowSampler.unavailable_reason() is not None, reason="zuko (aebench[flows]) not installed")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_moons(n: int, seed: int) -> torch.Tensor:
    """A curved, two-cluster 2-D density (no Gaussian fits it), embedded in 4-D with small noise."""
    g = gen(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    plane = torch.stack([x, y], 1) + 0.08 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return torch.cat([plane, 0.02 * torch.randn(n, 2, generator=g, dtype=torch.float64)], 1) * 3 + 1


def gaussian_draws(stats, n: int, seed: int) -> torch.Tensor:
    """Draws from the Gaussian with the training mean and covariance (the baseline a learned density must beat)."""
    return stats.mean + torch.randn(n, stats.latent_dim, generator=gen(seed), dtype=torch.float64) @ torch.linalg.cholesky(stats.cov).T


# -- kde -------------------------------------------------------------------------------------------

def test_cross_validated_loglik_matches_a_direct_computation():
    points = torch.randn(30, 3, generator=gen(1), dtype=torch.float64)
    hs = torch.tensor([0.3, 0.8], dtype=torch.float64)
    got = cross_validated_loglik(points, hs, folds=3, max_points=30, seed=4)
    order = torch.randperm(30, generator=gen(4))
    fold = torch.empty(30, dtype=torch.int64)
    fold[order] = torch.arange(30) % 3
    p = points.numpy()
    for b, h in enumerate(hs.tolist()):
        values = []
        for i in range(30):
            others = p[(fold != fold[i]).numpy()]
            logk = -((p[i] - others) ** 2).sum(1) / (2 * h * h) - 1.5 * math.log(2 * math.pi * h * h)
            values.append(logsumexp(logk) - math.log(len(others)))
        assert float(got[b]) == pytest.approx(np.mean(values), rel=1e-10)


def test_kde_bandwidth_maximises_held_out_likelihood_and_shrinks_with_more_data():
    big, small = two_moons(2000, 2), two_moons(150, 3)
    fitted = {n: KdeSampler(space="full").fit(z, compute_stats(z)) for n, z in (("big", big), ("small", small))}
    for sampler in fitted.values():
        info = sampler.fit_info
        assert info["bandwidth_from"] == "cross_validated_loglik" and not info["at_grid_edge"]
        assert info["heldout_loglik_whitened"] >= info["heldout_loglik_whitened_scott"]
    assert fitted["big"].bandwidth < fitted["small"].bandwidth
    # cv_points limits the scored points but keeps the choice close
    capped = KdeSampler(space="full", cv_points=400).fit(big, compute_stats(big))
    assert capped.fit_info["cv_points"] == 400
    assert capped.bandwidth == pytest.approx(fitted["big"].bandwidth, rel=0.5)


def test_kde_samples_are_training_latents_plus_kernel_noise():
    z = two_moons(300, 5)
    sampler = KdeSampler(space="full", bandwidth=0.01).fit(z, compute_stats(z))
    fake = sampler.sample(500, gen(6)).latents.double()
    nearest = torch.cdist(fake, z).min(1).values
    scale = math.sqrt(float(z.var(0).mean()))
    assert float(nearest.max()) < 0.01 * scale * 6  # within a few kernel widths of a training latent
    assert float(nearest.mean()) == pytest.approx(0.01 * scale * math.sqrt(2), rel=0.5)  # 4-D kernel noise


def test_kde_principal_space_smooths_only_inside_the_subspace():
    z = two_moons(400, 7)
    sampler = KdeSampler(space="principal", variance=0.95, bandwidth=0.5).fit(z, compute_stats(z))
    sub = sampler.subspace
    assert sub.dims == 2
    fake = sampler.sample(2000, gen(8)).latents.double()
    _, r2_fake = sub.project(fake)
    _, r2_train = sub.project(z)
    # the residual off the subspace is a training latent's own, never kernel noise
    assert float(r2_fake.mean()) == pytest.approx(float(r2_train.mean()), rel=0.15)


def test_kde_shrink_keeps_the_training_covariance():
    z = two_moons(2000, 9)
    stats = compute_stats(z)
    plain = KdeSampler(space="full", bandwidth=0.6).fit(z, stats)
    shrunk = KdeSampler(space="full", bandwidth=0.6, shrink=True).fit(z, stats)
    total = float(stats.cov.trace())
    assert float(torch.cov(plain.sample(20000, gen(10)).latents.double().T).trace()) == pytest.approx(total * 1.36, rel=0.05)
    assert float(torch.cov(shrunk.sample(20000, gen(10)).latents.double().T).trace()) == pytest.approx(total, rel=0.05)


def test_kde_needs_enough_latents_for_its_folds():
    z = two_moons(6, 11)
    with pytest.raises(OptionError, match="too few for 5-fold"):
        KdeSampler().fit(z, compute_stats(z))
    assert KdeSampler(bandwidth=0.3, space="full").fit(z, compute_stats(z)).bandwidth == 0.3


# -- shared trainer ---------------------------------------------------------------------------------

def test_validation_split_is_seeded_and_disjoint():
    a_fit, a_val = validation_split(50, 0.2, 3, what="x")
    b_fit, b_val = validation_split(50, 0.2, 3, what="x")
    assert torch.equal(a_val, b_val) and len(a_val) == 10 and len(a_fit) == 40
    assert not set(a_fit.tolist()) & set(a_val.tolist())
    with pytest.raises(OptionError, match="too few"):
        validation_split(2, 0.2, 0, what="x")


def test_early_stopping_keeps_the_best_held_out_weights():
    """A model that can only over-fit: training loss keeps falling, held-out loss turns up; the
    restored weights are those of the best held-out epoch."""
    train = torch.randn(8, 2, generator=gen(12))
    heldout = torch.randn(200, 2, generator=gen(13))
    with seeded(0):
        module = torch.nn.Linear(2, 2)
        settings = TrainingSettings(lr=0.05, batch_size=8, max_epochs=300, patience=10)
        loss = lambda x: (module(x) - x.flip(1)).pow(2).mean()  # noqa: E731
        summary = train_early_stopping(module, loss, train, heldout, settings, seed=0)
    assert summary["stopped"] == "early_stopping" and summary["epochs"] == summary["best_epoch"] + 10
    with torch.no_grad():
        assert float(loss(heldout)) == pytest.approx(summary["best_heldout_loss"], rel=1e-6)


# -- flow ---------------------------------------------------------------------------------------------

@needs_zuko
def test_flow_beats_a_gaussian_on_a_curved_density_and_is_deterministic():
    z = two_moons(1500, 14)
    stats = compute_stats(z)
    options = dict(variance=0.999, residual="none", transforms=3, hidden=32, max_epochs=150, patience=15, lr=3e-3)
    sampler = FlowSampler(**options).fit(z, stats)
    info = sampler.fit_info
    assert info["subspace_dims"] >= 2 and info["best_epoch"] >= 1
    assert info["best_heldout_loglik_whitened"] > info["gaussian_heldout_loglik_whitened"] + 0.3
    again = FlowSampler(**options).fit(z, stats)
    a = sampler.sample(300, gen(15)).latents
    assert torch.equal(a, again.sample(300, gen(15)).latents)
    # the samples follow the moons: closer to the training latents than Gaussian draws are
    gauss = gaussian_draws(stats, 300, 22)
    assert float(torch.cdist(a.double(), z).min(1).values.mean()) < 0.6 * float(torch.cdist(gauss, z).min(1).values.mean())


def test_flow_without_zuko_is_listed_as_unavailable_with_the_install_hint(monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zuko" else real_find_spec(name, *a))
    assert "pip install 'aebench[flows]'" in FlowSampler.unavailable_reason()
    z = two_moons(100, 16)
    with pytest.raises(AebenchError, match=r"Sampler 'flow' needs zuko: pip install 'aebench\[flows\]'"):
        FlowSampler().fit(z, compute_stats(z))
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", ("aebench.samplers.flow", "aebench.samplers.kde"))
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()
    assert main(["samplers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "aebench[flows]" in rows["flow"]["unavailable"] and rows["kde"]["unavailable"] is None
    assert main(["samplers"]) == 0
    assert "unavailable" in capsys.readouterr().out


# -- vae2 ---------------------------------------------------------------------------------------------

def test_vae2_learns_the_latents_and_is_deterministic():
    z = two_moons(1500, 17)
    stats = compute_stats(z)
    options = dict(variance=0.99, residual="none", hidden=64, max_epochs=200, patience=30, lr=3e-3, batch_size=64)
    sampler = Vae2Sampler(**options).fit(z, stats)
    info = sampler.fit_info
    assert info["gamma"] < 0.5  # the decoder explains the data, not the noise term
    assert info["best_heldout_elbo_whitened"] > info["gaussian_heldout_loglik_whitened"] + 0.1
    # without the KL warm-up the second stage stays in the collapsed optimum
    collapsed = Vae2Sampler(**{**options, "warmup": 0, "max_epochs": 40}).fit(z, stats)
    assert collapsed.fit_info["gamma"] > 0.8
    again = Vae2Sampler(**options).fit(z, stats)
    a = sampler.sample(300, gen(18)).latents
    assert torch.equal(a, again.sample(300, gen(18)).latents)
    fake = a.double()
    assert float(torch.cov(fake.T).trace()) == pytest.approx(float(stats.cov.trace()), rel=0.25)
    gauss = gaussian_draws(stats, 300, 21)
    assert float(torch.cdist(fake, z).min(1).values.mean()) < 0.9 * float(torch.cdist(gauss, z).min(1).values.mean())


def test_vae2_output_mean_is_the_decoder_mean():
    z = two_moons(300, 19)
    stats = compute_stats(z)
    options = dict(variance=0.999, residual="none", hidden=16, max_epochs=10)
    sample = Vae2Sampler(**options).fit(z, stats)
    mean = Vae2Sampler(output="mean", **options).fit(z, stats)
    u = torch.randn(50, mean.vae.latent, generator=gen(20), dtype=torch.float64)
    with torch.no_grad():
        white = mean.vae.decoder(u.float()).double()
    expected = mean.subspace.mean + (white * mean.subspace.variance.sqrt()) @ mean.subspace.axes
    torch.testing.assert_close(mean.sample(50, gen(20)).latents.double(), expected, atol=1e-5, rtol=1e-5)
    gamma = sample.fit_info["gamma"]
    spread = (sample.sample(50, gen(20)).latents.double() - mean.sample(50, gen(20)).latents.double()).pow(2).sum(1).mean()
    assert float(spread) > 0.2 * gamma  # output=sample adds the decoder noise
    assert gaussian_heldout_loglik(z[:200], z[200:]) < 0
