"""Fit and sample time of every registered sampler on synthetic training latents with a realistic
shape: a decaying variance spectrum (the encoder's dominant components) around a non-zero centre.
Timed: fit + sample together (one cell's sampler cost); fit and sample alone go into extra_info."""

from __future__ import annotations

import time

import pytest
import torch

from helpers import SIZES, record, run_ours, spectrum_data

from aebench.plugins import get_registry
from aebench.stats import compute_stats

CFG = SIZES["samplers"]
NAMES = get_registry("sampler").names()


@pytest.fixture(scope="module")
def latents():
    train = torch.from_numpy(spectrum_data(CFG["n_train"], CFG["latent_dim"], 31))
    return train, compute_stats(train)


@pytest.mark.parametrize("name", NAMES)
def bench_sampler_fit_and_sample(benchmark, latents, name):
    train, stats = latents
    cls = get_registry("sampler").get(name)
    n = CFG["n_samples"]
    parts: dict[str, float] = {}

    def cell():
        t0 = time.perf_counter()
        sampler = cls().fit(train, stats)
        t1 = time.perf_counter()
        out = sampler.sample(n, torch.Generator().manual_seed(0))
        parts.update(fit_s=t1 - t0, sample_s=time.perf_counter() - t1)
        return out

    total_s, samples = run_ours(benchmark, cell, rounds=1)
    assert samples.latents.shape == (n, train.shape[1]) and torch.isfinite(samples.latents).all()
    record(benchmark, f"sampler {name}", n_train=train.shape[0], latent_dim=train.shape[1], n_samples=n,
           total_s=total_s, samples_per_s=n / max(parts["sample_s"], 1e-9), **parts)
