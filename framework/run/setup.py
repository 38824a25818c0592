"""Everything a run needs that does not depend on the sampler: data, model, latents, statistics,
calibrated regions, real image features and the reference rows. Computed (or loaded from the cache)
once, then shared by every cell."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from aebench.caches.features import cache_key, cached_tensor
from aebench.dataset import ImageDataset, default_latent_dim, load_dataset
from aebench.errors import AebenchError
from aebench.feature_extractor import FeatureExtractor
from aebench.infra.console import err_console
from aebench.infra.paths import cache_root
from aebench.metric import FakeSide, RealSide
from aebench.plugins import get_registry
from aebench.region import Region
from aebench.run import preflight
from aebench.run.config import RunConfig
from aebench.run.plan import RunPlan, resolve_plan
from aebench.run.reference_sets import RECON_SEED, SUBSET_SEED, FeatureBank, index_digest, recon_reference_rows
from aebench.stats import LatentStats, compute_stats

SELF_CONSISTENCY_N = 2000  # draws from each region's own model for its self-consistency rate
SELF_CONSISTENCY_SEED = 12345  # those draws' generator: the same draws in every run


@dataclass
class Extractor:
    name: str
    module: torch.nn.Module
    identity: str
    judge: bool
    provenance: dict[str, Any] = field(default_factory=dict)  # the extractor's own facts (a judge's accuracy)
    plugin: Any = None  # the bound FeatureExtractor: a remote worker builds its module from it
    # the run's other extractors (`--features inception,domain`): their keys' suffix ('@domain') and the real
    # side seen through them (the run's, with their features and a cache of their own); '' / None for the first
    suffix: str = ""
    real: RealSide | None = None


@dataclass
class RunSetup:
    config: RunConfig  # the plan's resolved config (never the caller's object)
    device: torch.device
    dataset: ImageDataset | None
    model: Any  # aebench.caches.models.LoadedModel
    stats: LatentStats
    real: RealSide
    extractor: Extractor | None
    region_report: dict[str, dict[str, float | None]] = field(default_factory=dict)
    references: list[FakeSide] = field(default_factory=list)
    batch_size: int = 128  # AE decode/encode batch; halved on out of memory (aebench.run.image_pipeline)
    feature_batch_size: int = 16  # feature extraction batch; halved on out of memory
    backoffs: list[dict[str, Any]] = field(default_factory=list)  # every out-of-memory retry, for the results
    plan: RunPlan | None = None
    other_judges: list[Extractor] = field(default_factory=list)  # the extractors after the first, in order
    # held-out reconstruction error against the mean-image baseline (aebench.run.model_check); None: no images
    reconstruction: dict[str, Any] | None = None


def prepare(config: RunConfig | RunPlan, *, quiet: bool = False) -> RunSetup:
    """The real side of `config`'s plan (resolved here when a RunConfig is given), built once and final."""
    from aebench.caches.latents import encoded_latents, latent_stats, load_latent_arrays
    from aebench.caches.models import resolve_model
    from aebench.infra.device import check_precision
    from aebench.run import image_pipeline

    plan = config if isinstance(config, RunPlan) else resolve_plan(config)
    config = plan.config
    device = torch.device(plan.device)
    check_precision(config.precision, device)
    root = cache_root(config.cache_dir)
    dataset = None
    files = None
    if config.train_latents is not None:  # the user's own files first: their problems are theirs to fix first
        files = load_latent_arrays(config.train_latents, config.heldout_latents)
    if config.dataset is not None:
        dataset = load_dataset(config.dataset, config.dataset_options, cache_dir=root)
    if files is None and config.checkpoint is None and config.model is None:
        # the cached model's N is known before it is loaded (or trained): check before that work
        n_dim = config.latent_dim if config.latent_dim is not None else default_latent_dim(dataset.name)
        preflight.check_run(config, n_dim, int(dataset.train_index.numel()), dataset.image_shape)
    # the extractors are bound to the data set before the model: what they need (the domain judge's labels,
    # its training on first use) fails or happens before minutes of autoencoder work, not after
    bound = ([bind_extractor(config, name, dataset, root, device, quiet) for name in config.judges]
             if config.needs_images and dataset is not None else [])
    model = resolve_model(
        dataset, checkpoint=config.checkpoint, model_spec=config.model, cache_dir=root, device=device,
        seed=config.model_seed, latent_dim=config.latent_dim, quiet=quiet,
    )
    if files is not None and files[0].shape[1] != model.latent_dim:
        raise AebenchError(
            f"The model's latent dimension is {model.latent_dim} but the latent files have N={files[0].shape[1]}; "
            f"use latents encoded by this model."
        )
    preflight.check_run(config, model.latent_dim,
                        int(files[0].shape[0]) if files is not None else int(dataset.train_index.numel()),
                        dataset.image_shape if dataset is not None else model.image_shape)
    from aebench.run.model_check import check_model

    # is the model worth benchmarking? before any latents are encoded, and long before any sampler runs
    reconstruction = check_model(model, dataset, device, strict=config.strict,
                                 batch_size=plan.batch_size)
    if files is not None:
        train, heldout = files
        stats = compute_stats(train, meta={"source": "latent files"})
    else:
        train, heldout = encoded_latents(model, dataset, device=device, batch_size=plan.batch_size)
        stats = latent_stats(model, dataset, device=device, batch_size=plan.batch_size)
    if train.shape[1] != model.latent_dim or stats.latent_dim != model.latent_dim:
        raise AebenchError(
            f"The model's latent dimension is {model.latent_dim} but the latents/statistics have "
            f"N={train.shape[1]}/{stats.latent_dim}; use latents encoded by this model or recompute the statistics."
        )
    real = RealSide(train_latents=train, heldout_latents=heldout, stats=stats, target=config.target,
                    seed=config.seeds[0])
    setup = RunSetup(config, device, dataset, model, stats, real, extractor=None,
                     batch_size=plan.batch_size, plan=plan, reconstruction=reconstruction)
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
    reference = plan.image_reference(int(dataset.heldout_index.numel()) if dataset is not None else None)
    if dataset is not None and config.needs_images and reference == "heldout":
        # image metrics compare against held-out images: the real row is training images instead
        train_rows = subset_index(dataset.train_index.numel(), config.n)
        refs.insert(0, FakeSide("real_train", train[train_rows], images=dataset.images[dataset.train_index[train_rows]]))
    elif dataset is not None:
        refs.insert(0, FakeSide("real_heldout", ref_latents, images=dataset.images[dataset.heldout_index[rows]],
                                reencoded=reencoded))
    setup.references = refs

    if config.needs_images:
        if dataset is None:
            raise AebenchError("Image metrics need real images; add --dataset or drop the image metrics (--metrics).")
        _prepare_features(setup, bound, root, quiet)
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
        gen = torch.Generator().manual_seed(SELF_CONSISTENCY_SEED)
        model_points = region.sample_model(SELF_CONSISTENCY_N, gen)
        if model_points is not None:
            consistency = float(region.contains(model_points).double().mean())
        real.regions[name] = region
        setup.region_report[name] = {"target": config.target, "threshold": region.threshold,
                                     "heldout_rate": heldout_rate, "self_consistency": consistency}


