"""FID, KID and PRDC: formulas against torchmetrics, scipy (pytorch-fid's route) and the prdc package,
hand-checked small cases, real-side caching and clear errors."""

from __future__ import annotations

import numpy as np
import prdc as prdc_package
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from aebench.errors import DataError
from aebench.maths.fid import frechet_distance, frechet_distance_sqrt, mean_cov, psd_sqrt
from aebench.maths.kid import draw_subsets, kid_scores, mmd2_unbiased
from aebench.metric import FakeSide, RealSide
from aebench.metrics import image
from aebench.metrics.image import FID, KID, PRDC
from aebench.stats import LatentStats


class Identity(nn.Module):
    """A 'feature extractor' whose input already is the features, so torchmetrics sees our exact numbers."""

    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Correlated, non-negative, Inception-like features (float64)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + 1.0 + shift).abs()


def sides(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> tuple[FakeSide, RealSide]:
    latents = torch.zeros(4, 2)
    real_side = RealSide(train_latents=latents, heldout_latents=latents, stats=object.__new__(LatentStats),
                         features=real.float(), extractor="fast:test", reference="heldout", seed=seed)
    return FakeSide(name="s", latents=torch.zeros(fake.shape[0], 2), features=fake.float()), real_side


# ---------------------------------------------------------------- FID


def test_frechet_distance_by_hand():
    # 1-D: (0 - 2)^2 + 1 + 4 - 2 sqrt(1 * 4) = 5
    assert frechet_distance(torch.zeros(1), torch.ones(1, 1), torch.full((1,), 2.0), torch.full((1, 1), 4.0)) == 5.0
    # diagonal: |mu|^2 + sum (sqrt(a) - sqrt(b))^2 = 3 + (1 - 3)^2 + (2 - 1)^2 + 0
    s1, s2 = torch.diag(torch.tensor([1.0, 4.0, 9.0])), torch.diag(torch.tensor([9.0, 1.0, 9.0]))
    assert frechet_distance(torch.ones(3), s1, torch.zeros(3), s2) == pytest.approx(8.0, abs=1e-12)
    assert frechet_distance_sqrt(torch.ones(3), s1, psd_sqrt(s1), torch.zeros(3), s2) == pytest.approx(8.0, abs=1e-12)


def test_psd_sqrt_squares_back_and_ignores_rounding_negatives():
    x = features(5, 8, 0)  # rank 4 covariance: eigenvalues at 0 come out slightly negative
    _, cov = mean_cov(x)
    assert torch.linalg.eigvalsh(cov).min() < 0  # the case this test is about
    root = psd_sqrt(cov)
    torch.testing.assert_close(root @ root, cov, rtol=0, atol=1e-12)
    assert torch.equal(root, root.T) and torch.isfinite(root).all()


def test_mean_cov_equals_numpy():
    x = features(50, 6, 0)
    mu, cov = mean_cov(x)
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0), rtol=1e-13)
    np.testing.assert_allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-12)


@pytest.mark.parametrize("n_real,n_fake,d", [(300, 200, 32), (40, 30, 64)])  # full rank, and n < d as with Inception
def test_fid_equals_torchmetrics_and_scipy(n_real, n_fake, d):
    real, fake = features(n_real, d, 1), features(n_fake, d, 2, shift=0.3)
    mu_r, s_r = mean_cov(real)
    mu_f, s_f = mean_cov(fake)
    ours = frechet_distance(mu_r, s_r, mu_f, s_f)
    cached_root = frechet_distance_sqrt(mu_r, s_r, psd_sqrt(s_r), mu_f, s_f)

    tm = FrechetInceptionDistance(feature=Identity(d))
    tm.update(real, real=True)
    tm.update(fake, real=False)
    assert ours == pytest.approx(float(tm.compute()), rel=1e-6)
    assert cached_root == pytest.approx(float(tm.compute()), rel=1e-6)

    # pytorch-fid's formulation: trace of scipy's sqrtm of the product
    covmean = scipy.linalg.sqrtm(s_r.numpy() @ s_f.numpy())
    pytorch_fid = float(((mu_r - mu_f) ** 2).sum()) + np.trace(s_r.numpy()) + np.trace(s_f.numpy()) \
        - 2 * np.trace(covmean.real)
    assert ours == pytest.approx(pytorch_fid, rel=1e-4)


