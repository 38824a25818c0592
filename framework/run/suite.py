"""Suites across models and data sets: a suite file's `[[models]]` entries (each a data set and/or a
model: `label`, `dataset`, `dataset_options`, `checkpoint`, `model`, `latent_dim`, `model_seed`,
`train_latents`, `heldout_latents`) turn one `aebench run --config` into one run per entry, each with
its own results document in `--out/<label>/`, and a cross-model table of the headline metrics
(`--out/suite.md`, `suite.json`).

From Python: `run_suite(suite_configs("suite.toml"))`, the same as `aebench run --config suite.toml`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from aebench.errors import OptionError, did_you_mean
from aebench.run.config import RunConfig
from aebench.run.suite_file import read_toml

MODEL_KEYS = ("label", "dataset", "dataset_options", "checkpoint", "model", "latent_dim", "model_seed",
              "train_latents", "heldout_latents")


def suite_models(path: str | Path | None) -> list[dict[str, Any]] | None:
    """The checked `[[models]]` entries of the suite file at `path` (each with a unique label), or None
    when it has none."""
    if path is None:
        return None
    entries = read_toml(path).get("models")
    if entries is None:
        return None
    name = Path(path).name
    if isinstance(entries, Mapping) or not isinstance(entries, list) or not entries:
        raise OptionError(f"{name}: models is a list of tables; write [[models]] (double brackets) once per model, "
                          f"each with dataset = \"...\" and/or checkpoint = \"...\".")
    out = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise OptionError(f"{name}: models entry {i} is not a table; write it under a [[models]] header.")
        extra = sorted(set(entry) - set(MODEL_KEYS))
        if extra:
            raise OptionError(f"{name}: models entry {i}: unknown key '{extra[0]}'.{did_you_mean(extra[0], MODEL_KEYS)} "
                              f"An entry takes {', '.join(MODEL_KEYS)}.")
        entry = dict(entry)
        default = entry.get("dataset") or Path(str(entry.get("checkpoint") or entry.get("model") or f"model{i}")).stem
        entry["label"] = str(entry.get("label") or default)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", entry["label"]):
            raise OptionError(f"{name}: models entry {i}: label '{entry['label']}' names a folder; use letters, "
                              f"digits, '.', '_' or '-'.")
        out.append(entry)
    labels = [e["label"] for e in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise OptionError(f"{name}: two [[models]] entries share the label '{dupes[0]}'; give each its own label.")
    return out


@dataclass
class Suite:
    """One checked run configuration per `[[models]]` entry (by label, in the file's order), each writing to
    `root/<label>`; the cross-model tables go to `root`."""

    root: Path
    runs: dict[str, RunConfig]


def suite_configs(path: str | Path, overrides: Mapping[str, Any] | None = None,
                  assignments: Mapping[str, Mapping[str, str]] | None = None,
                  notify: Callable[[str], None] | None = None) -> Suite | None:
    """The suite of the file at `path` (None when it has no `[[models]]`): every entry's settings resolved and
    checked by `RunConfig.from_sources` (with the same `overrides` and `assignments`) before any run starts."""
    entries = suite_models(path)
    if not entries:
        return None
    runs = {entry["label"]: RunConfig.from_sources(path, overrides, assignments, notify=notify, model_entry=entry)
            for entry in entries}
    root = Path(next(iter(runs.values())).out)
    for label, config in runs.items():
        config.out = str(root / label)
    return Suite(root, runs)


def run_suite(suite: Suite, *, executor: Any = None, force: bool = False, resume: bool = False, quiet: bool = False,
              notify: Callable[[str], None] | None = None,
              on_run: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run every model of `suite` in turn (`run_benchmark`, with `force`, `resume` and `executor` as there),
    call `on_run(label, document)` after each (the CLI writes its reports there), then write the
    cross-model tables; returns the documents by label. `notify` gets a line as each run starts."""
    from aebench.run.runner import run_benchmark

    docs: dict[str, dict[str, Any]] = {}
    for label, config in suite.runs.items():
        if notify is not None:
            notify(f"{label}: results in {config.out}")
        doc = run_benchmark(config, quiet=quiet, force=force, resume=resume, executor=executor)
        if on_run is not None:
            on_run(label, dict(doc))
        docs[label] = dict(doc)
    write_suite_tables(docs, suite.root)
    return docs


def cross_model_table(docs: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """{metric key: {sampler: {model label: value}}} for every headline metric, in first-seen order."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for label, doc in docs.items():
        info = doc.get("metric_info") or {}
        for row in doc.get("samplers") or []:
            for key, entry in row.get("metrics", {}).items():
                if (info.get(key) or {}).get("role") != "headline":
                    continue
                table.setdefault(key, {}).setdefault(row["name"], {})[label] = entry.get("value")
    return {"models": list(docs), "headline": table}


def write_suite_tables(docs: Mapping[str, dict[str, Any]], out: Path) -> Path:
    """suite.json and suite.md in `out`: one table per headline metric, samplers x models."""
    from aebench.infra.io import write_json_atomic, write_text_atomic
    from aebench.infra.numbers import format_number

    summary = cross_model_table(docs)
    write_json_atomic(out / "suite.json", summary)
    models = summary["models"]
    lines = ["# Suite: headline metrics across models", ""]
    units = {key: entry.get("unit", "") for doc in docs.values() for key, entry in (doc.get("metric_info") or {}).items()}
    for key, rows in summary["headline"].items():
        lines += [f"## {key}", "", "| sampler | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for sampler, values in rows.items():
            cells = [format_number(values.get(m), unit=units.get(key, "")) for m in models]
            lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
        lines.append("")
    return write_text_atomic(out / "suite.md", "\n".join(lines))

