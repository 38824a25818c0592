"""The results document (results.json) in code: its shape as typed dictionaries, its version, and
`check_results`, which every reader (`aebench compare`, the reports) runs before trusting a file.

Version history:
- `aebench-results/1`: metric_info entries carried a label, direction and a group guessed from key names.
- `aebench-results/2`: every metric_info entry is what the metric declared for that key (label, unit,
  group, role, the ladders it detects, description, which metric produced it); an optional
  `validation` section written by `aebench validate` / `aebench run --validate`; optional `plan` (the
  run plan's hash and resolved values), `cells` (every finished (sampler, seed) cell's metric values)
  and `fits` (each sampler's fit summary), written by `aebench run` and read back by `--resume`;
  status "interrupted" with an `interrupted` section (reason, time) for a run stopped by a signal or a
  lost Dask scheduler (its finished cells kept; `--resume` finishes it); `model.reconstruction`: the
  model's held-out reconstruction MSE against the mean-image baseline, and whether it is worse
  (`aebench.run.model_check`).
  Every section is declared below as a TypedDict; `aebench.results.document` is the one writer.
  A metric_info entry may carry `ideal` (the metric's best value is that point; absent in files
  written before it existed, which then rank the metric by its direction alone).
  A run with several feature extractors (`--features inception,domain`) keys the other extractors'
  image metrics `<key>@<extractor>` (metric_info says which in `judge`) and adds a `judges` section
  (each extractor, and the agreement of their rankings); a single-extractor run is unchanged.

A reader refuses a file of another version with a one-line message that says which aebench to use,
rather than guessing what an older or newer shape means.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal, Mapping, TypedDict

from aebench.errors import AebenchError

SCHEMA_FAMILY = "aebench-results/"
SCHEMA_VERSION = 2
SCHEMA = f"{SCHEMA_FAMILY}{SCHEMA_VERSION}"

ROLES = ("headline", "diagnostic", "info")
# display order of metric groups; a group nobody declared sorts after these
GROUPS = ("region", "latent", "image_recon", "image", "other")
VALIDATION_VERDICTS = ("holds", "broken", "flat", "untested")
ROW_KINDS = ("sampler", "reference")
ROW_STATUSES = ("ok", "failed")
RUN_STATUSES = ("running", "interrupted", "complete")


class ResultsError(AebenchError):
    """A results file that is missing, not JSON, of another schema version, malformed, or unfinished."""


# Every field `aebench run` and `aebench validate` write is declared below (tests/test_results_declared.py
# checks a real run's document against these field by field). `dict[str, Any]` marks what a plugin
# defines (a sampler's options, a fit's fit_info, a metric value's info), never an undeclared section.


class _MetricInfoBase(TypedDict):
    label: str
    higher_is_better: bool | None
    group: str  # 'region', 'latent', 'image', 'image_recon', 'other' (or a plugin's own)
    unit: str  # 'rate': a share in [0, 1] shown as a percentage; else a unit name or ''
    role: Literal["headline", "diagnostic", "info"]
    detects: list[str]  # ladders of `aebench validate` the metric claims to catch
    description: str


class MetricInfo(_MetricInfoBase, total=False):
    """What one metric key means: the metric's own `Column` declaration for that key."""

    ideal: float  # the best value is this point, not an end of the scale (latent_1nn: 0.5); absent: none
    metric: str | None  # the metric plugin that produced the key
    declared: bool  # False: the plugin returned the key without declaring it (shown as info, never ranked)
    margin: str  # equivalence margin of a headline metric: "3%" (share of the value) or "0.01" (its unit)
    judge: str  # the extractor whose features made this key (`fid_recon@domain`); absent: the run's first


class _MetricEntryBase(TypedDict):
    value: float | None  # mean over seeds; null where not finite


class MetricEntry(_MetricEntryBase, total=False):
    """One metric of one row: value, its 95% interval and the spread over seeds."""

    higher_is_better: bool | None
    low: float | None  # 95% interval: the metric's own (bootstrap, subsets) or mean ± t std/sqrt(k) over seeds (see results.aggregate)
    high: float | None
    std: float | None  # standard deviation over seeds (only with several seeds)
    per_seed: list[float | None]
    n: int
    info: dict[str, Any]  # the metric's own (reference set, k, subsets, ...)