def test_fid_metric_caches_real_side_and_names_provenance():
    real, fake = features(120, 16, 3), features(80, 16, 4, shift=0.5)
    fake_side, real_side = sides(real, fake)
    value = FID().compute(fake_side, real_side)["fid"]
    expected = frechet_distance(*mean_cov(real.float()), *mean_cov(fake.float()))
    assert value.value == pytest.approx(expected, rel=1e-9) and value.value > 0
    assert value.higher_is_better is False and value.n == 80
    assert value.info == {"extractor": "fast:test", "reference": "heldout", "n_real": 120, "n_fake": 80}
    cached = real_side.cache["fid"]["gaussian"]
    FID().compute(fake_side, real_side)
    assert real_side.cache["fid"]["gaussian"] is cached
    real_side.features = features(120, 16, 5).float()  # another reference set: the cache must not be reused
    FID().compute(fake_side, real_side)
    assert real_side.cache["fid"]["gaussian"] is not cached
    # a sampler identical to the reference set scores 0
    same, real_side = sides(real, real)
    assert FID().compute(same, real_side)["fid"].value == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("metric", [FID(), KID(), PRDC()])
def test_metrics_reject_bad_features(metric):
    real = features(20, 4, 0)
    fake_side, real_side = sides(real, features(10, 3, 1))
    with pytest.raises(DataError, match="do not match"):
        metric.compute(fake_side, real_side)
    fake_side.features = None
    with pytest.raises(DataError, match="feature extractor"):
        metric.compute(fake_side, real_side)
    bad = features(10, 4, 1).float()
    bad[3, 2] = float("nan")
    fake_side.features = bad
    with pytest.raises(DataError, match="NaN"):
        metric.compute(fake_side, real_side)
    fake_side.features = features(1, 4, 1).float()
    with pytest.raises(DataError, match="draw more samples"):
        metric.compute(fake_side, real_side)


# ---------------------------------------------------------------- KID


def test_mmd_by_hand():
    # d = 1, kernel (x y + 1)^3; x = {0, 1}, y = {0, 2}: k(x, x') off-diagonal = 1, k(y, y') = 1,
    # k(x, y) = {1, 1, 1, 27} with mean 7.5, so MMD^2 = 1 + 1 - 2 * 7.5 = -13 (the unbiased estimate can be < 0)
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])
    assert float(mmd2_unbiased(x, y)) == -13.0


def test_kid_equals_torchmetrics_with_the_same_subsets():
    real, fake = features(60, 8, 6), features(50, 8, 7, shift=0.2)
    seed, subsets, size = 11, 5, 20
    fake_side, real_side = sides(real, fake, seed=seed)
    ours = KID(subsets=subsets, subset_size=size).compute(fake_side, real_side)["kid"]

    tm = KernelInceptionDistance(feature=Identity(8), subsets=subsets, subset_size=size)
    tm.update(real.float().double(), real=True)  # the same float32-rounded numbers, in float64 like ours
    tm.update(fake.float().double(), real=False)
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    mean, std = tm.compute()
    assert ours.value == pytest.approx(float(mean), rel=1e-9)
    assert ours.info["std"] == pytest.approx(float(std), rel=1e-9) and ours.info["std"] > 0
    assert ours.low < ours.value < ours.high and ours.higher_is_better is False and ours.n == 50
    assert {"extractor", "reference", "n_real", "n_fake", "subsets", "subset_size"} <= set(ours.info)
    assert ours.info["subset_size"] == size and ours.info["subsets"] == subsets


def test_kid_one_subset_equals_poly_mmd_and_full_sets_are_deterministic():
    real, fake = features(30, 8, 8), features(30, 8, 9, shift=0.4)
    real_idx, fake_idx = draw_subsets(30, 30, 12, 3, seed=0)
    scores = kid_scores(real, fake, real_idx, fake_idx)  # whole kernel matrices, gathered per subset
    per_subset = kid_scores(real, fake, real_idx, fake_idx, gram_bytes=0)  # one kernel evaluation per subset
    for i in range(3):
        expected = float(poly_mmd(real[real_idx[i]], fake[fake_idx[i]]))
        assert float(scores[i]) == pytest.approx(expected, rel=1e-12)
        assert float(per_subset[i]) == pytest.approx(expected, rel=1e-12)

    fake_side, real_side = sides(real, fake)
    full = KID().compute(fake_side, real_side)["kid"]  # subset_size 1000 is capped at n = 30 = both sets
    assert full.info["subsets"] == 1 and full.info["subset_size"] == 30 and full.low is None
    assert full.value == pytest.approx(float(poly_mmd(real.float().double(), fake.float().double())), rel=1e-12)


