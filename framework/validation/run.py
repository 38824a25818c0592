"""Run the ladders on a prepared run setup and score every step with every selected metric.

The base set (step 0) must be disjoint from everything a metric compares against: held-out latents
(latent metrics, region calibration), training latents (nearest-neighbour distance, region fits),
decoded real latents (`real.recon_latents`, the decoder-matched image metrics) and the real reference
images. So the base is drawn from held-out latents that no reference uses, and the metrics score
against a copy of the run's real side whose latent reference and training latents exclude it (see
`choose_split`: on Fashion-MNIST the other held-out latents are the latent reference; on ORL, with
only 80 held-out faces, the base is all of them and the training latents are split in two halves, one
as the latent reference, one as the training set).

Cost: decoding, re-encoding and image features are computed once per pool of latents (the base, each
collapse and spread factor, the uniform, Gaussian and training-copy replacements); a step only gathers
rows. Pool features are cached by the exact bytes of the decoded images and the extractor's identity.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from aebench.errors import OptionError
from aebench.infra.hashing import tensor_sha256
from aebench.metric import FakeSide, Metric, MetricValue, RealSide
from aebench.results.schema import ResultsDocument
from aebench.run.setup import RunSetup, prepare, subset_index
from aebench.validation.ladders import LadderSet, ValidationOptions, build_ladders, example_rows
from aebench.validation.trust import FLAT_BELOW, HOLDS_AT, ladder_verdict, metric_verdict, uncovered

FIGURE_NAME = "validation.png"
STRIP_EXAMPLES = 4  # base points shown at every step of a ladder strip


def rows_in(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Boolean [len(a)]: which rows of `a` appear (bit for bit) among the rows of `b`."""
    if b is None or b.numel() == 0:
        return torch.zeros(a.shape[0], dtype=torch.bool)
    a32, b32 = a.detach().to("cpu", torch.float32).contiguous(), b.detach().to("cpu", torch.float32).contiguous()
    seen = {row.numpy().tobytes() for row in b32}
    return torch.tensor([row.numpy().tobytes() in seen for row in a32], dtype=torch.bool)


@dataclass
class Split:
    """Which real latents play which part in the validation. `base` rows of the held-out latents are step
    0 of every ladder; `heldout` is the latent reference (what latent metrics compare against, where
    regions are calibrated); `train` stands for the training latents (regions fitted, nearest-neighbour
    distances, the ladders' centre, range, moments, clusters and copies). The three are disjoint."""

    base: torch.Tensor  # [m] row indices into the run's held-out latents
    heldout: torch.Tensor  # [h, N] latents
    train: torch.Tensor  # [t, N] latents
    mode: str  # 'split held-out' or 'split training'
    notes: dict[str, Any]


MIN_REFERENCE = 8