class _RowBase(TypedDict):
    name: str  # the row's label: unique in a run
    kind: Literal["sampler", "reference"]
    status: Literal["ok", "failed"]
    metrics: dict[str, MetricEntry]


class CopyShown(TypedDict):
    """One copied sample of the memorisation gallery."""

    sample: int  # the sample's row (first seed)
    train: int  # the row of its nearest training latent
    score: float  # the statistic the copy is flagged by (below the threshold)
    train_distance: float  # distance to that training latent


class _CopiesBase(TypedDict):
    metric: str  # the metric whose copy_evidence this is
    statistic: str  # what `score` is, in words
    rule: str  # when a sample is a copy, in words
    threshold: float
    copied: int  # copies among the first seed's samples
    n: int
    shown: list[CopyShown]  # the most copied first


class Copies(_CopiesBase, total=False):
    """The memorisation gallery of a sampler with copies beyond chance (first seed)."""

    figure: str  # the gallery, relative to the output folder
    training_images: bool  # its third row shows the data set's training images (else only decoded latents)


class Row(_RowBase, total=False):
    """One reference or sampler row (the sampler fields only on sampler rows)."""

    n: int  # decoded images per seed (what the image metrics saw)
    n_latent: int  # latent points per seed behind the latent-space metrics (sampler rows; the first n were decoded)
    seeds: list[int]
    error: str  # why a failed row failed
    sampler: str  # registered sampler behind the label
    options: dict[str, Any]  # the sampler's resolved options
    is_path_sampler: bool
    along_t: dict[str, list[list[float]]]  # region -> [t, hit rate, count] per bin (path samplers, first seed)
    timing: dict[str, float]  # seconds: fit_s, sample_s, decode_s, features_s, metrics_s, total_s
    figures: dict[str, str]  # figure kind -> path relative to the output folder (first seed)
    fit_info: dict[str, Any]  # what the sampler's fit learned (its own keys)
    left_round: int  # racing rounds (--decide): the round after which this sampler got no more seeds
    copies: Copies  # the memorisation gallery (a sampler with copies beyond chance)
    explorer: str  # its points in the latent-plane explorer: a JSON file relative to the output folder


class CellValue(TypedDict):
    """One metric value of one cell, as the metric returned it (`MetricValue`)."""

    value: float | None
    higher_is_better: bool | None
    low: float | None
    high: float | None
    n: int | None
    info: dict[str, Any]


class Backoff(TypedDict):
    """One out-of-memory retry: which stage, the halved batch size, the error."""

    what: str
    batch_size: int
    error: str


class CellRecord(TypedDict):
    """One finished (sampler, seed) cell (`aebench.run.cells.CellResult`), read back by `--resume`."""

    status: Literal["ok", "failed"]
    sampler: str  # the sampler row's label
    seed: int
    values: dict[str, CellValue]
    producers: dict[str, str]  # metric key -> the metric plugin that returned it
    error: str | None
    timing: dict[str, float]
    along_t: dict[str, list[list[float]]]
    figures: dict[str, str]
    pictures: dict[str, Any]  # first seed: 'copies' (Copies) and 'explorer' (a path), each when made
    backoffs: list[Backoff]
    n_latent: int | None  # latent points drawn (the plan's n_latent unless the sampler caps its draws)


class RoundRecord(TypedDict):
    """One racing round (aebench.run.racing)."""

    round: int
    samplers: list[str]
    seeds: int
    cells: int
    images: int
    seconds: float
    end: str
    contenders: list[str]
    open_pairs: int


class _RaceBase(TypedDict):
    budget: dict[str, Any]  # images, seconds, text
    stopped: str  # 'decided', 'budget', 'no_contenders', 'rounds'
    rounds: list[RoundRecord]
    left: dict[str, int]
    spent_images: int
    spent_seconds: float


class Race(_RaceBase, total=False):
    """The racing rounds of `aebench run --decide`; with open pairs at the end, what would settle them."""

    seeds_needed: int | None
    images_needed: int


