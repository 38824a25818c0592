"""The Dask executor: cells run on a Dask distributed cluster (`pip install aebench[dask]`).

`workers=K` starts a local cluster on 127.0.0.1: K single-threaded worker processes on a CPU, one worker
per GPU (each seeing only its own GPU) where there are GPUs. `scheduler=ADDRESS` uses a running cluster
instead (for instance one started by dask-jobqueue on Slurm/PBS); its workers need aebench installed
and, for figures, the --out folder on a shared file system.

The real side (latents, statistics, regions, real features, the model) reaches every worker once, as a
worker plugin (`RealSidePlugin`): the scheduler keeps it and hands it to each worker that joins, a
restarted one included. It is not scattered data, because scattered data dies with the last worker that
holds it, and every task depending on it is then forgotten (Dask reports those tasks as "cancelled:
already forgotten", innocent cells included). Each worker rebuilds the feature network and the metrics
once per plan and keeps them in a worker-local cache. Each sampler spec is fitted once, as a task whose
result stays on the cluster and feeds that spec's cells; a fit lost with its worker is recomputed. A
worker that dies fails every cell queued on it, not only the one it was running (the local cluster's
`allowed-failures` is 0); each of those cells then runs again alone on the cluster, so a cell is recorded
as failed only when it killed a worker twice, the second time by itself, with the worker's death as its
cause however Dask reports it (`KilledWorker`, or the cell cancelled).

A running cluster named by `scheduler=ADDRESS` is contacted when the executor is made, before any work,
with a short timeout: an address nobody answers is a one-line error (exit 2) within seconds, not a
30-second wait. A scheduler lost mid-run stops the run (`RunStopped`): the runner marks the document
"interrupted" with the finished cells, and `--resume` finishes it, on this cluster once it is back or
on any other executor. A full disk on a worker (figures on a shared file system) stops the run too,
as it would locally. A cell time limit (`cell_timeout`) is kept by a `Watchdog` on the client, which
cancels a cell (or fit) past it and restarts its worker (see aebench.run.timeouts).
"""

from __future__ import annotations

import copy
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from aebench.errors import AebenchError, DiskFullError, OptionError
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, metric_classes, run_cell
from aebench.run.config import SamplerSpec
from aebench.run.interrupt import RunStopped
from aebench.run.timeouts import parse_duration, timed_out

if TYPE_CHECKING:
    from aebench.run.setup import RunSetup

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the executor refuses to start without distributed (`_require_dask`)
    WorkerPlugin = object  # type: ignore[misc,assignment]

# a worker that dies fails every cell queued on it (Dask blames them all); each of those cells is then run
# again alone on the cluster (DaskExecutor.run), so a cell fails only when it kills a worker twice, the second
# time with nothing beside it
ALLOWED_FAILURES = 0
CONNECT_TIMEOUT_S = 5  # how long to wait for a --scheduler address to answer
WATCH_INTERVAL_S = 1.0  # how often the cell time limit's watchdog asks the workers what they run

# worker-local state, one entry per plan: the feature network and metric instances built on that worker
_WORKER_CACHE: dict[str, tuple[Any, list[Any]]] = {}
# worker-local: the key of each fit or cell task running here -> when it started (time.monotonic)
_RUNNING: dict[str, float] = {}


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise AebenchError("--executor dask needs Dask distributed; install it with `pip install aebench[dask]`.") from None


