"""Latent distribution metrics (latent_fd, latent_mmd, latent_1nn) against independent formulations
(scipy sqrtm, a numpy double loop, scikit-learn's nearest-neighbour classifier), on synthetic Gaussians
with known answers, and the half-sampling interval they use."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import pdist
from sklearn.neighbors import KNeighborsClassifier

from aebench.errors import AebenchError, DataError
from aebench.maths.bootstrap import half_sample_sd
from aebench.maths.fid import FrechetReference
from aebench.maths.mmd import RBFKernel, median_distance, mmd2_unbiased, subset_kernel_sums
from aebench.maths.two_sample import one_nn_accuracy
from aebench.metric import FakeSide, RealSide
from aebench.metrics.distribution import LatentFD, LatentMMD, LatentOneNN
from aebench.stats import compute_stats

DIM = 5


def gauss(n: int, seed: int, shift: float = 0.0, scale: float = 1.0, dim: int = DIM) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(dim, dtype=torch.float64) + 0.3 * torch.randn(dim, dim, generator=torch.Generator().manual_seed(99),
                                                                   dtype=torch.float64)
    return ((torch.randn(n, dim, generator=g, dtype=torch.float64) * scale) @ mix + shift).float()


def real_side(held: torch.Tensor, seed: int = 0) -> RealSide:
    train = gauss(50, 1234, dim=held.shape[1])
    return RealSide(train, held, compute_stats(train), seed=seed)


def scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


# ---------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize("n", [4, 30, 200])  # fewer and more samples than dimensions (d = 12)
def test_frechet_reference_matches_scipy_sqrtm(n):
    ref = gauss(300, 0, dim=12).double()
    fake = gauss(n, 1, shift=0.4, scale=1.3, dim=12).double()
    expected = scipy_fd(ref.numpy(), fake.numpy())
    assert FrechetReference.of(ref).distance(fake) == pytest.approx(expected, rel=1e-7, abs=1e-8)


def test_frechet_reference_subsets_equal_the_distance_of_the_subset():
    ref = FrechetReference.of(gauss(100, 0))
    fake = gauss(40, 1, shift=1.0)
    x, y = ref.project(fake)
    rows = torch.tensor([3, 5, 8, 13, 21, 34])
    assert ref.distance_of_rows(x, y, rows) == pytest.approx(ref.distance(fake[rows]), rel=1e-10)


def test_latent_fd_against_scipy_and_known_answers():
    held = gauss(400, 0)
    real = real_side(held)
    metric = LatentFD()
    fake = gauss(150, 1, shift=0.5)
    v = metric.compute(FakeSide("s", fake, seed=3), real)["latent_fd"]
    assert v.value == pytest.approx(scipy_fd(held.double().numpy(), fake.double().numpy()), rel=1e-6)
    assert v.higher_is_better is False and v.n == 150 and v.info["n_real"] == 400
    assert v.low <= v.value <= v.high
    same = metric.compute(FakeSide("same", gauss(400, 2)), real)["latent_fd"].value
    assert same < 0.1 < v.value  # a fresh draw of one Gaussian: only the small-sample bias (~d^2/n) remains
    # the held-out latents themselves (the reference rows) get no value from any distribution metric
    for other in (metric, LatentMMD(), LatentOneNN()):
        assert other.compute(FakeSide("held", held[torch.randperm(400)[:100]]), real) == {}
    assert "latent_fd" in metric.compute(FakeSide("near", held + 1e-6), real)
    # interval from random halves: reproducible from the seed, and its width tracks the spread over draws
    again = metric.compute(FakeSide("s", fake, seed=3), real)["latent_fd"]
    assert (again.low, again.high) == (v.low, v.high)
    draws = [metric.compute(FakeSide("d", gauss(150, 10 + i, shift=0.5)), real)["latent_fd"].value for i in range(30)]
    half_width = (v.high - v.low) / 2 / 1.96
    assert 0.5 < half_width / np.std(draws) < 2.0


def test_latent_fd_caches_the_heldout_fit_and_rejects_wrong_dimension():
    real = real_side(gauss(100, 0))
    metric = LatentFD()
    metric.compute(FakeSide("a", gauss(20, 1)), real)
    fit = real.cache["latent_fd"]["reference"]
    metric.compute(FakeSide("b", gauss(20, 2)), real)
    assert real.cache["latent_fd"]["reference"] is fit
    with pytest.raises(AebenchError, match="expected \\[n, 5\\]"):
        metric.compute(FakeSide("bad", torch.zeros(10, 3)), real)


# ---------------------------------------------------------------- MMD


def loop_mmd2(x: np.ndarray, y: np.ndarray, bandwidths: list[float]) -> float:
    def k(a, b):
        d2 = ((a - b) ** 2).sum()
        return np.mean([math.exp(-d2 / (2 * h * h)) for h in bandwidths])

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_mmd2_unbiased_matches_a_double_loop():
    x, y = gauss(25, 0).double(), gauss(18, 1, shift=0.7).double()
    bandwidths = [0.5, 1.0, 3.0]
    expected = loop_mmd2(x.numpy(), y.numpy(), bandwidths)
    assert mmd2_unbiased(RBFKernel(tuple(bandwidths)), x, y) == pytest.approx(expected, rel=1e-10)


def test_latent_mmd_against_double_loop_with_median_bandwidths():
    held = gauss(40, 0)
    real = real_side(held)
    fake = gauss(30, 1, shift=0.6)
    v = LatentMMD().compute(FakeSide("s", fake, seed=1), real)["latent_mmd"]
    median = float(np.median(pdist(held.double().numpy())))
    assert v.info["median_distance"] == pytest.approx(median, rel=1e-9)
    expected = loop_mmd2(held.double().numpy(), fake.double().numpy(), [s * median for s in (0.25, 0.5, 1.0, 2.0)])
    assert v.value == pytest.approx(expected, rel=1e-9)
    assert v.low < v.value < v.high and v.higher_is_better is False


def test_latent_mmd_known_answers_and_chunked_gram(monkeypatch):
    real = real_side(gauss(300, 0))
    metric = LatentMMD()
    same = metric.compute(FakeSide("same", gauss(300, 1)), real)["latent_mmd"]
    shifted = metric.compute(FakeSide("shift", gauss(300, 2, shift=0.5)), real)["latent_mmd"]
    wide = metric.compute(FakeSide("wide", gauss(300, 3, scale=2.0)), real)["latent_mmd"]
    assert abs(same.value) < 0.005  # unbiased: ~0, may dip below
    assert shifted.value > 0.02 and wide.value > 0.05 and shifted.low > same.high
    # the interval is over the samples (the held-out set is common to every sampler): its width tracks
    # the spread of the value over fresh draws of the samples against the same held-out latents
    draws = [metric.compute(FakeSide("d", gauss(300, 10 + i, shift=0.5)), real)["latent_mmd"].value for i in range(30)]
    assert 0.5 < (shifted.high - shifted.low) / 2 / 1.96 / np.std(draws) < 2.0
    # with the kernel matrix cut into many small tiles the value and interval are the same
    import aebench.maths.mmd as mmd

    monkeypatch.setattr(mmd, "BLOCK_BYTES", 8 * 3 * 40 * 40)
    assert len(mmd._tiles(300, mmd.BLOCK_BYTES)) == 8
    again = metric.compute(FakeSide("shift", gauss(300, 2, shift=0.5)), real)["latent_mmd"]
    assert again.value == pytest.approx(shifted.value, rel=1e-12) and again.low == pytest.approx(shifted.low, rel=1e-10)


def gathered_latent_mmd(z: torch.Tensor, real: RealSide, seed: int, repeats: int = 100) -> tuple[float, float]:
    """latent_mmd's value and interval half-width as aebench computed them before the subset sums: the
    samples' whole kernel matrix, one gathered sub-matrix per random half (the reference formulation)."""
    held = real.heldout_latents.double()
    median = median_distance(held, seed=real.seed)
    kernel = RBFKernel(tuple(s * median for s in (0.25, 0.5, 1.0, 2.0)))
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)  # brute force, not the kernel's own distances
    gram = sum(torch.exp(-d2 / (2 * h * h)) for h in kernel.bandwidths) / len(kernel.bandwidths)
    d2x = ((z[:, None, :] - held[None, :, :]) ** 2).sum(-1)
    cross = (sum(torch.exp(-d2x / (2 * h * h)) for h in kernel.bandwidths) / len(kernel.bandwidths)).mean(1)
    d2h = ((held[:, None, :] - held[None, :, :]) ** 2).sum(-1)
    kh = sum(torch.exp(-d2h / (2 * h * h)) for h in kernel.bandwidths) / len(kernel.bandwidths)
    nh, n = held.shape[0], z.shape[0]
    xx = float((kh.sum() - kh.diagonal().sum()) / (nh * (nh - 1)))

    def mmd(rows):
        g = gram if rows is None else gram[rows][:, rows]
        m = g.shape[0]
        c = cross if rows is None else cross[rows]
        return xx + float((g.sum() - g.diagonal().sum()) / (m * (m - 1))) - 2.0 * float(c.mean())

    return mmd(None), 1.959963984540054 * half_sample_sd(mmd, n, repeats, seed)


