"""Framework overhead: the wall time of a whole `run_benchmark` divided by the time that decoding and
feature extraction of the same number of samples take on their own (the unavoidable per-sample work).

Model: an untrained `conv_ae` for ORL (64x64 grey, N=64) saved as a checkpoint: timing does not
depend on the weights. The run is repeated once before timing so that the real side (encoded
latents, real image features) comes from the cache, as in every run after the first. Default run
settings otherwise (all default metrics and regions, figures on)."""

from __future__ import annotations

import time

import torch
from helpers import SIZES, record, run_ours

from aebench.feature_extractor import extract_features
from aebench.infra.device import resolve_device
from aebench.models.checkpoint import load_checkpoint, save_checkpoint
from aebench.models.conv_ae import ConvAE
from aebench.models.encoding import decode_latents
from aebench.plugins import get_registry
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.runner import run_benchmark

CFG = SIZES["overhead"]
LATENT_DIM = 64


def untrained_checkpoint(folder) -> str:
    torch.manual_seed(0)
    module = ConvAE(ConvAE.config_for((1, 64, 64), LATENT_DIM, dataset_name="orl_faces")).build()
    return str(save_checkpoint(folder / "model.safetensors", module, {"note": "untrained, for timing only"}))


def bench_run_overhead(benchmark, tmp_path):
    config = RunConfig(dataset="orl_faces", checkpoint=untrained_checkpoint(tmp_path), n=CFG["n"],
                       samplers=[SamplerSpec(name) for name in CFG["samplers"]], features=CFG["features"],
                       out=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), device="auto")
    config.check()
    t0 = time.perf_counter()
    run_benchmark(config, quiet=True, force=True)  # fills the caches
    cold_s = time.perf_counter() - t0
    seconds, doc = run_ours(benchmark, lambda: run_benchmark(config, quiet=True, force=True), 1)
    assert doc["status"] == "complete" and all(row["status"] == "ok" for row in doc["samplers"]), doc["samplers"]

    # the same per-sample work alone: decode n latents per sampler, extract their features
    device = resolve_device(config.device)
    model, _ = load_checkpoint(config.checkpoint, device)
    extractor = get_registry("feature extractor").get(config.features)().build(device).eval()
    latents = torch.randn(CFG["n"] * len(config.samplers), LATENT_DIM, generator=torch.Generator().manual_seed(0))
    # the batch sizes the run resolved (the AE's and the extractor's own)
    ae_batch, feature_batch = doc["environment"]["batch_size"], doc["environment"]["feature_batch_size"]
    t0 = time.perf_counter()
    images = decode_latents(model, latents, batch_size=ae_batch, device=device)
    t1 = time.perf_counter()
    extract_features(extractor, images, feature_batch, device)
    t2 = time.perf_counter()
    # the runner's own split (its features_s also holds re-encoding for the `reencode` metric)
    inside = {k: sum(row["timing"].get(k, 0.0) for row in doc["samplers"])
              for k in ("fit_s", "sample_s", "decode_s", "features_s", "metrics_s", "total_s")}
    record(benchmark, "run overhead", features=config.features, n_per_sampler=CFG["n"],
           samplers=len(config.samplers), run_s=seconds, cold_run_s=cold_s, decode_s=t1 - t0, features_s=t2 - t1,
           overhead=seconds / (t2 - t0), setup_and_figures_s=seconds - inside["total_s"],
           **{f"runner_{k}": v for k, v in inside.items()})
