"""A bounded check of the whole pipeline on one CUDA GPU: throughput, precision, k-NN and time per sampler.

    bash benchmarks/gpu_check.sh                  # on a GPU machine, with the project's .venv (CUDA torch)
    python benchmarks/gpu_check.py --cpu-smoke    # the same sections at tiny sizes on the CPU (for the tests)

Without a CUDA GPU the check FAILS (exit 2): it never falls back to CPU sizes and reports them as GPU
numbers. `--cpu-smoke` is the explicit, separate CPU mode that keeps the script from rotting.

Bounded: every section is timed against a total budget (`--budget-s`, default 270 s; gpu_check.sh
also kills the process after 300 s), a section that would not fit is recorded as skipped, and
`<out>/gpu_check.json` is rewritten after every section, so a run cut short still leaves what it measured.
Everything timed is warmed up first (cuDNN autotuning and lazy CUDA initialisation happen outside the
timed region) and synchronised.

Data: no CelebA offline, so CelebA-shaped faces: 64x64 RGB images made from the 400 ORL faces (tinted
and mirrored copies), and a conv_ae with N=256 trained on them for two epochs (it decodes to face-like
images; not a good model).

Extractor: the standard Inception (2015 weights) when its weights are installed; otherwise the SAME
architecture with seeded random weights, registered as `inception_timing` and labelled timing-only in
the report: its speed is Inception's, its FIDs mean nothing.

Sections:
1. `throughput`: decode and feature images/s in fp32 (TF32 off), tf32 and bf16, and how far tf32 and
   bf16 move the features and FID against fp32 (a precision is worth offering when it moves FID by
   less than 0.1%);
2. `knn`: `compute_prdc` at 20k real x 10k fake x 2048-d on the device, per call and with the real
   radii cached, and its equality with the CPU on a subset;
3. `target`: the per-sampler target, 50k decoded samples to FID, KID and PRDC (10k real images) for
   two samplers, each timed (fit, sample, decode, features, metrics) against 60 s;
4. `all_samplers`: every built-in sampler with the default metrics at a smaller n (does everything
   run on the GPU at all).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

GPU_SIZES = {"variants": 12, "faces": 400, "epochs": 2, "ae_batch": 1024, "feature_batch": 500,
             "throughput_n": 4096, "knn": (20_000, 10_000, 2048), "target_n": 50_000, "target_real": 10_000,
             "target_samplers": ("gaussian", "gmm"), "all_n": 4096}
SMOKE_SIZES = {"variants": 2, "faces": 40, "epochs": 0, "ae_batch": 64, "feature_batch": 16,
               "throughput_n": 8, "knn": (300, 200, 64), "target_n": 12, "target_real": 40,
               "target_samplers": ("gaussian", "gmm"), "all_n": 12}
TARGET_S = 60.0  # 50k decoded samples to FID, KID and PRDC per sampler
# rough upper bounds of each section on a data-centre GPU, to skip one that cannot fit the budget
SECTION_ESTIMATE_S = {"throughput": 40, "knn": 20, "target": 150, "all_samplers": 60}
TIMING_ONLY = "inception_timing"


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


def make_model(dataset, path: Path, epochs: int, device: torch.device) -> dict[str, Any]:
    """Train a conv_ae (N=256) for `epochs`, or save an untrained one when epochs is 0."""
    from aebench.models.checkpoint import save_checkpoint
    from aebench.models.conv_ae import ConvAE

    if epochs > 0:
        from aebench.models.training import train_and_save

        result = train_and_save(dataset, path, latent_dim=256, epochs=epochs, device=device, progress=False)
        return {"trained_epochs": epochs, "heldout_mse": result.metrics["heldout_mse"],
                "baseline_mse": result.metrics["baseline_mse"], "train_s": result.metrics["wall_time_s"]}
    torch.manual_seed(0)
    module = ConvAE(ConvAE.config_for(dataset.image_shape, 256)).build()
    save_checkpoint(path, module, {"note": "untrained (smoke run)"})
    return {"trained_epochs": 0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of `repeat` calls, synchronised with the device, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


# ----------------------------------------------------------------------------------------------
# the extractor: the real one when its weights are there, else the same network with random weights

def register_timing_extractor() -> None:
    """Register `inception_timing`: Inception's architecture and input pipeline, seeded random weights."""
    from dataclasses import dataclass

    import aebench.plugins
    from aebench.extractors.inception import NUM_FEATURES, InceptionFeatures
    from aebench.extractors.inception_v3 import FIDInceptionV3
    from aebench.feature_extractor import FeatureExtractor
    from aebench.hookspecs import hookimpl

    class InceptionTiming(FeatureExtractor):
        name = TIMING_ONLY
        description = "TIMING ONLY: the FID Inception architecture with seeded random weights (no weights installed)."
        num_features = NUM_FEATURES
        judge = False
        memory_per_image_mb = 16.0

        @dataclass(frozen=True)
        class Options:
            pass

        def build(self, device: torch.device | str = "cpu") -> torch.nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                net = FIDInceptionV3()
            return InceptionFeatures(net).to(device).eval()

        def identity(self) -> str:
            return f"{TIMING_ONLY}:random-seed0"

    class Plugin:
        @hookimpl
        def register_feature_extractors(self, register):
            register(InceptionTiming)

    pm = aebench.plugins.get_plugin_manager()
    if pm.get_plugin("gpu-check-timing") is None:
        pm.register(Plugin(), name="gpu-check-timing")
        aebench.plugins.get_registry.cache_clear()