@pytest.mark.parametrize("n, scales", [(257, (0.25, 0.5, 1.0, 2.0)), (64, (0.25, 0.5, 1.0, 2.0)), (101, (0.3, 1.0, 1.7))])
def test_latent_mmd_subset_sums_equal_the_gathered_formulation(monkeypatch, n, scales):
    """The one-pass subset sums (b^T K b per half, tiles of the upper triangle, squarings for bandwidths a
    factor 2 apart) give the value and interval of the per-half gathered sub-matrices to float64 rounding."""
    import aebench.maths.mmd as mmd

    monkeypatch.setattr(mmd, "BLOCK_BYTES", 8 * 3 * 50 * 50)  # several tiles, one of them ragged
    real = real_side(gauss(90, 0))
    z = gauss(n, 4, shift=0.3, scale=1.3).double()
    metric = LatentMMD({"scales": scales})
    got = metric.compute(FakeSide("s", z, seed=7), real)["latent_mmd"]
    if scales == (0.25, 0.5, 1.0, 2.0):
        value, half = gathered_latent_mmd(z, real, seed=7)
        assert got.value == pytest.approx(value, rel=1e-11, abs=1e-14)
        assert (got.high - got.low) / 2 == pytest.approx(half, rel=1e-9)
    kernel = metric._reference(real)[0]
    assert kernel._chain()[1][1] == (2 if scales[0] == 0.25 else 0)  # squarings only for a factor-2 ladder
    ref = loop_mmd2(real.heldout_latents.double().numpy(), z.numpy(), list(kernel.bandwidths))
    assert got.value == pytest.approx(ref, rel=1e-10)