class DaskExecutor:
    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        _require_dask()
        if workers is not None and scheduler is not None:
            raise OptionError("Give either --workers (start a local cluster) or --scheduler (use one), not both.")
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise OptionError(f"--workers must be a positive integer, got {workers!r}.")
        self.workers = workers
        self.scheduler = scheduler
        if scheduler is not None:
            self.connect(probe=True).close()  # an address nobody answers fails now, before any work
        self._client: Any = None
        self._cluster: Any = None
        self._plugin: Any = None
        self._plan: str | None = None
        self._fits: dict[str, Any] = {}  # sampler label -> its fit's future on the cluster
        self._timed_out: dict[str, str] = {}  # task key -> why it failed (the cell time limit), for every round
        self._lost = False  # the scheduler went away mid-run

    def connect(self, probe: bool = False) -> Any:
        """A client of the `scheduler` cluster; a one-line error (exit 2) if it does not answer in time."""
        from distributed import Client

        try:
            return Client(self.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=not probe)
        except (OSError, TimeoutError, ValueError) as exc:
            raise OptionError(
                f"Cannot reach the Dask scheduler at {self.scheduler} ({' '.join(str(exc).split())[:160]}); start it "
                f"(`dask scheduler`) or check the --scheduler address (tcp://HOST:PORT)."
            ) from None

    def run(self, setup: RunSetup, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
            on_fit: Callable[[FitResult], None], on_cell: Callable[[CellResult], None]) -> None:
        """Run `work` on the cluster. The cluster, the real side on it and every fit stay until `close()`,
        so racing rounds of one run reuse them: a sampler is fitted once per run."""
        from distributed import as_completed

        from aebench.plugins import get_registry

        client, key = self._session(setup)
        samplers = get_registry("sampler")
        futures: dict[Any, tuple[str, str, int | None]] = {}
        for spec, seeds in work:
            fit = self._fits.get(spec.label)
            if fit is None:
                # every fit future is held until close(): a cell whose worker died needs its fit recomputed,
                # which the scheduler cannot do once the client has released (forgotten) the fit's key
                fit = self._fits[spec.label] = client.submit(_fit_task, spec, key, setup.plan.fit_seed,
                                                             samplers.get(spec.name), key=f"fit-{key}-{spec.label}")
                futures[client.submit(_fit_summary, fit, key=f"fitinfo-{key}-{spec.label}")] = ("fit", spec.label, None)
            for seed in seeds:
                cell = client.submit(_cell_task, fit, seed, key, options, key=f"cell-{key}-{spec.label}-{seed}",
                                     pure=False)
                futures[cell] = ("cell", spec.label, seed)
        watched = {str(f.key): f for f in list(self._fits.values()) + list(futures)}
        limit = parse_duration(getattr(setup.config, "cell_timeout", None))
        watchdog = Watchdog(client, watched, limit, self._timed_out) if limit is not None else None
        try:
            died: list[tuple[str, int]] = []
            fits_died: list[str] = []
            unreported = {label: future for future, (kind, label, _) in futures.items() if kind == "fit"}

            def report(future: Any) -> None:
                kind, label, seed = futures[future]
                if kind == "fit":
                    if unreported.pop(label, None) is None:
                        return  # reported already, before one of its cells
                elif label in unreported:
                    # a fit is reported before its cells: a cell kept in results.json always has its fit's record
                    # there too, even when the scheduler is lost between the two (a resume reuses both)
                    report(unreported[label])
                try:
                    result = future.result()
                except Exception as exc:  # the worker died, the time limit stopped it, or it could not run
                    reason = self._failure(exc, future.key, f"fit-{key}-{label}")
                    if reason is None:  # a worker died, perhaps only beside the task that killed it
                        if kind == "fit":
                            fits_died.append(label)
                        else:
                            died.append((label, int(seed)))
                        return
                    result = (FitResult(label, None, {}, {}, 0.0, reason) if kind == "fit"
                              else CellResult(label, seed, error=f"seed {seed}: {reason}"))
                (on_fit if kind == "fit" else on_cell)(result)

            for future in as_completed(list(futures)):
                report(future)
            # Dask blames every task queued on a worker that dies, not only the one running: each such fit, then
            # each such cell, runs again alone on the cluster, so only a task that itself kills its worker fails
            for label in fits_died:
                on_fit(self._refit_alone(client, key, label, setup, samplers))
            for label, seed in died:
                alone = client.submit(_cell_task, self._fits[label], seed, key, options,
                                      key=f"cell-{key}-{label}-{seed}-alone", pure=False)
                watched[str(alone.key)] = alone
                try:
                    result = alone.result()
                except Exception as exc:
                    reason = self._failure(exc, alone.key, f"fit-{key}-{label}")
                    if reason is None:
                        reason = f"worker died twice, the second time running this cell alone ({worker_failure(exc)})"
                    result = CellResult(label, seed, error=f"seed {seed}: {reason}")
                on_cell(result)
        finally:
            if watchdog is not None:
                watchdog.stop()

    def _refit_alone(self, client: Any, key: str, label: str, setup: RunSetup, samplers: Any) -> FitResult:
        """Fit `label` again alone after its worker died beside it; it replaces the lost fit for the cells."""
        spec = next(s for s in setup.plan.samplers if s.label == label)
        fit = self._fits[label] = client.submit(_fit_task, spec, key, setup.plan.fit_seed, samplers.get(spec.name),
                                                key=f"fit-{key}-{label}-alone", pure=False)
        try:
            return client.submit(_fit_summary, fit, key=f"fitinfo-{key}-{label}-alone", pure=False).result()
        except Exception as exc:
            reason = self._failure(exc, fit.key, f"fit-{key}-{label}")
            if reason is None:
                reason = f"worker died twice, the second time fitting this sampler alone ({worker_failure(exc)})"
            return FitResult(label, None, {}, {}, 0.0, reason)

    def _failure(self, exc: Exception, task: Any, fit_key: str) -> str | None:
        """Why a task failed, for its row; None when its worker died (the caller words that: the fit or cell
        runs again alone, or it has just killed its worker alone). A full disk or a lost
        scheduler stops the run instead: every later task would fail the same way."""
        if isinstance(exc, DiskFullError):
            raise exc
        if scheduler_lost(exc):
            self._lost = True
            where = self.scheduler or "the local cluster"
            raise RunStopped(f"Lost the connection to the Dask scheduler at {where} mid-run "
                             f"({str(exc).splitlines()[-1]})") from None
        stopped = timeout_reason(self._timed_out, task, fit_key)  # before a death: the watchdog cancelled it
        if stopped is not None:
            return stopped
        if _worker_died(exc):
            return None
        return worker_failure(exc)

    def _session(self, setup: RunSetup) -> tuple[Any, str]:
        """The client of this run's cluster, with the real side registered on it (started on first use)."""
        from distributed import Client

        key = setup.plan.hash
        if self._client is not None and self._plan == key:
            return self._client, key
        self.close()
        if self.scheduler is None:
            self._cluster = local_cluster(self.workers or default_workers(setup.device.type), setup.device.type)
        self._client = Client(self._cluster) if self._cluster is not None else self.connect()
        self._plugin = RealSidePlugin(key, Shipment(shippable(setup), metric_classes(setup.config),
                                                    extractor_class(setup)))
        self._client.register_plugin(self._plugin)
        self._plan = key
        return self._client, key

    def close(self) -> None:
        """Release the fits, the real side on the workers, the client and a cluster this executor started."""
        client, cluster, plugin = self._client, self._cluster, self._plugin
        self._client = self._cluster = self._plugin = self._plan = None
        self._fits, self._timed_out = {}, {}
        with quiet_dask_logs(self._lost):  # a client that lost its scheduler logs every failed reconnection
            if client is not None:
                try:
                    if plugin is not None:
                        client.unregister_worker_plugin(plugin.name)
                except Exception:  # the cluster is already gone; nothing to clean up
                    pass
                client.close()
        self._lost = False
        if cluster is not None:
            cluster.close()


