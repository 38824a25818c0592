"""Ladders on synthetic latents where the right answer is known, the verdict logic on hand-made
sequences, and the choice of a base set disjoint from every reference."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from aebench.errors import OptionError
from aebench.metric import LADDERS
from aebench.stats import compute_stats
from aebench.validation.ladders import BASE, build_ladders, levels_for
from aebench.validation.run import ValidationOptions, choose_split, rows_in
from aebench.validation.trust import ladder_verdict, metric_verdict, uncovered


def gaussian_latents(n: int, dim: int = 6, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 2.0, dim)
    return 1.5 + torch.randn(n, dim, generator=gen) * scale


def two_blobs(n: int, dim: int = 4, seed: int = 0) -> torch.Tensor:
    """Bimodal along component 0 (modes at -3 and +3, spread 0.3): far from Gaussian in shape."""
    gen = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    z = torch.randn(n, dim, generator=gen) * 0.3
    z[:, 0] += 3.0 * sign
    return z


@pytest.fixture
def synthetic():
    train = gaussian_latents(400, seed=1)
    base = gaussian_latents(60, seed=2)
    stats = compute_stats(train)
    return base, train, stats, build_ladders(base, train, stats, steps=6, clusters=6, seed=0)


def test_every_ladder_starts_at_the_base_set(synthetic):
    base, _, _, ladders = synthetic
    assert list(ladders.ladders) == list(LADDERS)
    for name, ladder in ladders.ladders.items():
        assert len(ladder.steps) == 6, name
        assert torch.equal(ladders.latents(ladder.steps[0]), base), name


def test_collapse_and_spread_scale_the_distance_to_the_centre_by_the_factor(synthetic):
    base, _, stats, ladders = synthetic
    centre = stats.mean.float()
    for name, first, last in (("collapse", 1.0, 0.1), ("spread", 1.0, 3.0)):
        ladder = ladders.ladders[name]
        assert ladder.levels[0] == first and ladder.levels[-1] == pytest.approx(last)
        for step in ladder.steps:
            z = ladders.latents(step)
            torch.testing.assert_close(z - centre, step.level * (base - centre), rtol=1e-5, atol=1e-5)
            ratio = (z - centre).std(0) / (base - centre).std(0)
            torch.testing.assert_close(ratio, torch.full_like(ratio, step.level), rtol=1e-4, atol=1e-5)


def test_contamination_replaces_an_exact_nested_share_with_uniform_points_in_the_training_range(synthetic):
    base, train, _, ladders = synthetic
    ladder = ladders.ladders["contamination"]
    assert ladder.levels == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    names = ladders.pool_names
    previous = torch.zeros(base.shape[0], dtype=torch.bool)
    for step in ladder.steps:
        replaced = step.pool != names.index(BASE)
        assert int(replaced.sum()) == round(step.level * base.shape[0])
        assert bool((replaced | ~previous).all()), "a row replaced once stays replaced"
        previous = replaced
        z = ladders.latents(step)
        assert torch.equal(z[~replaced], base[~replaced])
        lo, hi = train.min(0).values, train.max(0).values
        assert bool(((z[replaced] >= lo) & (z[replaced] <= hi)).all())
    # the uniform points fill the range: their spread per component is that of a uniform on [lo, hi]
    uniform = ladders.pools["uniform"]
    expected = (train.max(0).values - train.min(0).values) / 12 ** 0.5
    torch.testing.assert_close(uniform.std(0), expected, rtol=0.25, atol=0)


def test_mode_drop_keeps_the_count_and_only_rows_of_fewer_and_fewer_clusters(synthetic):
    base, _, _, ladders = synthetic
    ladder = ladders.ladders["mode_drop"]
    info = ladders.settings["mode_drop"]
    occupied = len(info["base_rows_per_cluster"])
    assert ladder.levels[0] == occupied and ladder.levels[-1] == 1
    assert ladder.levels == sorted(ladder.levels, reverse=True) and len(set(ladder.levels)) == len(ladder.levels)
    distinct = []
    for step in ladder.steps:
        z = ladders.latents(step)
        assert z.shape == base.shape
        assert bool((step.pool == 0).all()), "mode dropping only resamples base rows"
        distinct.append(int(torch.unique(step.row).numel()))
    assert distinct[0] == base.shape[0] and distinct == sorted(distinct, reverse=True) and distinct[-1] < distinct[0]
    # the last step holds base rows of one cluster only: the largest one
    assert distinct[-1] == info["base_rows_per_cluster"][0]


def test_moments_ladder_keeps_mean_and_covariance_but_not_the_shape():
    train, base = two_blobs(4000, seed=1), two_blobs(2000, seed=2)
    stats = compute_stats(train)
    ladders = build_ladders(base, train, stats, steps=5, ladders=("moments",), seed=3)
    ladder = ladders.ladders["moments"]
    between = []
    for step in ladder.steps:
        z = ladders.latents(step).double()
        torch.testing.assert_close(z.mean(0), stats.mean, atol=0.25, rtol=0)
        torch.testing.assert_close(torch.cov(z.T), stats.cov, atol=0.4, rtol=0.1)
        between.append(float((z[:, 0].abs() < 1.5).double().mean()))  # mass between the two modes
    assert between[0] < 0.01 and between[-1] > 0.25
    assert between == sorted(between)


def test_memorisation_puts_exact_copies_of_training_latents_in(synthetic):
    base, train, _, ladders = synthetic
    copies = [int(rows_in(ladders.latents(step), train).sum()) for step in ladders.ladders["memorisation"].steps]
    assert copies == [round(level * base.shape[0]) for level in ladders.ladders["memorisation"].levels]
    assert copies[0] == 0 and copies[-1] == base.shape[0]


def test_gather_picks_rows_of_any_per_pool_tensor(synthetic):
    _, _, _, ladders = synthetic
    doubled = {name: 2 * z for name, z in ladders.pools.items()}
    for ladder in ladders.ladders.values():
        for step in ladder.steps:
            assert torch.equal(ladders.gather(step, doubled), 2 * ladders.latents(step))


def test_ladder_options_are_checked():
    base, train = gaussian_latents(20), gaussian_latents(50, seed=3)
    stats = compute_stats(train)
    with pytest.raises(OptionError, match="at least 3 steps"):
        build_ladders(base, train, stats, steps=2)
    with pytest.raises(OptionError, match="Unknown ladder 'colapse'"):
        build_ladders(base, train, stats, ladders=("colapse",))
    with pytest.raises(OptionError, match="--clusters"):
        ValidationOptions(clusters=1).check()
    with pytest.raises(OptionError, match="Unknown validation setting 'sise'"):
        ValidationOptions.from_dict({"sise": 3})
    assert levels_for("mode_drop", 6, 8) == [8.0, 7.0, 5.0, 4.0, 2.0, 1.0]
    # a TOML [validation] table or the CLI: ladders as a list or a comma-separated string
    assert ValidationOptions.from_dict({"ladders": "collapse,spread", "steps": 4}).ladders == ("collapse", "spread")
    assert ValidationOptions.from_dict({"ladders": ["moments"]}).ladders == ("moments",)
    assert ValidationOptions.from_dict(None) == ValidationOptions()


# ------------------------------------------------------------------------------------ verdict
@pytest.mark.parametrize("values, hib, verdict, rho", [
    ([1, 2, 3, 4, 5, 6], False, "holds", 1.0),  # lower is better and it rises: worse at every step
    ([6, 5, 4, 3, 2, 1], True, "holds", 1.0),  # higher is better and it falls
    ([1, 2, 3, 4, 5, 6], True, "broken", -1.0),  # rewards the degradation
    ([1, 2, 4, 3, 5, 6], False, "holds", 0.942857),  # one adjacent swap in 6 steps
    ([1, 3, 2, 5, 4, 6], False, "broken", 0.885714),  # two swaps
    ([2, 1, 2, 1, 2, 1], False, "broken", -0.292770),  # ties: Pearson of the ranks
])
def test_ladder_verdict_orients_by_direction(values, hib, verdict, rho):
    out = ladder_verdict(values, hib)
    assert out["verdict"] == verdict and out["spearman"] == pytest.approx(rho, abs=1e-5) and out["values"] == [float(v) for v in values]


def test_flat_untested_and_broken_edge_cases():
    assert ladder_verdict([3.0] * 5, False)["verdict"] == "flat"
    flat = ladder_verdict([100.0, 100.1, 100.2, 100.3, 100.4], False)  # perfectly ordered but moves 0.4%
    assert flat["verdict"] == "flat" and flat["spearman"] == pytest.approx(1.0)
    assert ladder_verdict([100.0, 103, 106, 109, 112], False)["verdict"] == "holds"
    # rates: absolute movement decides (0.950 -> 0.955 is flat, 0.0 -> 0.3 is not)
    assert ladder_verdict([0.950, 0.951, 0.953, 0.954, 0.955], False, rate=True)["verdict"] == "flat"
    assert ladder_verdict([0.0, 0.1, 0.2, 0.25, 0.3], False, rate=True)["verdict"] == "holds"
    nan = ladder_verdict([1.0, float("nan"), 3.0, 4.0], False)
    assert nan["verdict"] == "broken" and nan["values"][1] is None
    assert ladder_verdict([1, 2, 3, 4], None)["verdict"] == "untested"
    err = ladder_verdict([None, None, None], False, error="step 0: ValueError: boom")
    assert err["verdict"] == "untested" and "boom" in err["note"]
    assert ladder_verdict([1.0, 2.0], False)["verdict"] == "untested"


def test_metric_verdict_needs_every_claimed_ladder_to_hold():
    holds, broken, flat = ({"verdict": v} for v in ("holds", "broken", "flat"))
    ladders = {"collapse": holds, "spread": holds, "moments": broken, "memorisation": flat}
    assert metric_verdict(ladders, ["collapse", "spread"], False) == ("holds", ["collapse", "spread"])
    assert metric_verdict(ladders, ["collapse", "moments"], False) == ("broken", ["collapse"])
    assert metric_verdict(ladders, ["collapse", "memorisation"], True) == ("flat", ["collapse"])
    assert metric_verdict(ladders, ["collapse", "moments", "memorisation"], False)[0] == "broken"
    assert metric_verdict(ladders, [], False) == ("untested", [])
    assert metric_verdict(ladders, ["mode_drop"], False) == ("untested", [])  # claimed ladder not run
    assert metric_verdict(ladders, ["collapse"], None) == ("untested", ["collapse"])


def test_uncovered_counts_only_trusted_headline_metrics():
    metrics = {
        "a": {"role": "headline", "verdict": "holds", "trusted_for": ["collapse", "spread"]},
        "b": {"role": "headline", "verdict": "broken", "trusted_for": ["contamination"]},
        "c": {"role": "diagnostic", "verdict": "holds", "trusted_for": ["moments"]},
    }
    assert uncovered(metrics, ["collapse", "spread", "contamination", "moments"]) == ["contamination", "moments"]


# ------------------------------------------------------------------------------------ base set
def _setup(heldout: torch.Tensor, recon: torch.Tensor | None, reference: str = "train", n: int = 128,
           n_real: int = 1000, train: torch.Tensor | None = None):
    train = gaussian_latents(60, seed=9) if train is None else train
    real = SimpleNamespace(heldout_latents=heldout, train_latents=train, recon_latents=recon,
                           features=torch.zeros(3, 2), reference=reference)
    return SimpleNamespace(real=real, config=SimpleNamespace(n=n, n_real=n_real), dataset=object())


def _disjoint(*sets: torch.Tensor) -> bool:
    rows = [rows_in(a, torch.cat([b for j, b in enumerate(sets) if j != i])) for i, a in enumerate(sets)]
    return not any(bool(r.any()) for r in rows)


def test_plentiful_heldout_is_split_and_the_base_avoids_every_reference():
    heldout = gaussian_latents(100, seed=5)
    recon = heldout[torch.arange(0, 100, 5)]  # 20 held-out latents decoded for the decoder-matched reference
    setup = _setup(heldout, recon, reference="heldout", n=16, n_real=30)
    split = choose_split(setup, None, seed=0)
    assert split.mode == "split held-out" and split.base.numel() == 16
    base = heldout[split.base]
    assert not bool(rows_in(base, recon).any())
    from aebench.run.setup import subset_index

    assert not set(subset_index(100, 30).tolist()) & set(split.base.tolist())  # not the real reference images
    assert split.heldout.shape[0] == 84 and split.train is setup.real.train_latents
    assert _disjoint(base, split.heldout, split.train)
    assert split.notes["usable_heldout"] == 100 - len(set(range(0, 100, 5)) | set(subset_index(100, 30).tolist()))


def test_scarce_heldout_becomes_the_base_and_the_training_latents_are_halved():
    heldout, train = gaussian_latents(80, seed=5), gaussian_latents(320, seed=6)
    split = choose_split(_setup(heldout, train[:128], train=train), None, seed=1)  # ORL: n 128 > 80 held-out
    assert split.mode == "split training" and split.base.tolist() == list(range(80))
    assert split.heldout.shape[0] == 160 and split.train.shape[0] == 160
    assert _disjoint(heldout[split.base], split.heldout, split.train)
    assert bool(rows_in(torch.cat([split.heldout, split.train]), train).all())
    smaller = choose_split(_setup(heldout, None, train=train), 48, seed=1)
    assert smaller.base.numel() == 48 and smaller.mode == "split training"
    with pytest.raises(OptionError, match="--size 81 is more than the 80 usable held-out latents"):
        choose_split(_setup(heldout, None, train=train), 81, seed=1)
    with pytest.raises(OptionError, match="--size must be an integer >= 8, got 4"):
        choose_split(_setup(heldout, None, train=train), 4, seed=1)
