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
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Callable

from aebench.errors import AebenchError, OptionError
from aebench.run.cells import CellOptions, CellResult, FitResult, build_metrics, fit_sampler, metric_classes, run_cell
from aebench.run.config import SamplerSpec

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the executor refuses to start without distributed (`_require_dask`)
    WorkerPlugin = object  # type: ignore[misc,assignment]

# a worker that dies fails every cell queued on it (Dask blames them all); each of those cells is then run
# again alone on the cluster (DaskExecutor.run), so a cell fails only when it kills a worker twice, the second
# time with nothing beside it
ALLOWED_FAILURES = 0

# worker-local state, one entry per plan: the feature network and metric instances built on that worker
_WORKER_CACHE: dict[str, tuple[Any, list[Any]]] = {}


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
        self._client: Any = None
        self._cluster: Any = None
        self._plugin: Any = None
        self._plan: str | None = None
        self._fits: dict[str, Any] = {}  # sampler label -> its fit's future on the cluster

    def run(self, setup: Any, work: list[tuple[SamplerSpec, list[int]]], options: CellOptions,
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
        died: list[tuple[str, int]] = []
        for future in as_completed(list(futures)):
            kind, label, seed = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker died (twice), or the task could not run
                if kind == "cell" and _worker_died(exc):
                    died.append((label, int(seed)))  # perhaps only beside the cell that killed the worker
                    continue
                error = worker_failure(exc)
                result = (FitResult(label, None, {}, {}, 0.0, error) if kind == "fit"
                          else CellResult(label, seed, error=f"seed {seed}: {error}"))
            (on_fit if kind == "fit" else on_cell)(result)
        # Dask blames every task queued on a worker that dies, not only the one running: each such cell runs
        # again alone on the cluster, so only a cell that itself kills its worker ends as failed
        for label, seed in died:
            alone = client.submit(_cell_task, self._fits[label], seed, key, options,
                                  key=f"cell-{key}-{label}-{seed}-alone", pure=False)
            try:
                result = alone.result()
            except Exception as exc:
                error = (f"worker died twice, the second time running this cell alone ({worker_failure(exc)})"
                         if _worker_died(exc) else worker_failure(exc))
                result = CellResult(label, seed, error=f"seed {seed}: {error}")
            on_cell(result)

    def _session(self, setup: Any) -> tuple[Any, str]:
        """The client of this run's cluster, with the real side registered on it (started on first use)."""
        from distributed import Client

        key = setup.plan.hash
        if self._client is not None and self._plan == key:
            return self._client, key
        self.close()
        if self.scheduler is None:
            self._cluster = local_cluster(self.workers or default_workers(setup.device.type), setup.device.type)
        self._client = Client(self._cluster if self._cluster is not None else self.scheduler)
        self._plugin = RealSidePlugin(key, Shipment(shippable(setup), metric_classes(setup.config),
                                                    extractor_class(setup)))
        self._client.register_plugin(self._plugin)
        self._plan = key
        return self._client, key

    def close(self) -> None:
        """Release the fits, the real side on the workers, the client and a cluster this executor started."""
        client, cluster, plugin = self._client, self._cluster, self._plugin
        self._client = self._cluster = self._plugin = self._plan = None
        self._fits = {}
        if client is not None:
            try:
                if plugin is not None:
                    client.unregister_worker_plugin(plugin.name)
            except Exception:  # the cluster is already gone; nothing to clean up
                pass
            client.close()
        if cluster is not None:
            cluster.close()


def extractor_class(setup: Any) -> type | None:
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


def shippable(setup: Any) -> Any:
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
    return fit_sampler(spec, shipment_of(plan_key).setup, fit_seed, cls)


def _fit_summary(fit: FitResult) -> FitResult:
    return FitResult(fit.label, None, fit.options, fit.fit_info, fit.fit_s, fit.error)


def _cell_task(fit: FitResult, seed: int, plan_key: str, options: CellOptions) -> CellResult:
    _one_thread()
    setup, metrics = worker_setup(plan_key)
    return run_cell(fit, seed, setup, metrics, options)


def _one_thread() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
