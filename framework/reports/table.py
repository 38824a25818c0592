"""The results table model shared by the terminal, markdown and HTML reports: which metric columns to
show, how a number reads, and which sampler is best per column, so the three always agree."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from aebench.errors import UnknownNameError

# Metric keys whose values are shares in [0, 1], printed as percentages (density can exceed 1: not here).
RATE_SUFFIXES = ("precision", "recall", "coverage")


def result_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """References first, then samplers, in the order the run produced them."""
    return [*results.get("references", []), *results.get("samplers", [])]


HEADLINE_PREFIXES = ("hit_",)
HEADLINE_KEYS = ("latent_recall", "nn_distance_ratio", "fid", "kid", "precision", "recall")


def headline_columns(results: Mapping[str, Any]) -> list[str]:
    """The columns that answer the seed's question at a glance: region hits, the latent recall that
    exposes collapse, and image quality. Reports show every column; the terminal shows these."""
    keys = metric_columns(results)
    return [k for k in keys if k.startswith(HEADLINE_PREFIXES)] + [k for k in HEADLINE_KEYS if k in keys]


def metric_columns(results: Mapping[str, Any], metrics: Sequence[str] | None = None) -> list[str]:
    """Metric keys to show: `metrics` (validated) or every key, in `metric_info` order, then first appearance."""
    keys = list(results.get("metric_info", {}))
    for row in result_rows(results):
        keys.extend(k for k in row.get("metrics", {}) if k not in keys)
    if metrics is None:
        return keys
    unknown = [m for m in metrics if m not in keys]
    if unknown:
        raise UnknownNameError(
            f"Unknown metric {unknown[0]!r} in these results; pick from: {', '.join(keys) or '(none)'}."
        )
    return list(dict.fromkeys(metrics))


def direction(results: Mapping[str, Any], key: str) -> bool | None:
    """higher_is_better of a metric: from `metric_info`, else from the first row that has it; None = informational."""
    info = results.get("metric_info", {}).get(key)
    if info is not None and "higher_is_better" in info:
        return info["higher_is_better"]
    for row in result_rows(results):
        entry = row.get("metrics", {}).get(key)
        if entry is not None and "higher_is_better" in entry:
            return entry["higher_is_better"]
    return None


def metric_label(results: Mapping[str, Any], key: str, *, arrow: bool = True) -> str:
    """Column header: the metric's label, with ↑ (higher better) or ↓ (lower better)."""
    label = results.get("metric_info", {}).get(key, {}).get("label") or key
    hib = direction(results, key)
    if not arrow or hib is None:
        return label
    return f"{label} {'↑' if hib else '↓'}"


def is_rate(results: Mapping[str, Any], key: str) -> bool:
    """Shares in [0, 1]: region hit rates, precision/recall/coverage (in feature or latent space)."""
    info = results.get("metric_info", {}).get(key, {})
    if info.get("unit") in ("rate", "%"):
        return True
    return key.startswith("hit_") or info.get("group") == "region" or key.endswith(RATE_SUFFIXES)


def format_number(value: float | None, *, rate: bool = False, key: str = "") -> str:
    """A value as people read it: rates as percentages, FID with one decimal, else ~3 significant digits."""
    if value is None:
        return "—"
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if rate:
        return f"{100 * value:.1f}%"
    if key == "fid" or key.startswith("fid") or abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_metric(results: Mapping[str, Any], key: str, entry: Mapping[str, Any] | None,
                  *, spread: bool = True) -> str:
    """One cell: value, then ± std over seeds, else [low, high] when the interval is known
    (`spread=False`: the value alone, for narrow terminals)."""
    if entry is None or entry.get("value") is None:
        return "—"
    rate = is_rate(results, key)
    text = format_number(entry["value"], rate=rate, key=key)
    if not spread:
        return text
    if entry.get("std") is not None:
        return f"{text} ± {format_number(entry['std'], rate=rate, key=key)}"
    if entry.get("low") is not None and entry.get("high") is not None:
        low = format_number(entry["low"], rate=rate, key=key)
        high = format_number(entry["high"], rate=rate, key=key)
        return f"{text} [{low}, {high}]"
    return text


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def best_per_metric(results: Mapping[str, Any], keys: Iterable[str] | None = None) -> dict[str, set[str]]:
    """For each metric with a direction, the names of the sampler rows holding the best value (ties: all).

    Only samplers that finished count; references, failed rows, missing and non-finite values and
    informational metrics (higher_is_better null) are never best.
    """
    keys = metric_columns(results) if keys is None else list(keys)
    best: dict[str, set[str]] = {}
    for key in keys:
        hib = direction(results, key)
        if hib is None:
            continue
        values = {
            row["name"]: float(row["metrics"][key]["value"])
            for row in results.get("samplers", [])
            if row.get("status", "ok") == "ok"
            and _finite(row.get("metrics", {}).get(key, {}).get("value"))
        }
        if not values:
            continue
        target = max(values.values()) if hib else min(values.values())
        best[key] = {name for name, v in values.items() if v == target}
    return best


def _seed_text(seeds: Sequence[int] | None) -> str:
    return ", ".join(str(s) for s in seeds) if seeds else "?"


def caption(results: Mapping[str, Any]) -> str:
    """Where the numbers come from: extractor, reference set, counts, seeds, target, model checksum."""
    cfg = (results.get("config") or {})
    feats = (results.get("features") or {})
    model = (results.get("model") or {})
    parts = []
    if feats:
        judge = "" if feats.get("judge", True) else " (not a validated judge)"
        parts.append(
            f"features: {feats.get('extractor', '?')}{judge}, reference {feats.get('reference', '?')} "
            f"images, n_real {feats.get('n_real', '?')}"
        )
    parts.append(f"n {cfg.get('n', '?')} per seed")
    parts.append(f"seeds {_seed_text(cfg.get('seeds'))}")
    if cfg.get("target") is not None:
        parts.append(f"regions calibrated to {format_number(cfg['target'], rate=True)}")
    if model.get("checksum"):
        parts.append(f"model {str(model['checksum'])[:12]}")
    return " · ".join(parts)
