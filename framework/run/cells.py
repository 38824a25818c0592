"""Cells: the unit of work of a run. A sampler spec is fitted once (`fit_sampler`, with the plan's fit
seed); then each (sampler, seed) cell samples with its own seed, decodes, re-encodes, extracts features
and scores (`run_cell`), returning a small picklable `CellResult`. Cells share nothing but the read-only
real side, so an executor may run them anywhere, in any order; the runner assembles the results document
from them in the plan's order.

A sampler (or metric) that raises, or returns NaN/Inf, gives a failed cell with its error; the other
cells still run.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, cast

import torch

from aebench.errors import AebenchError
from aebench.metric import FakeSide, Metric, MetricValue
from aebench.results.schema import CellRecord, FitRecord
from aebench.run.config import SamplerSpec

if TYPE_CHECKING:
    from aebench.run.pictures import PictureDrawers
    from aebench.run.setup import RunSetup


@dataclass
class FitResult:
    """A sampler fitted once for every seed of its cells, and what the fit learned (`fit_info`)."""

    label: str
    sampler: Any | None  # the fitted sampler; None when the fit failed
    options: dict[str, Any]
    fit_info: dict[str, Any]
    fit_s: float
    error: str | None = None

    def summary(self) -> FitRecord:
        """The JSON-ready record of the fit (no sampler object)."""
        return {"options": self.options, "fit_info": self.fit_info, "error": self.error, "timing": {"fit_s": self.fit_s}}


@dataclass
class CellResult:
    """One (sampler, seed) cell: its metric values (MetricValue fields), which metric produced each key,
    its error (None when it succeeded), timing, and for the first seed the along-t curve and figures."""

    sampler: str
    seed: int
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    producers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)
    along_t: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    # first seed: the memorisation gallery's copies ('copies') and the explorer's points file ('explorer')
    pictures: dict[str, Any] = field(default_factory=dict)
    # out-of-memory retries during this cell (batch sizes halved), wherever it ran; the runner adds them to
    # the run's environment.backoffs
    backoffs: list[dict[str, Any]] = field(default_factory=list)
    # latent points drawn (what the latent-space metrics saw; the first n were decoded): the plan's n_latent
    # unless the sampler caps its draws (Sampler.max_latent_draws)
    n_latent: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def metric_values(self) -> dict[str, MetricValue]:
        return {key: MetricValue(**value) for key, value in self.values.items()}

    def to_dict(self) -> CellRecord:
        return cast(CellRecord, {"status": "ok" if self.ok else "failed", **asdict(self)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CellResult":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class FigureDrawer(Protocol):
    """Draws one cell's figures into `folder` and returns each figure's file by kind ('grid', 'strips', ...).
    The runner passes `aebench.reports.figures.cell_figures`: cells compute, the reports draw."""

    def __call__(self, fake: FakeSide, folder: Path, *, stem: str, name: str, path_labels: Sequence[str] | None,
                 axes: tuple[int, int], train_latents: torch.Tensor, centre: torch.Tensor, along_t: dict[str, Any],
                 target: float) -> dict[str, Path]: ...


@dataclass
class CellOptions:
    """How cells run: where figures go (the run's --out folder, shared by the workers), what draws them
    (None: no figures), the first seed (the one whose cell draws figures and the along-t curve), progress
    output. Picklable: the drawers are module-level functions."""

    out: str
    draw: FigureDrawer | None
    first_seed: int
    quiet: bool = True
    # what draws the memorisation gallery and the explorer's sprites (None: no picture files, the gallery's
    # record only); the runner passes `aebench.reports.pictures` functions
    pictures: PictureDrawers | None = None


def fit_sampler(spec: SamplerSpec, setup: RunSetup, fit_seed: int, cls: type | None = None) -> FitResult:
    """Fit `spec` on the training latents with torch's global seed set to `fit_seed` (restored after).
    `cls` is the sampler class when the caller resolved it already (an executor ships the driver's
    plugin classes to its workers); else it comes from the registry."""
    from aebench.options import options_to_dict
    from aebench.plugins import get_registry

    t0 = time.perf_counter()
    options = dict(spec.options)
    try:
        cls = cls or get_registry("sampler").get(spec.name)
        sampler = cls(spec.options)
        options = options_to_dict(sampler.options)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fit_seed)
            sampler.fit(setup.real.train_latents, setup.real.stats)
    except AebenchError as exc:
        return FitResult(spec.label, None, options, {}, time.perf_counter() - t0, str(exc))
    except Exception as exc:  # a plugin that raises fails its cells, not the run
        return FitResult(spec.label, None, options, {}, time.perf_counter() - t0,
                         f"fit: {type(exc).__name__}: {exc}")
    return FitResult(spec.label, sampler, options, dict(getattr(sampler, "fit_info", None) or {}),
                     time.perf_counter() - t0)


def run_cell(fit: FitResult, seed: int, setup: RunSetup, metrics: list[Metric], options: CellOptions) -> CellResult:
    """Sample `fit`'s sampler with `seed`, decode, re-encode, extract features and score."""
    before = len(setup.backoffs)
    result = _run_cell(fit, seed, setup, metrics, options)
    # this cell's out-of-memory retries move to its result, so they travel back from a worker too
    result.backoffs = setup.backoffs[before:]
    del setup.backoffs[before:]
    return result


def _run_cell(fit: FitResult, seed: int, setup: RunSetup, metrics: list[Metric], options: CellOptions) -> CellResult:
    from aebench.run import image_pipeline
    from aebench.run.setup import finite_or_raise

    label = fit.label
    result = CellResult(label, seed)
    if fit.sampler is None:
        result.error = f"seed {seed}: {fit.error}"
        return result
    sampler = fit.sampler
    t1 = time.perf_counter()
    stage = "sample"
    try:
        n = int(setup.config.n)
        draws = sampler.latent_draws(n, int(setup.config.n_latent or n))
        samples = sampler.sample(draws, torch.Generator().manual_seed(seed), device="cpu")
        finite_or_raise(samples.latents, label)
        t2 = time.perf_counter()
        fake = FakeSide(label, samples.latents, samples.path, samples.t, seed=seed)
        decoded = decoded_part(fake, n)
        stage = "decode"
        quiet = options.quiet
        decoded.images = image_pipeline.decode(setup, decoded.latents,
                                               None if quiet else f"{label} (seed {seed}): decode", quiet=quiet)
        t3 = time.perf_counter()
        if any("reencoded" in m.needs for m in metrics):
            stage = "re-encode"
            decoded.reencoded = image_pipeline.reencode(setup, decoded.images, quiet=quiet)
        if setup.extractor is not None:
            stage = "features"
            decoded.features = image_pipeline.features(setup, decoded.images,
                                                       f"{label}: features ({setup.extractor.name})", quiet=quiet)
            for judge in setup.other_judges:  # `--features inception,domain`: each judge's features of the images
                decoded.judge_features[judge.name] = image_pipeline.features(
                    setup, decoded.images, f"{label}: features ({judge.name})", quiet=quiet, extractor=judge)
        t4 = time.perf_counter()
    except AebenchError as exc:
        result.error = f"seed {seed}: {exc}"
        return result
    except Exception as exc:  # a plugin that raises, or a decode/feature step that fails, is recorded
        result.error = f"seed {seed}: {stage}: {type(exc).__name__}: {exc}"
        if not options.quiet:
            from aebench.infra.console import err_console

            err_console.print(f"[red]{label} failed in {stage}:[/red] {type(exc).__name__}: {exc}")
            err_console.print(f"[dim]{traceback.format_exc(limit=3)}[/dim]")
        return result
    values, producers, errors = score(fake, setup, metrics, decoded)
    result.values = {key: asdict(value) for key, value in values.items()}
    result.producers = producers
    if errors:
        result.error = "; ".join(f"seed {seed}: {e}" for e in errors)
    t5 = time.perf_counter()
    result.timing = {"sample_s": t2 - t1, "decode_s": t3 - t2, "features_s": t4 - t3, "metrics_s": t5 - t4}
    result.n_latent = int(fake.latents.shape[0])
    if seed == options.first_seed:
        if sampler.is_path_sampler and fake.t is not None:
            result.along_t = along_t(setup, fake)
        if options.draw is not None:
            result.figures = draw(setup, sampler, decoded, result.along_t, Path(options.out), label, options.draw)
        result.pictures = pictures(setup, sampler, fake, decoded, metrics, result, Path(options.out), options.pictures)
    return result


def pictures(setup: Any, sampler: Any, fake: FakeSide, decoded: FakeSide, metrics: list[Metric], result: CellResult,
             out: Path, drawers: PictureDrawers | None) -> dict[str, Any]:
    """The first seed's memorisation gallery record, and with `drawers` its figure and the explorer's points
    file. The copies are those of all latent draws (what the metric counted; the gallery decodes the ones
    it shows), the explorer's points the decoded ones."""
    from aebench.run import pictures as pic
    from aebench.run.folder import FIGURE_DIR

    made: dict[str, Any] = {}
    stem, name = _figure_names(sampler, result.sampler)
    found = pic.copy_evidence(fake, setup.real, metrics, result.values, result.producers)
    if found is not None:
        made["copies"] = pic.copies_record(*found)
        if drawers is not None:
            path = pic.draw_copies(setup, fake, made["copies"], out / FIGURE_DIR / f"{stem}_copies.png", name,
                                   drawers)
            made["copies"]["figure"] = str(path.relative_to(out))
            made["copies"]["training_images"] = pic.has_training_images(setup)
    if drawers is not None and decoded.images is not None:
        made["explorer"] = pic.sampler_points(setup, decoded, out / FIGURE_DIR, stem, result.sampler, out, drawers)
    return made


def _figure_names(sampler: Any, label: str) -> tuple[str, str]:
    """A file-safe stem of a row's label, and its name in figure titles (a labelled variant names its base
    sampler too: "plane_conditional (plane_paths)")."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    return safe, label if sampler.name == label else f"{label} ({sampler.name})"


# what a metric may need and still score every latent draw; anything else (images, features, re-encodings)
# exists for the decoded points only
LATENT_NEEDS = frozenset({"latents", "t"})


def decoded_part(fake: FakeSide, n: int) -> FakeSide:
    """The first n of a cell's latent draws, the ones that are decoded, with their path and t rows: what
    image metrics, re-encoding and the figures see. The whole draw when it has no more than n points.
    Its own work cache: cached per-sample work (nearest training latents) belongs to one sample set."""
    if fake.latents.shape[0] <= n:
        return fake
    cut = lambda x: None if x is None else x[:n]  # noqa: E731
    return FakeSide(fake.name, fake.latents[:n], cut(fake.path), cut(fake.t), seed=fake.seed)


def score(fake: FakeSide, setup: Any, metrics: list[Metric],
          decoded: FakeSide | None = None) -> tuple[dict[str, MetricValue], dict[str, str], list[str]]:
    """Every metric's values for one set of samples, the name of the metric that made each key, and errors.
    Metrics that need only latents (and t) score all of `fake`; the others score `decoded` (default: `fake`),
    the decoded subset that carries images, features and re-encodings. With several extractors, the image
    metrics are scored once more per other judge (keys `<key>@<judge>`, see aebench.run.judges)."""
    from aebench.run.judges import judged, scores_here

    values: dict[str, MetricValue] = {}
    producers: dict[str, str] = {}
    errors: list[str] = []
    decoded = fake if decoded is None else decoded

    def has(side: FakeSide) -> set[str]:
        return {"latents", "images" if side.images is not None else "", "features" if side.features is not None else "",
                "reencoded" if side.reencoded is not None else "", "t" if side.t is not None else ""}

    others = [(judge, judge.real) for judge in getattr(setup, "other_judges", [])]
    for suffix, judged_side, real in judged(decoded, setup.real, others):
        for metric in metrics:
            if not scores_here(metric, suffix):
                continue
            side = fake if not suffix and set(metric.needs) <= LATENT_NEEDS else judged_side
            if not set(metric.needs) <= has(side):
                continue
                continue
            who = f"metric '{metric.name}'" + (f" (features {suffix[1:]})" if suffix else "")
            try:
                out = metric.compute(side, real)
            except Exception as exc:  # a metric plugin that raises fails this row, not the run
                errors.append(f"{who}: {type(exc).__name__}: {exc}")
                continue
            for key, value in out.items():
                if not isinstance(value, MetricValue):
                    errors.append(f"{who} returned {type(value).__name__} for '{key}', not MetricValue")
                    continue
                values[key + suffix] = value
                producers.setdefault(key + suffix, metric.name)
    return values, producers, errors


def along_t(setup: RunSetup, fake: FakeSide) -> dict[str, Any]:
    from aebench.region import hit_rate_along_t

    return {name: [list(map(float, x[:2])) + [int(x[2])] for x in hit_rate_along_t(region, fake.latents, fake.t)]
            for name, region in setup.real.regions.items()}


def draw(setup: RunSetup, sampler: Any, fake: FakeSide, along: dict[str, Any], out: Path, label: str,
         drawer: FigureDrawer) -> dict[str, str]:
    """The first seed's figures, by `drawer`, under the run's figure folder; paths relative to `out`."""
    from aebench.run.folder import FIGURE_DIR

    folder = out / FIGURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    safe, name = _figure_names(sampler, label)
    axes = getattr(sampler, "plot_axes", None) or tuple(int(a) for a in setup.stats.dominant[:2].tolist())
    made = drawer(fake, folder, stem=safe, name=name, path_labels=getattr(sampler, "path_labels", None),
                  axes=(int(axes[0]), int(axes[1])), train_latents=setup.real.train_latents, centre=setup.stats.mean,
                  along_t=along, target=setup.config.target)
    return {k: str(Path(v).relative_to(out)) for k, v in made.items()}


def metric_classes(config: Any) -> list[tuple[str, type]]:
    """(name, class) of every metric of the run, from this process's plugin registry."""
    from aebench.plugins import get_registry

    registry = get_registry("metric")
    return [(name, registry.get(name)) for name in config.metrics]


def build_metrics(config: Any, classes: list[tuple[str, type]] | None = None) -> list[Metric]:
    """The run's metric instances, from `classes` (see `metric_classes`) or this process's registry."""
    return [cls(config.metric_options.get(name, {})) for name, cls in (classes or metric_classes(config))]
