"""The runner: resolve the plan, build the real side once, score the reference rows, then hand the
(sampler, seed) cells to an executor (`aebench.executors`: local or dask) and assemble the results
document from the cell results in the plan's order, writing it after every fit and cell.

A sampler (or metric) that raises, or returns NaN/Inf, is recorded as failed with its error and the
other cells still run. `resume` reuses the finished cells of an interrupted run of the same plan (its
hash is in the document) and computes only the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aebench.errors import AebenchError, OptionError
from aebench.infra.console import err_console
from aebench.infra.io import output_folder
from aebench.metric import Metric, MetricValue
from aebench.results.document import aggregate, environment, now, write_results
from aebench.results.schema import SCHEMA, MetricInfo, neutral_info
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, score
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.folder import FIGURE_DIR, RESULTS_NAME, check_previous_run, clear_previous_run, previous_status  # noqa: F401
from aebench.run.plan import RunPlan, plan_summary, resolve_plan
from aebench.run.setup import RunSetup, prepare


def run_benchmark(config: RunConfig, *, quiet: bool = False, force: bool = False, resume: bool = False,
                  executor: Any = None) -> dict[str, Any]:
    """Run every cell of `config`'s plan; returns the results document (also written to config.out).

    A complete earlier run in config.out is refused unless `force` or `resume` (checked before any
    work); `resume` reuses the finished cells of an earlier run of the same plan there (and refuses a
    different plan). An earlier run's files are removed only once this run's setup has succeeded (never
    with `resume`). If the setup fails, an --out folder this call created is removed again. `executor`
    (default: local, in this process) runs the cells; see `aebench.executors`. Runs with
    `config.threads` CPU threads (restored afterwards)."""
    from aebench.executors import make_executor
    from aebench.infra.threads import thread_limit

    if force and resume:
        raise OptionError("Give either --force (start afresh) or --resume (keep the finished cells), not both.")
    plan = resolve_plan(config)
    previous = previous_cells(plan) if resume else None
    if previous is None:
        check_previous_run(plan.config.out, force or resume)
    executor = executor if executor is not None else make_executor("local")
    with thread_limit(plan.config.threads) as threads:
        return _run_benchmark(plan, quiet, threads, executor, previous)


def previous_cells(plan: RunPlan) -> dict[str, Any] | None:
    """The earlier run in the plan's --out folder for --resume: None when there is none; refused when
    it is another plan's or not a results document."""
    path = Path(plan.config.out) / RESULTS_NAME
    status = previous_status(plan.config.out)
    if status is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8")) if status != "unreadable" else None
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        raise AebenchError(f"--resume: {path} is not a results document aebench can read; drop --resume "
                           f"(with --force to replace it) or use --out NEW_FOLDER.")
    old = (doc.get("plan") or {}).get("hash")
    if old != plan.hash:
        raise AebenchError(
            f"--resume: {path} holds a run of a different plan (hash {old or 'none'}, this one {plan.hash}): "
            f"its settings (samplers, seeds, n, metrics, model, ...) differ. Resume with the same settings, or "
            f"start afresh with --force, or use --out NEW_FOLDER."
        )
    return doc


def _run_benchmark(plan: RunPlan, quiet: bool, threads: int, executor: Any,
                   previous: dict[str, Any] | None) -> dict[str, Any]:
    config = plan.config
    with output_folder(config.out, "--out folder") as out:
        setup = prepare(plan, quiet=quiet)
        metrics = build_metrics(config)
        if previous is None:
            clear_previous_run(out)
        doc = _document(setup)
        doc["plan"] = plan_summary(plan)
        # backoffs: every out-of-memory retry (the same list the setup appends to, so each write has them)
        doc["environment"].update(threads=threads, precision=config.precision, batch_size=setup.batch_size,
                                  feature_batch_size=setup.feature_batch_size if setup.extractor is not None else None,
                                  backoffs=setup.backoffs)
        write_results(doc, out)

    by_name = {m.name: m for m in metrics}
    producers: dict[str, Metric] = {}  # metric key -> the metric that returned it
    for row in setup.references:
        values, names, errors = score(row, setup, metrics)
        producers.update({k: by_name[v] for k, v in names.items() if k not in producers})
        doc["references"].append(_row(row.name, "reference", len(row.latents), [setup.real.seed], values, errors))
        _note_metric_info(doc, values, producers)
    write_results(doc, out)

    # the known-answer ladders, scored by the same metric instances; before the samplers, so a bad setting fails fast
    if config.validation is not None:
        from aebench.validation.run import ValidationOptions, add_validation

        add_validation(doc, setup, metrics, out, ValidationOptions.from_dict(config.validation),
                       figures=config.figures, quiet=quiet)
        write_results(doc, out)

    book = CellBook(plan, doc, producers, by_name)
    if previous is not None:
        book.reuse(previous)
    work = book.missing()
    doc["plan"]["cells_reused"] = book.reused
    doc["plan"]["cells_computed"] = sum(len(seeds) for _, seeds in work)
    doc["plan"]["executor"] = executor.name
    book.assemble()
    write_results(doc, out)

    def on_fit(fit: FitResult) -> None:
        book.fits[fit.label] = fit.summary()
        book.assemble()
        write_results(doc, out)

    def on_cell(cell: CellResult) -> None:
        book.cells[(cell.sampler, cell.seed)] = cell
        setup.backoffs.extend(cell.backoffs)  # the list doc["environment"]["backoffs"] holds
        book.assemble()
        write_results(doc, out)
        if not quiet:
            status = "[red]failed[/red]" if not cell.ok else "[green]done[/green]"
            err_console.print(f"{cell.sampler} (seed {cell.seed}): {status}")

    if work:
        executor.run(setup, work, CellOptions(str(out), config.figures, plan.seeds[0], quiet), on_fit, on_cell)
    missing = book.missing()
    if missing:  # an executor that lost cells without reporting them: never call the run complete
        raise AebenchError(f"The {executor.name} executor returned no result for "
                           f"{sum(len(s) for _, s in missing)} cell(s); run again with --resume.")

    doc["status"] = "complete"
    doc["finished"] = now()
    write_results(doc, out)
    return doc


