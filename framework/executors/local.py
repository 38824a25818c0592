"""The local executor: every cell in this process, one after another (the default). With a cell time
limit (`config.cell_timeout`), each fit and cell runs under `aebench.run.timeouts.time_limit`."""

from __future__ import annotations

from typing import Any, Callable

from aebench.infra.console import err_console
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, run_cell
from aebench.run.config import SamplerSpec
from aebench.run.timeouts import CellTimeout, can_interrupt, parse_duration, time_limit, timed_out


class LocalExecutor:
    name = "local"

    def run(self, setup: Any, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        metrics = build_metrics(setup.config)
        limit = parse_duration(getattr(setup.config, "cell_timeout", None))
        if limit is not None and not can_interrupt():
            err_console.print("Warning: --cell-timeout is not enforced here (no SIGALRM, or not the main thread); "
                              "use --executor dask for a limit that always holds.", markup=False, soft_wrap=True)
        for spec, seeds in work:
            try:
                with time_limit(limit):
                    fit = fit_sampler(spec, setup, setup.plan.fit_seed)
            except CellTimeout:
                fit = FitResult(spec.label, None, dict(spec.options), {}, float(limit or 0), f"fit {timed_out(limit or 0)}")
            on_fit(fit)
            for seed in seeds:
                try:
                    with time_limit(limit):
                        cell = run_cell(fit, seed, setup, metrics, options)
                except CellTimeout:
                    cell = CellResult(spec.label, seed, error=f"seed {seed}: {timed_out(limit or 0)}")
                on_cell(cell)