class FitRecord(TypedDict):
    """A sampler's fit, done once for all its seeds (`aebench.run.cells.FitResult.summary`)."""

    options: dict[str, Any]
    fit_info: dict[str, Any]
    error: str | None
    timing: dict[str, float]


class PlanCell(TypedDict):
    sampler: str
    seed: int


class _PlanBase(TypedDict):
    hash: str  # names the settings that decide the numbers (`--resume` refuses another plan)
    device: str
    n: int
    n_latent: int
    n_real: int
    seeds: list[int]
    fit_seed: int
    latent_files: bool  # latents from the user's files, not encoded from a data set
    cells: list[PlanCell]


class PlanSection(_PlanBase, total=False):
    """The run plan (`aebench.run.plan.RunPlan`) and how its cells were run."""

    cells_reused: int  # finished cells kept from an earlier run (--resume)
    cells_computed: int
    executor: str  # local | dask


class SamplerSpecEntry(TypedDict):
    name: str
    label: str
    options: dict[str, Any]


class ValidationChoice(TypedDict, total=False):
    """The ladders' settings a user chose (`aebench.validation.ladders.ValidationOptions`)."""

    size: int | None
    steps: int
    ladders: list[str] | str
    clusters: int


class _ConfigBase(TypedDict):

    dataset: str | None
    dataset_options: dict[str, Any]
    checkpoint: str | None
    model: str | None
    train_latents: str | None
    heldout_latents: str | None
    latent_dim: int | None
    model_seed: int
    samplers: list[SamplerSpecEntry]
    n: int  # decoded images per sampler and seed
    n_latent: int  # latent points per sampler and seed for the latent-space metrics (the first n decoded)
    seeds: list[int]
    regions: list[str]
    region_options: dict[str, dict[str, Any]]
    metrics: list[str]
    metric_options: dict[str, dict[str, Any]]
    features: str
    feature_options: dict[str, Any]
    reference: Literal["auto", "heldout", "train"]
    n_real: int
    min_heldout_reference: int
    target: float
    device: str
    batch_size: int | None
    feature_batch_size: int | None
    batch_memory: str | float | None
    precision: str
    threads: int | str | None
    out: str
    cache_dir: str | None
    figures: bool
    validation: ValidationChoice | None
    cell_timeout: float | str | None  # time limit of each cell and fit (aebench.run.timeouts)
    strict: bool  # a model worse than the mean image is an error
    decide: bool  # racing rounds (aebench.run.racing)
    budget: str | None  # what they may spend: "15m" or decoded images "20000"; None: the default
    margins: dict[str, str]  # equivalence margins set for this run, over the metrics' declared ones


class ConfigSection(_ConfigBase, total=False):
    """The run's settings with the plan's resolved values (`aebench.run.config.RunConfig.to_dict`)."""

    judge_options: dict[str, dict[str, Any]]  # the other extractors' options (`--features a,b`); absent: none


class _EnvironmentBase(TypedDict):
    aebench: str
    torch: str
    numpy: str
    python: str
    platform: str
    device: str
    gpu: str | None


class ThreadChange(TypedDict):
    after_s: float  # seconds after the choice
    threads: int
    others_busy: float  # cores other processes kept busy since the last reading


class ThreadChoiceRecord(TypedDict):
    """Why the run used `threads` threads (`aebench.infra.threads`)."""

    threads: int  # the first choice; `changes` lists later ones
    source: Literal["threads", "OMP_NUM_THREADS", "auto"]
    cores: int  # cores this process may run on
    others_busy: float | None  # auto: cores other processes kept busy while it measured
    window_s: float | None  # auto: how long it measured
    measured_by: str | None  # auto: "/proc/stat" or "load average"
    reason: str
    changes: list[ThreadChange]  # auto: re-checks between stages that changed the count


class EnvironmentSection(_EnvironmentBase, total=False):
    """Where the numbers were made; the run adds how (threads, precision, batch sizes, back-offs)."""

    threads: int
    threads_choice: ThreadChoiceRecord | None
    precision: str
    batch_size: int  # latents per decode/encode batch, as resolved
    feature_batch_size: int | None  # images per feature batch (None without image metrics)
    backoffs: list[Backoff]


