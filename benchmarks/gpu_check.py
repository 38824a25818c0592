"""The whole pipeline at real sizes on a GPU, with throughput and time per sampler.

    python benchmarks/gpu_check.py                 # GPU: CelebA-shaped run, 50k samples per sampler
    python benchmarks/gpu_check.py --cpu-smoke     # tiny CPU run (also chosen automatically without a GPU)

No CelebA offline, so the data is CelebA-shaped: 64x64 RGB faces made from the 400 ORL faces
(tinted and mirrored copies; `make_faces`). On a GPU a `conv_ae` with N=256 is trained on them for a
few epochs (an AE that decodes to face-like images, not a good model); the smoke run uses an untrained
one. Then `run_benchmark` runs every built-in sampler with the standard Inception FID, KID and
precision/recall (and the other default metrics and regions), and the stages are timed:

1. throughput: decode and Inception images/s, float32 versus bf16 + channels-last, and how far bf16
   moves the features and FID (why float32 stays the default);
2. k-NN on the device: compute_prdc at 20k x 10k, 2048-d, and its agreement with the CPU;
3. the run itself: time per sampler, split into fit, sample, decode, features, metrics.

Results are printed and written to <out>/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

GPU_SIZES = {"variants": 12, "faces": 400, "n": 50_000, "epochs": 2, "batch": 500, "throughput_n": 4096,
             "knn": (20_000, 10_000, 2048)}
SMOKE_SIZES = {"variants": 2, "faces": 40, "n": 12, "epochs": 0, "batch": 64, "throughput_n": 8,
               "knn": (300, 200, 64)}


def log(message: str) -> None:
    print(message, flush=True)


def make_faces(folder: Path, n_faces: int, variants: int, seed: int = 0) -> int:
    """64x64 RGB PNGs from the ORL faces: each face in `variants` skin-like tints, every other one
    mirrored. Returns the number of images written."""
    from PIL import Image

    from aebench.data.orl_faces import orl_folder, read_face

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = sorted(orl_folder().glob("s*/*.pgm"))[:n_faces]
    count = 0
    for i, path in enumerate(paths):
        grey = read_face(path, 12, 64).astype(np.float32)
        for v in range(variants):
            tint = np.array([1.0, 0.8, 0.65]) * rng.uniform(0.85, 1.15, 3)
            rgb = np.clip(grey[:, :, None] * tint[None, None, :], 0, 255).astype(np.uint8)
            if v % 2:
                rgb = rgb[:, ::-1]
            Image.fromarray(np.ascontiguousarray(rgb)).save(folder / f"face{i:03d}_{v:02d}.png")
            count += 1
    return count


def make_model(dataset, path: Path, epochs: int, device: torch.device) -> str:
    """Train a conv_ae (N=256) for `epochs`, or save an untrained one when epochs is 0."""
    from aebench.models.checkpoint import save_checkpoint
    from aebench.models.conv_ae import ConvAE

    if epochs > 0:
        from aebench.models.training import train_and_save

        result = train_and_save(dataset, path, latent_dim=256, epochs=epochs, device=device, progress=False)
        log(f"model: conv_ae N=256 trained {epochs} epochs, held-out MSE {result.metrics['heldout_mse']:.2e} "
            f"(mean image {result.metrics['baseline_mse']:.2e}), {result.metrics['wall_time_s']:.0f} s")
    else:
        torch.manual_seed(0)
        module = ConvAE(ConvAE.config_for(dataset.image_shape, 256)).build()
        save_checkpoint(path, module, {"note": "untrained (smoke run)"})
        log("model: conv_ae N=256, untrained (smoke run)")
    return str(path)


def timed(fn, device: torch.device, repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def throughput(checkpoint: str, features: str, device: torch.device, n: int, batch: int,
               real_images: torch.Tensor) -> dict[str, Any]:
    """Decode and feature images/s in float32 and in bf16 + channels-last, and what bf16 does to FID."""
    from aebench.encoding import decode_latents
    from aebench.feature_extractor import extract_features
    from aebench.fid import frechet_distance, mean_cov
    from aebench.models.checkpoint import load_checkpoint
    from aebench.plugins import get_registry

    model, _ = load_checkpoint(checkpoint, device)
    latents = torch.randn(n, 256, generator=torch.Generator().manual_seed(1))
    extractor = get_registry("feature extractor").get(features)().build(device).eval()
    out: dict[str, Any] = {}
    fast_precision = "bf16"
    decode_latents(model, latents[:batch], batch, device)  # warm-up (cuDNN autotuning, lazy init)
    t, images = timed(lambda: decode_latents(model, latents, batch, device), device, 2)
    out["decode_fp32_images_per_s"] = n / t
    extract_features(extractor, images[:batch], batch, device)
    t, feats = timed(lambda: extract_features(extractor, images, batch, device), device)
    out["features_fp32_images_per_s"] = n / t
    fast_model, _ = load_checkpoint(checkpoint, device)
    fast_extractor = get_registry("feature extractor").get(features)().build(device).eval()
    kw = {"precision": fast_precision, "channels_last": True}
    decode_latents(fast_model, latents[:batch], batch, device, **kw)
    t, fast_images = timed(lambda: decode_latents(fast_model, latents, batch, device, **kw), device, 2)
    out[f"decode_{fast_precision}_cl_images_per_s"] = n / t
    extract_features(fast_extractor, images[:batch], batch, device, **kw)
    t, fast_feats = timed(lambda: extract_features(fast_extractor, images, batch, device, **kw), device)
    out[f"features_{fast_precision}_cl_images_per_s"] = n / t
    out["decode_bf16_max_pixel_change"] = int((fast_images.int() - images.int()).abs().max())
    out["features_bf16_relative_change"] = float((fast_feats - feats).norm() / feats.norm())
    real = extract_features(extractor, real_images, batch, device)
    if min(real.shape[0], feats.shape[0]) > 2:
        mu_r, s_r = mean_cov(real)
        out["fid_fp32"] = frechet_distance(mu_r, s_r, *mean_cov(feats))
        out["fid_bf16_cl"] = frechet_distance(mu_r, s_r, *mean_cov(fast_feats))
    return out


def knn_on_device(device: torch.device, sizes: tuple[int, int, int]) -> dict[str, Any]:
    """compute_prdc on the device at real feature sizes, and equality with the CPU at a small size."""
    from aebench.prdc import compute_prdc

    n_real, n_fake, dim = sizes
    gen = torch.Generator().manual_seed(2)
    scale = torch.logspace(0, -1.25, dim)
    real = torch.randn(n_real, dim, generator=gen) * scale
    fake = torch.randn(n_fake, dim, generator=gen) * scale * 1.1 + 0.02
    r, f = real.to(device), fake.to(device)
    compute_prdc(r[:1000], f[:1000], 5)  # warm-up
    t, values = timed(lambda: compute_prdc(r, f, 5), device)
    small_cpu = compute_prdc(real[:2000], fake[:1000], 5)
    small_dev = compute_prdc(r[:2000], f[:1000], 5)
    return {"prdc_s": t, "n_real": n_real, "n_fake": n_fake, "dim": dim, "values": values,
            "cpu_equal_at_2000x1000": small_cpu == small_dev}


def run_pipeline(folder: Path, checkpoint: str, features: str, device: torch.device, n: int, batch: int,
                 out: Path, metrics: list[str] | None) -> dict[str, Any]:
    from aebench.plugins import get_registry
    from aebench.run_config import DEFAULT_METRICS, RunConfig, SamplerSpec
    from aebench.runner import run_benchmark

    config = RunConfig(dataset="image_folder", dataset_options={"path": str(folder), "size": 64, "channels": 3},
                       checkpoint=checkpoint, samplers=[SamplerSpec(s) for s in get_registry("sampler").names()],
                       n=n, features=features, device=str(device), batch_size=batch, out=str(out / "run"),
                       cache_dir=str(out / "cache"), figures=False, metrics=list(metrics or DEFAULT_METRICS))
    config.validate()
    t0 = time.perf_counter()
    doc = run_benchmark(config, quiet=True, force=True)  # a rerun replaces its own earlier run
    wall = time.perf_counter() - t0
    rows = []
    for row in doc["samplers"]:
        timing = row.get("timing", {})
        values = {k: v.get("value") for k, v in row["metrics"].items()
                  if k in ("fid", "kid", "precision", "recall", "hit_knn", "hit_box")}
        rows.append({"sampler": row["name"], "status": row["status"], **{k: round(v, 3) for k, v in timing.items()},
                     "decode_images_per_s": n / max(timing.get("decode_s", 0.0), 1e-9),
                     "features_images_per_s": n / max(timing.get("features_s", 0.0), 1e-9), **values,
                     **({"error": row["error"]} if "error" in row else {})})
    return {"wall_s": wall, "n_per_sampler": n, "samplers": rows, "features": doc.get("features"),
            "environment": doc.get("environment")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (automatic without a GPU)")
    parser.add_argument("--features", default="inception", help="feature extractor for the run (default inception)")
    parser.add_argument("--n", type=int, default=None, help="samples per sampler (default 50000, smoke 12)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics (default: all default metrics)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: throughput,knn,run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_check"))
    args = parser.parse_args(argv)

    from aebench.data.image_folder import ImageFolder  # noqa: F401  (registers with the plugins)
    from aebench.dataset import load_dataset
    from aebench.device import describe_device

    smoke = args.cpu_smoke or not torch.cuda.is_available()
    device = torch.device("cpu" if smoke else "cuda")
    sizes = SMOKE_SIZES if smoke else GPU_SIZES
    n = args.n or sizes["n"]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"mode": "cpu-smoke" if smoke else "gpu", "device": describe_device(device),
                              "torch": torch.__version__}
    log(f"gpu_check: {report['mode']} on {report['device']}")
    started = time.perf_counter()

    folder = out / "faces"
    t, count = timed(lambda: make_faces(folder, sizes["faces"], sizes["variants"]), torch.device("cpu"))
    log(f"data: {count} ORL-derived 64x64 RGB faces in {t:.1f} s")
    dataset = load_dataset("image_folder", {"path": str(folder), "size": 64, "channels": 3}, cache_dir=out / "cache")
    checkpoint = make_model(dataset, out / "model" / "model.safetensors", sizes["epochs"], device)

    if "throughput" not in skip:
        report["throughput"] = throughput(checkpoint, args.features, device, sizes["throughput_n"], sizes["batch"],
                                          dataset.train[:sizes["throughput_n"]])
        log("throughput: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                         for k, v in report["throughput"].items()}))
    if "knn" not in skip:
        report["knn"] = knn_on_device(device, sizes["knn"])
        log(f"knn: {json.dumps(report['knn'])}")
    if "run" not in skip:
        metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
        report["run"] = run_pipeline(folder, checkpoint, args.features, device, n, sizes["batch"], out, metrics)
        log(f"run: {report['run']['wall_s']:.1f} s for {len(report['run']['samplers'])} samplers x {n} samples")
        for row in report["run"]["samplers"]:
            log("  " + json.dumps(row))
    report["total_s"] = time.perf_counter() - started
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    log(f"total {report['total_s']:.1f} s; wrote {out / 'gpu_check.json'}")
    failed = [r["sampler"] for r in report.get("run", {}).get("samplers", []) if r["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