def choose_split(setup: RunSetup, size: int | None, seed: int) -> Split:
    """Draw the base from held-out latents that no reference uses (not decoded for the decoder-matched
    reference, not the real reference images), then

    - when at least as many held-out latents are left as the base has (Fashion-MNIST: 10,000), the
      rest of the held-out latents are the latent reference and the training latents stay as they are;
    - when they are too few (ORL: 80 held-out faces), usable held-out latents up to `size` (default: the
      run's n) form the base, and the training latents are split at random into two halves: one is the latent reference,
      the other the training set. Splitting the 80 ORL held-out faces in two instead would leave 40
      points a side (worse than too few in N=64: Fréchet distances dominated by their small-sample
      bias) that are not independent either: each person has two held-out faces, and a 1-NN test
      finds the twin."""
    real, config = setup.real, setup.config
    n_heldout = int(real.heldout_latents.shape[0])
    excluded = rows_in(real.heldout_latents, real.recon_latents)
    why = {"decoded for the decoder-matched reference": int(excluded.sum())}
    if real.features is not None and real.reference == "heldout" and setup.dataset is not None:
        # the real reference images are this fixed subset of the held-out images (see run_setup)
        image_rows = torch.zeros(n_heldout, dtype=torch.bool)
        image_rows[subset_index(n_heldout, config.n_real)] = True
        why["real reference images"] = int((image_rows & ~excluded).sum())
        excluded |= image_rows
    candidates = torch.nonzero(~excluded).flatten()
    usable = int(candidates.numel())
    wanted = int(config.n) if size is None and config.n else size
    if wanted is not None and wanted < 8:
        raise OptionError(f"--size must be an integer >= 8, got {wanted}.")
    gen = torch.Generator().manual_seed(seed)
    perm = candidates[torch.randperm(usable, generator=gen)]
    notes: dict[str, Any] = {"usable_heldout": usable, "left_out_of_base": why}
    if wanted is not None and usable >= 2 * wanted:
        base = torch.sort(perm[:wanted]).values
        keep = torch.ones(n_heldout, dtype=torch.bool)
        keep[base] = False
        heldout, train = real.heldout_latents[keep], real.train_latents
        notes.update(base=f"{wanted} held-out latents (random, seed {seed})",
                     latent_reference=f"the other {heldout.shape[0]} held-out latents",
                     training_reference=f"all {train.shape[0]} training latents",
                     regions="fitted on the training latents, recalibrated on the latent reference")
        return Split(base, heldout, train, "split held-out", notes)
    m = min(usable, wanted if wanted is not None else usable) if size is None else size
    if m > usable or usable < 8:
        raise OptionError(
            f"--size {size} is more than the {usable} usable held-out latents (of {n_heldout}; the others are "
            f"the image or decoder-matched reference); use --size {usable} or less." if usable >= 8 else
            f"Validation needs at least 8 held-out latents that no reference uses, got {usable} of {n_heldout}.")
    n_train = int(real.train_latents.shape[0])
    if n_train < 2 * MIN_REFERENCE:
        raise OptionError(f"Validation needs at least {2 * MIN_REFERENCE} training latents to split, got {n_train}.")
    base = torch.sort(perm[:m]).values
    halves = torch.randperm(n_train, generator=gen)
    reference, training = torch.sort(halves[: n_train // 2]).values, torch.sort(halves[n_train // 2:]).values
    heldout, train = real.train_latents[reference], real.train_latents[training]
    notes.update(base=f"{m} held-out latents (of {usable} usable; random, seed {seed})",
                 latent_reference=f"{heldout.shape[0]} training latents (a random half: too few held-out "
                                  f"latents to split)",
                 training_reference=f"the other {train.shape[0]} training latents",
                 regions="refitted on the training half, calibrated on the reference half")
    return Split(base, heldout, train, "split training", notes)


def validation_real_side(setup: RunSetup, split: Split) -> RealSide:
    """A copy of the run's real side with the split's latent reference and training latents: regions
    recalibrated (and refitted when the training latents changed), the re-encode reference recomputed
    on the latent reference, a fresh metric cache. The run's own objects are left untouched."""
    from aebench.run import image_pipeline
    from aebench.stats import compute_stats

    real = setup.real
    refit = split.train is not real.train_latents
    stats = compute_stats(split.train, meta={"source": "validation training split"}) if refit else real.stats
    regions = {}
    for name, region in real.regions.items():
        if refit:
            region = type(region)(region.options)
            region.fit(split.train, stats)
        else:
            region = copy.deepcopy(region)
        region.calibrate(split.heldout, real.target)
        regions[name] = region
    reencode_error = real.reencode_error
    if reencode_error is not None:
        rows = split.heldout[subset_index(split.heldout.shape[0], setup.config.n)]
        images = image_pipeline.decode(setup, rows)
        reencoded = image_pipeline.reencode(setup, images)
        reencode_error = (reencoded - rows).norm(dim=1)
    return replace(real, train_latents=split.train, heldout_latents=split.heldout, stats=stats, regions=regions,
                   reencode_error=reencode_error, cache={})


def _needs(metrics: Sequence[Metric]) -> set[str]:
    return set().union(*(set(m.needs) for m in metrics)) if metrics else set()


def materialise(setup: RunSetup, ladders: LadderSet, needs: set[str],
                quiet: bool) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, int]]:
    """Per FakeSide field ('latents', 'images', 'reencoded', 'features'): that field for every pool; and
    how many rows' features were computed, reused from the run's reference rows, or cached. With several
    extractors, each other one's features are the field `features@<name>`."""
    from aebench.run import image_pipeline

    fields: dict[str, dict[str, torch.Tensor]] = {"latents": dict(ladders.pools)}
    counts = {"computed": 0, "reused": 0, "cached": 0}
    want_features = "features" in needs and setup.extractor is not None
    if not ({"images", "reencoded"} & needs or want_features):
        return fields, counts
    everything = torch.cat(list(ladders.pools.values()))
    images = image_pipeline.decode(setup, everything, None if quiet else "validation: decode", quiet=quiet)
    sizes = [p.shape[0] for p in ladders.pools.values()]
    fields["images"] = dict(zip(ladders.pools, torch.split(images, sizes)))
    if "reencoded" in needs:
        reencoded = image_pipeline.reencode(setup, images)
        fields["reencoded"] = dict(zip(ladders.pools, torch.split(reencoded, sizes)))
    judges = [(setup.extractor, "features")] + [(judge, f"features{judge.suffix}") for judge in setup.other_judges]
    for extractor, field_name in judges if want_features else []:
        # each extractor's features of every pool: `features` for the first, `features@<name>` for the others
        _featurise_pools(setup, extractor, field_name, fields, counts, quiet)
    return fields, counts


