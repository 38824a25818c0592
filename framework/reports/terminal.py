"""The results at the end of `aebench run` in the terminal: the report's sections that appear there
(`aebench.reports.sections`: the results table and verdict, the labelled variants, the failures), and a few
plain lines for logs."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Console

from aebench.reports.layout import Layout, fits, layout_results, metric_table, verdict_lines
from aebench.reports.sections import Report, render_terminal_sections
from aebench.reports.table import build_table, seed_text
from aebench.verdict.ranking import format_rank


def render_results(results: Mapping[str, Any], console: Console, *, metrics: Sequence[str] | None = None) -> Layout:
    """Print the report's terminal sections (the results table in the layout that fits and the verdict,
    the labelled variants, the failures); returns the layout the table took."""
    report = Report(results, "terminal", metrics=metrics, console=console)
    for part in render_terminal_sections(report):
        console.print(part)
    return report.layout  # type: ignore[return-value]


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """A few plain lines for logs: counts, the order the verdict gives, failures."""
    model = build_table(results)
    samplers = [r for r in model.rows if not r.is_reference]
    failed = [r for r in samplers if r.failed]
    cfg = (results.get("config") or {})
    lines = [
        f"{len(samplers)} sampler(s) on {cfg.get('dataset', '?')}, n {cfg.get('n', '?')}, "
        f"seeds {seed_text(cfg.get('seeds'))}: {len(samplers) - len(failed)} ok, {len(failed)} failed."
    ]
    if results.get("status", "complete") != "complete":
        lines.append(f"Run status: {results.get('status')} (numbers may be incomplete).")
    lines.append(model.verdict.basis)
    if model.verdict.order:
        lines.append("Order: " + ", ".join(f"{name} ({format_rank(model.verdict.overall[name])})"
                                           for name in model.verdict.order))
    lines.extend(f"Failed: {r.name}: {r.error}" for r in failed)
    return lines


__all__ = ["fits", "layout_results", "metric_table", "render_results", "summary_lines", "verdict_lines"]