class Watchdog:
    """The cell time limit on a cluster: every WATCH_INTERVAL_S it asks each worker how long its fit and
    cell tasks have run (`running_tasks`); a task past `limit` is cancelled and its worker restarted (by its
    nanny), since a thread cannot be stopped from outside. `reason` then says why the task failed: it
    timed out, or its sampler's fit did (`timeout_reason`)."""

    def __init__(self, client: Any, by_key: dict[str, Any], limit: float, timed_out: dict[str, str]):
        import threading

        self.client, self.limit = client, limit
        self.by_key = by_key  # task key -> future; the executor adds the cells it runs again alone
        self.timed_out = timed_out  # task key -> why; the executor's, so a later round knows a fit timed out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="aebench-cell-timeout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * WATCH_INTERVAL_S)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            try:
                running = self.client.run(running_tasks, on_error="return")
            except Exception:  # the cluster is closing or gone; the run loop reports that
                continue
            for worker, tasks in running.items():
                late = [k for k, elapsed in (tasks if isinstance(tasks, dict) else {}).items()
                        if elapsed > self.limit and k in self.by_key and k not in self.timed_out]
                for task in late:
                    self.timed_out[task] = timed_out(self.limit)
                    self.client.cancel([self.by_key[task]], force=True)
                if late:
                    try:  # ends the hang, whatever it is; the worker's other tasks are rescheduled
                        self.client.restart_workers([worker], raise_for_error=False)
                    except Exception:  # no nanny to restart it: its thread stays busy
                        pass


