"""The one writer of the results document (results.json; its declared shape and version live in
`aebench.results.schema`): a new document with the run's provenance (`new_document`), the reference and
sampler rows (`reference_row`, `sampler_row`: per-seed numbers aggregated over seeds), what each metric
key means (`metric_info_entry`, `note_metric_info`), atomic writes. `aebench run` and `aebench validate`
both build their documents here, so what they write is what the schema declares (tests check a real
run's document field by field). Written after every cell so a crash never leaves a file that looks
complete (`status` says "running" until the end)."""

from __future__ import annotations

import datetime as _dt
import math
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence, cast

import torch

from aebench import __version__
from aebench.infra.console import err_console
from aebench.infra.io import write_json_atomic
from aebench.metric import Metric, MetricValue
from aebench.results.schema import (
    SCHEMA,
    DatasetSection,
    EnvironmentSection,
    FeaturesSection,
    JudgeRecord,
    JudgesSection,
    MetricEntry,
    MetricInfo,
    ModelSection,
    ResultsDocument,
    Row,
    neutral_info,
)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def environment(device: torch.device) -> EnvironmentSection:
    import numpy

    from aebench.infra.device import describe_device

    where = describe_device(device)
    return {"aebench": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": sys.version.split()[0], "platform": platform.platform(), "device": str(where["device"]),
            "gpu": where["gpu"]}


def new_document(setup: Any) -> ResultsDocument:
    """A running document with the provenance of `setup`, a prepared `aebench.run.setup.RunSetup`
    (environment, settings, data set, model, latent statistics, image features, regions), and no rows yet.
    (Typed loosely so that the results package never imports the pipeline.)"""
    config, model, dataset = setup.config, setup.model, setup.dataset
    sidecar = model.config or {}
    metrics = sidecar.get("metrics") or {}
    model_section: ModelSection = {
        "checksum": model.checksum,
        "path": str(model.path) if model.path else None,
        "latent_dim": model.latent_dim,
        "architecture": sidecar.get("architecture"),
        "heldout_mse": metrics.get("heldout_mse", sidecar.get("heldout_mse")),
        "baseline_mse": metrics.get("baseline_mse", sidecar.get("baseline_mse")),
        # on the run's data set, for any model (aebench.run.model_check); None without images
        "reconstruction": getattr(setup, "reconstruction", None),
    }
    dataset_section: DatasetSection | None = None
    if dataset is not None:
        dataset_section = {"name": dataset.name, "options": dataset.options, "fingerprint": dataset.fingerprint(),
                           "n_train": int(dataset.train_index.numel()), "n_heldout": int(dataset.heldout_index.numel()),
                           "image_shape": list(dataset.image_shape), "citation": dataset.citation}
    features: FeaturesSection | None = None
    if setup.extractor is not None:
        # real.reference is 'heldout' or 'train' and recon_info a ReconReference, as the setup makes them
        features = cast(FeaturesSection, {
            "extractor": setup.extractor.name, "identity": setup.extractor.identity, "judge": setup.extractor.judge,
            "reference": setup.real.reference, "n_real": int(setup.real.features.shape[0]),
            "recon_reference": dict(setup.real.recon_info) or None,
            # features (and so FID & co) depend on where and in what precision they were made
            "device": setup.device.type, "precision": config.precision})
        if setup.extractor.provenance:  # e.g. the domain judge's checksum, held-out accuracy, training data
            features["provenance"] = dict(setup.extractor.provenance)
    judges = judges_section(setup)
    doc: ResultsDocument = {
        "schema": SCHEMA,
        "status": "running",
        "created": now(),
        "finished": None,
        "environment": environment(setup.device),
        "config": config.to_dict(),  # type: ignore[typeddict-item]
        "dataset": dataset_section,
        "model": model_section,
        "stats": setup.stats.to_dict(),  # type: ignore[typeddict-item]
        "features": features,
        "regions": setup.region_report,  # type: ignore[typeddict-item]
        "metric_info": {},
        "references": [],
        "samplers": [],
    }
    if judges is not None:
        doc["judges"] = judges
    return doc


def judges_section(setup: Any) -> JudgesSection | None:
    """The `judges` section of a run with several extractors (None with one): each extractor, first first,
    with the suffix of its metric keys; the agreement is added when the run completes."""
    others = getattr(setup, "other_judges", None) or []
    if setup.extractor is None or not others:
        return None
    records: list[JudgeRecord] = []
    for judge in [setup.extractor, *others]:
        side = judge.real if judge.real is not None else setup.real
        record: JudgeRecord = {"extractor": judge.name, "identity": judge.identity, "judge": judge.judge,
                               "suffix": judge.suffix, "n_real": int(side.features.shape[0])}
        if judge.provenance:
            record["provenance"] = dict(judge.provenance)
        records.append(record)
    return {"extractors": records}


def reference_row(name: str, n: int, seeds: Sequence[int], values: Mapping[str, MetricValue],
                  errors: Sequence[str]) -> Row:
    """The row of a reference (real held-out latents, their reconstructions, ...): scored once."""
    return _row(name, "reference", n, seeds, [dict(values)] if values else [], errors)


