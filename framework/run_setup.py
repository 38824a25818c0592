"""Everything a run needs that does not depend on the sampler: data, model, latents, statistics,
calibrated regions, real image features and the reference rows. Computed (or loaded from the cache)
once, then shared by every cell."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aebench.console import err_console
from aebench.dataset import ImageDataset, load_dataset
from aebench.device import resolve_device
from aebench.errors import AebenchError
from aebench.feature_cache import cache_key, cached_tensor
from aebench.metric import FakeSide, RealSide
from aebench.paths import cache_root
from aebench.plugins import get_registry
from aebench.region import Region
from aebench.run_config import RunConfig
from aebench.stats import LatentStats, compute_stats

SELF_CONSISTENCY_N = 2000


@dataclass
class Extractor:
    name: str
    module: torch.nn.Module
    identity: str
    judge: bool


@dataclass
class RunSetup:
    config: RunConfig
    device: torch.device
    dataset: ImageDataset | None
    model: Any  # aebench.model_cache.LoadedModel
    stats: LatentStats
    real: RealSide
    extractor: Extractor | None
    region_report: dict[str, dict[str, float | None]] = field(default_factory=dict)
    references: list[FakeSide] = field(default_factory=list)
    batch_size: int = 128  # AE decode/encode batch; halved on out of memory (aebench.image_pipeline)
    feature_batch_size: int = 16  # feature extraction batch; halved on out of memory
    backoffs: list[dict[str, Any]] = field(default_factory=list)  # every out-of-memory retry, for the results

    @property
    def latent_dim(self) -> int:
        return int(self.real.train_latents.shape[1])


def prepare(config: RunConfig, *, quiet: bool = False) -> RunSetup:
    from aebench import image_pipeline
    from aebench.batching import ae_batch_size
    from aebench.device import check_precision
    from aebench.latents import encoded_latents, latent_stats, load_latent_arrays
    from aebench.model_cache import resolve_model

    device = resolve_device(config.device)
    check_precision(config.precision, device)
    config.resolve_sample_count(device.type)
    root = cache_root(config.cache_dir)
    dataset = None
    if config.dataset is not None:
        dataset = load_dataset(config.dataset, config.dataset_options, cache_dir=root)
    model = resolve_model(
        dataset, checkpoint=config.checkpoint, model_spec=config.model, cache_dir=root, device=device,
        seed=config.model_seed, latent_dim=config.latent_dim, quiet=quiet,
    )
    if config.train_latents is not None:
        train, heldout = load_latent_arrays(config.train_latents, config.heldout_latents)
        stats = compute_stats(train, meta={"source": "latent files"})
    else:
        batch = ae_batch_size(device, config.batch_size)
        train, heldout = encoded_latents(model, dataset, device=device, batch_size=batch)
        stats = latent_stats(model, dataset, device=device, batch_size=batch)
    if train.shape[1] != model.latent_dim or stats.latent_dim != model.latent_dim:
        raise AebenchError(
            f"The model's latent dimension is {model.latent_dim} but the latents/statistics have "
            f"N={train.shape[1]}/{stats.latent_dim}; use latents encoded by this model or recompute the statistics."
        )
    real = RealSide(train_latents=train, heldout_latents=heldout, stats=stats, target=config.target,
                    seed=config.seeds[0])
    setup = RunSetup(config, device, dataset, model, stats, real, extractor=None,
                     batch_size=ae_batch_size(device, config.batch_size))
    _fit_regions(setup)

    # reference rows: real held-out latents and their reconstructions, at most n of them so that
    # their image metrics are computed at the samplers' count
    rows = subset_index(heldout.shape[0], config.n)
    ref_latents = heldout[rows]
    recon_images = image_pipeline.decode(setup, ref_latents, None if quiet else "decode held-out", quiet=quiet)
    reencoded = image_pipeline.reencode(setup, recon_images, quiet=quiet)
    real.reencode_error = (reencoded - ref_latents).norm(dim=1)
    recon = FakeSide("reconstruction", ref_latents, images=recon_images, reencoded=reencoded)
    refs = [recon]
    if dataset is not None:
        real_row = FakeSide("real_heldout", ref_latents, images=dataset.images[dataset.heldout_index[rows]],
                            reencoded=reencoded)
        refs.insert(0, real_row)
    setup.references = refs

    if config.needs_images:
        if dataset is None:
            raise AebenchError("Image metrics need real images; add --dataset or drop the image metrics (--metrics).")
        _prepare_features(setup, root, quiet)
    return setup


def _fit_regions(setup: RunSetup) -> None:
    config, real = setup.config, setup.real
    registry = get_registry("region")
    for name in config.regions:
        region: Region = registry.get(name)(config.region_options.get(name, {}))
        region.fit(real.train_latents, real.stats)
        region.calibrate(real.heldout_latents, config.target)
        heldout_rate = float(region.contains(real.heldout_latents).double().mean())
        consistency = None
        gen = torch.Generator().manual_seed(12345)
        model_points = region.sample_model(SELF_CONSISTENCY_N, gen)
        if model_points is not None:
            consistency = float(region.contains(model_points).double().mean())
        real.regions[name] = region
        setup.region_report[name] = {"target": config.target, "threshold": region.threshold,
                                     "heldout_rate": heldout_rate, "self_consistency": consistency}


def _prepare_features(setup: RunSetup, root: Path, quiet: bool) -> None:
    from aebench import image_pipeline
    from aebench.batching import feature_batch_size

    config, dataset, real = setup.config, setup.dataset, setup.real
    cls = get_registry("feature extractor").get(config.features)
    extractor = cls(config.feature_options)
    module = extractor.build(setup.device)
    module.eval()
    setup.extractor = Extractor(cls.name, module, extractor.identity(), bool(cls.judge))
    setup.feature_batch_size = feature_batch_size(extractor.memory_per_image_mb, setup.device,
                                                  given=config.feature_batch_size, batch_memory=config.batch_memory)
    reference = config.reference
    if reference == "auto":
        reference = "heldout" if dataset.heldout_index.numel() >= config.min_heldout_reference else "train"
    real.reference = reference
    real.extractor = cls.name
    folder = root / "features"

    def features_of(images: torch.Tensor, what: str, **key: Any) -> torch.Tensor:
        def compute() -> torch.Tensor:
            return image_pipeline.features(setup, images, f"features: {what}", quiet=quiet)

        # features made on another kind of device or in another precision differ: never mix them
        value, _ = cached_tensor(folder, cache_key(extractor=setup.extractor.identity, device=setup.device.type,
                                                   precision=config.precision, **key), compute)
        return value.to(setup.device)

    fp = dataset.fingerprint()
    pool = dataset.heldout_index if reference == "heldout" else dataset.train_index
    n_real = config.resolve_real_count(setup.device.type)
    pool = pool[subset_index(pool.numel(), n_real)]
    real.features = features_of(dataset.images[pool], f"real {reference} images", dataset=fp, subset=reference,
                                n_real=int(pool.numel()))
    for row in setup.references:
        if row.name == "real_heldout":
            if reference == "heldout":  # compare training images against the held-out reference
                rows = subset_index(dataset.train_index.numel(), config.n)
                row.name = "real_train"
                row.latents = real.train_latents[rows]
                row.images = dataset.images[dataset.train_index[rows]]
                row.reencoded = None
                row.features = features_of(row.images, "real train images", dataset=fp, subset="train",
                                           n=int(rows.numel()))
            else:
                row.features = features_of(row.images, "real held-out images", dataset=fp, subset="heldout",
                                           n=int(row.latents.shape[0]))
        else:
            row.features = features_of(row.images, "held-out reconstructions", dataset=fp, subset="recon",
                                       model=setup.model.checksum, n=int(row.latents.shape[0]))
    if not quiet:
        err_console.print(
            f"[dim]Image metrics: extractor {cls.name} ({'validated judge' if cls.judge else 'NOT a validated judge'}), "
            f"reference = {reference} images (n={real.features.shape[0]})[/dim]"
        )


def subset_index(size: int, limit: int | None) -> torch.Tensor:
    """All of range(size), or a fixed pseudo-random subset of `limit` of them (sorted): the same subset
    in every run, so cached features stay valid and rows stay comparable."""
    if limit is None or size <= limit:
        return torch.arange(size)
    return torch.sort(torch.randperm(size, generator=torch.Generator().manual_seed(0))[:limit]).values


def finite_or_raise(latents: torch.Tensor, who: str) -> None:
    """Reject NaN/Inf latents with a message that names the sampler."""
    bad = ~torch.isfinite(latents)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise AebenchError(f"Sampler '{who}' returned NaN or Inf in {rows} of {latents.shape[0]} latent vectors.")


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