def timeout_reason(timed_out: dict[str, str], key: Any, fit_key: str) -> str | None:
    """Why the task `key` failed if the cell time limit stopped it or its sampler's fit; else None."""
    if str(key) in timed_out:
        return timed_out[str(key)]
    if fit_key in timed_out:
        return f"fit {timed_out[fit_key]}"
    return None


def running_tasks() -> dict[str, float]:
    """On a worker: how many seconds each of its fit and cell tasks has been running."""
    now = time.monotonic()
    return {key: now - started for key, started in list(_RUNNING.items())}


@contextmanager
def _running() -> Iterator[None]:
    """Record the current task in `_RUNNING` while it runs (for the Watchdog)."""
    from distributed import get_worker

    key = str(get_worker().get_current_task())
    _RUNNING[key] = time.monotonic()
    try:
        yield
    finally:
        _RUNNING.pop(key, None)


def scheduler_lost(exc: BaseException) -> bool:
    """Whether a task failed because the client lost its scheduler (every pending task is then cancelled)."""
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    if isinstance(exc, CommClosedError):  # fetching a result through the scheduler's closed connection
        return True
    return isinstance(exc, FutureCancelledError) and "scheduler-connection-lost" in str(getattr(exc, "reason", "") or exc)


@contextmanager
def quiet_dask_logs(quiet: bool) -> Iterator[None]:
    """Silence distributed's logging while the block runs, when `quiet`."""
    import logging

    log = logging.getLogger("distributed")
    level = log.level
    if quiet:
        log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def extractor_class(setup: RunSetup) -> type | None:
    """The driver's extractor class: it travels with the real side, so a worker need not have the plugin
    that registered it."""
    from aebench.plugins import get_registry

    return get_registry("feature extractor").get(setup.config.judges[0]) if setup.extractor else None


def _worker_died(exc: BaseException) -> bool:
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    return isinstance(exc, (KilledWorker, FutureCancelledError))


def worker_failure(exc: BaseException) -> str:
    """One wording for a task that failed on the cluster because of a worker: "worker died", then what Dask
    said. Dask reports a worker that died as often as it allows as `KilledWorker` (whose first sentence
    names the workers tried), and a task whose worker or inputs were lost as cancelled."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    if isinstance(exc, KilledWorker):
        return f"worker died (KilledWorker: {str(exc).split('. ')[0]})"
    if isinstance(exc, FutureCancelledError):
        return f"worker died or was lost (Dask cancelled the task: {str(exc).split(': ', 1)[-1].rstrip('.')})"
    return f"{type(exc).__name__}: {str(exc).split('. ')[0]}"


def default_workers(device_type: str) -> int:
    if device_type == "cuda":
        import torch

        return torch.cuda.device_count()
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def local_cluster(workers: int, device_type: str) -> Any:
    """K worker processes on the loopback interface, one thread each; on GPUs one worker per GPU, each
    with CUDA_VISIBLE_DEVICES set to its own.

    Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default; with it glibc hands every
    large tensor buffer back to the kernel on free, so each decode batch and distance block page-faults
    afresh and a cell ran 2.5x slower than in-process (measured on 8 cells, `fast` features). The
    workers here keep glibc's own (adaptive) threshold instead."""
    import dask
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.worker.daemon": False,
                          "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        if device_type == "cuda":
            specs = {i: {"cls": Nanny, "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": str(i)}}}
                     for i in range(workers)}
            return SpecCluster(workers=specs, scheduler={"cls": Scheduler,
                                                         "options": {"host": "127.0.0.1", "dashboard_address": None}})
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None)