def _featurise_pools(setup: RunSetup, extractor: Any, field_name: str, fields: dict[str, dict[str, torch.Tensor]],
                     counts: dict[str, int], quiet: bool) -> None:
    """fields[field_name][pool] = `extractor`'s features of each pool's images (cached by their bytes)."""
    from aebench.caches.features import cache_key, cached_tensor
    from aebench.infra.paths import cache_root
    from aebench.run import image_pipeline

    config = setup.config
    total = sum(int(pool.shape[0]) for pool in fields["images"].values())
    folder = cache_root(config.cache_dir) / "features"
    known = _known_features(setup, extractor)
    fields[field_name] = {}

    def run(bar: Any = None, task: Any = None) -> None:
        advance = (lambda k: bar.advance(task, k)) if bar is not None else (lambda k: None)
        for name, pool_images in fields["images"].items():
            # the closures below run within this iteration, so they see this pool's images
            digest = tensor_sha256(pool_images)
            key = cache_key(extractor=extractor.identity, device=setup.device.type, precision=config.precision,
                            images=digest, shape=list(pool_images.shape))  # noqa: B023

            def compute() -> torch.Tensor:
                rows = [known.get(tensor_sha256(image)) for image in pool_images]  # noqa: B023
                missing = [i for i, row in enumerate(rows) if row is None]
                counts["computed"] += len(missing)
                counts["reused"] += len(rows) - len(missing)
                advance(len(rows) - len(missing))
                fresh = (image_pipeline.features(setup, pool_images[missing], extractor=extractor).cpu()  # noqa: B023
                         if missing else None)
                advance(len(missing))
                width = fresh.shape[1] if fresh is not None else next(r for r in rows if r is not None).shape[0]
                out = torch.empty(len(rows), width, dtype=torch.float32)
                for i, row in enumerate(rows):
                    if row is not None:
                        out[i] = row
                if missing:
                    out[missing] = fresh
                return out

            value, cached = cached_tensor(folder, key, compute, f"ladder features ({extractor.name})")
            if cached:
                counts["cached"] += pool_images.shape[0]
                advance(pool_images.shape[0])
            fields[field_name][name] = value

    if quiet:
        run()
    else:
        from aebench.infra.console import progress_bar

        with progress_bar(transient=True) as bar:
            run(bar, bar.add_task(f"validation: features ({extractor.name})", total=total))


def _known_features(setup: RunSetup, extractor: Any = None) -> dict[str, torch.Tensor]:
    """Features the run already computed with `extractor` (default: the first), by the exact bytes of their
    image: the reference rows' decoded images (on ORL the reconstructions of the held-out faces are exactly
    the base set)."""
    first = extractor is None or extractor is setup.extractor
    known: dict[str, torch.Tensor] = {}
    for row in setup.references:
        feats = row.features if first else row.judge_features.get(extractor.name)
        if row.images is not None and feats is not None and row.images.shape[0] == feats.shape[0]:
            for image, feature in zip(row.images, feats):
                known.setdefault(tensor_sha256(image), feature)
    return known


