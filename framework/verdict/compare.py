"""Compare two results files: per sampler and metric, old against new, and whether the new run got
worse in a way a CI gate should fail on (`aebench compare`).

The rule, stated in every output: a metric *regressed* when it moved in its bad direction and
1. the new 95% interval lies wholly on the bad side of the old one (seed spread with several seeds,
   else the metric's own bootstrap or subset interval; a value without one counts as a point), and
2. the change is beyond the relative tolerance (default 5% of the old value), and
3. the change is beyond the absolute floor: the tolerance times the metric's typical size in the old
   run (median |value| over its rows), at least one percentage point for rates, or `--abs-tolerance`.
The floor keeps values near zero (KID) from failing on seed noise. Information-only metrics never gate.
A metric with a declared ideal point (`latent_1nn`: 0.5) moves in its bad direction when it moves away
from that point.

Two runs whose numbers are not comparable (data set, model, extractor, counts, sampler, region or
metric options) are refused unless the caller allows it; the differences are then listed in the output.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from aebench.errors import AebenchError, did_you_mean
from aebench.infra.numbers import is_finite_number
from aebench.results.schema import ResultsDocument, ResultsError, load_results
from aebench.verdict.ranking import Estimate

DEFAULT_TOLERANCE = 0.05
RATE_FLOOR = 0.01  # one percentage point
SAME = 1e-6  # relative: changes smaller than this are float noise
COMPARE_SCHEMA = "aebench-compare/1"


class NotComparableError(AebenchError):
    """Two results files whose numbers cannot be compared."""


def rule_text(tolerance: float) -> str:
    return (f"regression = new 95% interval wholly on the bad side of the old one, and the change beyond "
            f"{tolerance:.0%} relative and beyond the metric's absolute floor")


@dataclass
class Change:
    """One sampler x metric in both files."""

    sampler: str
    metric: str
    label: str
    old: float | None
    new: float | None
    old_low: float | None
    old_high: float | None
    new_low: float | None
    new_high: float | None
    abs_change: float | None
    rel_change: float | None  # (new - old) / |old|; None when old is 0 or not finite
    higher_is_better: bool | None
    role: str
    unit: str
    verdict: str  # "regressed", "worse" (not beyond the rule), "better", "same", "info", "incomparable"
    reason: str = ""


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ran in old, missing or failed in new: regressions
    added: list[str] = field(default_factory=list)  # new samplers, not in old
    differences: list[str] = field(default_factory=list)  # settings that differ (compared anyway when allowed)
    notes: list[str] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regressed"]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions or self.missing)

    @property
    def rule(self) -> str:
        return rule_text(self.tolerance)

    def headline(self) -> str:
        """One line for the end of the output: passed, or every regressed row and metric named."""
        if not self.regressed:
            return f"PASS: no regressions in {len(self.changes)} comparisons ({self.rule})."
        parts = [f"{c.sampler} {c.metric} ({_signed_pct(c.rel_change)})" for c in self.regressions]
        parts += [f"{name} (missing or failed)" for name in self.missing]
        return f"FAIL: {len(parts)} regression(s): {', '.join(parts)}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": COMPARE_SCHEMA,
            "passed": not self.regressed,
            "rule": self.rule,
            "regressions": [{"sampler": c.sampler, "metric": c.metric, "old": c.old, "new": c.new,
                             "rel_change": c.rel_change, "reason": c.reason} for c in self.regressions],
            "missing": self.missing,
            "added": self.added,
            "differences": self.differences,
            "notes": self.notes,
            "changes": [_json_safe(asdict(c)) for c in self.changes],
        }


def _signed_pct(rel: float | None) -> str:
    return "—" if rel is None else f"{100 * rel:+.1f}%"


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats as None, so the output is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------- comparability

def _get(doc: Mapping[str, Any], section: str, key: str) -> Any:
    return (doc.get(section) or {}).get(key)


SETTINGS = [  # (what, section, key): runs that differ here are not comparable
    ("data set", "dataset", "name"),
    ("data set fingerprint", "dataset", "fingerprint"),
    ("data set options", "dataset", "options"),
    ("model checksum", "model", "checksum"),
    ("feature extractor", "features", "extractor"),
    ("extractor identity", "features", "identity"),
    ("real reference set", "features", "reference"),
    ("real image count n_real", "features", "n_real"),
    ("sample count n", "config", "n"),
    ("latent sample count n_latent", "config", "n_latent"),
    ("calibration target", "config", "target"),
    ("region options", "config", "region_options"),
    ("metric options", "config", "metric_options"),
    ("extractor options", "config", "feature_options"),
    ("precision of decode and features", "features", "precision"),
]
# Runs on different devices at the same precision are compared, with a note: fp32 on a CPU and on a GPU
# sums in different orders, so their numbers agree to rounding, not to the last digit.
DEVICE = ("features", "device")


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] if isinstance(value, str) and len(text) > 24 else text


def _other_judges(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A run's extractors after the first (whose keys end in `@<name>`): name -> identity and options."""
    records = ((doc.get("judges") or {}).get("extractors") or [])[1:]
    options = (doc.get("config") or {}).get("judge_options") or {}
    return {str(r.get("extractor")): {"identity": r.get("identity"), "options": options.get(r.get("extractor"), {})}
            for r in records}