def test_subset_kernel_sums_against_explicit_sub_matrices():
    x = gauss(70, 3).double()
    kernel = RBFKernel((0.5, 1.0, 2.0, 4.0, 3.3))
    full = kernel(x, x)
    subsets = [torch.tensor([0, 5, 69]), torch.arange(0, 70, 2), torch.tensor([], dtype=torch.int64)]
    total, sums = subset_kernel_sums(kernel, x, subsets, block_bytes=8 * 3 * 16 * 16)
    assert total == pytest.approx(float(full.sum()), rel=1e-13)
    expected = [float(full[r][:, r].sum()) for r in subsets]
    assert sums.tolist() == pytest.approx(expected, rel=1e-13, abs=1e-15)
    with pytest.raises(DataError, match="one row per point"):
        subset_kernel_sums(kernel, x, torch.zeros(5, 2))


def test_median_distance_and_kernel_errors():
    x = gauss(30, 0).double()
    assert median_distance(x) == pytest.approx(float(np.median(pdist(x.numpy()))), rel=1e-12)
    with pytest.raises(DataError, match="positive"):
        RBFKernel((0.0,))
    real = real_side(torch.zeros(10, DIM))
    with pytest.raises(AebenchError, match="coincide"):
        LatentMMD().compute(FakeSide("s", gauss(10, 1)), real)


# ---------------------------------------------------------------- 1-NN two-sample accuracy


