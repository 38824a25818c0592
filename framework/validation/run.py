"""Run the ladders on a prepared run setup and score every step with every selected metric.

The base set (step 0) must be disjoint from everything a metric compares against: held-out latents
(latent metrics, region calibration), training latents (nearest-neighbour distance, region fits),
decoded real latents (`real.recon_latents`, the decoder-matched image metrics) and the real reference
images. So the base is drawn from the held-out latents, leaving out those decoded for the
decoder-matched reference and those whose images are the image reference, and the metrics score
against a copy of the run's real side whose held-out latents are the remaining ones (regions
recalibrated on them, the re-encode reference recomputed on them). On ORL (80 held-out faces, image
reference = training images, decoder-matched reference = training latents) that splits the held-out
latents in half: 40 base points, 40 reference points.

Cost: decoding, re-encoding and image features are computed once per pool of latents (the base, each
collapse and spread factor, the uniform, Gaussian and training-copy replacements); a step only gathers
rows. Pool features are cached by the exact bytes of the decoded images and the extractor's identity.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from aebench.console import err_console
from aebench.errors import OptionError
from aebench.metric import LADDERS, FakeSide, Metric, MetricValue, RealSide
from aebench.run_setup import RunSetup, prepare, subset_index
from aebench.validation.ladders import BASE, LadderSet, build_ladders, check_steps
from aebench.validation.verdict import FLAT_BELOW, HOLDS_AT, ladder_verdict, metric_verdict, uncovered

FIGURE_NAME = "validation.png"


@dataclass(frozen=True)
class ValidationOptions:
    """What `aebench validate` and `aebench run --validate` let a user choose."""

    size: int | None = None  # base points per step; None: the run's n, at most half the usable held-out latents
    steps: int = 6  # steps per ladder, step 0 included
    ladders: tuple[str, ...] = LADDERS
    clusters: int = 8  # k-means clusters for mode dropping

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ValidationOptions":
        data = dict(data or {})
        unknown = sorted(set(data) - {"size", "steps", "ladders", "clusters"})
        if unknown:
            raise OptionError(f"Unknown validation setting {unknown[0]!r}; use size, steps, ladders or clusters.")
        if "ladders" in data:
            value = data["ladders"]
            data["ladders"] = tuple(value.split(",") if isinstance(value, str) else value)
        options = cls(**data)
        options.check()
        return options

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "steps": self.steps, "ladders": list(self.ladders), "clusters": self.clusters}

    def check(self) -> None:
        check_steps(self.steps)
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8):
            raise OptionError(f"--size must be an integer >= 8, got {self.size!r}.")
        if not self.ladders:
            raise OptionError("Select at least one ladder.")
        unknown = [name for name in self.ladders if name not in LADDERS]
        if unknown:
            raise OptionError(f"Unknown ladder {unknown[0]!r}; choose from {', '.join(LADDERS)}.")
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or self.clusters < 2:
            raise OptionError(f"--clusters must be an integer >= 2, got {self.clusters!r}.")


def rows_in(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Boolean [len(a)]: which rows of `a` appear (bit for bit) among the rows of `b`."""
    if b is None or b.numel() == 0:
        return torch.zeros(a.shape[0], dtype=torch.bool)
    a32, b32 = a.detach().to("cpu", torch.float32).contiguous(), b.detach().to("cpu", torch.float32).contiguous()
    seen = {row.numpy().tobytes() for row in b32}
    return torch.tensor([row.numpy().tobytes() in seen for row in a32], dtype=torch.bool)


