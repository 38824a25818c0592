"""latent_copies: the one-sided memorisation metric, against a numpy/scipy formulation and on a
synthetic memorisation ladder where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from aebench.errors import AebenchError
from aebench.metric import FakeSide, RealSide
from aebench.metrics.memorisation import LatentCopies
from aebench.stats import compute_stats

DIM = 8


def gauss(n: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed)) * scale


def real_side() -> RealSide:
    train, held = gauss(300, 1), gauss(200, 2)
    return RealSide(train, held, compute_stats(train.double()))


def numpy_copies(fake: np.ndarray, train: np.ndarray, held: np.ndarray, q: float) -> float:
    tau = np.quantile(cdist(held, train).min(axis=1), q)
    return max(0.0, float((cdist(fake, train).min(axis=1) < tau).mean()) - q)


def test_latent_copies_equals_a_numpy_formulation():
    real = real_side()
    fake = torch.cat([gauss(150, 3), real.train_latents[:50] + 0.01])
    value = LatentCopies().compute(FakeSide("mix", fake), real)["latent_copies"]
    expected = numpy_copies(fake.numpy(), real.train_latents.numpy(), real.heldout_latents.numpy(), 0.05)
    assert value.value == pytest.approx(expected, abs=1e-12)
    assert expected > 0.15 and value.low <= value.value <= value.high and value.higher_is_better is False


def test_latent_copies_rises_along_a_memorisation_ladder_and_never_rewards_spread_or_collapse():
    real = real_side()
    new = gauss(200, 4)
    metric = LatentCopies()
    ladder = []
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        k = int(share * 200)
        z = torch.cat([real.train_latents[:k], new[k:]])
        ladder.append(metric.compute(FakeSide("memo", z), real)["latent_copies"].value)
    assert ladder == sorted(ladder) and ladder[0] < 0.05 and ladder[-1] == pytest.approx(0.95)
    spread = metric.compute(FakeSide("spread", new * 3), real)["latent_copies"].value
    collapse = metric.compute(FakeSide("collapse", new * 0.05 + real.train_latents.mean(0)), real)["latent_copies"].value
    # spread is never rewarded below new real data (0); a collapsed cluster near a training latent can
    # even read as copying, which is no reward either
    assert spread == 0.0 and collapse >= ladder[0]


def test_latent_copies_rejects_heldout_equal_to_training():
    train = gauss(50, 1)
    real = RealSide(train, train.clone(), compute_stats(train.double()))
    with pytest.raises(AebenchError, match="coincide"):
        LatentCopies().compute(FakeSide("x", gauss(10, 2)), real)


def test_latent_distance_and_copies_share_one_nearest_training_pass(monkeypatch):
    import aebench.metrics.latent as latent

    calls = []
    real_nearest = latent.nearest_distance
    monkeypatch.setattr(latent, "nearest_distance", lambda q, r: calls.append(q.shape[0]) or real_nearest(q, r))
    real, fake = real_side(), FakeSide("g", gauss(40, 5))
    latent.LatentDistance().compute(fake, real)
    LatentCopies().compute(fake, real)
    # one pass for the held-out reference, one for the samples, whichever metric asks first
    assert sorted(calls) == [40, 200]