class DatasetSection(TypedDict):
    name: str
    options: dict[str, Any]  # the data set plugin's resolved options
    fingerprint: str
    n_train: int
    n_heldout: int
    image_shape: list[int]
    citation: str


class ArchitectureRecord(TypedDict):
    name: str
    config: dict[str, Any]  # the architecture plugin's options


class Reconstruction(TypedDict):
    """The model's held-out reconstruction error against the mean-image baseline (aebench.run.model_check)."""

    heldout_mse: float  # mean squared error, pixels in [0, 1]
    baseline_mse: float  # predicting every held-out image by the mean training image
    n: int  # held-out images
    source: Literal["checkpoint", "measured"]  # an aebench sidecar for this data set, or measured (cached)
    worse_than_baseline: bool  # the model has not learnt the images: warned, an error with --strict


class ModelSection(TypedDict):
    checksum: str
    path: str | None
    latent_dim: int
    architecture: ArchitectureRecord | None
    heldout_mse: float | None
    baseline_mse: float | None
    reconstruction: Reconstruction | None  # None without images (latent files only)


class StatsSection(TypedDict):
    """A summary of the training latents' statistics (`aebench.stats.LatentStats.to_dict`)."""

    n: int
    latent_dim: int
    centre_norm: float
    dominant: list[int]
    explained_variance_top10: list[float]
    condition_number: float | None
    top_pairs: list[list[float]]  # [i, j, correlation]


class ReconReference(TypedDict):
    """Which decoded real latents the decoder-matched image metrics compare against."""

    split: str
    n: int
    index_sha: str
    disjoint_from_reconstruction_row: bool
    selection: str


class _FeaturesBase(TypedDict):
    extractor: str
    identity: str
    judge: bool  # a validated judge of image quality
    reference: Literal["heldout", "train"]  # the real images the image metrics compare against
    n_real: int
    recon_reference: ReconReference | None
    device: str  # features depend on where and in what precision they were made
    precision: str


class FeaturesSection(_FeaturesBase, total=False):
    # the extractor's own facts beyond its identity (FeatureExtractor.provenance): for the domain judge its
    # checksum, held-out accuracy, class count and the data it was trained on; absent when it has none
    provenance: dict[str, Any]


class JudgeRecord(TypedDict, total=False):
    """One extractor of a run with several: what the features section says of the first, for each."""

    extractor: str
    identity: str
    judge: bool
    suffix: str  # '' for the first extractor, '@<name>' for the others' metric keys
    n_real: int
    provenance: dict[str, Any]


class Disagreement(TypedDict):
    """Two samplers in opposite orders under two judges, with intervals apart both times."""

    first: str  # the judge that puts `ahead_first` ahead
    second: str
    ahead_first: str  # sampler ahead under `first`
    ahead_second: str  # sampler ahead under `second`


class MetricAgreement(TypedDict, total=False):
    """Do two judges rank the samplers the same way on one image headline metric?"""

    metric: str  # the base key, e.g. fid_recon
    label: str
    judges: list[str]  # the two judges compared
    keys: list[str]  # their keys (fid_recon, fid_recon@domain)
    n: int  # samplers with a finite value under both
    spearman: float | None  # scipy.stats.spearmanr of their values; None with fewer than 3 samplers or a constant
    disagreements: list[Disagreement]
    with_intervals: bool  # every compared value had a 95% interval (else: point values, one seed)
    sentence: str  # what the report says, one sentence


class JudgesSection(TypedDict, total=False):
    """Several feature extractors in one run: who they are and whether they agree."""

    extractors: list[JudgeRecord]  # the first keeps the metric's own keys
    agreement: list[MetricAgreement]  # written when the run completes (aebench.verdict.agreement)


class RegionReport(TypedDict):
    """How a region was calibrated, and whether points from its own model pass."""

    target: float
    threshold: float | None
    heldout_rate: float
    self_consistency: float | None


class LadderResult(TypedDict, total=False):
    """One metric key along one ladder: its values in step order, their rank correlation, the verdict."""

    values: list[float | None]
    spearman: float | None
    verdict: Literal["holds", "broken", "flat", "untested"]
    note: str


