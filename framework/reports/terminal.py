"""The results at the end of `aebench run` in the terminal: the report's sections that appear there
(`aebench.reports.sections`: the results table and verdict, the labelled variants, the failures)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Console

from aebench.reports.layout import Layout, fits, layout_results, metric_table, verdict_lines
from aebench.reports.sections import Report, render_terminal_sections


def render_results(results: Mapping[str, Any], console: Console, *, metrics: Sequence[str] | None = None) -> Layout:
    """Print the report's terminal sections (the results table in the layout that fits and the verdict,
    the labelled variants, the failures); returns the layout the table took."""
    report = Report(results, "terminal", metrics=metrics, console=console)
    for part in render_terminal_sections(report):
        console.print(part)
    return report.layout  # type: ignore[return-value]


__all__ = ["fits", "layout_results", "metric_table", "render_results", "verdict_lines"]