def bind_extractor(config: RunConfig, name: str, dataset: ImageDataset, root: Path, device: torch.device,
                   quiet: bool) -> FeatureExtractor:
    """The extractor `name` with its configured options, bound to the run's data set (FeatureExtractor.bind)."""
    from aebench.feature_extractor import ExtractorContext

    extractor: FeatureExtractor = get_registry("feature extractor").get(name)(config.extractor_options(name))
    extractor.bind(ExtractorContext(dataset=dataset, cache_dir=root, device=device, quiet=quiet))
    return extractor


def _prepare_features(setup: RunSetup, extractors: list[FeatureExtractor], root: Path, quiet: bool) -> None:
    """Every extractor's features of the real side and the reference rows: the first one's in `real` and
    `row.features` (as with one extractor), each other one's in its own real side (`Extractor.real`) and
    `row.judge_features[name]`."""
    from aebench.metric import judge_key

    dataset, real = setup.dataset, setup.real
    setup.feature_batch_size = setup.plan.feature_batch_size
    reference = setup.plan.image_reference(int(dataset.heldout_index.numel()))
    real.reference = reference
    decoded: dict[str, torch.Tensor] = {}  # the decoder-matched reference's images, decoded once for all
    for position, extractor in enumerate(extractors):
        cls = type(extractor)
        module = extractor.build(setup.device)
        module.eval()
        judge = Extractor(cls.name, module, extractor.identity(), bool(cls.judge), extractor.provenance(), extractor)
        if position == 0:
            setup.extractor, side = judge, real
            real.extractor = cls.name
        else:  # the run's real side seen through this extractor: same latents and regions, its own features
            side = replace(real, features=None, recon_features=None, extractor=cls.name, cache={})
            judge.suffix, judge.real = judge_key("", cls.name), side
            setup.other_judges.append(judge)
        _featurise_real(setup, judge, side, position == 0, reference, root, decoded, quiet)
        if not quiet:
            err_console.print(
                f"[dim]Image metrics: extractor {cls.name} ({'validated judge' if cls.judge else 'NOT a validated judge'}"
                f"{_accuracy_note(judge.provenance)}{'' if position == 0 else f'; keys ending in {judge.suffix}'}), "
                f"reference = {reference} images (n={side.features.shape[0]}), decoder-matched reference = decoded "
                f"{reference} latents (n={side.recon_features.shape[0]})[/dim]"
            )