class _ValidationMetricBase(TypedDict):
    label: str
    metric: str
    role: Literal["headline", "diagnostic", "info"]
    group: str
    unit: str
    higher_is_better: bool | None
    detects: list[str]
    ladders: dict[str, LadderResult]
    verdict: Literal["holds", "broken", "flat", "untested"]
    trusted_for: list[str]


class ValidationMetric(_ValidationMetricBase, total=False):
    note: str  # why an untested metric produced nothing


class LadderSpec(TypedDict):
    param: str  # what the steps change
    levels: list[float]


class FeatureCounts(TypedDict):
    computed: int
    reused: int
    cached: int
    note: str


class _ValidationSettingsBase(TypedDict):
    size: int
    split: str
    steps: dict[str, int]
    extractor: str | None
    extractor_judge: bool | None
    seed: int
    holds_at: float
    flat_below: float
    clusters: int
    usable_heldout: int
    left_out_of_base: dict[str, int]
    base: str
    latent_reference: str
    training_reference: str
    regions: str
    pools: dict[str, int]
    images_decoded: int
    features: FeatureCounts
    timing_s: dict[str, float]


class ValidationSettings(_ValidationSettingsBase, total=False):
    """How the ladders were built (the ladder set's own notes included)."""

    centre: str
    uniform_range: str
    gaussian: str
    copies: str
    mode_drop: dict[str, Any]
    other_extractors: list[str]  # `--features a,b`: the other judges, whose image keys end in '@<name>'


class _ValidationBase(TypedDict):
    settings: ValidationSettings
    ladders: dict[str, LadderSpec]
    metrics: dict[str, ValidationMetric]
    uncovered: list[str]  # ladders no trusted headline metric detects


class Validation(_ValidationBase, total=False):
    """Known-answer ladders run on this model: which metrics held on which failure mode."""

    figure: str  # the ladder plot, relative to the output folder
    strips: dict[str, str]  # ladder -> its decoded steps (a few base points at every step), relative to it too


class Interruption(TypedDict):
    """Why and when a run stopped before completing (status "interrupted"; `--resume` finishes it)."""

    reason: str  # "Ctrl-C (SIGINT)", "SIGTERM", or what stopped it (a lost Dask scheduler, ...)
    at: str  # ISO time


class _DocumentBase(TypedDict):
    schema: str
    status: Literal["running", "interrupted", "complete"]
    metric_info: dict[str, MetricInfo]
    references: list[Row]
    samplers: list[Row]


class ResultsDocument(_DocumentBase, total=False):
    """The whole results.json."""

    created: str
    finished: str | None
    environment: EnvironmentSection
    config: ConfigSection
    dataset: DatasetSection | None
    model: ModelSection
    stats: StatsSection
    features: FeaturesSection | None  # None without image metrics
    regions: dict[str, RegionReport]
    validation: Validation
    plan: PlanSection  # `aebench run` only
    cells: list[CellRecord]  # `aebench run` only
    fits: dict[str, FitRecord]  # sampler label -> its fit; `aebench run` only
    race: Race  # `aebench run --decide` only
    explorer: str  # the latent-plane explorer's planes (JSON, relative to the output folder); with figures
    judges: JudgesSection  # only with several feature extractors (`--features inception,domain`)
    interrupted: Interruption  # only with status "interrupted"


# ----------------------------------------------------------------------------------------- checks

_FIX = "the file is truncated or hand-edited; rerun `aebench run` to write it again"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_null(value: Any) -> bool:
    return value is None or (_is_number(value) and math.isfinite(value))


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str, fix: str = _FIX) -> None:
        raise ResultsError(f"{self.source}: {where} {problem}; {fix}.")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, f"must be an object, got {type(value).__name__}")
        return value

    def listing(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, f"must be a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.fail(where, f"must be a string, got {value!r}")
        return value

    def one_of(self, value: Any, allowed: tuple[str, ...], where: str) -> None:
        if value not in allowed:
            self.fail(where, f"is {value!r}, not one of {', '.join(allowed)}")

    def strings(self, value: Any, where: str) -> None:
        for i, item in enumerate(self.listing(value, where)):
            self.text(item, f"{where}[{i}]")


def check_schema_version(doc: Any, source: str = "results") -> None:
    """Refuse anything that is not an aebench results document of exactly this version."""
    schema = doc.get("schema") if isinstance(doc, Mapping) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_FAMILY):
        raise ResultsError(
            f'{source} is not an aebench results file (no "schema": "{SCHEMA}"); pass a results.json from `aebench run`.'
        )
    if schema == SCHEMA:
        return
    try:
        version = int(schema[len(SCHEMA_FAMILY):])
    except ValueError:
        version = None
    if version is not None and version < SCHEMA_VERSION:
        raise ResultsError(
            f"{source} has schema {schema!r}, written by an older aebench; this aebench reads {SCHEMA!r}: "
            "rerun `aebench run` with this version to get comparable results."
        )
    raise ResultsError(
        f"{source} has schema {schema!r}, written by a newer aebench; this aebench reads {SCHEMA!r}: "
        "upgrade aebench (pip install -U aebench) to read it."
    )


