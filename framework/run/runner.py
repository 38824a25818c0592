"""The runner: resolve the plan, build the real side once, score the reference rows, then hand the
(sampler, seed) cells to an executor (`aebench.executors`: local or dask) and assemble the results
document from the cell results in the plan's order, writing it after every fit and cell.

A sampler (or metric) that raises, or returns NaN/Inf, is recorded as failed with its error and the
other cells still run. `resume` reuses the finished cells of an interrupted run of the same plan (its
hash is in the document) and computes only the rest. A run stopped by Ctrl-C, SIGTERM or a lost
Dask scheduler is marked "interrupted" with its finished cells (`aebench.run.interrupt`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, cast

from aebench.errors import AebenchError, OptionError
from aebench.infra.console import err_console
from aebench.infra.io import output_folder
from aebench.metric import Metric
from aebench.results.document import (
    metric_info_entry,
    new_document,
    note_metric_info,
    now,
    reference_row,
    sampler_row,
    write_results,
)
from aebench.results.schema import FitRecord, MetricInfo, ResultsDocument, Row, ThreadChoiceRecord
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, score
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.folder import FIGURE_DIR, RESULTS_NAME, check_previous_run, clear_previous_run, previous_status  # noqa: F401
from aebench.run.interrupt import RunStopped, Terminated, interrupted
from aebench.run.pictures import PictureDrawers
from aebench.run.plan import RunPlan, plan_summary, resolve_plan
from aebench.run.racing import Budget, Race
from aebench.run.setup import prepare
from aebench.verdict.decision import Decision
from aebench.verdict.ranking import judge


def run_benchmark(config: RunConfig, *, quiet: bool = False, force: bool = False, resume: bool = False,
                  executor: Any = None) -> ResultsDocument:
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
    if resume and previous is None:  # say so rather than silently start afresh
        from aebench.run.folder import fresh_start_notice

        err_console.print(fresh_start_notice(plan.config.out), markup=False, soft_wrap=True, highlight=False)
    if previous is None:
        check_previous_run(plan.config.out, force or resume)
    executor = executor if executor is not None else make_executor("local")
    with thread_limit(plan.config.threads) as threads:
        try:
            return _run_benchmark(plan, quiet, threads, executor, previous)
        except (KeyboardInterrupt, Terminated, RunStopped) as exc:  # keep what finished; say how to resume
            raise interrupted(exc, plan.config.out, plan.hash) from None


def previous_cells(plan: RunPlan) -> ResultsDocument | None:
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
    return cast(ResultsDocument, doc)


def _run_benchmark(plan: RunPlan, quiet: bool, threads: int, executor: Any,
                   previous: ResultsDocument | None) -> ResultsDocument:
    from aebench.infra.threads import threads_record

    config = plan.config
    with output_folder(config.out, "--out folder") as out:
        setup = prepare(plan, quiet=quiet)
        metrics = build_metrics(config)
        if previous is None:
            clear_previous_run(out)
        doc = new_document(setup)
        doc["plan"] = plan_summary(plan)
        # backoffs: every out-of-memory retry (the same list the setup appends to, so each write has them)
        doc["environment"].update({
            "threads": threads, "precision": config.precision, "batch_size": setup.batch_size,
            "feature_batch_size": setup.feature_batch_size if setup.extractor is not None else None,
            "backoffs": setup.backoffs})  # type: ignore[typeddict-item]
        # why that many threads; the same `changes` list the re-checks before feature extraction append to
        doc["environment"]["threads_choice"] = cast("ThreadChoiceRecord | None", threads_record())
        write_results(doc, out)

    by_name = {m.name: m for m in metrics}
    producers: dict[str, Metric] = {}  # metric key -> the metric that returned it
    for row in setup.references:
        values, names, errors = score(row, setup, metrics)
        producers.update({k: by_name[v] for k, v in names.items() if k not in producers})
        doc["references"].append(reference_row(row.name, len(row.latents), [setup.real.seed], values, errors))
        note_metric_info(doc, values, producers)
    write_results(doc, out)

    if config.figures:  # the explorer's planes: decoded once per run, every sampler's points land on them
        from aebench.run.pictures import explorer_planes

        doc["explorer"] = explorer_planes(setup, out, picture_drawers(), quiet)
        write_results(doc, out)

    # the known-answer ladders, scored by the same metric instances; before the samplers, so a bad setting fails fast
    if config.validation is not None:
        from aebench.validation.ladders import ValidationOptions
        from aebench.validation.run import add_validation

        add_validation(doc, setup, metrics, out, ValidationOptions.from_dict(config.validation),
                       figures=config.figures, quiet=quiet)
        write_results(doc, out)

    race = Race(Budget.parse(config.budget), int(config.n), plan.seeds[0],
                {spec.label: list(plan.seeds) for spec in plan.samplers}) if config.decide else None
    book = CellBook(plan, doc, producers, by_name, race.schedule if race is not None else None)
    if previous is not None:
        book.reuse(previous)
    work = book.missing()
    doc["plan"]["cells_reused"] = book.reused
    doc["plan"]["cells_computed"] = 0
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

    # the cells compute; the reports draw (cells never import the reports)
    from aebench.reports.figures import cell_figures

    options = CellOptions(str(out), cell_figures if config.figures else None, plan.seeds[0], quiet,
                          picture_drawers() if config.figures else None)
    try:
        round_samplers = [spec.label for spec in plan.samplers]
        added = len(book.scheduled())  # the first round: every planned cell
        while True:
            started = time.perf_counter()
            if work:
                doc["plan"]["cells_computed"] += sum(len(seeds) for _, seeds in work)
                executor.run(setup, work, options, on_fit, on_cell)
            missing = book.missing()
            if missing:  # an executor that lost cells without reporting them: never call the run complete
                raise AebenchError(f"The {executor.name} executor returned no result for "
                                   f"{sum(len(s) for _, s in missing)} cell(s); run again with --resume.")
            if race is None:
                break
            decision = judge(doc).decision or Decision("none", [], [], [])
            race.record(decision, added, time.perf_counter() - started, round_samplers)
            new = race.next_round(decision)
            book.left = dict(race.left)
            doc["race"] = race.summary(decision)
            book.assemble()
            write_results(doc, out)
            if new is None:
                break
            if not quiet:
                err_console.print(f"round {len(race.rounds) + 1}: {len(decision.contenders)} sampler(s) can still be "
                                  f"first; {race.rounds[-1].open_pairs} pair(s) open among them, so more seeds for "
                                  f"{', '.join(new)}")
            round_samplers = list(new)
            added = sum(len(seeds) for seeds in new.values())
            race.extend(new)
            work = book.missing()
            doc["plan"]["cells_reused"] = book.reused
            book.assemble()
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()

    if "judges" in doc:  # several extractors: do their rankings agree? (aebench.verdict.agreement)
        from aebench.verdict.agreement import agreement_records

        doc["judges"]["agreement"] = agreement_records(doc)
    doc["status"] = "complete"
    doc["finished"] = now()
    write_results(doc, out)
    return doc


def picture_drawers() -> PictureDrawers:
    """The reports' drawers of the memorisation gallery and the explorer's sprites, handed to the cells and
    to `explorer_planes` (the run computes, the reports draw)."""
    from aebench.reports.pictures import copies_gallery, sprite_stride, tile_sprite

    return PictureDrawers(tile_sprite=tile_sprite, sprite_stride=sprite_stride, copies_gallery=copies_gallery)


class CellBook:
    """The finished fits and cells of a run, and the document's `fits`, `cells` and sampler rows built
    from them in the plan's order (samplers as listed, seeds as given): the same document whatever order
    the cells finish in. A sampler's row appears once all its cells are done."""

    def __init__(self, plan: RunPlan, doc: ResultsDocument, producers: dict[str, Metric], by_name: dict[str, Metric],
                 schedule: dict[str, list[int]] | None = None):
        self.plan, self.doc, self.producers, self.by_name = plan, doc, producers, by_name
        # each sampler's seeds: the plan's for every sampler, unless racing rounds give some more (the dict
        # is the race's own, so seeds it adds show up here)
        self.schedule = schedule if schedule is not None else {spec.label: list(plan.seeds) for spec in plan.samplers}
        self.left: dict[str, int] = {}  # sampler -> the racing round after which it got no more seeds
        self.fits: dict[str, FitRecord] = {}
        self.cells: dict[tuple[str, int], CellResult] = {}
        self.spare: dict[tuple[str, int], CellResult] = {}  # resumed cells of rounds not (yet) scheduled
        self.reused = 0
        self.base_info = dict(doc["metric_info"])  # the reference rows' (and validation's) keys come first
        self.info_cache: dict[str, MetricInfo] = {}

    def reuse(self, previous: ResultsDocument) -> None:
        """Keep the earlier run's successful cells (failed ones run again) and its fit summaries. Cells of
        racing rounds beyond the schedule wait in `spare` until a round asks for them."""
        labels = {spec.label for spec in self.plan.samplers}
        for i, data in enumerate(previous.get("cells") or []):
            try:
                cell = CellResult.from_dict(data)
                cell.metric_values()
            except (TypeError, AttributeError) as exc:
                raise AebenchError(f"--resume: cell entry {i} of the earlier results.json is damaged ({exc}); "
                                   f"start afresh with --force.") from None
            if cell.sampler in labels and cell.ok:
                self.spare[(cell.sampler, cell.seed)] = cell
        self._take_spare()
        for label, fit in (previous.get("fits") or {}).items():
            if any(key[0] == label for key in [*self.cells, *self.spare]):
                self.fits[label] = fit

    def _take_spare(self) -> None:
        for key in self.scheduled():
            if key in self.spare and key not in self.cells:
                self.cells[key] = self.spare.pop(key)
                self.reused += 1

    def scheduled(self) -> list[tuple[str, int]]:
        """Every scheduled (sampler label, seed), in the document's order: samplers as listed, seeds as given."""
        return [(spec.label, seed) for spec in self.plan.samplers for seed in self.schedule.get(spec.label, [])]

    def missing(self) -> list[tuple[SamplerSpec, list[int]]]:
        self._take_spare()
        work = []
        for spec in self.plan.samplers:
            seeds = [seed for seed in self.schedule.get(spec.label, []) if (spec.label, seed) not in self.cells]
            if seeds:
                work.append((spec, seeds))
        return work

    def assemble(self) -> None:
        doc = self.doc
        doc["fits"] = {spec.label: self.fits[spec.label] for spec in self.plan.samplers if spec.label in self.fits}
        doc["cells"] = [self.cells[key].to_dict() for key in self.scheduled() if key in self.cells]
        doc["samplers"] = []
        doc["metric_info"] = dict(self.base_info)
        for spec in self.plan.samplers:
            cells = [self.cells.get((spec.label, seed)) for seed in self.schedule.get(spec.label, [])]
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

    def _sampler_row(self, spec: SamplerSpec, cells: list[CellResult]) -> Row:
        from aebench.plugins import get_registry

        for cell in cells:
            for key, name in cell.producers.items():
                if key not in self.producers and name in self.by_name:
                    self.producers[key] = self.by_name[name]
        fit: Mapping[str, Any] = self.fits[spec.label] if spec.label in self.fits else {}
        scored = [c for c in cells if c.values and not c.error]
        errors = [c.error for c in cells if c.error]
        timing: dict[str, float] = {}
        for cell in scored:
            for k, v in cell.timing.items():
                timing[k] = timing.get(k, 0.0) + v / len(scored)
        timing = {"fit_s": float((fit.get("timing") or {}).get("fit_s") or 0.0), **timing}
        timing["total_s"] = sum(timing.values())
        first = cells[0]
        row = sampler_row(spec.label, spec.name, self.plan.config.n,
                          [c.seed for c in scored] or self.schedule[spec.label], [c.metric_values() for c in scored],
                          errors, options=fit.get("options") or dict(spec.options),
                          is_path_sampler=bool(get_registry("sampler").get(spec.name).is_path_sampler),
                          along_t=first.along_t, timing=timing, figures=first.figures,
                          fit_info=fit.get("fit_info") or {}, pictures=first.pictures)
        if spec.label in self.left:
            row["left_round"] = self.left[spec.label]
        drawn = [c.n_latent for c in scored if c.n_latent is not None]
        if drawn:  # latent points per seed behind the latent-space metrics (n: the decoded ones)
            row["n_latent"] = max(drawn)
        return row