def choose_extractor(asked: str) -> tuple[str, str]:
    """(extractor name, label): inception with its weights, else the timing-only stand-in."""
    if asked != "inception":
        return asked, f"{asked} (as asked)"
    from aebench.errors import AebenchError
    from aebench.extractors.inception import resolve_weights

    try:
        resolve_weights("auto")
        return "inception", "inception (2015 FID weights)"
    except AebenchError:
        register_timing_extractor()
        return TIMING_ONLY, "TIMING ONLY: Inception architecture, random weights (weights not installed); FIDs meaningless"


# ----------------------------------------------------------------------------------------------
# sections

def throughput(checkpoint: str, features: str, device: torch.device, sizes: dict, real_images: torch.Tensor) -> dict:
    """Decode and feature images/s per precision, and what tf32 / bf16 do to the features and FID."""
    from aebench.feature_extractor import extract_features
    from aebench.maths.fid import frechet_distance, mean_cov
    from aebench.models.checkpoint import load_checkpoint
    from aebench.models.encoding import decode_latents
    from aebench.plugins import get_registry

    n, ae_batch, f_batch = sizes["throughput_n"], sizes["ae_batch"], sizes["feature_batch"]
    model, _ = load_checkpoint(checkpoint, device)
    latents = torch.randn(n, 256, generator=torch.Generator().manual_seed(1))
    extractor = get_registry("feature extractor").get(features)().build(device).eval()
    precisions = ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    out: dict[str, Any] = {"n": n, "ae_batch": ae_batch, "feature_batch": f_batch}
    images: dict[str, torch.Tensor] = {}
    feats: dict[str, torch.Tensor] = {}
    for p in precisions:
        decode_latents(model, latents[:ae_batch], ae_batch, device, precision=p)  # warm-up
        t, images[p] = timed(lambda: decode_latents(model, latents, ae_batch, device, precision=p), device, 2)  # noqa: B023 - called at once
        out[f"decode_{p}_images_per_s"] = n / t
        extract_features(extractor, images["fp32"][:f_batch], f_batch, device, precision=p)  # warm-up
        t, feats[p] = timed(lambda: extract_features(extractor, images["fp32"], f_batch, device, precision=p), device)  # noqa: B023
        out[f"features_{p}_images_per_s"] = n / t
    real = extract_features(extractor, real_images, f_batch, device)
    ok = min(real.shape[0], n) > 2
    if ok:
        mu_r, s_r = mean_cov(real)
        fid = {p: frechet_distance(mu_r, s_r, *mean_cov(feats[p])) for p in precisions}
        out["fid"] = fid
    for p in precisions[1:]:
        out[f"decode_{p}_max_pixel_change"] = int((images[p].int() - images["fp32"].int()).abs().max())
        out[f"features_{p}_relative_change"] = float((feats[p] - feats["fp32"]).norm() / feats["fp32"].norm())
        if ok:
            change = abs(out["fid"][p] - out["fid"]["fp32"]) / max(abs(out["fid"]["fp32"]), 1e-12)
            out[f"fid_{p}_relative_change"] = change
            out[f"{p}_worth_offering"] = change < 1e-3  # moves FID by less than 0.1%
    return out


