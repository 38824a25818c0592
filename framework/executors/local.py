"""The local executor: every cell in this process, one after another (the default)."""

from __future__ import annotations

from typing import Any, Callable

from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, run_cell
from aebench.run.config import SamplerSpec


class LocalExecutor:
    name = "local"

    def run(self, setup: Any, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        metrics = build_metrics(setup.config)
        for spec, seeds in work:
            fit = fit_sampler(spec, setup, setup.plan.fit_seed)
            on_fit(fit)
            for seed in seeds:
                on_cell(run_cell(fit, seed, setup, metrics, options))
