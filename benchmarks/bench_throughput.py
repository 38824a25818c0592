"""Throughput (images/s) of the two per-sample costs of a run: decoding latents with the default
`conv_ae` architecture (randomly initialised: speed does not depend on the weights) and extracting
features with `inception` (the judge, ~12 images/s on a 2-core CPU) and `fast`; and the `domain` judge
against Inception on the same ORL-shaped images in one run (`bench_domain_vs_inception`)."""

from __future__ import annotations

import pytest
import torch
from helpers import SIZES, record, run_ours, time_call

from aebench.feature_extractor import extract_features
from aebench.infra.device import resolve_device
from aebench.models.conv_ae import ConvAE
from aebench.models.encoding import decode_latents
from aebench.plugins import get_registry

DEVICE = resolve_device("auto")
SHAPES = {"orl_grey_N64": (1, 64), "celeba_rgb_N256": (3, 256)}  # (channels, latent_dim) at 64x64


@pytest.mark.parametrize("shape", SHAPES)
def bench_decode(benchmark, shape):
    channels, latent_dim = SHAPES[shape]
    cfg = SIZES["decode"]
    torch.manual_seed(0)
    config = ConvAE.config_for((channels, 64, 64), latent_dim)
    model = ConvAE(config).build().to(DEVICE).eval()
    latents = torch.randn(cfg["n"], latent_dim)
    seconds, images = run_ours(benchmark, lambda: decode_latents(model, latents, batch_size=256, device=DEVICE),
                               cfg["rounds"])
    assert images.shape == (cfg["n"], channels, 64, 64) and images.dtype == torch.uint8
    record(benchmark, f"decode {shape}", n=cfg["n"], device=str(DEVICE), images_per_s=cfg["n"] / seconds)


@pytest.mark.parametrize("name", ["fast", "inception"])
def bench_features(benchmark, name):
    n = SIZES[name]["n"]
    extractor = get_registry("feature extractor").get(name)()
    module = extractor.build(DEVICE).eval()
    images = torch.randint(0, 256, (n, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    batch = 64 if name == "inception" else 1024
    seconds, feats = run_ours(benchmark, lambda: extract_features(module, images, batch, DEVICE), 1)
    assert feats.shape == (n, extractor.num_features) and torch.isfinite(feats).all()
    record(benchmark, f"features {name}", n=n, device=str(DEVICE), images_per_s=n / seconds)


def bench_domain_vs_inception(benchmark):
    """The domain judge (ORL's: 64x64 grey, 40 classes; randomly initialised, speed does not depend on the
    weights) against Inception on the same 64x64 grey images, one after the other in this run; the
    ratio of images/s is what a run saves per image by judging with `domain`."""
    from aebench.extractors.domain import DomainFeatures
    from aebench.models.classifier import JudgeClassifier, config_for

    n_domain, n_inception = SIZES["domain"]["n"], SIZES["domain"]["n_inception"]
    torch.manual_seed(0)
    domain = DomainFeatures(JudgeClassifier(config_for((1, 64, 64), 40))).to(DEVICE).eval()
    inception = get_registry("feature extractor").get("inception")().build(DEVICE).eval()
    images = torch.randint(0, 256, (max(n_domain, n_inception), 1, 64, 64), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    extract_features(domain, images[:64], 64, DEVICE)  # warm-up of both, outside the timing
    extract_features(inception, images[:2], 2, DEVICE)
    seconds, feats = run_ours(benchmark, lambda: extract_features(domain, images[:n_domain], 256, DEVICE), 3)
    assert feats.shape == (n_domain, domain.num_features) and torch.isfinite(feats).all()
    inception_s, inception_feats = time_call(lambda: extract_features(inception, images[:n_inception], 64, DEVICE))
    assert inception_feats.shape == (n_inception, 2048)
    domain_rate, inception_rate = n_domain / seconds, n_inception / inception_s
    record(benchmark, "features domain vs inception", device=str(DEVICE), n_domain=n_domain, n_inception=n_inception,
           images_per_s_domain=domain_rate, images_per_s_inception=inception_rate,
           speedup=domain_rate / inception_rate)