def score(fake: FakeSide, real: RealSide, metrics: Sequence[Metric],
          others: Sequence[tuple[Any, RealSide]] = ()) -> tuple[dict[str, tuple[Metric, MetricValue]], dict[str, str]]:
    """Every metric's values for one step through its normal `compute` (key -> (metric, value)), and each
    failing metric's error; with other judges (`others`: (extractor, its real side)), their image metrics
    too, as `<key>@<judge>` (see aebench.run.judges)."""
    from aebench.run.judges import judged, scores_here

    values: dict[str, tuple[Metric, MetricValue]] = {}
    errors: dict[str, str] = {}
    for suffix, side, side_real in judged(fake, real, others):
        available = {"latents"} | {name for name in ("images", "features", "reencoded", "t")
                                   if getattr(side, name) is not None}
        for metric in metrics:
            if not scores_here(metric, suffix) or not set(metric.needs) <= available:
                continue
            try:
                out = metric.compute(side, side_real)
            except Exception as exc:  # a metric that raises is reported as untested, not fatal
                errors[metric.name] = f"{type(exc).__name__}: {exc}"
                continue
            for key, value in out.items():
                if isinstance(value, MetricValue):
                    values[key + suffix] = (metric, value)
                else:
                    errors[metric.name] = f"returned {type(value).__name__} for {key!r}, not MetricValue"
    return values, errors


def key_info(key: str, owner: Metric, value: MetricValue) -> dict[str, Any]:
    """What the metric declares about `key` (its Column), falling back to the value's direction."""
    column = owner.column(key)
    if column is not None:
        return column.for_key(key)
    return {"label": key, "higher_is_better": value.higher_is_better, "group": "other", "unit": "",
            "role": "diagnostic", "detects": [], "description": "declared by no Column of its metric"}


@dataclass
class Scores:
    """What the metrics made of every step: key -> ladder -> values in step order, the metric (and a first
    value) behind each key, and each metric's first error per ladder."""

    values: dict[str, dict[str, list[float | None]]]
    owners: dict[str, tuple[Metric, MetricValue]]
    errors: dict[str, dict[str, str]]


def score_ladders(ladders: LadderSet, fields: dict[str, dict[str, torch.Tensor]], real: RealSide,
                  metrics: Sequence[Metric], seed: int, quiet: bool,
                  others: Sequence[tuple[Any, RealSide]] = ()) -> Scores:
    """Score every step of every ladder with every metric; a step's FakeSide gathers its rows of each pool
    (the other judges' features, fields `features@<name>`, go to its `judge_features`)."""
    from aebench.metric import split_judge_key

    scores = Scores({}, {}, {})

    def run(advance: Any = None) -> None:
        for name, ladder in ladders.ladders.items():
            for index, step in enumerate(ladder.steps):
                parts: dict[str, Any] = {"judge_features": {}}
                for f, per_pool in fields.items():
                    field_name, judge = split_judge_key(f)
                    if judge:
                        parts["judge_features"][judge] = ladders.gather(step, per_pool)
                    else:
                        parts[field_name] = ladders.gather(step, per_pool)
                got, failed = score(FakeSide(f"{name}[{index}]", **parts, seed=seed), real, metrics, others)
                for metric_name, message in failed.items():
                    scores.errors.setdefault(metric_name, {}).setdefault(name, f"step {index}: {message}")
                for key, (metric, value) in got.items():
                    scores.owners.setdefault(key, (metric, value))
                    series = scores.values.setdefault(key, {}).setdefault(name, [None] * len(ladder.steps))
                    series[index] = value.value
                if advance is not None:
                    advance()

    if quiet:
        run()
    else:
        from aebench.infra.console import progress_bar

        with progress_bar(transient=True) as bar:
            task = bar.add_task("validation: scoring ladder steps",
                                total=sum(len(ladder.steps) for ladder in ladders.ladders.values()))
            run(lambda: bar.advance(task))
    return scores


