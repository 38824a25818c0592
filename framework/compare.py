"""Compare two results files: per sampler and metric, old vs new, and whether the new run got worse
beyond a tolerance (the CI regression gate behind `aebench compare`).

A change is a regression when it goes in the bad direction (per `higher_is_better`; informational
metrics never gate) by more than the relative tolerance, or by more than an absolute tolerance where
one is given for that metric. Samplers that ran in the old file but are missing or failed in the new
one are regressions too. Differences that make numbers incomparable (sample counts, extractor, data
set, model) are warnings, or errors under `strict`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from aebench.errors import AebenchError

SCHEMA = "aebench-results/1"
SCHEMA_FAMILY = "aebench-results/"
DEFAULT_TOLERANCE = 0.05


class ResultsError(AebenchError):
    """A results file that is missing, not JSON, not an aebench results file, or not finished."""


class NotComparableError(AebenchError):
    """Two results files whose numbers cannot be compared (under --strict)."""


def load_results(path: str | Path, *, allow_incomplete: bool = False) -> dict[str, Any]:
    """Read and validate a results.json written by `aebench run`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"Results file {path} does not exist; pass the results.json that `aebench run` wrote.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"Cannot read results file {path} ({exc}); check the path and permissions.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); pass an intact results.json from `aebench run`."
        ) from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_FAMILY):
        raise ResultsError(f"{path} is not an aebench results file (no \"schema\": \"{SCHEMA}\"); pass a results.json from `aebench run`.")
    if schema != SCHEMA:
        raise ResultsError(f"{path} has schema {schema!r}, this aebench reads {SCHEMA!r}; compare with the aebench version that wrote it.")
    rows = [*data.get("samplers", []), *data.get("references", [])] if isinstance(data.get("samplers"), list) else None
    if rows is None or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in rows):
        raise ResultsError(f"{path} lacks a \"samplers\" list of named rows; it is truncated or hand-edited, rerun `aebench run`.")
    status = data.get("status")
    if status != "complete" and not allow_incomplete:
        raise ResultsError(f"{path} is a {status or 'unfinished'} run, not a complete one; rerun it or pass --allow-incomplete.")
    return data


@dataclass
class Change:
    """One sampler x metric in both files."""

    sampler: str
    metric: str
    old: float | None
    new: float | None
    abs_change: float | None
    rel_change: float | None  # (new - old) / |old|; None when old is 0 or not finite
    higher_is_better: bool | None
    verdict: str  # "regressed", "worse" (within tolerance), "better", "same", "info", "incomparable"
    reason: str = ""


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ran in old, missing or failed in new: regressions
    added: list[str] = field(default_factory=list)  # new samplers, not in old
    warnings: list[str] = field(default_factory=list)  # why numbers may not be comparable

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regressed"]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions or self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "regressed": self.regressed,
            "regressions": [f"{c.sampler}/{c.metric}" for c in self.regressions],
            "missing": self.missing,
            "added": self.added,
            "warnings": self.warnings,
            "changes": [_json_safe(asdict(c)) for c in self.changes],
        }


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats as None, so the output is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _direction(results: Mapping[str, Any], entry: Mapping[str, Any], key: str) -> bool | None:
    if "higher_is_better" in entry:
        return entry["higher_is_better"]
    return results.get("metric_info", {}).get(key, {}).get("higher_is_better")


def judge_change(
    old: float | None, new: float | None, higher_is_better: bool | None, *, tolerance: float, abs_tolerance: float | None = None
) -> tuple[str, float | None, float | None, str]:
    """(verdict, absolute change, relative change, reason) for one metric."""
    if old is None or not math.isfinite(old):
        return "incomparable", None, None, "old value missing or not finite"
    if new is None or not math.isfinite(new):
        if higher_is_better is None:
            return "info", None, None, "new value missing or not finite"
        return "regressed", None, None, "new value missing or not finite"
    diff = new - old
    rel = diff / abs(old) if old != 0 else None
    if higher_is_better is None:
        return "info", diff, rel, ""
    worse = -diff if higher_is_better else diff  # > 0: moved in the bad direction
    if worse <= 0:
        return ("better" if worse < 0 else "same"), diff, rel, ""
    if abs_tolerance is not None:
        beyond, limit = worse > abs_tolerance, f"absolute tolerance {abs_tolerance:g}"
    else:
        beyond, limit = (rel is None or abs(rel) > tolerance), f"tolerance {tolerance:.1%}"
    return ("regressed" if beyond else "worse"), diff, rel, (f"beyond {limit}" if beyond else f"within {limit}")


