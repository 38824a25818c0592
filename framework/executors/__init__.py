"""Executors run the cells of a plan: `local` in this process, `dask` on a Dask distributed cluster.
An executor gets the prepared real side, the cells still to compute grouped by sampler spec, and two
callbacks; it fits each spec once and reports each fit and each cell as it finishes, in any order (the
runner puts them in the plan's order). Another engine (Ray, ...) is one more class with `run` and `close`
and one more entry in `EXECUTORS`, the table `make_executor` and the CLI's `--executor` read."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from aebench.errors import OptionError, did_you_mean

if TYPE_CHECKING:
    from aebench.run.cells import CellOptions, CellResult, FitResult
    from aebench.run.config import SamplerSpec
    from aebench.run.setup import RunSetup


class Executor(Protocol):
    name: str

    def run(self, setup: RunSetup, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        """Run the listed seeds of every spec of `work`, fitting each spec once per run (a later call of the
        same run, a racing round, reuses the fit); call `on_fit`/`on_cell` as results come."""

    def close(self) -> None:
        """Release what the run held (fits, a cluster); the runner calls it when the run ends."""


@dataclass(frozen=True)
class ExecutorEntry:
    """One executor: its class as `module:Class` (imported when chosen, so an optional engine costs nothing
    until then), the settings it takes (keyword arguments, the CLI's --workers and --scheduler), and help."""

    factory: str
    settings: tuple[str, ...]
    help: str


EXECUTORS: dict[str, ExecutorEntry] = {
    "local": ExecutorEntry("aebench.executors.local:LocalExecutor", (), "in this process, one cell after another"),
    "dask": ExecutorEntry("aebench.executors.dask:DaskExecutor", ("workers", "scheduler"),
                          "on a Dask cluster (pip install aebench[dask])"),
}


def make_executor(name: str = "local", **settings: Any) -> Executor:
    """The executor called `name` (see EXECUTORS), given the settings it takes; a setting left None is not given."""
    entry = EXECUTORS.get(name)
    if entry is None:
        raise OptionError(f"Unknown executor '{name}'.{did_you_mean(name, EXECUTORS)} "
                          f"Use one of: {', '.join(EXECUTORS)}.")
    given = {key: value for key, value in settings.items() if value is not None}
    foreign = [key for key in given if key not in entry.settings]
    if foreign:
        takers = [other for other, e in EXECUTORS.items() if foreign[0] in e.settings]
        raise OptionError(f"--{foreign[0].replace('_', '-')} is a setting of --executor {' or '.join(takers) or '?'}, "
                          f"not of {name}; drop it or choose that executor.")
    module, _, cls = entry.factory.partition(":")
    return getattr(importlib.import_module(module), cls)(**given)