def metric_entries(scores: Scores, ladders: LadderSet, metrics: Sequence[Metric],
                   available: set[str]) -> dict[str, Any]:
    """The section's `metrics`: per key its declaration, per-ladder verdicts, overall verdict and
    trusted_for; declared keys of metrics that produced nothing are listed as untested, with why."""
    out: dict[str, Any] = {}
    for key, per_ladder in scores.values.items():
        owner, first = scores.owners[key]
        info = key_info(key, owner, first)
        hib = info["higher_is_better"]
        results = {}
        for name, ladder in ladders.ladders.items():
            series = per_ladder.get(name, [None] * len(ladder.steps))
            error = scores.errors.get(owner.name, {}).get(name)
            results[name] = ladder_verdict(series, hib, rate=info.get("unit") == "rate",
                                           error=error if None in series else None)
        verdict, trusted = metric_verdict(results, info.get("detects", []), hib)
        out[key] = {"label": info.get("label", key), "metric": owner.name, "role": info.get("role"),
                    "group": info.get("group"), "unit": info.get("unit"), "higher_is_better": hib,
                    "detects": list(info.get("detects", [])), "ladders": results, "verdict": verdict,
                    "trusted_for": trusted}
    for metric in metrics:
        if any(entry["metric"] == metric.name for entry in out.values()):
            continue
        missing = sorted(set(metric.needs) - available)
        reason = (f"needs {', '.join(missing)}, not available here" if missing
                  else "; ".join(sorted(set(scores.errors.get(metric.name, {}).values()))) or "produced no value")
        for column in metric.columns:
            if not column.key.endswith("*"):
                out[column.key] = {"label": column.label, "metric": metric.name, "role": column.role,
                                   "group": column.group, "unit": column.unit,
                                   "higher_is_better": column.higher_is_better, "detects": list(column.detects),
                                   "ladders": {}, "verdict": "untested", "trusted_for": [], "note": reason}
    return out


def run_validation(setup: RunSetup, metrics: Sequence[Metric], options: ValidationOptions | None = None, *,
                   quiet: bool = False) -> dict[str, Any]:
    """The `validation` section of a results document for this setup and these metric instances."""
    return _run_validation(setup, metrics, options, quiet)[0]