def check_results(doc: Any, source: str = "results") -> ResultsDocument:
    """Check `doc` against the results schema and return it typed; a ResultsError names the first
    field that is wrong (`source` is how the error names the document, e.g. its path)."""
    check_schema_version(doc, source)
    c = _Checker(source)
    c.one_of(doc.get("status"), RUN_STATUSES, "status")
    info = c.mapping(doc.get("metric_info"), "metric_info")
    for key, entry in info.items():
        _check_info(c, key, entry)
    for section in ("references", "samplers"):
        names: set[str] = set()
        for i, row in enumerate(c.listing(doc.get(section), section)):
            where = f"{section}[{i}]"
            row = c.mapping(row, where)
            name = c.text(row.get("name"), f"{where}.name")
            if name in names:
                c.fail(f"{where}.name", f"repeats the row name {name!r}")
            names.add(name)
            c.one_of(row.get("kind"), ROW_KINDS, f"{where}.kind")
            c.one_of(row.get("status", "ok"), ROW_STATUSES, f"{where}.status")
            if row.get("status") == "failed" and "error" in row:
                c.text(row["error"], f"{where}.error")
            for key, entry in c.mapping(row.get("metrics"), f"{where}.metrics").items():
                _check_entry(c, entry, f"{where}.metrics.{key}")
                if key not in info:
                    c.fail(f"{where}.metrics.{key}", "has no metric_info entry saying what it means")
            for field in ("sampler",):
                if field in row:
                    c.text(row[field], f"{where}.{field}")
            if "options" in row:
                c.mapping(row["options"], f"{where}.options")
    for section in ("config", "model", "environment", "regions", "stats"):
        if doc.get(section) is not None:
            c.mapping(doc[section], section)
    if (doc.get("model") or {}).get("reconstruction") is not None:
        _check_reconstruction(c, doc["model"]["reconstruction"])
    for section in ("dataset", "features"):
        if doc.get(section) is not None:
            c.mapping(doc[section], section)
    if "validation" in doc:
        _check_validation(c, doc["validation"])
    if "interrupted" in doc:
        stop = c.mapping(doc["interrupted"], "interrupted")
        c.text(stop.get("reason"), "interrupted.reason")
        c.text(stop.get("at"), "interrupted.at")
    return doc  # type: ignore[return-value]


def _check_reconstruction(c: _Checker, section: Any) -> None:
    where = "model.reconstruction"
    section = c.mapping(section, where)
    for field in ("heldout_mse", "baseline_mse"):
        if not _is_number(section.get(field)) or not math.isfinite(section[field]):
            c.fail(f"{where}.{field}", f"must be a finite number, got {section.get(field)!r}")
    if not isinstance(section.get("worse_than_baseline"), bool):
        c.fail(f"{where}.worse_than_baseline", f"must be true or false, got {section.get('worse_than_baseline')!r}")
    c.one_of(section.get("source"), ("checkpoint", "measured"), f"{where}.source")


def _check_info(c: _Checker, key: str, entry: Any) -> None:
    where = f"metric_info.{key}"
    entry = c.mapping(entry, where)
    for field in ("label", "group", "unit", "description"):
        c.text(entry.get(field), f"{where}.{field}")
    hib = entry.get("higher_is_better", "missing")
    if hib is not None and not isinstance(hib, bool):
        c.fail(f"{where}.higher_is_better", f"must be true, false or null, got {hib!r}")
    c.one_of(entry.get("role"), ROLES, f"{where}.role")
    c.strings(entry.get("detects"), f"{where}.detects")