def test_kid_reuses_real_terms_for_the_same_sample_count():
    real = features(40, 8, 10)
    fake_side, real_side = sides(real, features(25, 8, 11))
    KID(subsets=4, subset_size=10).compute(fake_side, real_side)
    (key, entry), = real_side.cache["kid"]["subsets"].items()
    fake_side.features = features(25, 8, 12).float()  # another sampler, same count
    KID(subsets=4, subset_size=10).compute(fake_side, real_side)
    assert real_side.cache["kid"]["subsets"][key] is entry and len(real_side.cache["kid"]["subsets"]) == 1


# ---------------------------------------------------------------- PRDC


def test_prdc_by_hand_in_1d():
    # k = 1. real 0, 1, 3, 7 have k-NN radii 1, 1, 2, 4; fake 0.5, 1.5, 2.5, 12, 13 have radii 1, 1, 1, 1, 1.
    # precision: 0.5 (ball of 0), 1.5 (ball of 1), 2.5 (ball of 3) are inside a real ball; 12, 13 not -> 3/5
    # recall: real 0, 1, 3 lie within 1 of a fake point; 7 does not (nearest fake 2.5, 4.5 away) -> 3/4
    # density: real balls containing each fake: 0.5 -> {0, 1}, 1.5 -> {1, 3}, 2.5 -> {3}, 12, 13 -> none;
    #          5 / (k * 5) = 1
    # coverage: the nearest fake is inside the ball of 0 (0.5 < 1), 1 (0.5 < 1), 3 (0.5 < 2) but not 7 (4.5 > 4) -> 3/4
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [1.5], [2.5], [12.0], [13.0]])
    fake_side, real_side = sides(real, fake)
    got = PRDC(k_pr=1, k_dc=1).compute(fake_side, real_side)
    assert {k: v.value for k, v in got.items()} == {"precision": 0.6, "recall": 0.75, "density": 1.0, "coverage": 0.75}
    assert prdc_package.compute_prdc(real.numpy(), fake.numpy(), 1) == pytest.approx(
        {"precision": 0.6, "recall": 0.75, "density": 1.0, "coverage": 0.75})


def test_prdc_equals_the_prdc_package():
    real, fake = features(150, 10, 13), features(120, 10, 14, shift=0.1)
    fake_side, real_side = sides(real, fake)
    got = PRDC().compute(fake_side, real_side)
    r, f = real.float().numpy(), fake.float().numpy()
    want3, want5 = prdc_package.compute_prdc(r, f, 3), prdc_package.compute_prdc(r, f, 5)
    for key, want, k in (("precision", want3, 3), ("recall", want3, 3), ("density", want5, 5), ("coverage", want5, 5)):
        assert got[key].value == pytest.approx(float(want[key]), abs=1e-6)
        assert got[key].info == {"extractor": "fast:test", "reference": "heldout", "n_real": 150, "n_fake": 120, "k": k}
        assert got[key].higher_is_better is True and got[key].n == 120
    assert 0 < got["precision"].value < 1 and 0 < got["coverage"].value < 1
    radii = real_side.cache["prdc"]["radii"]
    assert set(radii) == {3, 5}
    PRDC().compute(fake_side, real_side)
    assert real_side.cache["prdc"]["radii"][3] is radii[3]


def test_hook_registers_the_image_metrics():
    got = []
    image.register_metrics(got.append)
    assert [m.name for m in got] == ["fid", "fid_inf", "kid", "prdc"]
    assert all(m.needs == frozenset({"features"}) for m in got)


# ---------------------------------------------------------------- decoder-matched reference and FID-infinity