def shippable(setup: RunSetup) -> RunSetup:
    """The part of the setup a cell reads: real side, statistics, model and batch sizes; no data set, no
    reference rows, and the feature network left for each worker to build once."""
    out = copy.copy(setup)
    out.dataset = None
    out.references = []
    if setup.extractor is not None:
        out.extractor = copy.copy(setup.extractor)
        out.extractor.module = None
    out.other_judges = []
    for judge in setup.other_judges:  # each travels as its bound plugin, its network built on the worker
        shipped = copy.copy(judge)
        shipped.module = None
        out.other_judges.append(shipped)
    return out


@dataclass
class Shipment:
    """What is scattered to every worker once: the setup without its feature network, and the classes
    of the metrics and the extractor (a worker builds them once, see `worker_setup`)."""

    setup: Any
    metrics: list[tuple[str, type]]
    extractor: type | None


class RealSidePlugin(WorkerPlugin):
    """The real side on every worker of the cluster, present and future: the scheduler keeps the plugin and
    sets it up on each worker that joins, so a worker restarted after a crash has it before its first task."""

    def __init__(self, plan_key: str, shipment: Shipment):
        self.name = f"aebench-real-side-{plan_key}"
        self.plan_key = plan_key
        self.shipment = shipment

    def teardown(self, worker: Any) -> None:
        _WORKER_CACHE.pop(self.plan_key, None)


def shipment_of(plan_key: str) -> Shipment:
    """The real side that this worker's `RealSidePlugin` carries."""
    from distributed import get_worker

    plugin: Any = get_worker().plugins[f"aebench-real-side-{plan_key}"]
    return plugin.shipment


def worker_setup(plan_key: str) -> tuple[Any, list[Any]]:
    """This worker's setup with its feature network, and its metrics: built once per plan."""
    if plan_key not in _WORKER_CACHE:
        shipment = shipment_of(plan_key)
        setup = shipment.setup
        if shipment.extractor is not None and setup.extractor is not None and setup.extractor.module is None:
            plugin = setup.extractor.plugin or shipment.extractor(setup.config.feature_options)
            module = plugin.build(setup.device)  # the driver's bound extractor (a domain judge's weights)
            module.eval()
            setup.extractor.module = module
        for judge in setup.other_judges:
            if judge.module is None:
                judge.module = judge.plugin.build(setup.device).eval()
        _WORKER_CACHE.clear()  # one plan at a time per worker
        _WORKER_CACHE[plan_key] = (setup, build_metrics(setup.config, shipment.metrics))
    return _WORKER_CACHE[plan_key]


def _fit_task(spec: SamplerSpec, plan_key: str, fit_seed: int, cls: type) -> FitResult:
    _one_thread()
    with _running():
        return fit_sampler(spec, shipment_of(plan_key).setup, fit_seed, cls)


def _fit_summary(fit: FitResult) -> FitResult:
    return FitResult(fit.label, None, fit.options, fit.fit_info, fit.fit_s, fit.error)


def _cell_task(fit: FitResult, seed: int, plan_key: str, options: CellOptions) -> CellResult:
    _one_thread()
    with _running():
        setup, metrics = worker_setup(plan_key)
        return run_cell(fit, seed, setup, metrics, options)


def _one_thread() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
