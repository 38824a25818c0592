"""Fit and sample time of every registered sampler on synthetic training latents with a realistic
shape: a decaying variance spectrum (the encoder's dominant components) around a non-zero centre.
Timed: fit + sample together (one cell's sampler cost); fit and sample alone go into extra_info."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import SIZES, record, run_ours, spectrum_data

from aebench.plugins import get_registry
from aebench.sampler import available_samplers
from aebench.stats import compute_stats

CFG = SIZES["samplers"]
NAMES = available_samplers()


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


FIT = SIZES["sampler_fit"]
FIT_CASES = [(shape, name) for shape in FIT["shapes"] for name in NAMES]


@pytest.fixture(scope="module")
def shaped_latents():
    """Training latents shaped like each data set's (n_train x N), with a decaying spectrum; made once."""
    cache: dict[str, tuple[torch.Tensor, object]] = {}

    def get(shape: str):
        if shape not in cache:
            n, dim = FIT["shapes"][shape]
            train = torch.from_numpy(spectrum_data(n, dim, 41))
            cache[shape] = (train, compute_stats(train))
        return cache[shape]

    return get


@pytest.mark.parametrize("shape, name", FIT_CASES, ids=[f"{s}-{n}" for s, n in FIT_CASES])
def bench_sampler_fit(benchmark, shaped_latents, shape, name):
    """Fit time of each sampler with its default options on latents shaped like orl_faces (320 x 64) and, in
    the full preset, orl_faces at N=256 and fashion_mnist (60k x 32): the cost of one cell's fit."""
    cls = get_registry("sampler").get(name)
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    train, stats = shaped_latents(shape)
    fitted = {}

    def fit():
        fitted["sampler"] = cls().fit(train, stats)
        return fitted["sampler"]

    fit_s, sampler = run_ours(benchmark, fit, rounds=1)
    t0 = time.perf_counter()
    out = sampler.sample(FIT["n_samples"], torch.Generator().manual_seed(0))
    sample_s = time.perf_counter() - t0
    assert torch.isfinite(out.latents).all()
    info = sampler.fit_info
    record(benchmark, f"fit {name} on {shape}", n_train=train.shape[0], latent_dim=train.shape[1], fit_s=fit_s,
           sample_s=sample_s, n_samples=FIT["n_samples"],
           **{k: info[k] for k in ("epochs", "steps", "bandwidth", "core_kept", "subspace_dims") if k in info})