def settings_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every setting that makes the two runs' numbers incomparable, one line each."""
    out = []
    for what, section, key in SETTINGS:
        a, b = _get(old, section, key), _get(new, section, key)
        if a != b and not (a in (None, {}) and b in (None, {})):
            out.append(f"{what} differs ({_short(a)} vs {_short(b)})")
    old_judges, new_judges = _other_judges(old), _other_judges(new)
    for name in old_judges.keys() & new_judges.keys():  # `--features a,b`: the keys `<key>@<name>`
        a, b = old_judges[name], new_judges[name]
        if a != b:
            out.append(f"extractor {name} differs ({_short(a.get('identity'))}, options {a.get('options')} vs "
                       f"{_short(b.get('identity'))}, options {b.get('options')})")
    old_rows = {r["name"]: r for r in old.get("samplers", [])}
    for row in new.get("samplers", []):
        before = old_rows.get(row["name"])
        if before is None:
            continue
        if before.get("sampler") != row.get("sampler"):
            out.append(f"{row['name']}: sampler differs ({before.get('sampler')} vs {row.get('sampler')})")
            continue
        a, b = before.get("options") or {}, row.get("options") or {}
        changed = [k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        if changed:
            what = ", ".join(f"{k}={a.get(k)!r} vs {b.get(k)!r}" for k in changed[:3])
            out.append(f"{row['name']}: sampler options differ ({what}{', ...' if len(changed) > 3 else ''})")
    return out


# --------------------------------------------------------------------------------------- rules

def _floor(old: Mapping[str, Any], key: str, unit: str, tolerance: float) -> float:
    """Absolute floor of `key`: tolerance x the median |value| over the old run's rows (at least one
    percentage point for rates), so a metric whose values sit near zero does not gate on noise."""
    values = [abs(float(r["metrics"][key]["value"])) for r in [*old.get("references", []), *old.get("samplers", [])]
              if r.get("status", "ok") == "ok" and is_finite_number(r.get("metrics", {}).get(key, {}).get("value"))]
    floor = tolerance * statistics.median(values) if values else 0.0
    return max(floor, RATE_FLOOR) if unit == "rate" else floor



def judge_change(old: Estimate | None, new: Estimate | None, higher_is_better: bool | None, *,
                 tolerance: float, floor: float, gates: bool = True, ideal: float | None = None) -> tuple[str, str]:
    """(verdict, reason) for one metric under the rule in the module docstring. With an `ideal` point
    (the metric's declared best value) the bad direction is away from it: the distances to it are
    compared, and the relative change is still taken against the old value."""
    if old is None:
        return "incomparable", "old value missing or not finite"
    if new is None:
        if higher_is_better is None or not gates:
            return "info", "new value missing or not finite"
        return "regressed", "new value missing or not finite"
    if higher_is_better is None or not gates:
        return "info", ""
    size = abs(old.value)
    if ideal is not None:  # rank by the distance to the ideal point: lower is better
        old, new, higher_is_better = old.distance_to(ideal), new.distance_to(ideal), False
    worse = (old.value - new.value) if higher_is_better else (new.value - old.value)  # > 0: bad direction
    if abs(worse) <= SAME * size:  # float noise of a recomputation is no change
        return "same", ""
    if worse <= 0:
        return ("better" if worse < 0 else "same"), ""
    apart = new.high < old.low if higher_is_better else new.low > old.high
    rel = worse / size if size != 0 else math.inf
    if not apart:
        return "worse", "intervals overlap"
    if rel <= tolerance * (1 + 1e-9):  # exactly at the tolerance passes, whatever the float rounding
        return "worse", f"within {tolerance:.0%}"
    if worse <= floor:
        return "worse", f"below the floor {floor:.3g}"
    kind = "intervals apart" if (old.has_interval or new.has_interval) else "no intervals: point values"
    return "regressed", f"{kind}, beyond {tolerance:.0%} and the floor {floor:.3g}"



def check_metric_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    """Refuse a metric key the results do not have (a misspelt --tolerance must not be ignored)."""
    for name in names:
        if name not in known:
            raise AebenchError(
                f"{what}: unknown metric {name!r}.{did_you_mean(name, known)} "
                f"Metrics in these results: {', '.join(sorted(known)) or '(none)'}."
            )


def compare_results(
    old: ResultsDocument | Mapping[str, Any],
    new: ResultsDocument | Mapping[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    abs_tolerances: Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    allow_different: bool = False,
) -> Comparison:
    """Compare every sampler and metric present in both documents (or only `metrics`).

    `tolerance` is the relative default; `tolerances` overrides it per metric; `abs_tolerances` sets
    a metric's absolute floor. Raises NotComparableError when settings differ, unless `allow_different`.
    """
    tolerances, abs_tolerances = dict(tolerances or {}), dict(abs_tolerances or {})
    for name, value in [("tolerance", tolerance), *tolerances.items(), *abs_tolerances.items()]:
        if not (is_finite_number(value) and value >= 0):
            raise AebenchError(f"Tolerance {name}={value} must be a finite number >= 0; e.g. --tolerance 0.05 or fid=0.1.")
    info = {**old.get("metric_info", {}), **new.get("metric_info", {})}
    check_metric_names(list(tolerances), list(info), "--tolerance")
    check_metric_names(list(abs_tolerances), list(info), "--abs-tolerance")
    check_metric_names(list(metrics or []), list(info), "--metric")

    result = Comparison(differences=settings_differences(old, new), tolerance=tolerance)
    if result.differences and not allow_different:
        more = f" and {len(result.differences) - 1} more" if len(result.differences) > 1 else ""
        raise NotComparableError(
            f"Refusing to compare: {result.differences[0]}{more}; rerun with the same settings, or pass "
            "--allow-different-settings to compare anyway."
        )
    old_device, new_device = _get(old, *DEVICE), _get(new, *DEVICE)
    if old_device and new_device and old_device != new_device:
        result.notes.append(f"devices differ ({old_device} vs {new_device}): at the same precision the numbers agree "
                            "to rounding, not to the last digit")
    if _get(old, "config", "seeds") != _get(new, "config", "seeds"):
        result.notes.append(f"seeds differ ({_get(old, 'config', 'seeds')} vs {_get(new, 'config', 'seeds')}): "
                            "differences within the seed noise are expected")
    old_rows = {r["name"]: r for r in old.get("samplers", [])}
    new_rows = {r["name"]: r for r in new.get("samplers", [])}
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
                result.notes.append(f"{name} failed in the new run: {new_row.get('error', 'unknown error')}")
            continue
        if not old_ok:
            continue
        old_metrics, new_metrics = old_row.get("metrics", {}), new_row.get("metrics", {})
        for key in (metrics or list(old_metrics)):
            if key not in old_metrics:
                continue
            meta = info.get(key, {})
            hib, role, unit = meta.get("higher_is_better"), meta.get("role", "info"), meta.get("unit", "")
            tol = tolerances.get(key, tolerance)
            floor = abs_tolerances[key] if key in abs_tolerances else _floor(old, key, unit, tol)
            o, n = Estimate.of(old_metrics[key]), Estimate.of(new_metrics.get(key))
            ideal = meta.get("ideal") if is_finite_number(meta.get("ideal")) else None
            verdict, reason = judge_change(o, n, hib, tolerance=tol, floor=floor, gates=role != "info", ideal=ideal)
            if key not in new_metrics:
                reason = "metric missing in the new run"
            diff = n.value - o.value if o and n else None
            rel = diff / abs(o.value) if diff is not None and o and o.value != 0 else None
            result.changes.append(Change(
                name, key, meta.get("label", key), o.value if o else None, n.value if n else None,
                o.low if o and o.has_interval else None, o.high if o and o.has_interval else None,
                n.low if n and n.has_interval else None, n.high if n and n.has_interval else None,
                diff, rel, hib, role, unit, verdict, reason))
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
        if math.isnan(value) or (require_key and not (sep and key.strip())) or (sep and not key.strip()):
            example = "METRIC=0.02" if require_key else "0.05 or METRIC=0.1"
            raise AebenchError(f"Cannot read tolerance {text!r}; write {example}.")
        if sep:
            per_metric[key.strip()] = value
        else:
            default = value
    return default, per_metric


def load_pair(old: str | Path, new: str | Path, *, allow_incomplete: bool = False) -> tuple[ResultsDocument, ResultsDocument]:
    """Both results files, validated; the same file (or a byte-identical copy) twice is refused."""
    old_path, new_path = Path(old), Path(new)
    try:
        same = old_path.exists() and new_path.exists() and old_path.samefile(new_path)
    except OSError:
        same = False
    if same:
        raise ResultsError(f"OLD and NEW are the same file ({old_path}); pass the baseline first and the new run's "
                           "results.json second.")
    a = load_results(old_path, allow_incomplete=allow_incomplete)
    b = load_results(new_path, allow_incomplete=allow_incomplete)
    if old_path.read_bytes() == new_path.read_bytes():
        raise ResultsError(f"{old_path} and {new_path} are byte-identical copies of one run; compare the baseline "
                           "with a new run's results.json.")
    return a, b


__all__ = ["Change", "Comparison", "DEFAULT_TOLERANCE", "NotComparableError", "ResultsError", "check_metric_names",
           "compare_results", "judge_change", "load_pair", "load_results", "parse_tolerances",
           "settings_differences"]