def sklearn_loo_1nn(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Per point, whether a 1-NN classifier fitted on all other points gets its set right."""
    x = np.concatenate([real, fake])
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    correct = np.zeros(len(x))
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        clf = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(x[keep], y[keep])
        correct[i] = clf.predict(x[i:i + 1])[0] == y[i]
    return correct


def test_one_nn_accuracy_matches_sklearn_leave_one_out():
    real, fake = gauss(30, 0).double(), gauss(30, 1, shift=0.8, scale=0.7).double()
    res = one_nn_accuracy(real, fake)
    correct = sklearn_loo_1nn(real.numpy(), fake.numpy())
    assert res.accuracy == pytest.approx(correct.mean(), abs=1e-12)
    assert res.real_accuracy == pytest.approx(correct[:30].mean(), abs=1e-12)
    assert res.fake_accuracy == pytest.approx(correct[30:].mean(), abs=1e-12)
    assert res.worst_accuracy == max(res.real_accuracy, res.fake_accuracy) > res.accuracy
    with pytest.raises(DataError, match="one shape"):
        one_nn_accuracy(real, fake[:10])


def test_one_nn_ties_count_half():
    real = torch.tensor([[0.0], [10.0]])
    fake = torch.tensor([[0.0], [10.0]])  # every point's nearest other point is its twin in the other set
    assert one_nn_accuracy(real, fake).accuracy == 0.0
    real = torch.tensor([[0.0], [2.0]])
    fake = torch.tensor([[4.0], [6.0]])  # real 2 and fake 4 are as far from their own set as from the other
    res = one_nn_accuracy(real, fake)
    assert res.real_accuracy == 0.75 and res.fake_accuracy == 0.75


def test_latent_1nn_known_answers_equal_sizes_and_interval():
    held = gauss(200, 0)
    real = real_side(held)
    metric = LatentOneNN()
    same = metric.compute(FakeSide("same", gauss(200, 1)), real)["latent_1nn"]
    far = metric.compute(FakeSide("far", gauss(200, 2, shift=6.0)), real)["latent_1nn"]
    assert abs(same.value - 0.5) < 0.1 and same.low < 0.5 < same.high
    assert far.value == 1.0 and far.higher_is_better is False
    assert same.info["pooled_accuracy"] <= same.value == max(same.info["real_accuracy"], same.info["fake_accuracy"])
    # more samples than held-out latents: a seeded subset of the samples, same size as the held-out set
    big = metric.compute(FakeSide("big", gauss(500, 3), seed=4), real)["latent_1nn"]
    assert big.info["m"] == 200 and big.n == 500
    again = metric.compute(FakeSide("big", gauss(500, 3), seed=4), real)["latent_1nn"]
    assert again.value == big.value
    # fewer samples than held-out latents: a fixed held-out subset, reused for every sampler
    small = metric.compute(FakeSide("small", gauss(60, 5)), real)["latent_1nn"]
    assert small.info["m"] == 60 and 60 in real.cache["latent_1nn"]


def test_same_moments_wrong_shape_fools_fd_not_1nn():
    """Two tight clusters versus a Gaussian with exactly their mean and covariance: the Fréchet distance
    is ~0 by construction, the 1-NN accuracy is near 1."""
    g = torch.Generator().manual_seed(0)
    centres = torch.zeros(2, DIM)
    centres[0, 0], centres[1, 0] = -3.0, 3.0

    def clusters(n: int) -> torch.Tensor:
        pick = torch.randint(0, 2, (n,), generator=g)
        return centres[pick] + 0.1 * torch.randn(n, DIM, generator=g)

    held = clusters(300)
    mu, cov = held.double().mean(0), torch.cov(held.double().T)
    fake = (mu + torch.randn(300, DIM, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T).float()
    real = real_side(held)
    fd = LatentFD().compute(FakeSide("g", fake), real)["latent_fd"].value
    shape = LatentOneNN().compute(FakeSide("g", fake), real)["latent_1nn"].value
    spread = LatentFD().compute(FakeSide("s", clusters(300) * 1.5), real)["latent_fd"].value
    assert fd < 0.2 * spread and shape > 0.9


# ---------------------------------------------------------------- half-sampling


def test_half_sample_sd_of_a_mean_is_the_standard_error():
    x = torch.from_numpy(np.random.default_rng(0).normal(size=400))
    sd = half_sample_sd(lambda rows: float(x[rows].mean()), 400, repeats=400, seed=1)
    assert sd == pytest.approx(float(x.std()) / math.sqrt(400), rel=0.15)
    with pytest.raises(AebenchError, match="at least 4"):
        half_sample_sd(lambda rows: 0.0, 3)


def test_latent_1nn_is_not_fooled_by_far_off_points():
    """Uniform points in a wide box around 64-d data (as ORL's latents): each one's nearest other point is a
    real point, so the pooled accuracy is 0.5 (every real point right, every far point wrong); the
    per-set accuracy of the real points shows the two sets apart."""
    dim = 64
    held = gauss(150, 0, dim=dim)
    far = (torch.rand(150, dim, generator=torch.Generator().manual_seed(1)) - 0.5) * 20
    v = LatentOneNN().compute(FakeSide("uniform", far), real_side(held))["latent_1nn"]
    assert abs(v.info["pooled_accuracy"] - 0.5) < 0.05 and v.info["fake_accuracy"] < 0.05
    assert v.info["real_accuracy"] == 1.0 and v.value == 1.0
