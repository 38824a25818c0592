"""The jitter sampler keeps the aebench sampler contract and adds noise of the requested size."""

import pytest
import torch
from aebench_example_sampler import JitterSampler

from aebench.errors import OptionError
from aebench.stats import compute_stats


@pytest.fixture()
def latents():
    g = torch.Generator().manual_seed(0)
    return torch.randn(400, 8, generator=g, dtype=torch.float64) * torch.linspace(0.5, 3, 8) + 1


def test_noise_has_the_requested_std(latents):
    stats = compute_stats(latents)
    sampler = JitterSampler(noise=0.1).fit(latents, stats)
    samples = sampler.sample(4000, torch.Generator().manual_seed(1)).latents.double()
    # the nearest training latent is (almost surely) the one each sample came from
    offsets = samples - latents[torch.cdist(samples, latents).argmin(1)]
    assert torch.allclose(offsets.std(0), 0.1 * stats.std, rtol=0.1)


def test_same_seed_same_samples(latents):
    sampler = JitterSampler().fit(latents, compute_stats(latents))
    a = sampler.sample(50, torch.Generator().manual_seed(3)).latents
    b = sampler.sample(50, torch.Generator().manual_seed(3)).latents
    c = sampler.sample(50, torch.Generator().manual_seed(4)).latents
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_negative_noise_is_rejected():
    with pytest.raises(OptionError, match="noise"):
        JitterSampler(noise=-1)
