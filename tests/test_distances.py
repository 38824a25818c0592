"""Sliced Wasserstein and energy distances (aebench.maths.sliced, aebench.maths.energy and the metrics of
aebench.metrics.distances) against independent formulations: scipy's 1-D Wasserstein and energy distances,
equal-size matching of replicated points, brute-force pairwise distances, and per-half recomputation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import cdist

from aebench.errors import DataError
from aebench.maths.bootstrap import half_sample_rows, half_sample_sd
from aebench.maths.energy import energy_distance2, energy_distance_v
from aebench.maths.sliced import SlicedReference, quantile_pairs, random_directions
from aebench.metric import FakeSide, RealSide
from aebench.metrics.distances import EnergyRecon, LatentEnergy, LatentSWD, SWDRecon
from aebench.stats import compute_stats


def rng_points(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    return torch.from_numpy(g.standard_t(5, size=(n, dim)) * scale + shift)


@pytest.mark.parametrize("n, m", [(37, 11), (5, 5), (1, 9), (64, 48), (100, 3)])
def test_sliced_w1_in_one_dimension_is_scipys_wasserstein_distance(n, m):
    a, b = rng_points(n, 1, n), rng_points(m, 1, m + 100, shift=0.7, scale=2.0)
    ref = SlicedReference.of(b, directions=1, p=1)  # one direction in 1-D: +-1, the distance is the same
    assert ref.distance(a) == pytest.approx(scipy.stats.wasserstein_distance(a[:, 0].numpy(), b[:, 0].numpy()),
                                            rel=1e-12, abs=1e-14)


def replicated_w2(a: np.ndarray, b: np.ndarray) -> float:
    """W_2^2 of 1-D samples of sizes n and m: repeat each point of a m times and of b n times, then the
    optimal matching of two equal-size sets pairs sorted values."""
    n, m = len(a), len(b)
    return float(np.mean((np.sort(np.repeat(a, m)) - np.sort(np.repeat(b, n))) ** 2))


@pytest.mark.parametrize("n, m", [(37, 11), (12, 30), (7, 7)])
def test_sliced_w2_equals_the_mean_over_directions_of_matched_replicas(n, m):
    x, y = rng_points(n, 6, 1), rng_points(m, 6, 2, shift=0.3, scale=1.5)
    ref = SlicedReference.of(y, directions=9, seed=4, p=2)
    dirs = random_directions(6, 9, 4).numpy()
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    expected = np.mean([replicated_w2(x.numpy() @ d, y.numpy() @ d) for d in dirs]) ** 0.5
    assert ref.distance(x) == pytest.approx(expected, rel=1e-12)


def test_quantile_pairs_weights_cover_the_unit_interval_once():
    for n, m in [(3, 2), (4, 6), (128, 80), (1, 1)]:
        w, i, j = quantile_pairs(n, m)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-14) and (w > 0).all()
        assert int(i.max()) == n - 1 and int(j.max()) == m - 1 and (i.diff() >= 0).all() and (j.diff() >= 0).all()
    with pytest.raises(DataError, match="non-empty"):
        quantile_pairs(0, 3)


def test_sliced_halves_equal_the_distance_of_each_half():
    x, y = rng_points(61, 4, 3), rng_points(20, 4, 5, shift=0.5)
    ref = SlicedReference.of(y, directions=16, seed=1)
    halves = half_sample_rows(61, 12, seed=3)
    got = ref.distance_of_halves(x, halves)
    assert got.tolist() == pytest.approx([ref.distance(x[rows]) for rows in halves], rel=1e-12)


def test_sliced_errors():
    ref = SlicedReference.of(rng_points(10, 3, 0))
    with pytest.raises(DataError, match="dimension 2 against a reference of dimension 3"):
        ref.distance(rng_points(10, 2, 1))
    with pytest.raises(DataError, match="NaN"):
        ref.distance(torch.full((4, 3), float("nan")))
    with pytest.raises(DataError, match="p >= 1"):
        SlicedReference.of(rng_points(10, 3, 0), p=0.5)


@pytest.mark.parametrize("n, m", [(30, 12), (9, 40)])
def test_energy_distance_in_one_dimension_is_scipys(n, m):
    a, b = rng_points(n, 1, 7), rng_points(m, 1, 8, shift=0.4, scale=0.7)
    assert energy_distance_v(a, b) == pytest.approx(scipy.stats.energy_distance(a[:, 0].numpy(), b[:, 0].numpy()),
                                                    rel=1e-12)


def brute_energy2(x: np.ndarray, y: np.ndarray) -> float:
    n, m = len(x), len(y)
    dxx, dyy, dxy = cdist(x, x), cdist(y, y), cdist(x, y)
    return 2 * dxy.mean() - dxx.sum() / (n * (n - 1)) - dyy.sum() / (m * (m - 1))


def test_energy_distance_matches_brute_force_pairwise_distances():
    x, y = rng_points(45, 7, 1), rng_points(33, 7, 2, shift=0.2)
    assert energy_distance2(x, y) == pytest.approx(brute_energy2(x.numpy(), y.numpy()), rel=1e-12)


# ------------------------------------------------------------------------------------------- metrics


def real_side(held: torch.Tensor, seed: int = 0, recon: torch.Tensor | None = None) -> RealSide:
    train = rng_points(60, held.shape[1], 1234).float()
    return RealSide(train, held.float(), compute_stats(train), seed=seed, recon_features=recon,
                    extractor="toy" if recon is not None else None)


def test_latent_energy_value_and_interval_against_brute_force(monkeypatch):
    import aebench.maths.mmd as mmd

    monkeypatch.setattr(mmd, "BLOCK_BYTES", 8 * 3 * 30 * 30)  # several tiles of the samples' own distances
    held, z = rng_points(70, 5, 0).float(), rng_points(90, 5, 9, shift=0.3).float()
    v = LatentEnergy().compute(FakeSide("s", z, seed=4), real_side(held))["latent_energy"]
    x64, h64 = z.double().numpy(), held.double().numpy()
    assert v.value == pytest.approx(brute_energy2(x64, h64), rel=1e-11)
    sd = half_sample_sd(lambda rows: brute_energy2(x64[rows.numpy()], h64), 90, 100, seed=4)
    assert (v.high - v.low) / 2 == pytest.approx(1.959963984540054 * sd, rel=1e-9)
    assert v.n == 90 and v.higher_is_better is False


def test_latent_swd_known_answers_and_its_interval():
    held = rng_points(400, 6, 0).float()
    real = real_side(held)
    metric = LatentSWD()
    same = metric.compute(FakeSide("same", rng_points(400, 6, 1).float(), seed=1), real)["latent_swd"]
    shifted = metric.compute(FakeSide("shift", rng_points(400, 6, 2, shift=0.5).float(), seed=1), real)["latent_swd"]
    wide = metric.compute(FakeSide("wide", rng_points(400, 6, 3, scale=2.0).float(), seed=1), real)["latent_swd"]
    assert same.value < shifted.low and same.value < wide.low and same.high < shifted.low
    z = rng_points(400, 6, 2, shift=0.5).float()
    ref = SlicedReference.of(held, 128, seed=0)
    assert shifted.value == pytest.approx(ref.distance(z), rel=1e-12)
    sd = half_sample_sd(lambda rows: ref.distance(z[rows]), 400, 100, seed=1)
    assert (shifted.high - shifted.low) / 2 == pytest.approx(1.959963984540054 * sd, rel=1e-9)
    # the held-out latents themselves (the reference rows) get no value, like latent_fd
    assert metric.compute(FakeSide("held", held), real) == {}


def test_recon_distances_compare_features_with_decoded_real_latents():
    recon = rng_points(64, 12, 0).float()
    real = real_side(rng_points(30, 4, 5), recon=recon)
    close = FakeSide("close", rng_points(4, 4, 1).float(), features=rng_points(64, 12, 2).float(), seed=2)
    far = FakeSide("far", rng_points(4, 4, 1).float(), features=rng_points(64, 12, 3, scale=3.0).float(), seed=2)
    swd = [SWDRecon().compute(f, real)["swd_recon"] for f in (close, far)]
    energy = [EnergyRecon().compute(f, real)["energy_recon"] for f in (close, far)]
    assert swd[0].high < swd[1].low and energy[0].high < energy[1].low
    assert energy[1].value == pytest.approx(brute_energy2(far.features.double().numpy(), recon.double().numpy()),
                                            rel=1e-11)
    assert swd[1].value == pytest.approx(SlicedReference.of(recon, 128, seed=0).distance(far.features), rel=1e-12)
    assert swd[0].info["reference"].startswith("decoded") and swd[0].n == 64
    with pytest.raises(Exception, match="recon_features"):
        SWDRecon().compute(close, real_side(rng_points(30, 4, 5)))
