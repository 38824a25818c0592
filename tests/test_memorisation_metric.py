"""latent_copies: a copy is a sample much closer to the training latents than to unseen ones.

Checked against a scipy/numpy formulation (value and bootstrap interval), on a synthetic memorisation
ladder, and on the case that broke the earlier definition (distance to the training set alone): a
small high-dimensional "faces" set whose held-out latents are other people, where points on lines
through the centre sit closer to training latents than any held-out latent does without copying any.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from aebench.errors import AebenchError
from aebench.maths.knn import kth_neighbour_distance
from aebench.metric import FakeSide, RealSide
from aebench.metrics.memorisation import LatentCopies, copy_share_interval, copy_threshold, left_out_training_distance
from aebench.plugins import get_registry
from aebench.stats import compute_stats

DIM = 8


def gauss(n: int, seed: int, scale: float = 1.0, dim: int = DIM) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale


def real_side(train: torch.Tensor | None = None, held: torch.Tensor | None = None) -> RealSide:
    train = gauss(300, 1) if train is None else train
    held = gauss(200, 2) if held is None else held
    return RealSide(train, held, compute_stats(train.double()))


def scipy_copies(fake: np.ndarray, train: np.ndarray, held: np.ndarray, q: float) -> tuple[float, np.ndarray, int]:
    """The definition written out with dense scipy distances: (value, sorted null ratios, rank)."""
    within = cdist(train, train)
    np.fill_diagonal(within, np.inf)
    null = np.sort(within.min(axis=1) / cdist(train, held).min(axis=1))
    rank = int(np.floor(q * (train.shape[0] + 1)))
    c = min(null[rank - 1], 1.0)
    ratios = cdist(fake, train).min(axis=1) / cdist(fake, held).min(axis=1)
    return max(0.0, float((ratios < c).mean()) - rank / (train.shape[0] + 1)), null, rank


def earlier_copies(fake: np.ndarray, train: np.ndarray, held: np.ndarray, q: float = 0.05) -> float:
    """The earlier definition: closer to a training latent than the q-quantile of held-out latents are."""
    tau = np.quantile(cdist(held, train).min(axis=1), q)
    return max(0.0, float((cdist(fake, train).min(axis=1) < tau).mean()) - q)


def faces(seed: int, dim: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """40 'people' of 10 latents each in `dim` dimensions: train = the first 36 people, held out = the
    last 4 (a folder's last 10%), plus 72 new latents of the training people (new real data)."""
    g = torch.Generator().manual_seed(seed)
    people = torch.randn(40, dim, generator=g)

    def face(rows: torch.Tensor, per: int) -> torch.Tensor:
        return (rows[:, None] + 0.6 * torch.randn(rows.shape[0], per, dim, generator=g)).reshape(-1, dim)

    return face(people[:36], 10), face(people[36:], 10), face(people[:36], 2)


def test_latent_copies_equals_a_scipy_formulation():
    real = real_side()
    fake = torch.cat([gauss(150, 3), real.train_latents[:50] + 0.01])
    value = LatentCopies().compute(FakeSide("mix", fake), real)["latent_copies"]
    expected, _, _ = scipy_copies(fake.numpy(), real.train_latents.numpy(), real.heldout_latents.numpy(), 0.05)
    assert value.value == pytest.approx(expected, abs=1e-12)
    assert expected > 0.15 and value.low <= value.value <= value.high and value.higher_is_better is False


def test_interval_matches_a_brute_force_bootstrap_of_samples_and_null():
    """The interval resamples order statistic and share in closed form; a literal bootstrap of both
    sets (np.quantile of resampled null ratios, resampled samples) must give the same interval."""
    real = real_side()
    fake = torch.cat([gauss(100, 3), real.train_latents[:40] + 0.3 * gauss(40, 4)])
    _, null, rank = scipy_copies(fake.numpy(), real.train_latents.numpy(), real.heldout_latents.numpy(), 0.05)
    threshold = copy_threshold(real.train_latents, real.heldout_latents, 0.05)
    ratios = (cdist(fake, real.train_latents).min(1) / cdist(fake, real.heldout_latents).min(1))
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(4000):
        c = min(np.sort(rng.choice(null, null.size))[rank - 1], 1.0)
        shares.append((rng.choice(ratios, ratios.size) < c).mean() - rank / (null.size + 1))
    low, high = copy_share_interval(ratios, threshold, 4000, seed=1)
    assert 0.1 < high - low  # wide enough for the comparison to mean something
    assert low == pytest.approx(np.quantile(shares, 0.025), abs=0.015)
    assert high == pytest.approx(np.quantile(shares, 0.975), abs=0.015)


def test_lines_through_the_centre_are_not_copies_where_the_earlier_definition_flagged_them():
    train, held, new = faces(0)
    real = real_side(train, held)
    metric, registry = LatentCopies(), get_registry("sampler")
    for name in ("plane_paths", "origin_line"):
        z = registry.get(name)().fit(train.double(), real.stats).sample(200, torch.Generator().manual_seed(1)).latents
        # the earlier definition calls nearly every point a copy: the centre is nearer every training latent
        # than held-out latents (other people) are
        assert earlier_copies(z.numpy(), train.numpy(), held.numpy()) > 0.9
        value = metric.compute(FakeSide(name, z), real)["latent_copies"]
        assert value.value == 0.0 and value.low == 0.0 and value.info["median_ratio"] > 0.8
    # replayed training latents (1% noise) are copies; new latents of the training people are not
    g = torch.Generator().manual_seed(2)
    replay = train[torch.randperm(360, generator=g)[:200]] + 0.01 * train.std(0) * torch.randn(200, 128, generator=g)
    assert metric.compute(FakeSide("replay", replay), real)["latent_copies"].value >= 0.9
    fresh = metric.compute(FakeSide("new", new), real)["latent_copies"]
    assert fresh.value <= 0.05 and fresh.low == 0.0


def test_latent_copies_rises_along_a_memorisation_ladder_and_never_rewards_spread_or_collapse():
    real = real_side()
    new = gauss(200, 4)
    metric = LatentCopies()
    ladder = []
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        k = int(share * 200)
        z = torch.cat([real.train_latents[:k], new[k:]])
        ladder.append(metric.compute(FakeSide("memo", z), real)["latent_copies"].value)
    assert ladder == sorted(ladder) and ladder[0] < 0.05 and ladder[-1] == pytest.approx(1 - 15 / 301)
    spread = metric.compute(FakeSide("spread", new * 3), real)["latent_copies"].value
    centre = real.train_latents.mean(0)
    collapse = metric.compute(FakeSide("collapse", new * 0.05 + centre), real)["latent_copies"].value
    assert spread == 0.0 and collapse == 0.0


def test_calibration_on_part_of_a_large_training_set_is_exact_for_the_rows_it_uses():
    train = torch.cat([gauss(400, 1), gauss(20, 7) * 0.01])  # some near-duplicates, so 'other' matters
    rows = torch.randperm(420, generator=torch.Generator().manual_seed(3))[:150]
    full = kth_neighbour_distance(train, 1)
    assert torch.equal(left_out_training_distance(train, rows), full[rows])
    held = gauss(100, 2)
    part = copy_threshold(train, held, 0.05, calibration_size=150, seed=3)
    ratios = np.sort((full[rows] / torch.cdist(train[rows].double(), held.double()).min(1).values).numpy())
    assert part.rank == 7 and part.null.size == 150 and part.value == pytest.approx(ratios[6], rel=1e-12)
    assert copy_threshold(train, held, 0.05, calibration_size=420).null.size == 420


def test_latent_copies_rejects_heldout_equal_to_training():
    train = gauss(50, 1)
    with pytest.raises(AebenchError, match="coincide"):
        LatentCopies().compute(FakeSide("x", gauss(10, 2)), real_side(train, train.clone()))


def test_latent_copies_rejects_training_sets_it_cannot_calibrate_on():
    with pytest.raises(AebenchError, match="at least 19 training latents"):
        LatentCopies().compute(FakeSide("x", gauss(10, 2)), real_side(gauss(10, 1)))
    doubled = torch.cat([gauss(50, 1)] * 2)  # every training latent twice: ratio 0 for all of them
    with pytest.raises(AebenchError, match="exact duplicate"):
        LatentCopies().compute(FakeSide("x", gauss(10, 2)), real_side(doubled))


def test_latent_distance_and_copies_share_one_nearest_training_pass(monkeypatch):
    import aebench.metrics.latent as latent
    import aebench.metrics.memorisation as memorisation

    calls = []
    real_nearest = latent.nearest_distance

    def counted(q, r):
        calls.append((q.shape[0], r.shape[0]))
        return real_nearest(q, r)

    monkeypatch.setattr(latent, "nearest_distance", counted)
    monkeypatch.setattr(memorisation, "nearest_distance", counted)
    real, fake = real_side(), FakeSide("g", gauss(40, 5))
    latent.LatentDistance().compute(fake, real)
    LatentCopies().compute(fake, real)
    LatentCopies().compute(fake, real)
    # samples to training once whichever metric asks first; samples to held-out once; the real side
    # once (held-out to training for latent_distance, training to held-out for the threshold)
    assert sorted(calls) == [(40, 200), (40, 300), (200, 300), (300, 200)]


def test_replay_plugin_scores_copies_and_the_origin_line_none_end_to_end(tmp_path, tiny_orl_checkpoint):
    """scripts/replay_sampler.py (written from the author API) through `aebench run` on a tiny ORL model."""
    import json
    from pathlib import Path

    from aebench.cli import main

    plugin = Path(__file__).resolve().parents[1] / "scripts" / "replay_sampler.py"
    out = tmp_path / "run"
    rc = main(["--plugin", str(plugin), "run", "--checkpoint", str(tiny_orl_checkpoint), "--set", "dataset.size=32",
               "--sampler", "replay,origin_line", "--metrics", "latent_copies", "--n", "64", "--no-figures",
               "--quiet", "--out", str(out)])
    assert rc == 0
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())["samplers"]}
    assert rows["replay"]["metrics"]["latent_copies"]["value"] >= 0.9
    assert rows["origin_line"]["metrics"]["latent_copies"]["value"] == 0.0