def knn_on_device(device: torch.device, sizes: tuple[int, int, int]) -> dict:
    """compute_prdc on the device at feature sizes, per call and per sampler, and equality with the CPU."""
    from aebench.maths import knn
    from aebench.maths.prdc import compute_prdc, compute_prdc_two_k

    n_real, n_fake, dim = sizes
    gen = torch.Generator().manual_seed(2)
    scale = torch.logspace(0, -1.25, dim)
    real = torch.randn(n_real, dim, generator=gen) * scale
    fake = torch.randn(n_fake, dim, generator=gen) * scale * 1.1 + 0.02
    r, f = real.to(device), fake.to(device)
    compute_prdc(r[:1000], f[:1000], 5)  # warm-up
    t_call, values = timed(lambda: compute_prdc(r, f, 5), device)
    radii = {k: knn.kth_neighbour_distance(r, k) for k in (3, 5)}
    t_sampler, two_k = timed(lambda: compute_prdc_two_k(r, f, 3, 5, radii.__getitem__), device)
    small = (min(2000, n_real), min(1000, n_fake))
    small_cpu = compute_prdc(real[:small[0]], fake[:small[1]], 5)
    small_dev = compute_prdc(r[:small[0]], f[:small[1]], 5)
    return {"n_real": n_real, "n_fake": n_fake, "dim": dim, "prdc_per_call_s": t_call,
            "prdc_two_k_per_sampler_s": t_sampler, "values_k5": values, "values_two_k": two_k,
            f"cpu_equal_at_{small[0]}x{small[1]}": small_cpu == small_dev}


def run_pipeline(folder: Path, checkpoint: str, features: str, device: torch.device, *, samplers: list[str], n: int,
                 n_real: int, metrics: list[str] | None, sizes: dict, out: Path, name: str) -> dict:
    """run_benchmark on the faces; per sampler the stage times (after a small warm-up run)."""
    from aebench.run.config import DEFAULT_METRICS, RunConfig, SamplerSpec
    from aebench.run.runner import run_benchmark

    def config(count: int, where: str) -> RunConfig:
        c = RunConfig(dataset="image_folder", dataset_options={"path": str(folder), "size": 64, "channels": 3},
                      checkpoint=checkpoint, samplers=[SamplerSpec(s) for s in samplers], n=count, n_real=n_real,
                      features=features, device=str(device), batch_size=sizes["ae_batch"],
                      feature_batch_size=sizes["feature_batch"], out=str(out / where), cache_dir=str(out / "cache"),
                      figures=False, metrics=list(metrics or DEFAULT_METRICS))
        c.check()
        return c

    run_benchmark(config(min(n, 64), f"{name}-warmup"), quiet=True)  # warm-up; also caches the real features
    sync(device)
    t0 = time.perf_counter()
    doc = run_benchmark(config(n, name), quiet=True, force=True)  # a rerun replaces its own earlier run
    sync(device)
    wall = time.perf_counter() - t0
    rows = []
    for row in doc["samplers"]:
        timing = row.get("timing", {})
        values = {k: v.get("value") for k, v in row["metrics"].items()
                  if k in ("fid", "kid", "precision", "recall", "density", "coverage", "hit_knn")}
        rows.append({"sampler": row["name"], "status": row["status"], **{k: round(v, 3) for k, v in timing.items()},
                     "decode_images_per_s": n / max(timing.get("decode_s", 0.0), 1e-9),
                     "features_images_per_s": n / max(timing.get("features_s", 0.0), 1e-9), **values,
                     **({"error": row["error"]} if "error" in row else {})})
    return {"wall_s": wall, "n_per_sampler": n, "n_real": n_real, "samplers": rows, "features": doc.get("features"),
            "environment": doc.get("environment")}


# ----------------------------------------------------------------------------------------------