def _check_entry(c: _Checker, entry: Any, where: str) -> None:
    entry = c.mapping(entry, where)
    if "value" not in entry:
        c.fail(where, "has no value")
    for field in ("value", "low", "high", "std"):
        if field in entry and not _number_or_null(entry[field]):
            c.fail(f"{where}.{field}", f"must be a finite number or null, got {entry[field]!r}")
    if (entry.get("low") is None) != (entry.get("high") is None):
        c.fail(where, "has only one end of its interval (low/high)")
    if "per_seed" in entry:
        for i, x in enumerate(c.listing(entry["per_seed"], f"{where}.per_seed")):
            if not _number_or_null(x):
                c.fail(f"{where}.per_seed[{i}]", f"must be a finite number or null, got {x!r}")


def _check_validation(c: _Checker, section: Any) -> None:
    section = c.mapping(section, "validation")
    for key in ("settings", "ladders"):
        if key in section:
            c.mapping(section[key], f"validation.{key}")
    if "uncovered" in section:
        c.strings(section["uncovered"], "validation.uncovered")
    for key, entry in c.mapping(section.get("metrics", {}), "validation.metrics").items():
        where = f"validation.metrics.{key}"
        entry = c.mapping(entry, where)
        c.one_of(entry.get("verdict"), VALIDATION_VERDICTS, f"{where}.verdict")
        for field in ("detects", "trusted_for"):
            if field in entry:
                c.strings(entry[field], f"{where}.{field}")
        for ladder, result in c.mapping(entry.get("ladders", {}), f"{where}.ladders").items():
            result = c.mapping(result, f"{where}.ladders.{ladder}")
            if "verdict" in result:
                c.one_of(result["verdict"], VALIDATION_VERDICTS, f"{where}.ladders.{ladder}.verdict")
            if result.get("spearman") is not None and not _is_number(result["spearman"]):
                c.fail(f"{where}.ladders.{ladder}.spearman", f"must be a number or null, got {result['spearman']!r}")


def load_results(path: str | Path, *, allow_incomplete: bool = False) -> ResultsDocument:
    """Read, parse and check a results.json written by `aebench run`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"Results file {path} does not exist; pass the results.json that `aebench run` wrote.") from None
    except IsADirectoryError:
        raise ResultsError(f"{path} is a folder; pass the results.json inside it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"Cannot read results file {path} ({exc}); check the path and permissions.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); pass an intact results.json from `aebench run`."
        ) from None
    doc = check_results(data, str(path))
    if doc["status"] != "complete" and not allow_incomplete:
        raise ResultsError(f"{path} is a {doc['status']} run, not a complete one; rerun it or pass --allow-incomplete.")
    return doc


def neutral_info(key: str, higher_is_better: bool | None, metric: str | None) -> MetricInfo:
    """The metric_info entry of a key its metric did not declare: shown under its own name as
    information, never ranked, so nothing about it is guessed from the key."""
    return {"label": key, "higher_is_better": higher_is_better, "group": "other", "unit": "", "role": "info",
            "detects": [], "description": f"not declared by metric {metric!r}" if metric else "not declared",
            "metric": metric, "declared": False}


__all__ = [
    "SCHEMA", "SCHEMA_FAMILY", "SCHEMA_VERSION", "ROLES", "GROUPS", "VALIDATION_VERDICTS", "ResultsError",
    "MetricInfo", "MetricEntry", "Row", "CellValue", "CellRecord", "FitRecord", "Backoff", "PlanCell", "PlanSection",
    "ConfigSection", "EnvironmentSection", "ThreadChoiceRecord", "ThreadChange", "DatasetSection", "ModelSection",
    "StatsSection", "FeaturesSection", "RegionReport", "Interruption", "Reconstruction", "Validation",
    "ValidationMetric", "ValidationSettings", "LadderResult", "ResultsDocument", "JudgesSection", "JudgeRecord",
    "MetricAgreement", "Disagreement",
    "check_schema_version", "check_results", "load_results", "neutral_info",
]
