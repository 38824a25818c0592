"""report.md: a results file as GitHub-flavoured markdown that fits a CI step summary, written by walking
the report's sections (`aebench.reports.sections`), the same list report.html and the terminal walk."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from aebench.infra.io import write_text_atomic
from aebench.reports.sections import Report, render_markdown_sections

REPORT_NAME = "report.md"


def render_markdown(results: Mapping[str, Any]) -> str:
    """The whole report as markdown."""
    return "\n".join(render_markdown_sections(Report(results, "markdown"))).rstrip("\n") + "\n"


def write_markdown(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write report.md into `out_dir` atomically."""
    return write_text_atomic(Path(out_dir) / REPORT_NAME, render_markdown(results))
