"""The local executor: every cell in this process, one after another (the default)."""

from __future__ import annotations

from typing import Any, Callable

from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, run_cell
from aebench.run.config import SamplerSpec


class LocalExecutor:
    """Runs cells here. Between `run` calls of one run (racing rounds) it keeps each sampler's fit and the
    metric instances, so a sampler is fitted once per run however many rounds it takes part in."""

    name = "local"

    def __init__(self) -> None:
        self._plan: str | None = None
        self._fits: dict[str, FitResult] = {}
        self._metrics: list[Any] = []

    def run(self, setup: Any, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        if self._plan != setup.plan.hash:
            self.close()
            self._plan, self._metrics = setup.plan.hash, build_metrics(setup.config)
        for spec, seeds in work:
            fit = self._fits.get(spec.label)
            if fit is None:
                fit = self._fits[spec.label] = fit_sampler(spec, setup, setup.plan.fit_seed)
                on_fit(fit)
            for seed in seeds:
                on_cell(run_cell(fit, seed, setup, self._metrics, options))

    def close(self) -> None:
        """Forget the run's fits and metrics."""
        self._plan, self._fits, self._metrics = None, {}, []