def _comparability(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    checks = [
        ("sample count n", ("config", "n")),
        ("seeds", ("config", "seeds")),
        ("data set fingerprint", ("dataset", "fingerprint")),
        ("model checksum", ("model", "checksum")),
        ("feature extractor", ("features", "extractor")),
        ("extractor identity", ("features", "identity")),
        ("real reference set", ("features", "reference")),
        ("real image count n_real", ("features", "n_real")),
        ("calibration target", ("config", "target")),
    ]
    out = []
    for label, (section, key) in checks:
        a, b = (old.get(section) or {}).get(key), (new.get(section) or {}).get(key)
        if a != b and (a is not None or b is not None):
            out.append(f"{label} differs ({a} vs {b}): numbers are not directly comparable")
    return out


def compare_results(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    abs_tolerances: Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    strict: bool = False,
) -> Comparison:
    """Compare every sampler and metric present in both files (or only `metrics`).

    `tolerance` is the relative default; `tolerances` overrides it per metric; `abs_tolerances`
    gates a metric by absolute change instead (e.g. hit rates: 0.02 = two percentage points).
    """
    tolerances, abs_tolerances = dict(tolerances or {}), dict(abs_tolerances or {})
    for name, value in [("tolerance", tolerance), *tolerances.items(), *abs_tolerances.items()]:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise AebenchError(f"Tolerance {name}={value} must be a finite number >= 0; e.g. --tolerance 0.05 or fid=0.1.")
    result = Comparison(warnings=_comparability(old, new))
    if strict and result.warnings:
        raise NotComparableError(f"Results are not comparable: {result.warnings[0]}; rerun with the same settings or drop --strict.")
    old_rows = {r["name"]: r for r in old.get("samplers", [])}
    new_rows = {r["name"]: r for r in new.get("samplers", [])}
    if metrics:
        present = {k for rows in (old_rows, new_rows) for r in rows.values() for k in r.get("metrics", {})}
        unknown = [m for m in metrics if m not in present]
        if unknown:
            raise AebenchError(f"Metric {unknown[0]!r} is in neither results file; pick from: {', '.join(sorted(present)) or '(none)'}.")
    result.added = [name for name in new_rows if name not in old_rows]
    for name, old_row in old_rows.items():
        new_row = new_rows.get(name)
        old_ok = old_row.get("status", "ok") == "ok"
        if new_row is None:
            if old_ok:
                result.missing.append(name)
            continue
        if new_row.get("status", "ok") != "ok":
            if old_ok:
                result.missing.append(name)
                result.warnings.append(f"{name} failed in the new run: {new_row.get('error', 'unknown error')}")
            continue
        if not old_ok:
            continue
        old_metrics, new_metrics = old_row.get("metrics", {}), new_row.get("metrics", {})
        for key in (metrics or list(old_metrics)):
            if key not in old_metrics:
                continue
            o_entry, n_entry = old_metrics[key], new_metrics.get(key, {})
            hib = _direction(new, n_entry, key) if n_entry else _direction(old, o_entry, key)
            o_val, n_val = _number(o_entry.get("value")), _number(n_entry.get("value"))
            verdict, diff, rel, reason = judge_change(
                o_val, n_val, hib, tolerance=tolerances.get(key, tolerance), abs_tolerance=abs_tolerances.get(key)
            )
            if not n_entry:
                reason = "metric missing in the new run"
            result.changes.append(Change(name, key, o_val, n_val, diff, rel, hib, verdict, reason))
    return result


def parse_tolerances(values: Sequence[str], *, require_key: bool = False) -> tuple[float, dict[str, float]]:
    """`--tolerance` values: a bare number sets the default, KEY=NUMBER overrides one metric."""
    default, per_metric = DEFAULT_TOLERANCE, {}
    for text in values:
        key, sep, number = text.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if math.isnan(value) or (require_key and not (sep and key.strip())):
            example = "METRIC=0.02" if require_key else "0.05 or METRIC=0.1"
            raise AebenchError(f"Cannot read tolerance {text!r}; write {example}.")
        if sep:
            per_metric[key.strip()] = value
        else:
            default = value
    return default, per_metric
