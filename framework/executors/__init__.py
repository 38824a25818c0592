"""Executors run the cells of a plan: `local` in this process, `dask` on a Dask distributed cluster.
An executor gets the prepared real side, the cells still to compute grouped by sampler spec, and two
callbacks; it fits each spec once and reports each fit and each cell as it finishes, in any order (the
runner puts them in the plan's order). Another engine (Ray, ...) is one more class with `run`."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from aebench.errors import OptionError
from aebench.run.cells import CellOptions, CellResult, FitResult
from aebench.run.config import SamplerSpec

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    name: str

    def run(self, setup: Any, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        """Run the listed seeds of every spec of `work`, fitting each spec once per run (a later call of the
        same run, a racing round, reuses the fit); call `on_fit`/`on_cell` as results come."""

    def close(self) -> None:
        """Release what the run held (fits, a cluster); the runner calls it when the run ends."""


def make_executor(name: str = "local", *, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor called `name`; `workers`/`scheduler` apply to dask only."""
    if name == "local":
        if workers is not None or scheduler is not None:
            raise OptionError("--workers and --scheduler need --executor dask.")
        from aebench.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "dask":
        from aebench.executors.dask import DaskExecutor

        return DaskExecutor(workers=workers, scheduler=scheduler)
    raise OptionError(f"Unknown executor '{name}'; use one of: {', '.join(EXECUTORS)}.")