def _featurise_real(setup: RunSetup, judge: Extractor, side: RealSide, first: bool, reference: str, root: Path,
                    decoded: dict[str, torch.Tensor], quiet: bool) -> None:
    """One extractor's features of the real reference images, the decoder-matched reference and the
    reference rows, each cached per (extractor identity, device, precision, subset)."""
    from aebench.run import image_pipeline

    config, dataset = setup.config, setup.dataset
    folder = root / "features"

    def features_of(images: torch.Tensor, what: str, **key: Any) -> torch.Tensor:
        def compute() -> torch.Tensor:
            return image_pipeline.features(setup, images, f"features ({judge.name}): {what}", quiet=quiet,
                                           extractor=judge)

        # features made on another kind of device or in another precision differ: never mix them
        value, _ = cached_tensor(folder, cache_key(extractor=judge.identity, device=setup.device.type,
                                                   precision=config.precision, **key), compute,
                                 f"features ({judge.name}) of the {what}")
        return value.to(setup.device)

    fp = dataset.fingerprint()
    bank = FeatureBank()

    def featurise(source: str, index: torch.Tensor, images: Callable[[], torch.Tensor], what: str,
                  **key: Any) -> torch.Tensor:
        return bank.get(source, index, lambda: features_of(images(), what, **key))

    pool = dataset.heldout_index if reference == "heldout" else dataset.train_index
    pool = pool[subset_index(pool.numel(), config.n_real)]
    side.features = featurise("image", pool, lambda: dataset.images[pool], f"real {reference} images", dataset=fp,
                              subset=reference, n_real=int(pool.numel()))
    recon_rows = subset_index(dataset.heldout_index.numel(), config.n)  # the reference rows' held-out latents
    for row in setup.references:
        images = _images_of(row)
        if row.name == "real_train":  # training images against the held-out reference
            rows = subset_index(dataset.train_index.numel(), config.n)
            feats = featurise("image", dataset.train_index[rows], images, "real train images",
                              dataset=fp, subset="train", n=int(rows.numel()))
        elif row.name == "real_heldout":
            feats = featurise("image", dataset.heldout_index[recon_rows], images,
                              "real held-out images", dataset=fp, subset="heldout",
                              n=int(row.latents.shape[0]))
        else:
            feats = featurise("decoded-heldout", recon_rows, images, "held-out reconstructions",
                              dataset=fp, subset="recon", model=setup.model.checksum,
                              n=int(row.latents.shape[0]))
        if first:
            row.features = feats
        else:
            row.judge_features[judge.name] = feats
    _prepare_recon_reference(setup, side, reference, recon_rows, featurise, decoded, quiet)


