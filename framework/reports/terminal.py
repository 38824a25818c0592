"""The rich table and summary lines printed at the end of `aebench run` (the table model lives in
aebench.reports.table)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from aebench.reports.table import (
    _finite,
    _seed_text,
    best_per_metric,
    caption,
    format_metric,
    metric_columns,
    metric_label,
    result_rows,
)


def render_table(results: Mapping[str, Any], console: Console, *, metrics: Sequence[str] | None = None,
                 spread: bool = True) -> Table:
    """Print (and return) the results table: references dimmed, best sampler values bold green
    (`spread=False` leaves out intervals and spreads to fit narrow terminals)."""
    keys = metric_columns(results, metrics)
    best = best_per_metric(results, keys)
    title = Text(f"aebench: {results.get('config', {}).get('dataset', 'results')}", style="bold")
    table = Table(title=title, caption=Text(caption(results), style="dim"))
    table.add_column("sampler")
    table.add_column("")
    table.add_column("n", justify="right")
    for key in keys:
        table.add_column(Text(metric_label(results, key)), justify="right")
    table.add_column("time", justify="right")
    for row in result_rows(results):
        is_ref = row.get("kind") == "reference"
        failed = row.get("status", "ok") != "ok"
        cells: list[Text | str] = []  # plain strings only where no markup can hide (numbers, fixed words)
        for i, key in enumerate(keys):
            if failed:
                cells.append(Text(f"failed: {row.get('error', 'unknown error')}", style="red") if i == 0 else "")
                continue
            text = format_metric(results, key, row.get("metrics", {}).get(key), spread=spread)
            bold = not is_ref and row["name"] in best.get(key, ())
            cells.append(Text(text, style="bold green" if bold else ""))
        total = row.get("timing", {}).get("total_s")
        name = Text(row["name"], style="red" if failed else "")
        table.add_row(name, "ref" if is_ref else "", str(row.get("n", "")), *cells, f"{total:.1f} s" if _finite(total) else "",
                      style="dim" if is_ref else None)
    console.print(table)
    return table


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """A few plain lines for the end of a run: counts, the best sampler per metric, failures."""
    samplers = results.get("samplers", [])
    failed = [r for r in samplers if r.get("status", "ok") != "ok"]
    cfg = (results.get("config") or {})
    lines = [
        f"{len(samplers)} sampler(s) on {cfg.get('dataset', '?')}, n {cfg.get('n', '?')}, "
        f"seeds {_seed_text(cfg.get('seeds'))}: {len(samplers) - len(failed)} ok, {len(failed)} failed."
    ]
    if results.get("status", "complete") != "complete":
        lines.append(f"Run status: {results.get('status')} (numbers may be incomplete).")
    by_name = {r["name"]: r for r in samplers}
    # recall exposes collapse; Naeem coverage does not in high dimension (the centre lies inside every
    # held-out k-NN ball: coverage 1.0 for a collapsed sampler at N=256), so it is only the fallback
    companion_key = next((k for k in ("latent_recall", "latent_coverage") if k in metric_columns(results)), None)
    for key, names in best_per_metric(results).items():
        shown = []
        for name in sorted(names):
            metrics = by_name[name].get("metrics", {})
            text = f"{name} ({format_metric(results, key, metrics.get(key))}"
            if key.startswith("hit_") and companion_key:
                # A hit rate alone rewards collapse: say how much of the region the sampler covers.
                text += f", {companion_key} {format_metric(results, companion_key, metrics.get(companion_key))}"
            shown.append(text + ")")
        lines.append(f"Best {metric_label(results, key)}: {', '.join(shown)}")
    lines.extend(f"Failed: {r['name']}: {r.get('error', 'unknown error')}" for r in failed)
    return lines
