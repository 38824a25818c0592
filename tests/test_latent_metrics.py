"""Latent metrics and the bootstrap: hit rates with intervals, hit rate along paths, coverage that
exposes collapse, nearest-training-latent distance and re-encode drift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.errors import AebenchError
from aebench.maths.bootstrap import bootstrap_mean_ci
from aebench.metric import FakeSide, RealSide
from aebench.metrics.latent import LatentCoverage, LatentDistance, Reencode, RegionHits
from aebench.region import hit_rate_along_t
from aebench.regions.box import BoxRegion
from aebench.regions.ellipsoid import EllipsoidRegion
from aebench.stats import compute_stats

DIM = 16


def gaussian(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(2.0, 0.2, DIM, dtype=torch.float64)
    return (1.0 + torch.randn(n, DIM, generator=g, dtype=torch.float64) * scale).to(torch.float32)


@pytest.fixture(scope="module")
def real() -> RealSide:
    train, held = gaussian(600, 0), gaussian(300, 1)
    stats = compute_stats(train)
    side = RealSide(train, held, stats, target=0.95)
    # regions calibrate on a larger held-out draw: with 300 points the 95% quantile alone moves the
    # accepted share of fresh draws by +-0.012 (sd), too much for the +-0.03 checks below
    calibration = gaussian(3000, 11)
    for region in (BoxRegion(), EllipsoidRegion()):
        region.fit(train, stats).calibrate(calibration, side.target)
        side.regions[region.name] = region
    return side


# -- bootstrap -------------------------------------------------------------------------------------

def test_bootstrap_interval_contains_mean_narrows_with_n_and_matches_normal_theory():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 400, 10_000):
        x = (rng.random(n) < 0.3).astype(float)
        low, high = bootstrap_mean_ci(x, n_boot=2000, seed=1)
        assert low <= x.mean() <= high
        widths.append(high - low)
        normal = 2 * 1.96 * np.sqrt(x.mean() * (1 - x.mean()) / n)
        assert widths[-1] == pytest.approx(normal, rel=0.15)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_is_seeded_and_rejects_bad_values():
    x = torch.arange(50, dtype=torch.float64)
    assert bootstrap_mean_ci(x, seed=3) == bootstrap_mean_ci(x, seed=3)
    assert bootstrap_mean_ci(x, seed=3) != bootstrap_mean_ci(x, seed=4)
    assert bootstrap_mean_ci([2.0], seed=0) == (2.0, 2.0)
    # blocks of resamples give the same answer as one block
    assert bootstrap_mean_ci(x, seed=5, block_values=50) == bootstrap_mean_ci(x, seed=5)
    with pytest.raises(AebenchError, match="empty"):
        bootstrap_mean_ci([], seed=0)
    with pytest.raises(AebenchError, match="NaN"):
        bootstrap_mean_ci([1.0, float("nan")], seed=0)


# -- region_hits ---------------------------------------------------------------------------------------

def test_region_hits_real_draws_hit_at_target_and_uniform_misses(real):
    metric = RegionHits()
    fresh = metric.compute(FakeSide("fresh", gaussian(4000, 2), seed=0), real)
    assert set(fresh) == {"hit_box", "hit_ellipsoid"}
    for name, value in fresh.items():
        assert value.value == pytest.approx(0.95, abs=0.03)
        assert value.low <= value.value <= value.high and value.high - value.low < 0.03
        assert value.higher_is_better is True and value.n == 4000
        assert value.info["target"] == 0.95 and value.info["region"] == name[4:]
    g = torch.Generator().manual_seed(0)
    uniform = (torch.rand(2000, DIM, generator=g) * 2 - 1) * 20
    missed = metric.compute(FakeSide("uniform", uniform), real)
    assert all(v.value == 0.0 and v.high == 0.0 for v in missed.values())


def test_hit_rate_along_t_on_a_line_out_of_the_box(real):
    box = real.regions["box"]
    low, high = box.bounds()
    centre = box.median.to(torch.float32)
    far = centre + 2 * (high.to(torch.float32) - centre)  # the line leaves the box at t = 0.5
    t = torch.linspace(0, 1, 1000)
    line = centre + t[:, None] * (far - centre)
    rows = hit_rate_along_t(box, line, t, bins=4)
    assert [r[0] for r in rows] == pytest.approx([0.125, 0.375, 0.625, 0.875])
    assert [r[1] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert sum(r[2] for r in rows) == 1000
    hits = RegionHits().compute(FakeSide("line", line, t=t), real)["hit_box"]
    assert hits.value == pytest.approx(0.5, abs=0.002)


def test_hit_rate_along_t_skips_empty_bins_and_widens_to_t_outside_0_1(real):
    box = real.regions["box"]
    z = box.median.repeat(3, 1)
    rows = hit_rate_along_t(box, z, torch.tensor([-1.0, -1.0, 1.0]), bins=2)
    assert rows == [(-0.5, 1.0, 2), (0.5, 1.0, 1)]
    with pytest.raises(AebenchError, match="one t per point"):
        hit_rate_along_t(box, z, torch.tensor([0.0, 1.0]))


# -- latent_coverage --------------------------------------------------------------------------------

def test_collapse_gets_no_recall_while_real_draws_cover(real):
    metric = LatentCoverage()
    centre = real.stats.mean.to(torch.float32).repeat(500, 1)
    centre = centre + 1e-3 * torch.randn(centre.shape, generator=torch.Generator().manual_seed(0))
    collapsed = metric.compute(FakeSide("centre", centre), real)
    good = metric.compute(FakeSide("gaussian", gaussian(500, 3)), real)
    assert collapsed["latent_recall"].value < 0.02
    assert good["latent_coverage"].value > 0.8 and good["latent_recall"].value > 0.6
    assert good["latent_precision"].value > 0.8
    assert good["latent_density"].value == pytest.approx(1.0, abs=0.3)
    # ...although the collapsed points hit every region
    assert all(v.value == 1.0 for v in RegionHits().compute(FakeSide("centre", centre), real).values())
    assert good["latent_recall"].info["k"] == 3 and good["latent_coverage"].info["k"] == 5


def test_in_high_dimension_only_recall_exposes_collapse():
    """At N=256 the centre lies inside every held-out k-NN ball: Naeem coverage cannot see collapse."""
    g = torch.Generator().manual_seed(11)
    train, held = torch.randn(320, 256, generator=g), torch.randn(80, 256, generator=g)
    side = RealSide(train, held, compute_stats(train))
    collapsed = train.mean(0).repeat(50, 1)
    out = LatentCoverage().compute(FakeSide("centre", collapsed), side)
    assert out["latent_recall"].value == 0.0
    assert out["latent_coverage"].value > 0.9


def test_latent_coverage_matches_prdc_package_and_caches_real_radii(real):
    import prdc

    fake = gaussian(200, 4)
    real.cache.pop("latent_coverage", None)
    ours = LatentCoverage().compute(FakeSide("g", fake), real)
    ref3 = prdc.compute_prdc(real.heldout_latents.numpy(), fake.numpy(), nearest_k=3)
    ref5 = prdc.compute_prdc(real.heldout_latents.numpy(), fake.numpy(), nearest_k=5)
    assert ours["latent_precision"].value == pytest.approx(ref3["precision"])
    assert ours["latent_recall"].value == pytest.approx(ref3["recall"])
    assert ours["latent_density"].value == pytest.approx(ref5["density"])
    assert ours["latent_coverage"].value == pytest.approx(ref5["coverage"])
    cached = dict(real.cache["latent_coverage"])
    assert set(cached) == {(3, 300), (5, 300)}
    LatentCoverage().compute(FakeSide("g2", gaussian(200, 5)), real)
    assert all(real.cache["latent_coverage"][k] is v for k, v in cached.items())


def test_latent_coverage_needs_more_points_than_k(real):
    with pytest.raises(AebenchError, match="more than 5"):
        LatentCoverage().compute(FakeSide("tiny", gaussian(4, 6)), real)


# -- latent_distance and reencode ---------------------------------------------------------------------

def test_nn_distance_ratio_is_one_for_real_draws_and_large_far_away(real):
    metric = LatentDistance()
    same = metric.compute(FakeSide("heldout", real.heldout_latents), real)
    assert same["nn_distance_ratio"].value == pytest.approx(1.0, abs=1e-12)
    fresh = metric.compute(FakeSide("fresh", gaussian(1000, 7)), real)["nn_distance_ratio"]
    assert fresh.value == pytest.approx(1.0, abs=0.1) and fresh.low <= fresh.value <= fresh.high
    far = metric.compute(FakeSide("far", gaussian(100, 8) + 30), real)
    assert far["nn_distance_ratio"].value > 5
    # oriented for its job, the memorisation diagnostic: a falling ratio (copies of training latents) is worse
    assert far["nn_distance_ratio"].higher_is_better is True and far["nn_distance"].higher_is_better is None
    expected = torch.cdist(gaussian(100, 8).double() + 30, real.train_latents.double()).min(1).values.mean()
    assert far["nn_distance"].value == pytest.approx(float(expected), rel=1e-9)
    copies = metric.compute(FakeSide("copies", real.train_latents[:50].clone()), real)["nn_distance_ratio"]
    assert copies.value == 0.0


def test_far_draws_count_runaway_points_and_never_real_ones(real):
    metric = LatentDistance()
    assert metric.compute(FakeSide("heldout", real.heldout_latents), real)["far_draws"].value == 0.0
    assert metric.compute(FakeSide("fresh", gaussian(1000, 7)), real)["far_draws"].value == 0.0
    # a flow's runaway tail: 3 of 1000 draws at 1e25 (its latent FD is then astronomical)
    z = gaussian(1000, 10)
    z[[5, 500, 900]] = 1e25
    far = metric.compute(FakeSide("runaway", z), real)["far_draws"]
    assert far.value == pytest.approx(0.003) and far.info["count"] == 3 and far.higher_is_better is False
    assert 0 <= far.low <= far.value < far.high and far.info["farthest_draw"] > 1e20
    # the unit: the largest distance of a held-out latent to its nearest training latent
    farthest = float(torch.cdist(real.heldout_latents.double(), real.train_latents.double()).min(1).values.max())
    assert far.info["heldout_nn_max"] == pytest.approx(farthest, rel=1e-6)


def test_reencode_ratio_against_real_heldout_error(real):
    z = gaussian(100, 9)
    offset = torch.zeros_like(z)
    offset[:, 0] = 2.0
    side = RealSide(real.train_latents, real.heldout_latents, real.stats, reencode_error=torch.ones(300))
    out = Reencode().compute(FakeSide("s", z, reencoded=z + offset), side)
    assert out["reencode_error"].value == pytest.approx(2.0, rel=1e-6)
    assert out["reencode_ratio"].value == pytest.approx(2.0, rel=1e-6)
    assert out["reencode_ratio"].higher_is_better is False
    assert Reencode.needs == frozenset({"latents", "reencoded"})
    with pytest.raises(AebenchError, match="re-encoded latents"):
        Reencode().compute(FakeSide("s", z), side)
    with pytest.raises(AebenchError, match="reencode_error"):
        Reencode().compute(FakeSide("s", z, reencoded=z), real)


@pytest.mark.parametrize("metric", [RegionHits, LatentCoverage, LatentDistance, Reencode])
def test_wrong_latent_dimension_is_a_clear_error(real, metric):
    z = torch.zeros(50, DIM + 1)
    with pytest.raises(AebenchError, match=f"expected \\[n, {DIM}\\]"):
        metric().compute(FakeSide("bad", z, reencoded=z), real)


def test_nan_points_never_count_as_hits(real):
    z = gaussian(10, 10)
    z[:5] = float("nan")
    hits = RegionHits().compute(FakeSide("nan", z), real)
    assert all(v.value <= 0.5 for v in hits.values())


def test_metrics_module_registers_all_four():
    import aebench.metrics.latent as latent

    names = []
    latent.register_metrics(lambda cls: names.append(cls.name))
    assert names == ["region_hits", "latent_coverage", "latent_distance", "reencode"]
