"""Throughput (images/s) of the two per-sample costs of a run: decoding latents with the default
`conv_ae` architecture (randomly initialised: speed does not depend on the weights) and extracting
features with `inception` (the judge, ~12 images/s on a 2-core CPU) and `fast`."""

from __future__ import annotations

import pytest
import torch
from helpers import SIZES, record, run_ours

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