class Report:
    """The JSON report, rewritten after every section."""

    def __init__(self, path: Path, budget_s: float, **head: Any):
        self.path, self.budget_s, self.started = path, budget_s, time.perf_counter()
        self.data: dict[str, Any] = {**head, "sections": {}}
        self.write()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def write(self) -> None:
        self.data["elapsed_s"] = round(self.elapsed(), 2)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
        tmp.replace(self.path)

    def section(self, name: str, fn: Callable[[], dict], estimate_s: float) -> dict | None:
        left = self.budget_s - self.elapsed()
        if left < estimate_s:
            self.data["sections"][name] = {"status": "skipped", "reason": f"{left:.0f} s left of the budget, "
                                                                          f"section needs up to {estimate_s:.0f} s"}
            log(f"{name}: skipped ({left:.0f} s left)")
            self.write()
            return None
        t0 = time.perf_counter()
        try:
            result = fn()
            entry = {"status": "ok", "seconds": round(time.perf_counter() - t0, 2), **result}
        except Exception as exc:  # recorded; the check fails at the end
            entry = {"status": "failed", "seconds": round(time.perf_counter() - t0, 2),
                     "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
            result = None
        self.data["sections"][name] = entry
        self.write()
        log(f"{name}: " + json.dumps({k: v for k, v in entry.items() if k != "traceback"}, default=str)[:3000])
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (for tests; not a GPU check)")
    parser.add_argument("--features", default="inception", help="feature extractor (default inception; without "
                                                                 "its weights, the timing-only stand-in)")
    parser.add_argument("--n", type=int, default=None, help="samples per sampler in the target section (default 50000)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: throughput,knn,target,all_samplers")
    parser.add_argument("--budget-s", type=float, default=270.0, help="total time budget in seconds (default 270)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_check"))
    args = parser.parse_args(argv)

    if not args.cpu_smoke and not torch.cuda.is_available():
        log(f"gpu_check: FAILED: no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
            f"run it on a GPU machine with a CUDA torch in .venv (TORCH_SPEC for install.sh), or pass --cpu-smoke "
            f"for the tiny CPU run")
        return 2
    from aebench.data.image_folder import ImageFolder  # noqa: F401  (registers with the plugins)
    from aebench.dataset import load_dataset
    from aebench.infra.device import describe_device
    from aebench.sampler import available_samplers

    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    sizes = dict(SMOKE_SIZES if args.cpu_smoke else GPU_SIZES)
    if args.n:
        sizes["target_n"] = args.n
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    features, label = choose_extractor(args.features)
    report = Report(out / "gpu_check.json", args.budget_s, mode="cpu-smoke" if args.cpu_smoke else "gpu",
                    device=describe_device(device), torch=torch.__version__, cuda=torch.version.cuda,
                    extractor=features, extractor_label=label, sizes=sizes, target_s=TARGET_S)
    log(f"gpu_check: {report.data['mode']} on {report.data['device']}; extractor: {label}")

    folder = out / "faces"
    t, count = timed(lambda: make_faces(folder, sizes["faces"], sizes["variants"]), torch.device("cpu"))
    dataset = load_dataset("image_folder", {"path": str(folder), "size": 64, "channels": 3}, cache_dir=out / "cache")
    checkpoint = str(out / "model" / "model.safetensors")
    report.data["data"] = {"images": count, "make_s": round(t, 2)}
    report.data["model"] = make_model(dataset, Path(checkpoint), sizes["epochs"], device)
    report.write()
    log(f"data: {count} faces; model: {report.data['model']}")

    if "throughput" not in skip:
        real = dataset.images[dataset.train_index[:sizes["throughput_n"]]]
        report.section("throughput", lambda: throughput(checkpoint, features, device, sizes, real),
                       SECTION_ESTIMATE_S["throughput"] if not args.cpu_smoke else 0)
    if "knn" not in skip:
        report.section("knn", lambda: knn_on_device(device, sizes["knn"]),
                       SECTION_ESTIMATE_S["knn"] if not args.cpu_smoke else 0)
    if "target" not in skip:
        def target() -> dict:
            got = run_pipeline(folder, checkpoint, features, device, samplers=list(sizes["target_samplers"]),
                               n=sizes["target_n"], n_real=sizes["target_real"], metrics=["fid", "kid", "prdc"],
                               sizes=sizes, out=out, name="target")
            for row in got["samplers"]:
                row["within_target"] = row["status"] == "ok" and row.get("total_s", 1e9) < TARGET_S
            got["target"] = f"{sizes['target_n']} decoded samples to FID, KID and PRDC per sampler in < {TARGET_S:.0f} s"
            return got

        report.section("target", target, SECTION_ESTIMATE_S["target"] if not args.cpu_smoke else 0)
    if "all_samplers" not in skip:
        report.section("all_samplers", lambda: run_pipeline(
            folder, checkpoint, features, device, samplers=available_samplers(), n=sizes["all_n"],
            n_real=sizes["target_real"], metrics=None, sizes=sizes, out=out, name="all"),
            SECTION_ESTIMATE_S["all_samplers"] if not args.cpu_smoke else 0)

    sections = report.data["sections"]
    failed = [name for name, s in sections.items() if s["status"] == "failed"]
    failed += [f"{name}:{row['sampler']}" for name, s in sections.items() if s["status"] == "ok"
               for row in s.get("samplers", []) if row["status"] != "ok"]
    report.data["failed"] = failed
    report.data["total_s"] = round(report.elapsed(), 2)
    report.write()
    log(f"total {report.data['total_s']:.1f} s; wrote {report.path}" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
