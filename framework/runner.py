"""The runner: for each cell (sampler x seed) fit, sample, decode, re-encode, extract features and
score; then aggregate over seeds, draw the pictures and write results after every sampler.

A sampler (or metric) that raises, or returns NaN/Inf, is recorded as failed with its error and the
other samplers still run. Cells are small and independent, so they could later run elsewhere.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import torch

from aebench.console import err_console
from aebench.errors import AebenchError
from aebench.io import output_folder
from aebench.metric import FakeSide, Metric, MetricValue
from aebench.options import options_to_dict
from aebench.plugins import get_registry
from aebench.results import SCHEMA, aggregate, environment, now, write_results
from aebench.results_schema import MetricInfo, neutral_info
from aebench.run_config import RunConfig, SamplerSpec
from aebench.run_folder import FIGURE_DIR, check_previous_run, clear_previous_run
from aebench.run_setup import RunSetup, finite_or_raise, prepare


def run_benchmark(config: RunConfig, *, quiet: bool = False, force: bool = False) -> dict[str, Any]:
    """Run every sampler of `config`; returns the results document (also written to config.out).

    A complete earlier run in config.out is refused unless `force` (checked before any work); an
    earlier run's files are removed only once this run's setup has succeeded. If the setup fails, an
    --out folder this call created is removed again. Runs with `config.threads` CPU threads (restored
    afterwards)."""
    from aebench.threads import thread_limit

    check_previous_run(config.out, force)
    with thread_limit(config.threads) as threads:
        return _run_benchmark(config, quiet, threads)


def _run_benchmark(config: RunConfig, quiet: bool, threads: int) -> dict[str, Any]:
    with output_folder(config.out, "--out folder") as out:
        setup = prepare(config, quiet=quiet)
        metrics = _build_metrics(config)
        clear_previous_run(out)
        doc = _document(setup)
        # backoffs: every out-of-memory retry (the same list the setup appends to, so each write has them)
        doc["environment"].update(threads=threads, precision=config.precision, batch_size=setup.batch_size,
                                  feature_batch_size=setup.feature_batch_size if setup.extractor is not None else None,
                                  backoffs=setup.backoffs)
        write_results(doc, out)

    producers: dict[str, Metric] = {}  # metric key -> the metric that returned it
    for row in setup.references:
        values, errors = _score(row, setup, metrics, producers)
        doc["references"].append(_row(row.name, "reference", len(row.latents), [setup.real.seed], values, errors))
        _note_metric_info(doc, values, producers)
    write_results(doc, out)

    # the known-answer ladders, scored by the same metric instances; before the samplers, so a bad setting fails fast
    if config.validation is not None:
        from aebench.validation.run import ValidationOptions, add_validation

        add_validation(doc, setup, metrics, out, ValidationOptions.from_dict(config.validation),
                       figures=config.figures, quiet=quiet)
        write_results(doc, out)

    for spec in config.samplers:
        row = _run_sampler(spec, setup, metrics, out, quiet, producers)
        doc["samplers"].append(row)
        _note_metric_info(doc, {key: entry.get("higher_is_better") for key, entry in row["metrics"].items()}, producers)
        write_results(doc, out)

    doc["status"] = "complete"
    doc["finished"] = now()
    write_results(doc, out)
    return doc


def _build_metrics(config: RunConfig) -> list[Metric]:
    registry = get_registry("metric")
    return [registry.get(name)(config.metric_options.get(name, {})) for name in config.metrics]


def _document(setup: RunSetup) -> dict[str, Any]:
    config, model, dataset = setup.config, setup.model, setup.dataset
    sidecar = model.config or {}
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "status": "running",
        "created": now(),
        "finished": None,
        "environment": environment(setup.device),
        "config": config.to_dict(),
        "dataset": None,
        "model": {
            "checksum": model.checksum,
            "path": str(model.path) if model.path else None,
            "latent_dim": model.latent_dim,
            "architecture": sidecar.get("architecture"),
            "heldout_mse": (sidecar.get("metrics") or {}).get("heldout_mse", sidecar.get("heldout_mse")),
            "baseline_mse": (sidecar.get("metrics") or {}).get("baseline_mse", sidecar.get("baseline_mse")),
        },
        "stats": setup.stats.to_dict(),
        "features": None,
        "regions": setup.region_report,
        "metric_info": {},
        "references": [],
        "samplers": [],
    }
    if dataset is not None:
        doc["dataset"] = {"name": dataset.name, "options": dataset.options, "fingerprint": dataset.fingerprint(),
                          "n_train": int(dataset.train_index.numel()), "n_heldout": int(dataset.heldout_index.numel()),
                          "image_shape": list(dataset.image_shape), "citation": dataset.citation}
    if setup.extractor is not None:
        doc["features"] = {"extractor": setup.extractor.name, "identity": setup.extractor.identity,
                           "judge": setup.extractor.judge, "reference": setup.real.reference,
                           "n_real": int(setup.real.features.shape[0]),
                           "recon_reference": dict(setup.real.recon_info) or None,
                           # features (and so FID & co) depend on where and in what precision they were made
                           "device": setup.device.type, "precision": config.precision}
    return doc


def _run_sampler(spec: SamplerSpec, setup: RunSetup, metrics: list[Metric], out: Path, quiet: bool,
                 producers: dict[str, Metric]) -> dict[str, Any]:
    from aebench import image_pipeline

    config, real = setup.config, setup.real
    cls = get_registry("sampler").get(spec.name)
    per_seed: list[dict[str, MetricValue]] = []
    errors: list[str] = []
    timing: dict[str, float] = {}
    along_t: dict[str, Any] = {}
    figures: dict[str, str] = {}
    options: dict[str, Any] = dict(spec.options)
    is_path = bool(cls.is_path_sampler)
    fit_info: dict[str, Any] | None = None
    for seed in config.seeds:
        t0 = time.perf_counter()
        stage = "fit"
        try:  # the sampler, decoding and features: a failure (out of memory included) fails this row only
            sampler = cls(spec.options)
            options = options_to_dict(sampler.options)
            sampler.fit(real.train_latents, real.stats)
            if fit_info is None:  # what the fit learned (e.g. a GMM's collapse fallback), from the first seed
                fit_info = dict(getattr(sampler, "fit_info", None) or {})
            t1 = time.perf_counter()
            stage = "sample"
            samples = sampler.sample(config.n, torch.Generator().manual_seed(seed), device="cpu")
            finite_or_raise(samples.latents, spec.label)
            t2 = time.perf_counter()
            fake = FakeSide(spec.label, samples.latents, samples.path, samples.t, seed=seed)
            stage = "decode"
            fake.images = image_pipeline.decode(setup, fake.latents, None if quiet else f"{spec.label} (seed {seed}): decode",
                                                quiet=quiet)
            t3 = time.perf_counter()
            if any("reencoded" in m.needs for m in metrics):
                stage = "re-encode"
                fake.reencoded = image_pipeline.reencode(setup, fake.images, quiet=quiet)
            if setup.extractor is not None:
                stage = "features"
                fake.features = image_pipeline.features(setup, fake.images, f"{fake.name}: features ({setup.extractor.name})",
                                                        quiet=quiet)
            t4 = time.perf_counter()
        except AebenchError as exc:
            errors.append(f"seed {seed}: {exc}")
            break
        except Exception as exc:  # a plugin that raises, or a decode/feature step that fails, is recorded
            errors.append(f"seed {seed}: {stage}: {type(exc).__name__}: {exc}")
            if not quiet:
                err_console.print(f"[red]{spec.label} failed in {stage}:[/red] {type(exc).__name__}: {exc}")
                err_console.print(f"[dim]{traceback.format_exc(limit=3)}[/dim]")
            break
        values, metric_errors = _score(fake, setup, metrics, producers)
        errors += [f"seed {seed}: {e}" for e in metric_errors]
        per_seed.append(values)
        t5 = time.perf_counter()
        _accumulate(timing, fit_s=t1 - t0, sample_s=t2 - t1, decode_s=t3 - t2, features_s=t4 - t3, metrics_s=t5 - t4)
        if seed == config.seeds[0]:
            if is_path and fake.t is not None:
                along_t = _along_t(setup, fake)
            if config.figures:
                figures = _draw(setup, sampler, fake, along_t, out, spec.label)
    n_done = max(1, len(per_seed))
    timing = {k: v / n_done for k, v in timing.items()}
    timing["total_s"] = sum(timing.values())
    row = _row(spec.label, "sampler", config.n, config.seeds[:len(per_seed)] or config.seeds, per_seed, errors)
    row.update(sampler=spec.name, options=options, is_path_sampler=is_path, along_t=along_t, timing=timing,
               figures=figures, fit_info=fit_info or {})
    if not quiet:
        status = "[red]failed[/red]" if errors else "[green]done[/green]"
        err_console.print(f"{spec.label}: {status} in {timing['total_s']:.1f} s")
    return row


def _row(name: str, kind: str, n: int, seeds: list[int], per_seed: Any, errors: list[str]) -> dict[str, Any]:
    if isinstance(per_seed, dict):
        per_seed = [per_seed]
    row: dict[str, Any] = {"name": name, "kind": kind, "status": "failed" if errors else "ok", "n": n,
                           "seeds": list(seeds), "metrics": aggregate(per_seed) if per_seed else {}}
    if errors:
        row["error"] = "; ".join(errors)
    return row


def _score(fake: FakeSide, setup: RunSetup, metrics: list[Metric],
           producers: dict[str, Metric]) -> tuple[dict[str, MetricValue], list[str]]:
    """Every metric's values for one set of samples; `producers` learns which metric made each key."""
    values: dict[str, MetricValue] = {}
    errors: list[str] = []
    available = {"latents", "images" if fake.images is not None else "", "features" if fake.features is not None else "",
                 "reencoded" if fake.reencoded is not None else "", "t" if fake.t is not None else ""}
    for metric in metrics:
        if not set(metric.needs) <= available:
            continue
        try:
            out = metric.compute(fake, setup.real)
        except Exception as exc:  # a metric plugin that raises fails this row, not the run
            errors.append(f"metric '{metric.name}': {type(exc).__name__}: {exc}")
            continue
        for key, value in out.items():
            if not isinstance(value, MetricValue):
                errors.append(f"metric '{metric.name}' returned {type(value).__name__} for '{key}', not MetricValue")
                continue
            values[key] = value
            producers.setdefault(key, metric)
    return values, errors