def recon_sides(real: torch.Tensor, recon: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> tuple[FakeSide, RealSide]:
    fake_side, real_side = sides(real, fake, seed)
    real_side.recon_features = recon.float()
    real_side.recon_info = {"split": "train", "n": recon.shape[0]}
    return fake_side, real_side


def test_recon_keys_score_against_the_decoded_reference():
    real, recon, fake = features(120, 16, 20), features(40, 16, 21, shift=0.3), features(40, 16, 22, shift=0.35)
    fake_side, real_side = recon_sides(real, recon, fake)
    fid = FID().compute(fake_side, real_side)
    assert fid["fid_recon"].value == pytest.approx(frechet_distance(*mean_cov(recon.float()), *mean_cov(fake.float())),
                                                   rel=1e-7)
    assert fid["fid"].value == pytest.approx(frechet_distance(*mean_cov(real.float()), *mean_cov(fake.float())), rel=1e-7)
    assert fid["fid_recon"].info["reference"] == "decoded train latents" and fid["fid_recon"].info["n_real"] == 40
    kid = KID().compute(fake_side, real_side)
    assert kid["kid_recon"].value == pytest.approx(float(poly_mmd(recon.float().double(), fake.float().double())),
                                                   rel=1e-9)
    assert real_side.cache["fid_recon"]["source"] is real_side.recon_features
    prdc = PRDC().compute(fake_side, real_side)
    want3 = prdc_package.compute_prdc(recon.float().numpy(), fake.float().numpy(), 3)
    want5 = prdc_package.compute_prdc(recon.float().numpy(), fake.float().numpy(), 5)
    for key, want in (("precision", want3), ("recall", want3), ("density", want5), ("coverage", want5)):
        assert prdc[key + "_recon"].value == pytest.approx(float(want[key]), abs=1e-6)
        assert prdc[key + "_recon"].info["reference"] == "decoded train latents"
    assert 0 < prdc["coverage_recon"].value < 1
    # without a decoder-matched reference only the real-image keys appear
    real_side.recon_features = None
    assert set(FID().compute(fake_side, real_side)) == {"fid"}


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


def test_fid_inf_equals_polyfit_of_scipy_fids_on_the_same_subsets():
    real, fake = features(150, 12, 30), features(60, 12, 31, shift=0.4)
    fake_side, real_side = sides(real, fake, seed=0)
    fake_side.seed = 7
    metric = image.FIDInf(points=4, smallest=0.5, draws=3)
    got = metric.compute(fake_side, real_side)["fid_inf"]
    sizes = metric.sizes(60)
    assert sizes == [30, 40, 50, 60] and got.info["sizes"] == sizes
    gen = torch.Generator().manual_seed(7)
    r, f = real.float().double().numpy(), fake.float().double().numpy()
    means = []
    for size in sizes:
        draws = 1 if size == 60 else 3
        means.append(np.mean([scipy_fid(r, f[torch.randperm(60, generator=gen)[:size].numpy()]) for _ in range(draws)]))
    slope, intercept = np.polyfit(1.0 / np.array(sizes), means, 1)
    assert got.value == pytest.approx(intercept, rel=1e-6) and got.info["slope"] == pytest.approx(slope, rel=1e-6)
    assert got.info["fid_at_size"] == pytest.approx(means, rel=1e-5) and got.higher_is_better is False


def test_fid_inf_removes_the_small_sample_bias():
    """Samples from the reference's own distribution: FID at n is biased upwards (~ d / n); FID-infinity
    lands much nearer the true 0."""
    d = 8
    real = torch.randn(4000, d, generator=torch.Generator().manual_seed(0))
    fake = torch.randn(80, d, generator=torch.Generator().manual_seed(1))
    fake_side, real_side = sides(real, fake)
    fid = FID().compute(fake_side, real_side)["fid"].value
    inf = image.FIDInf(smallest=0.25, draws=20).compute(fake_side, real_side)["fid_inf"]
    assert fid > 0.05 and abs(inf.value) < 0.5 * fid and inf.info["r2"] > 0.8


def test_frechet_reference_low_rank_square_root_matches_eigh():
    from aebench.maths.fid import FrechetReference

    ref = features(20, 48, 40)  # fewer points than dimensions: square root from the thin SVD
    fake = features(30, 48, 41, shift=0.2)
    low_rank = FrechetReference.of(ref)
    torch.testing.assert_close(low_rank.root @ low_rank.root, low_rank.sigma, rtol=0, atol=1e-10)
    torch.testing.assert_close(low_rank.root, psd_sqrt(low_rank.sigma), rtol=0, atol=1e-6)
    assert low_rank.distance(fake) == pytest.approx(scipy_fid(ref.numpy(), fake.numpy()), rel=1e-6)