def sampler_row(label: str, sampler: str, n: int, seeds: Sequence[int], per_seed: Sequence[Mapping[str, MetricValue]],
                errors: Sequence[str], *, options: Mapping[str, Any], is_path_sampler: bool,
                along_t: Mapping[str, Any], timing: Mapping[str, float], figures: Mapping[str, str],
                fit_info: Mapping[str, Any], pictures: Mapping[str, Any] | None = None) -> Row:
    """The row of a sampler spec: its cells' values aggregated over seeds (see `aggregate`), what it is
    (registered sampler, resolved options, path sampler), what it cost, its figures and what its fit learned;
    from the first seed's `pictures` its memorisation gallery ('copies') and explorer points ('explorer')."""
    row = _row(label, "sampler", n, seeds, [dict(v) for v in per_seed], errors)
    row.update({"sampler": sampler, "options": dict(options), "is_path_sampler": is_path_sampler,
                "along_t": dict(along_t), "timing": dict(timing), "figures": dict(figures), "fit_info": dict(fit_info)})
    pictures = pictures or {}
    if pictures.get("copies"):
        row["copies"] = pictures["copies"]
    if pictures.get("explorer"):
        row["explorer"] = str(pictures["explorer"])
    return row


def _row(name: str, kind: str, n: int, seeds: Sequence[int], per_seed: list[dict[str, MetricValue]],
         errors: Sequence[str]) -> Row:
    row: Row = {"name": name, "kind": kind, "status": "failed" if errors else "ok",  # type: ignore[typeddict-item]
                "n": n, "seeds": list(seeds), "metrics": aggregate(per_seed) if per_seed else {}}
    if errors:
        row["error"] = "; ".join(errors)
    return row


def metric_info_entry(key: str, metric: Metric | None, higher_is_better: bool | None) -> MetricInfo:
    """What `key` means, from the declaration of the metric that produced it. A key the metric did not
    declare gets a neutral entry (its own name, group 'other', role 'info': shown, never ranked) and
    a warning that tells the metric's author what to add."""
    name = metric.name if metric is not None else None
    column = type(metric).column(key) if metric is not None else None
    if column is None:
        err_console.print(
            f"[yellow]warning:[/yellow] metric {name!r} returned {key!r} without declaring it in `columns`; "
            "it is shown as information and never ranks samplers. Declare a Column for it.",
            highlight=False, soft_wrap=True,
        )
        return neutral_info(key, higher_is_better, name)
    entry: MetricInfo = {**column.for_key(key), "metric": name, "declared": True}  # type: ignore[typeddict-item]
    return entry


def note_metric_info(doc: ResultsDocument, values: Mapping[str, MetricValue | bool | None],
                     producers: Mapping[str, Metric]) -> None:
    """Add the metric_info entry of every key not seen before. `values` maps keys to MetricValues or
    to their direction."""
    for key, value in values.items():
        if key in doc["metric_info"]:
            continue
        hib = value.higher_is_better if isinstance(value, MetricValue) else value
        doc["metric_info"][key] = metric_info_entry(key, producers.get(key), hib)


def aggregate(per_seed: list[dict[str, MetricValue]]) -> dict[str, MetricEntry]:
    """Combine one dict of MetricValues per seed into {key: {value, std, low, high, per_seed, ...}}.
    With one seed the metric's own interval is kept. With k seeds, value = mean over seeds and the 95%
    interval of that mean is mean ± t(k-1) std / sqrt(k) (Student's t: two or three seeds say little
    about the spread), widened to the seeds' own intervals combined (root mean square half-width /
    sqrt(k)) where those are wider: a sampler that draws the same points at every seed has no seed
    spread, yet its number still comes from a finite sample. The verdict and `aebench compare` call
    two rows different only where these intervals do not overlap."""
    keys: list[str] = []
    for d in per_seed:
        keys += [k for k in d if k not in keys]
    out: dict[str, MetricEntry] = {}
    for key in keys:
        values = [d[key] for d in per_seed if key in d]
        nums = [v.value for v in values]
        first = values[0]
        entry: dict[str, Any] = {"higher_is_better": first.higher_is_better}
        if first.n is not None:
            entry["n"] = first.n
        if first.info:
            entry["info"] = first.info
        if len(values) == 1:
            entry["value"] = _clean(nums[0])
            if first.low is not None:
                entry["low"], entry["high"] = _clean(first.low), _clean(first.high)
        else:
            finite = [x for x in nums if math.isfinite(x)]
            mean = statistics.fmean(finite) if finite else float("nan")
            std = statistics.stdev(finite) if len(finite) > 1 else 0.0
            half = seed_half_width(std, len(finite), [v for v in values if math.isfinite(v.value)])
            entry.update(value=_clean(mean), std=_clean(std), low=_clean(mean - half), high=_clean(mean + half),
                         per_seed=[_clean(x) for x in nums])
        out[key] = entry  # type: ignore[assignment]
    return out


def seed_half_width(std: float, k: int, values: list[MetricValue]) -> float:
    """Half-width of the 95% interval of a mean over `k` seeds (see `aggregate`)."""
    from scipy.stats import t as student_t

    if k == 0:
        return float("nan")
    spread = float(student_t.ppf(0.975, k - 1)) * std / math.sqrt(k) if k > 1 else 0.0
    own = [((v.high - v.low) / 2) ** 2 for v in values
           if v.low is not None and v.high is not None and math.isfinite(v.low) and math.isfinite(v.high)]
    within = math.sqrt(sum(own) / len(own)) / math.sqrt(k) if len(own) == len(values) and own else 0.0
    return max(spread, within)


def _clean(x: float | None) -> float | None:
    """JSON has no NaN/Inf: store them as null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def write_results(doc: ResultsDocument | Mapping[str, Any], out_dir: Path) -> Path:
    """results.json in `out_dir`, atomically."""
    return write_json_atomic(Path(out_dir) / "results.json", doc)