def _along_t(setup: RunSetup, fake: FakeSide) -> dict[str, Any]:
    from aebench.metrics.latent import hit_rate_along_t

    return {name: [list(map(float, x[:2])) + [int(x[2])] for x in hit_rate_along_t(region, fake.latents, fake.t)]
            for name, region in setup.real.regions.items()}


def _draw(setup: RunSetup, sampler: Any, fake: FakeSide, along_t: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    from aebench.reports import figures as fig

    folder = out / FIGURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    made: dict[str, str] = {}
    # a labelled variant names its base sampler too: "plane_conditional (plane_paths)"
    name = label if sampler.name == label else f"{label} ({sampler.name})"
    seed = f"seed {fake.seed}"
    made["grid"] = fig.sample_grid(fake.images, folder / f"{safe}_grid.png", title=f"{name}, {seed}")
    if fake.path is not None and fake.t is not None:
        made["strips"] = fig.path_strips(fake.images, fake.path, fake.t, folder / f"{safe}_strips.png",
                                         labels=getattr(sampler, "path_labels", None),
                                         title=f"{name}: decoded images along each path ({seed})")
    axes = getattr(sampler, "plot_axes", None) or tuple(int(a) for a in setup.stats.dominant[:2].tolist())
    made["scatter"] = fig.latent_scatter(setup.real.train_latents, fake.latents, tuple(axes), setup.stats.mean,
                                         folder / f"{safe}_scatter.png",
                                         title=f"{name}: latent components {axes[0]} and {axes[1]} ({seed})")
    if along_t:
        made["along_t"] = fig.hits_along_t(along_t, folder / f"{safe}_along_t.png", target=setup.config.target,
                                           title=f"{name}: share of points inside each region along the path")
    return {k: str(Path(v).relative_to(out)) for k, v in made.items()}


def _accumulate(timing: dict[str, float], **values: float) -> None:
    for k, v in values.items():
        timing[k] = timing.get(k, 0.0) + v


def _note_metric_info(doc: dict[str, Any], values: dict[str, Any], producers: dict[str, Metric]) -> None:
    """Add the metric_info entry of every key not seen before. `values` maps keys to MetricValues or
    to their direction."""
    for key, value in values.items():
        if key in doc["metric_info"]:
            continue
        hib = value.higher_is_better if isinstance(value, MetricValue) else value
        doc["metric_info"][key] = metric_info_entry(key, producers.get(key), hib)


def metric_info_entry(key: str, metric: Metric | None, higher_is_better: bool | None) -> MetricInfo:
    """What `key` means, from the declaration of the metric that produced it. A key the metric did not
    declare gets a neutral entry (its own name, group 'other', role 'info': shown, never ranked) and
    a warning that tells the metric's author what to add."""
    name = metric.name if metric is not None else None
    column = type(metric).column(key) if metric is not None else None
    if column is None:
        err_console.print(
            f"[yellow]warning:[/yellow] metric {name!r} returned {key!r} without declaring it in `columns`; "
            "it is shown as information and never ranks samplers. Declare a Column for it.",
            highlight=False, soft_wrap=True,
        )
        return neutral_info(key, higher_is_better, name)
    entry: MetricInfo = {**column.for_key(key), "metric": name, "declared": True}  # type: ignore[typeddict-item]
    return entry
