"""The local executor: every cell in this process, one after another (the default). With a cell time
limit (`config.cell_timeout`), each fit and cell runs under `aebench.run.timeouts.time_limit`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from aebench.infra.console import err_console
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, run_cell
from aebench.run.config import SamplerSpec
from aebench.run.timeouts import CellTimeout, can_interrupt, parse_duration, time_limit, timed_out

if TYPE_CHECKING:
    from aebench.run.setup import RunSetup


class LocalExecutor:
    """Runs cells here. Between `run` calls of one run (racing rounds) it keeps each sampler's fit and the
    metric instances, so a sampler is fitted once per run however many rounds it takes part in."""

    name = "local"

    def __init__(self) -> None:
        self._plan: str | None = None
        self._fits: dict[str, FitResult] = {}
        self._metrics: list[Any] = []

    def run(self, setup: RunSetup, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        if self._plan != setup.plan.hash:
            self.close()
            self._plan, self._metrics = setup.plan.hash, build_metrics(setup.config)
        limit = parse_duration(getattr(setup.config, "cell_timeout", None))
        if limit is not None and not can_interrupt():
            err_console.print("Warning: --cell-timeout is not enforced here (no SIGALRM, or not the main thread); "
                              "use --executor dask for a limit that always holds.", markup=False, soft_wrap=True)
        for spec, seeds in work:
            fit = self._fits.get(spec.label)
            if fit is None:
                try:
                    with time_limit(limit):
                        fit = fit_sampler(spec, setup, setup.plan.fit_seed)
                except CellTimeout:
                    fit = FitResult(spec.label, None, dict(spec.options), {}, float(limit or 0),
                                    f"fit {timed_out(limit or 0)}")
                self._fits[spec.label] = fit
                on_fit(fit)
            for seed in seeds:
                try:
                    with time_limit(limit):
                        cell = run_cell(fit, seed, setup, self._metrics, options)
                except CellTimeout:
                    cell = CellResult(spec.label, seed, error=f"seed {seed}: {timed_out(limit or 0)}")
                on_cell(cell)

    def close(self) -> None:
        """Forget the run's fits and metrics."""
        self._plan, self._fits, self._metrics = None, {}, []