def _run_validation(setup: RunSetup, metrics: Sequence[Metric], options: ValidationOptions | None,
                    quiet: bool) -> tuple[dict[str, Any], LadderSet]:
    options = options or ValidationOptions()
    options.check()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    seed = setup.real.seed
    split = choose_split(setup, options.size, seed)
    real = validation_real_side(setup, split)
    ladders = build_ladders(setup.real.heldout_latents[split.base], real.train_latents, real.stats,
                            steps=options.steps, clusters=options.clusters, ladders=options.ladders, seed=seed)
    timing["setup_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    fields, feature_counts = materialise(setup, ladders, _needs(metrics), quiet)
    timing["decode_features_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    others = [(judge, replace(real, features=judge.real.features, recon_features=judge.real.recon_features,
                              extractor=judge.name, cache={})) for judge in setup.other_judges]
    scores = score_ladders(ladders, fields, real, metrics, seed, quiet, others)
    timing["metrics_s"] = time.perf_counter() - t2
    entries = metric_entries(scores, ladders, metrics, set(fields))
    timing["total_s"] = time.perf_counter() - t0

    featurised = setup.extractor is not None and "features" in fields
    settings = {
        "size": int(split.base.numel()),
        "split": split.mode,
        "steps": {name: len(ladder.steps) for name, ladder in ladders.ladders.items()},
        "extractor": setup.extractor.name if featurised else None,
        "extractor_judge": bool(setup.extractor.judge) if featurised else None,
        "seed": seed,
        "holds_at": HOLDS_AT,
        "flat_below": FLAT_BELOW,
        "clusters": options.clusters,
        **split.notes,
        **ladders.settings,
        "pools": {name: int(p.shape[0]) for name, p in ladders.pools.items()},
        "images_decoded": sum(p.shape[0] for p in ladders.pools.values()) if "images" in fields else 0,
        "features": {**feature_counts, "note": "computed now; reused from the run's reference rows (same image "
                                               "bytes); cached from an earlier validation of the same images"},
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    if featurised and setup.other_judges:
        settings["other_extractors"] = [judge.name for judge in setup.other_judges]
    return {
        "settings": settings,
        "ladders": {name: {"param": ladder.param, "levels": ladder.levels} for name, ladder in ladders.ladders.items()},
        "metrics": entries,
        "uncovered": uncovered(entries, ladders.ladders),
    }, ladders


def draw_strips(setup: RunSetup, ladders: LadderSet, folder: Path, out: Path,
                examples: int = STRIP_EXAMPLES) -> dict[str, str]:
    """Per ladder, a strip of its steps decoded: the same `examples` base points (see `example_rows`) at
    every step; paths relative to `out`."""
    from aebench.reports.pictures import ladder_strip
    from aebench.reports.validation import level_text
    from aebench.run import image_pipeline

    picks = []
    for ladder in ladders.ladders.values():
        rows = example_rows(ladder, examples)
        picks.append(torch.stack([ladders.latents(step)[rows] for step in ladder.steps]))  # [steps, k, N]
    images = image_pipeline.decode(setup, torch.cat([p.reshape(-1, p.shape[-1]) for p in picks]), quiet=True)
    strips, start = {}, 0
    for (name, ladder), latents in zip(ladders.ladders.items(), picks):
        steps, k = latents.shape[:2]
        block = images[start:start + steps * k].reshape(steps, k, *images.shape[1:])
        start += steps * k
        levels = [f"step {i}\n{level_text(name, level)}" for i, level in enumerate(ladder.levels)]
        path = ladder_strip(block, levels, folder / f"ladder_{name}.png", title=f"{name}: {ladder.param}")
        strips[name] = str(path.relative_to(out))
    return strips


def add_validation(doc: ResultsDocument, setup: RunSetup, metrics: Sequence[Metric], out: Path,
                   options: ValidationOptions | None = None, *, figures: bool = True, quiet: bool = False) -> dict[str, Any]:
    """Run the ladders, store the section as `doc["validation"]` and draw its plot under `out/figures`."""
    section, ladders = _run_validation(setup, metrics, options, quiet)
    if figures:
        from aebench.reports.validation_plot import ladder_plot
        from aebench.run.folder import FIGURE_DIR

        dataset = setup.dataset.name if setup.dataset is not None else "latents"
        path = ladder_plot(section, Path(out) / FIGURE_DIR / FIGURE_NAME,
                           title=f"Known-answer ladders on {dataset} ({section['settings']['size']} points, "
                                 f"features: {section['settings']['extractor'] or 'none'})")
        section["figure"] = str(path.relative_to(out))
        section["strips"] = draw_strips(setup, ladders, Path(out) / FIGURE_DIR, Path(out))
    doc["validation"] = section  # type: ignore[typeddict-item]
    return section


def validate_benchmark(config: Any, options: ValidationOptions | None = None, *, quiet: bool = False) -> ResultsDocument:
    """`aebench validate`: the run's setup and provenance, no samplers, and the validation section;
    results.json written to config.out (a results document the rest of aebench reads)."""
    from aebench.infra.io import ensure_writable_dir
    from aebench.plugins import get_registry
    from aebench.results.document import metric_info_entry, new_document, now, write_results

    options = options or ValidationOptions.from_dict(config.validation)
    options.check()
    out = ensure_writable_dir(config.out, "--out folder")
    results_path = out / "results.json"
    if results_path.exists():  # never leave an older complete file that could be mistaken for this one
        results_path.unlink()
    from aebench.infra.threads import thread_limit

    # the run's thread setting (auto: the free cores), as `aebench run` has it: more threads than free cores
    # made a domain judge's first-use training 10x slower on a busy 2-core machine
    with thread_limit(getattr(config, "threads", None)):
        setup = prepare(config, quiet=quiet)
        registry = get_registry("metric")
        metrics = [registry.get(name)(config.metric_options.get(name, {})) for name in config.metrics]
        doc = new_document(setup)
        doc["config"]["validation"] = options.to_dict()  # type: ignore[typeddict-item]
        section = add_validation(doc, setup, metrics, out, options, figures=config.figures, quiet=quiet)
    for key, entry in section["metrics"].items():  # what each key means, from its metric's declaration
        producer = next((m for m in metrics if type(m).column(key) is not None), None)
        doc["metric_info"].setdefault(key, metric_info_entry(key, producer, entry.get("higher_is_better")))
    doc["status"] = "complete"
    doc["finished"] = now()
    write_results(doc, out)
    return doc