def choose_base(setup: RunSetup, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(base rows, reference rows) of the held-out latents, and what was left out and why."""
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
    limit = int(candidates.numel()) // 2  # the other half at least stays as the latent reference
    if size is None:
        size = min(int(config.n or limit), limit)
    if size < 8 or size > limit:
        raise OptionError(
            f"Validation needs a base of at least 8 held-out latents and as many left as reference: "
            f"{candidates.numel()} of {n_heldout} held-out latents are usable (others are the image or "
            f"decoder-matched reference), so --size must be between 8 and {limit}, got {size}."
        )
    perm = candidates[torch.randperm(candidates.numel(), generator=torch.Generator().manual_seed(seed))]
    base = torch.sort(perm[:size]).values
    rest = torch.sort(torch.cat([perm[size:], torch.nonzero(excluded).flatten()])).values
    note = {"base": f"{size} held-out latents (random, seed {seed})",
            "latent_reference": f"the other {rest.numel()} held-out latents",
            "usable_heldout": int(candidates.numel()), "left_out_of_base": why}
    return base, rest, note


def validation_real_side(setup: RunSetup, rest: torch.Tensor, quiet: bool) -> RealSide:
    """A copy of the run's real side whose held-out latents exclude the base: regions recalibrated on
    them, the re-encode reference recomputed on them, a fresh metric cache. The run's own objects are
    left untouched."""
    from aebench.encoding import decode_latents, encode_images

    real = setup.real
    heldout = real.heldout_latents[rest]
    regions = {}
    for name, region in real.regions.items():
        region = copy.deepcopy(region)
        region.calibrate(heldout, real.target)
        regions[name] = region
    reencode_error = real.reencode_error
    if reencode_error is not None:
        rows = heldout[subset_index(heldout.shape[0], setup.config.n)]
        images = decode_latents(setup.model.module, rows, batch_size=setup.config.batch_size, device=setup.device)
        reencoded = encode_images(setup.model.module, images, batch_size=setup.config.batch_size, device=setup.device)
        reencode_error = (reencoded - rows).norm(dim=1)
    return replace(real, heldout_latents=heldout, regions=regions, reencode_error=reencode_error, cache={})


def _needs(metrics: Sequence[Metric]) -> set[str]:
    return set().union(*(set(m.needs) for m in metrics)) if metrics else set()


def materialise(setup: RunSetup, ladders: LadderSet, needs: set[str], quiet: bool) -> dict[str, dict[str, torch.Tensor]]:
    """Per FakeSide field ('latents', 'images', 'reencoded', 'features'): that field for every pool."""
    from aebench.encoding import decode_latents, encode_images
    from aebench.feature_cache import cache_key, cached_tensor
    from aebench.feature_extractor import extract_features
    from aebench.paths import cache_root

    config, model = setup.config, setup.model
    fields: dict[str, dict[str, torch.Tensor]] = {"latents": dict(ladders.pools)}
    want_features = "features" in needs and setup.extractor is not None
    if not ({"images", "reencoded"} & needs or want_features):
        return fields
    everything = torch.cat(list(ladders.pools.values()))
    images = decode_latents(model.module, everything, batch_size=config.batch_size, device=setup.device,
                            description=None if quiet else "validation: decode")
    sizes = [p.shape[0] for p in ladders.pools.values()]
    fields["images"] = dict(zip(ladders.pools, torch.split(images, sizes)))
    if "reencoded" in needs:
        reencoded = encode_images(model.module, images, batch_size=config.batch_size, device=setup.device)
        fields["reencoded"] = dict(zip(ladders.pools, torch.split(reencoded, sizes)))
    if want_features:
        folder = cache_root(config.cache_dir) / "features"
        extractor = setup.extractor
        fields["features"] = {}

        def run(bar: Any = None, task: Any = None) -> None:
            for name, pool_images in fields["images"].items():
                digest = hashlib.sha256(pool_images.contiguous().numpy().tobytes()).hexdigest()
                key = cache_key(extractor=extractor.identity, images=digest, shape=list(pool_images.shape))
                progress = None if bar is None else (lambda k: bar.advance(task, k))
                value, cached = cached_tensor(folder, key, lambda: extract_features(
                    extractor.module, pool_images, config.batch_size, setup.device, progress=progress))
                if cached and bar is not None:
                    bar.advance(task, pool_images.shape[0])
                fields["features"][name] = value

        if quiet:
            run()
        else:
            from aebench.console import progress_bar

            with progress_bar(transient=True) as bar:
                run(bar, bar.add_task(f"validation: features ({extractor.name})", total=int(images.shape[0])))
    return fields


def score(fake: FakeSide, real: RealSide,
          metrics: Sequence[Metric]) -> tuple[dict[str, tuple[Metric, MetricValue]], dict[str, str]]:
    """Every metric's values for one step through its normal `compute` (key -> (metric, value)), and each
    failing metric's error."""
    available = {"latents"} | {name for name in ("images", "features", "reencoded", "t") if getattr(fake, name) is not None}
    values: dict[str, tuple[Metric, MetricValue]] = {}
    errors: dict[str, str] = {}
    for metric in metrics:
        if not set(metric.needs) <= available:
            continue
        try:
            out = metric.compute(fake, real)
        except Exception as exc:  # a metric that raises is reported as untested, not fatal
            errors[metric.name] = f"{type(exc).__name__}: {exc}"
            continue
        for key, value in out.items():
            if isinstance(value, MetricValue):
                values[key] = (metric, value)
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


def run_validation(setup: RunSetup, metrics: Sequence[Metric], options: ValidationOptions | None = None, *,
                   quiet: bool = False) -> dict[str, Any]:
    """The `validation` section of a results document for this setup and these metric instances."""
    options = options or ValidationOptions()
    options.check()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    seed = setup.real.seed
    base_rows, rest_rows, base_note = choose_base(setup, options.size, seed)
    real = validation_real_side(setup, rest_rows, quiet)
    base = setup.real.heldout_latents[base_rows]
    ladders = build_ladders(base, setup.real.train_latents, setup.stats, steps=options.steps,
                            clusters=options.clusters, ladders=options.ladders, seed=seed)
    timing["setup_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    fields = materialise(setup, ladders, _needs(metrics), quiet)
    timing["decode_features_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    values: dict[str, dict[str, list[float | None]]] = {}  # key -> ladder -> values
    errors: dict[str, dict[str, str]] = {}  # metric -> ladder -> error
    owners: dict[str, tuple[Metric, MetricValue]] = {}
    total = sum(len(ladder.steps) for ladder in ladders.ladders.values())
    done = 0
    for name, ladder in ladders.ladders.items():
        for index, step in enumerate(ladder.steps):
            fake = FakeSide(f"{name}[{index}]", **{f: ladders.gather(step, per_pool) for f, per_pool in fields.items()},
                            seed=seed)
            got, failed = score(fake, real, metrics)
            for metric_name, message in failed.items():
                errors.setdefault(metric_name, {}).setdefault(name, f"step {index}: {message}")
            for key, (metric, value) in got.items():
                owners.setdefault(key, (metric, value))
                series = values.setdefault(key, {}).setdefault(name, [None] * len(ladder.steps))
                series[index] = value.value
            done += 1
            if not quiet:
                err_console.print(f"[dim]validation: {name} step {index + 1}/{len(ladder.steps)} scored "
                                  f"({done}/{total})[/dim]", end="\r")
    if not quiet:
        err_console.print()
    timing["metrics_s"] = time.perf_counter() - t2

    section_metrics: dict[str, Any] = {}
    for key, per_ladder in values.items():
        owner, first = owners[key]
        info = key_info(key, owner, first)
        hib = info["higher_is_better"]
        rate = info.get("unit") == "rate"
        results = {}
        for name, ladder in ladders.ladders.items():
            series = per_ladder.get(name, [None] * len(ladder.steps))
            error = errors.get(owner.name, {}).get(name)
            results[name] = ladder_verdict(series, hib, rate=rate, error=error if None in series else None)
        verdict, trusted = metric_verdict(results, info.get("detects", []), hib)
        section_metrics[key] = {"label": info.get("label", key), "metric": owner.name, "role": info.get("role"),
                                "group": info.get("group"), "unit": info.get("unit"), "higher_is_better": hib,
                                "detects": list(info.get("detects", [])), "ladders": results, "verdict": verdict,
                                "trusted_for": trusted}
    for metric in metrics:  # metrics that never produced a value: say why
        if not any(entry["metric"] == metric.name for entry in section_metrics.values()):
            missing = sorted(set(metric.needs) - set(fields) - {"latents"})
            reason = (f"needs {', '.join(missing)}, not available here" if missing
                      else "; ".join(sorted(set(errors.get(metric.name, {}).values()))) or "produced no value")
            for column in metric.columns or ():
                if column.key.endswith("*"):
                    continue
                section_metrics[column.key] = {
                    "label": column.label, "metric": metric.name, "role": column.role, "group": column.group,
                    "unit": column.unit, "higher_is_better": column.higher_is_better, "detects": list(column.detects),
                    "ladders": {}, "verdict": "untested", "trusted_for": [], "note": reason}
    timing["total_s"] = time.perf_counter() - t0

    n_images = sum(p.shape[0] for p in ladders.pools.values()) if "images" in fields else 0
    settings = {
        "size": int(base_rows.numel()),
        "steps": {name: len(ladder.steps) for name, ladder in ladders.ladders.items()},
        "extractor": setup.extractor.name if setup.extractor is not None and "features" in fields else None,
        "seed": seed,
        "holds_at": HOLDS_AT,
        "flat_below": FLAT_BELOW,
        "clusters": options.clusters,
        **base_note,
        **ladders.settings,
        "pools": {name: int(p.shape[0]) for name, p in ladders.pools.items()},
        "images_decoded": n_images,
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    return {
        "settings": settings,
        "ladders": {name: {"param": ladder.param, "levels": ladder.levels} for name, ladder in ladders.ladders.items()},
        "metrics": section_metrics,
        "uncovered": uncovered(section_metrics, ladders.ladders),
    }



def add_validation(doc: dict[str, Any], setup: RunSetup, metrics: Sequence[Metric], out: Path,
                   options: ValidationOptions | None = None, *, figures: bool = True, quiet: bool = False) -> dict[str, Any]:
    """Run the ladders, store the section as `doc["validation"]` and draw its plot under `out/figures`."""
    section = run_validation(setup, metrics, options, quiet=quiet)
    if figures:
        from aebench.reports.validation_plot import ladder_plot
        from aebench.runner import FIGURE_DIR

        dataset = (doc.get("dataset") or {}).get("name") or setup.config.dataset or "latents"
        path = ladder_plot(section, Path(out) / FIGURE_DIR / FIGURE_NAME,
                           title=f"Known-answer ladders on {dataset} ({section['settings']['size']} points, "
                                 f"features: {section['settings']['extractor'] or 'none'})")
        section["figure"] = str(path.relative_to(out))
    doc["validation"] = section
    return section


def validate_benchmark(config: Any, options: ValidationOptions | None = None, *, quiet: bool = False) -> dict[str, Any]:
    """`aebench validate`: the run's setup and provenance, no samplers, and the validation section;
    results.json written to config.out (a results document the rest of aebench reads)."""
    from aebench.io import ensure_writable_dir
    from aebench.plugins import get_registry
    from aebench.results import now, write_results
    from aebench.runner import _document

    options = options or ValidationOptions.from_dict(config.validation)
    options.check()
    out = ensure_writable_dir(config.out, "--out folder")
    results_path = out / "results.json"
    if results_path.exists():  # never leave an older complete file that could be mistaken for this one
        results_path.unlink()
    setup = prepare(config, quiet=quiet)
    registry = get_registry("metric")
    metrics = [registry.get(name)(config.metric_options.get(name, {})) for name in config.metrics]
    doc = _document(setup)
    doc["config"]["validation"] = options.to_dict()
    section = add_validation(doc, setup, metrics, out, options, figures=config.figures, quiet=quiet)
    from aebench.runner import metric_info_entry

    for key, entry in section["metrics"].items():  # what each key means, from its metric's declaration
        producer = next((m for m in metrics if type(m).column(key) is not None), None)
        doc["metric_info"].setdefault(key, metric_info_entry(key, producer, entry.get("higher_is_better")))
    doc["status"] = "complete"
    doc["finished"] = now()
    write_results(doc, out)
    return doc