def _accuracy_note(provenance: dict[str, Any]) -> str:
    """'; held-out accuracy 93.1%' for an extractor trained as a classifier (the domain judge), else ''."""
    accuracy = provenance.get("heldout_accuracy")
    return f"; held-out accuracy {accuracy:.1%}" if isinstance(accuracy, float) else ""


def _prepare_recon_reference(setup: RunSetup, real: RealSide, split: str, recon_rows: torch.Tensor,
                             featurise: Callable[..., torch.Tensor], decoded_images: dict[str, torch.Tensor],
                             quiet: bool) -> None:
    """Fill `real.recon_features` / `recon_latents` / `recon_info`: features of `n` decoded real latents of
    the image reference split, cached per model, extractor and subset. With the held-out split they avoid
    the reconstruction row's latents (`recon_rows`) when there are enough others, so that row is not scored
    against its own images; with the training split they are disjoint from it anyway."""
    from aebench.run import image_pipeline

    config = setup.config
    latents = real.train_latents if split == "train" else real.heldout_latents
    index, disjoint = recon_reference_rows(latents.shape[0], config.n, recon_rows if split == "heldout" else None)
    chosen = latents[index]
    digest = index_digest(index)

    def decoded() -> torch.Tensor:  # decoded once however many extractors need the images
        if "images" not in decoded_images:
            decoded_images["images"] = image_pipeline.decode(
                setup, chosen, None if quiet else f"decode {split} latents (decoder-matched reference)", quiet=quiet)
        return decoded_images["images"]

    real.recon_features = featurise(f"decoded-{split}", index, decoded, f"decoded {split} latents",
                                    dataset=setup.dataset.fingerprint(), subset=f"decoded-{split}",
                                    model=setup.model.checksum, n=int(index.numel()), rows=digest)
    real.recon_latents = chosen
    real.recon_info = {"split": split, "n": int(index.numel()), "index_sha": digest,
                       "disjoint_from_reconstruction_row": disjoint,
                       "selection": f"fixed pseudo-random subset (seed {RECON_SEED}) of the {split} latents"
                                    + (", outside the reconstruction row's" if split == "heldout" else "")}


def subset_index(size: int, limit: int | None) -> torch.Tensor:
    """All of range(size), or a fixed pseudo-random subset of `limit` of them (sorted): the same subset
    in every run, so cached features stay valid and rows stay comparable."""
    if limit is None or size <= limit:
        return torch.arange(size)
    return torch.sort(torch.randperm(size, generator=torch.Generator().manual_seed(SUBSET_SEED))[:limit]).values


def finite_or_raise(latents: torch.Tensor, who: str) -> None:
    """Reject NaN/Inf latents with a message that names the sampler and counts the bad draws. Finite but
    huge draws pass (they are the sampler's honest output, and its metrics say so); the k-NN code takes
    them in float64 (aebench.maths.knn)."""
    bad = ~torch.isfinite(latents)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise AebenchError(f"Sampler '{who}' returned NaN or Inf in {rows} of {latents.shape[0]} latent vectors "
                           f"(values beyond float32's 3.4e38 become Inf); fix the sampler or its options.")


def _images_of(row: Any) -> Callable[[], torch.Tensor]:
    """A reference row's images, read when (and only if) its features are not cached yet."""
    return lambda: row.images