class CellBook:
    """The finished fits and cells of a run, and the document's `fits`, `cells` and sampler rows built
    from them in the plan's order (samplers as listed, seeds as given): the same document whatever order
    the cells finish in. A sampler's row appears once all its cells are done."""

    def __init__(self, plan: RunPlan, doc: dict[str, Any], producers: dict[str, Metric], by_name: dict[str, Metric]):
        self.plan, self.doc, self.producers, self.by_name = plan, doc, producers, by_name
        self.fits: dict[str, dict[str, Any]] = {}
        self.cells: dict[tuple[str, int], CellResult] = {}
        self.reused = 0
        self.base_info = dict(doc["metric_info"])  # the reference rows' (and validation's) keys come first
        self.info_cache: dict[str, MetricInfo] = {}

    def reuse(self, previous: dict[str, Any]) -> None:
        """Keep the earlier run's successful cells (failed ones run again) and its fit summaries."""
        wanted = set(self.plan.cells())
        for i, data in enumerate(previous.get("cells") or []):
            try:
                cell = CellResult.from_dict(data)
                cell.metric_values()
            except (TypeError, AttributeError) as exc:
                raise AebenchError(f"--resume: cell entry {i} of the earlier results.json is damaged ({exc}); "
                                   f"start afresh with --force.") from None
            if (cell.sampler, cell.seed) in wanted and cell.ok:
                self.cells[(cell.sampler, cell.seed)] = cell
        self.reused = len(self.cells)
        for label, fit in (previous.get("fits") or {}).items():
            if any(key[0] == label for key in self.cells):
                self.fits[label] = fit

    def missing(self) -> list[tuple[SamplerSpec, list[int]]]:
        work = []
        for spec in self.plan.samplers:
            seeds = [seed for seed in self.plan.seeds if (spec.label, seed) not in self.cells]
            if seeds:
                work.append((spec, seeds))
        return work

    def assemble(self) -> None:
        doc = self.doc
        doc["fits"] = {spec.label: self.fits[spec.label] for spec in self.plan.samplers if spec.label in self.fits}
        doc["cells"] = [self.cells[key].to_dict() for key in self.plan.cells() if key in self.cells]
        doc["samplers"] = []
        doc["metric_info"] = dict(self.base_info)
        for spec in self.plan.samplers:
            cells = [self.cells.get((spec.label, seed)) for seed in self.plan.seeds]
            if any(c is None for c in cells):
                continue
            row = self._sampler_row(spec, cells)  # type: ignore[arg-type]
            doc["samplers"].append(row)
            for key, entry in row["metrics"].items():
                if key not in doc["metric_info"]:
                    if key not in self.info_cache:
                        self.info_cache[key] = metric_info_entry(key, self.producers.get(key),
                                                                 entry.get("higher_is_better"))
                    doc["metric_info"][key] = self.info_cache[key]

    def _sampler_row(self, spec: SamplerSpec, cells: list[CellResult]) -> dict[str, Any]:
        from aebench.plugins import get_registry

        for cell in cells:
            for key, name in cell.producers.items():
                if key not in self.producers and name in self.by_name:
                    self.producers[key] = self.by_name[name]
        fit = self.fits.get(spec.label) or {}
        scored = [c for c in cells if c.values and not c.error]
        errors = [c.error for c in cells if c.error]
        timing: dict[str, float] = {}
        for cell in scored:
            for k, v in cell.timing.items():
                timing[k] = timing.get(k, 0.0) + v / len(scored)
        timing = {"fit_s": float((fit.get("timing") or {}).get("fit_s") or 0.0), **timing}
        timing["total_s"] = sum(timing.values())
        first = cells[0]
        row = _row(spec.label, "sampler", self.plan.config.n, [c.seed for c in scored] or self.plan.seeds,
                   [c.metric_values() for c in scored], errors)
        row.update(sampler=spec.name, options=fit.get("options") or dict(spec.options),
                   is_path_sampler=bool(get_registry("sampler").get(spec.name).is_path_sampler),
                   along_t=first.along_t, timing=timing, figures=first.figures, fit_info=fit.get("fit_info") or {})
        return row


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
        if setup.extractor.provenance:  # e.g. the domain judge's checksum, held-out accuracy, training data
            doc["features"]["provenance"] = setup.extractor.provenance
    return doc


def _row(name: str, kind: str, n: int, seeds: list[int], per_seed: Any, errors: list[str]) -> dict[str, Any]:
    if isinstance(per_seed, dict):
        per_seed = [per_seed]
    row: dict[str, Any] = {"name": name, "kind": kind, "status": "failed" if errors else "ok", "n": n,
                           "seeds": list(seeds), "metrics": aggregate(per_seed) if per_seed else {}}
    if errors:
        row["error"] = "; ".join(errors)
    return row


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
