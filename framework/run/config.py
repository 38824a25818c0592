"""What a run is: `RunConfig`, one dataclass whose defaults feed the Python API, the TOML file and the CLI.

A run = model x data set x samplers x metrics x seeds. `RunConfig.from_sources` merges, in order, the
field defaults, a TOML file, a suite's `[[models]]` entry, command-line values and `--set NAME.OPTION=VALUE`,
then resolves every mode one way whoever calls it (`from_dict`: the samplers, `all` included; `seed` and
`seeds`; `model` as a checkpoint or a package.module:factory; latent files without a data set), and
checks every name against the plugin registries before any work starts, so a typo fails in a second
rather than after training. Commands only map their flags onto these settings; the Python API passes
the same settings and gets the same run. `aebench.run.plan.resolve_plan` then fixes what depends on
the machine (device, counts, batch sizes) into a frozen plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from aebench.errors import OptionError, did_you_mean
from aebench.options import build_options, options_to_dict
from aebench.run.suite_file import check_seeds, check_suite, read_toml, resolve_seeds

# Inception runs at ~5 images/s on a 2-core CPU: 128 samples keep the main job under a minute warm.
# On a GPU thousands cost seconds. FID depends on n: compare numbers only at equal n.
DEFAULT_N_CPU = 128
DEFAULT_N_GPU = 2048
# Latent points per sampler and seed for the latent-space metrics (latent_fd, latent_mmd, latent_1nn,
# latent_copies, region hits, latent coverage and distance): they cost milliseconds per thousand points,
# so they see many more points than are decoded. 4096 narrows the latent_fd interval of a gmm on ORL
# 5-9x against n = 128 (intervals shrink as 1/sqrt(n): sqrt(4096/128) = 5.7) while a cell's latent
# metrics stay near a second on a 2-core CPU (the MMD's kernel sums grow as n^2). The decoded images
# are the first n of these points; never fewer latent points than images.
DEFAULT_N_LATENT = 4096
# Reference images for FID & co: their features are computed once per data set and cached.
DEFAULT_N_REAL_CPU = 1000
DEFAULT_N_REAL_GPU = 10000
# The distribution metrics (latent_fd, latent_mmd, latent_1nn) rank samplers in latent space; hit rates,
# coverage, distance and re-encoding are their diagnostics. The image metrics score against real images
# and against decoded real latents (fid_recon, kid_recon, fid_inf_recon: the sampler's own effect).
LATENT_METRICS = ("region_hits", "latent_coverage", "latent_distance", "reencode", "latent_fd", "latent_mmd",
                  "latent_1nn", "latent_copies")
DEFAULT_METRICS = (*LATENT_METRICS, "fid", "fid_inf", "kid", "prdc")
DEFAULT_REGIONS = ("box", "ellipsoid", "knn", "density")


@dataclass
class SamplerSpec:
    """One row of the benchmark: a registered sampler, its options and a unique label."""

    name: str
    label: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class RunConfig:
    dataset: str | None = "orl_faces"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # a trained aebench checkpoint (.safetensors)
    model: str | None = None  # package.module:factory for a user's own AE
    train_latents: str | None = None  # user-supplied latent arrays instead of encoding the data set
    heldout_latents: str | None = None
    latent_dim: int | None = None  # for the cached/trained model; None = the data set's default
    model_seed: int = 0
    samplers: list[SamplerSpec] = field(default_factory=lambda: [SamplerSpec("plane_paths")])
    n: int | None = None  # None: DEFAULT_N_CPU on a CPU, DEFAULT_N_GPU on a GPU (recorded in the results)
    n_latent: int | None = None  # latent points for latent-space metrics; None: max(DEFAULT_N_LATENT, n)
    seeds: list[int] = field(default_factory=lambda: [0])
    regions: list[str] = field(default_factory=lambda: list(DEFAULT_REGIONS))
    region_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the feature extractor, or several comma-separated ("inception,domain"): the first keeps the image
    # metrics' own keys, each other one scores them again as `<key>@<name>` (aebench.metric.JUDGE_SEPARATOR)
    features: str = "inception"
    feature_options: dict[str, Any] = field(default_factory=dict)  # the first extractor's options
    judge_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # the other extractors', by name
    reference: str = "auto"  # real images the image metrics compare against: auto | heldout | train
    n_real: int | None = None  # at most this many reference images (None: DEFAULT_N_REAL_CPU / _GPU, see run_plan)
    min_heldout_reference: int = 1000  # auto uses held-out images only when there are at least this many
    target: float = 0.95
    device: str = "auto"
    batch_size: int | None = None  # AE decode/encode batch (None: 128 on a CPU, 1024 on a GPU)
    feature_batch_size: int | None = None  # feature batch (None: batch_memory / the extractor's memory per image)
    batch_memory: str | int | None = None  # memory one batch may use, e.g. "512M" (None: 512M CPU, 1/4 of a GPU)
    precision: str = "fp32"  # fp32 (TF32 off) | tf32 (CUDA): decode, re-encode and features
    threads: int | str | None = None  # CPU threads; None/"auto": free cores (see aebench.infra.threads)
    out: str = "aebench-out"
    cache_dir: str | None = None
    figures: bool = True
    # racing rounds (aebench.run.racing): give more seeds only to samplers that can still be first, within
    # `budget` (a duration such as "15m" or decoded images such as "20000"; None: four times the first round)
    decide: bool = False
    budget: str | None = None
    # equivalence margins of ranking metrics for this run ({"latent_fd": "3%"}), over those their Columns declare
    margins: dict[str, str] = field(default_factory=dict)
    # the known-answer ladders (aebench.validation): None = not run; a dict (size, steps, ladders,
    # clusters; may be empty) = run them too and store the `validation` section
    validation: dict[str, Any] | None = None
    # time limit of each cell (and fit): seconds or "90s" / "10m" / "1h"; None = none (aebench.run.timeouts)
    cell_timeout: float | str | None = None
    # a model that reconstructs held-out images worse than the mean image is an error, not a warning
    strict: bool = False

    # ------------------------------------------------------------------------------------
    @classmethod
    def from_sources(cls, toml_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                     assignments: Mapping[str, Mapping[str, str]] | None = None,
                     notify: Callable[[str], None] | None = None,
                     model_entry: Mapping[str, Any] | None = None) -> "RunConfig":
        """Defaults <- TOML file <- `model_entry` (one `[[models]]` entry of a suite) <- `overrides` (run
        settings by name, as the TOML file spells them; None values ignored) <- `assignments` (parsed
        `--set NAME.option=value`), resolved by `from_dict` and checked.

        `seed`/`seeds` mean the same everywhere: `seeds` is a count starting at `seed` (default 0) or an
        explicit list. Overriding seeds replace the file's; a `validation` table refines the file's key by
        key. `notify` gets one line naming every suite setting the overrides replaced (the suite's samplers
        above all) and the samplers `all` skips."""
        data: dict[str, Any] = {}
        suite: dict[str, Any] = {}
        if toml_path is not None:
            suite = read_toml(toml_path)
            suite.pop("models", None)  # a suite across models: one run per entry (aebench.run.suite)
            check_suite(suite, toml_path, (f.name for f in fields(cls)))
            data.update(suite)
        if model_entry is not None:  # that entry's data set / model settings replace the file's
            data.update({k: v for k, v in model_entry.items() if k != "label"})
        given = {key: value for key, value in (overrides or {}).items() if value is not None}
        if isinstance(given.get("validation"), Mapping):  # chosen ladder settings refine the file's [validation]
            given["validation"] = {**(data.get("validation") or {}), **given["validation"]}
        if "seed" in given or "seeds" in given:
            start = given.pop("seed", data.get("seed"))
            count = given.pop("seeds", None)
            if count is None:
                count = data.get("seeds") if isinstance(data.get("seeds"), int) else None
            data.pop("seed", None)
            data.pop("seeds", None)
            given["seeds"] = resolve_seeds(start, count)
        if notify is not None and suite:
            _notify_replaced(suite, given, Path(toml_path).name, notify)
        data.update(given)
        config = cls.from_dict(data, notify=notify)
        config.apply_assignments(assignments or {})
        config.check()
        return config

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], notify: Callable[[str], None] | None = None) -> "RunConfig":
        """A config from plain values (the TOML file's spelling), every mode resolved here, once:

        - `samplers`: names, {name, label, options} tables, or "all" (every sampler that can run here;
          `notify` names those an optional dependency leaves out);
        - `seed`/`seeds`: `seeds` a count from `seed` (default 0) or a list (`resolve_seeds`);
        - `model`: a checkpoint (a path that exists, or no ':') or package.module:factory (`model_source`);
        - latent files: `train_latents` without a `dataset` means no data set, and without `metrics` the
          latent-space metrics only (there are no real images to compare with).
        """
        known = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in known | {"seed"}]
        if unknown:
            raise OptionError(f"Unknown run setting '{unknown[0]}'.{did_you_mean(unknown[0], known)} "
                              f"Available: {', '.join(sorted(known))}")
        data = dict(data)
        if data.get("samplers") == "all":
            data["samplers"] = _every_sampler(notify)
        if "samplers" in data:
            data["samplers"] = [_sampler_spec(s, i) for i, s in enumerate(_as_list(data["samplers"]), start=1)]
        if "seed" in data or "seeds" in data:
            data["seeds"] = resolve_seeds(data.pop("seed", None), data.get("seeds"))
        model = data.get("model")
        if isinstance(model, str) and model_source(model) == "checkpoint":  # `model` takes a checkpoint too
            if data.get("checkpoint") not in (None, model):
                raise OptionError(f"Give either --checkpoint or --model, not both (got {data['checkpoint']} and {model}).")
            data["checkpoint"], data["model"] = model, None
        if isinstance(data.get("features"), (list, tuple)):  # features = ["inception", "domain"] in a suite
            data["features"] = ",".join(str(name) for name in data["features"])
        if data.get("train_latents") is not None and "dataset" not in data:
            data["dataset"] = None  # latent files replace the data set
            data.setdefault("metrics", list(LATENT_METRICS))  # no real images: latent-space metrics only
        return cls(**data)

    def apply_assignments(self, assignments: Mapping[str, Mapping[str, str]]) -> None:
        """Route `--set NAME.option=value` to the data set, a sampler (by label or name), a region, a
        metric or the feature extractor."""
        for owner, values in assignments.items():
            targets = [s for s in self.samplers if owner in (s.label, s.name)]
            if owner == "dataset":
                self.dataset_options.update(values)
            elif targets:
                for spec in targets:
                    spec.options.update(values)
            elif owner in self.regions:
                self.region_options.setdefault(owner, {}).update(values)
            elif owner in self.metrics:
                self.metric_options.setdefault(owner, {}).update(values)
            elif owner in (self.judges[0], "features"):
                self.feature_options.update(values)
            elif owner in self.judges:
                self.judge_options.setdefault(owner, {}).update(values)
            else:
                names = ["dataset", *[s.label for s in self.samplers], *self.regions, *self.metrics, *self.judges]
                raise OptionError(
                    f"--set {owner or '(no name)'}.{next(iter(values))}: '{owner}' is not the data set or a "
                    f"selected sampler, region, metric or extractor.{did_you_mean(owner, names)} "
                    f"Use one of: {', '.join(names)}."
                )

    def check(self) -> None:
        """Check names and numbers before any work starts."""
        from aebench.plugins import get_registry

        self._check_input_files()
        if self.n is not None and (isinstance(self.n, bool) or not isinstance(self.n, int) or self.n <= 0):
            raise OptionError(f"--n must be a positive integer, got {self.n!r}.")
        if self.n_latent is not None and (isinstance(self.n_latent, bool) or not isinstance(self.n_latent, int)
                                          or self.n_latent <= 0):
            raise OptionError(f"--n-latent must be a positive integer, got {self.n_latent!r}.")
        if self.n_latent is not None and self.n is not None and self.n_latent < self.n:
            raise OptionError(f"--n-latent {self.n_latent} is below --n {self.n}: the decoded images are the first n of "
                              f"the latent points; raise --n-latent to at least {self.n} or lower --n.")
        check_seeds(None, self.seeds)
        if not 0 < self.target < 1:
            raise OptionError(f"--target must be in (0, 1), got {self.target}.")
        if self.n_real is not None and (isinstance(self.n_real, bool) or not isinstance(self.n_real, int) or self.n_real < 2):
            raise OptionError(f"--n-real must be an integer >= 2, got {self.n_real!r}.")
        for name in ("batch_size", "feature_batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise OptionError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}.")
        if self.batch_memory is not None:
            from aebench.run.batching import parse_memory_mb

            parse_memory_mb(self.batch_memory)
        from aebench.infra.device import NOT_OFFERED, RUN_PRECISIONS
        from aebench.infra.threads import parse_threads

        if self.precision in NOT_OFFERED:
            raise OptionError(f"--precision {self.precision} is not offered: {NOT_OFFERED[self.precision]}.")
        if self.precision not in RUN_PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(RUN_PRECISIONS)}, got {self.precision!r}.")
        if self.threads is not None:
            parse_threads(self.threads)
        from aebench.run.timeouts import parse_duration

        parse_duration(self.cell_timeout, "--cell-timeout (cell_timeout)")
        if not isinstance(self.strict, bool):
            raise OptionError(f"strict must be true or false, got {self.strict!r}.")
        if self.budget is not None or self.margins:
            from aebench.run.racing import Budget
            from aebench.verdict.equivalence import Margin

            if self.budget is not None:
                if not self.decide:
                    raise OptionError("--budget needs --decide (it limits the racing rounds).")
                Budget.parse(self.budget)
            declared = [c.key for name in self.metrics for c in get_registry("metric").get(name).columns]
            for key, size in self.margins.items():
                if not any(get_registry("metric").get(name).column(key) for name in self.metrics):
                    raise OptionError(f"--margin {key}={size}: no selected metric declares the key '{key}'."
                                      f"{did_you_mean(key, declared)} Keys: {', '.join(declared)}.")
                Margin.parse(size)
        if self.reference not in ("auto", "heldout", "train"):
            raise OptionError(f"reference must be auto, heldout or train, got {self.reference!r}.")
        if self.dataset is None and self.train_latents is None:
            raise OptionError("Give a data set (--dataset) or latent files (--train-latents/--heldout-latents).")
        if (self.train_latents is None) != (self.heldout_latents is None):
            raise OptionError("--train-latents and --heldout-latents go together; give both.")
        if self.train_latents is not None and self.model is None and self.checkpoint is None:
            raise OptionError("Latent files need a model to decode them; add --model package.module:factory or --checkpoint.")
        if self.checkpoint is not None and self.model is not None:
            raise OptionError("Give either --checkpoint or --model, not both.")
        if not self.samplers:
            raise OptionError("No sampler selected; use --sampler NAME or --all.")
        labels = [s.label for s in self.samplers]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            spec = self.samplers[labels.index(dupes[0])]
            raise OptionError(
                f"Sampler '{spec.name}' is listed twice under the label '{dupes[0]}'; give each entry its own label "
                f"(label = \"{spec.name}_2\" in a [[samplers]] entry) or list it once."
            )
        if self.dataset is not None:
            get_registry("dataset").get(self.dataset)
        samplers = get_registry("sampler")
        for spec in self.samplers:
            cls = samplers.get(spec.name)
            build_options(cls.Options, spec.options, owner=spec.label)
        for kind, names, opts in (("region", self.regions, self.region_options),
                                  ("metric", self.metrics, self.metric_options)):
            registry = get_registry(kind)
            for name in names:
                cls = registry.get(name)
                build_options(cls.Options, opts.get(name, {}), owner=name)
        if self.needs_images:
            judges = self.judges
            if not judges or len(set(judges)) != len(judges):
                raise OptionError(f"--features {self.features!r}: name one extractor, or several different ones "
                                  f"separated by commas (e.g. inception,domain).")
            extra = sorted(set(self.judge_options) - set(judges[1:]))
            if extra:
                raise OptionError(f"judge_options names '{extra[0]}', which is not one of the other extractors "
                                  f"({', '.join(judges[1:]) or 'none'}); list it in features or drop its options.")
            registry = get_registry("feature extractor")
            for name in judges:
                build_options(registry.get(name).Options, self.extractor_options(name), owner=name)
        if self.validation is not None:
            from aebench.validation.ladders import ValidationOptions

            ValidationOptions.from_dict(self.validation)

    def _check_input_files(self) -> None:
        """Files named on the command line must exist, checked before anything that would need them."""
        from aebench.errors import CheckpointError, DataError

        for flag, value in (("--train-latents", self.train_latents), ("--heldout-latents", self.heldout_latents)):
            if value is not None and not Path(value).expanduser().is_file():
                raise DataError(f"Latents file {value} does not exist; check the {flag} path.")
        if self.checkpoint is not None:
            from aebench.models.checkpoint import weights_path

            if not weights_path(self.checkpoint).is_file():
                raise CheckpointError(f"Checkpoint {self.checkpoint} does not exist; check the path, or train one with "
                                   f"`aebench train --out {self.checkpoint}`.")

    @property
    def judges(self) -> list[str]:
        """The feature extractors, first (the one whose keys are the metrics' own) first."""
        return [name.strip() for name in str(self.features).split(",") if name.strip()]

    def extractor_options(self, name: str) -> dict[str, Any]:
        """The options of the extractor `name`: `feature_options` for the first, `judge_options[name]` else."""
        return self.feature_options if name == self.judges[0] else self.judge_options.get(name, {})

    @property
    def needs_images(self) -> bool:
        """Whether any selected metric needs image features."""
        from aebench.plugins import get_registry

        registry = get_registry("metric")
        return any("features" in registry.get(m).needs for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["samplers"] = [asdict(s) for s in self.samplers]
        if not out["judge_options"]:  # one extractor: the document (and plan hash) of before several existed
            del out["judge_options"]
        return out


def model_source(spec: str) -> str:
    """What a `--model` value (or `model` in a suite) names: 'checkpoint' for a file that exists or a name
    without ':', else 'model' (package.module:factory, imported when the run loads it). The one rule of
    every command."""
    return "checkpoint" if Path(spec).expanduser().exists() or ":" not in spec else "model"


def _every_sampler(notify: Callable[[str], None] | None) -> list[SamplerSpec]:
    """`samplers = "all"` / `--all`: every registered sampler that can run here, in registry order."""
    from aebench.plugins import get_registry
    from aebench.sampler import available_samplers

    usable = available_samplers()
    skipped = [name for name in get_registry("sampler").names() if name not in usable]
    if skipped and notify is not None:
        notify(f"Note: --all skips {', '.join(skipped)} (not installed here; see `aebench samplers`).")
    return [SamplerSpec(name) for name in usable]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        raise OptionError("samplers is a single table; write [[samplers]] (double brackets) once per sampler, "
                          "each with name = \"...\" and optionally label and options.")
    return [value] if isinstance(value, (str, SamplerSpec)) else list(value)


def _sampler_spec(value: Any, index: int = 1) -> SamplerSpec:
    if isinstance(value, SamplerSpec):
        return value
    if isinstance(value, str):
        return SamplerSpec(value)
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"name", "label", "options"})
        if "name" not in value or extra:
            what = f"samplers entry {index}" + (f" ({value['name']})" if "name" in value else "")
            problem = f"unknown key '{extra[0]}'.{did_you_mean(extra[0], ('name', 'label', 'options'))}" if extra \
                else "no name."
            raise OptionError(f"{what}: {problem} An entry takes name, label and options (options = {{ ... }}).")
        return SamplerSpec(str(value["name"]), str(value.get("label", "")), dict(value.get("options", {})))
    raise OptionError(f"Cannot read sampler entry {value!r}; use a name or a table with name/label/options.")


# command-line flags that set each run setting, for notices
_FLAGS = {"samplers": "--sampler/--all", "seeds": "--seed/--seeds", "checkpoint": "--model/--checkpoint",
          "figures": "--no-figures", "model": "--model", "strict": "--strict"}


def _notify_replaced(suite: Mapping[str, Any], given: Mapping[str, Any], name: str,
                     notify: Callable[[str], None]) -> None:
    """One line saying which of the suite file's settings the command line replaced."""
    replaced = []
    for key, value in given.items():
        if key == "seeds":
            has = "seeds" in suite or "seed" in suite
            old: Any = resolve_seeds(suite.get("seed"), suite.get("seeds")) if has else None
        else:
            old = suite.get(key)
        if old is None or old == value:
            continue
        if key == "samplers":
            labels = [s if isinstance(s, str) else str(s.get("label") or s.get("name")) for s in _as_list(old)]
            replaced.append(f"{_FLAGS[key]} replaces the suite's {len(labels)} sampler(s) ({', '.join(labels)})")
        else:
            flag = _FLAGS.get(key, "--" + key.replace("_", "-"))
            replaced.append(f"{flag} replaces {key} = {old!r}")
    if replaced:
        notify(f"Note: the command line overrides {name}: {'; '.join(replaced)}.")


__all__ = ["RunConfig", "SamplerSpec", "DEFAULT_METRICS", "DEFAULT_REGIONS", "LATENT_METRICS", "model_source",
           "read_toml", "options_to_dict"]
