"""report.html: one self-contained file (inline CSS, figures embedded as base64 PNG data URIs, no
scripts, no external assets), written by walking the report's sections (`aebench.reports.sections`), the
same list report.md and the terminal walk, so it says what report.md says plus every figure."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Mapping

from aebench.infra.io import write_text_atomic
from aebench.reports.sections import Report, render_html_sections

REPORT_NAME = "report.html"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.ref td { color: #777; } td.best { font-weight: bold; color: #1a7f37; }
th.flat, td.flat { color: #aaa; } th.untrusted, td.untrusted { color: #888; font-style: italic; }
th.diagnostic { font-style: italic; } p.lead { font-weight: bold; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; }
dl.prov dt { font-weight: bold; } dl.prov dd { margin: 0; }
.failed { color: #b00020; } .caption { color: #555; font-size: 0.9em; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 560px; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def render_html(results: Mapping[str, Any], out_dir: str | Path) -> str:
    """The whole report as one HTML page; figure paths in `results` are read relative to `out_dir`."""
    report = Report(results, "html", out_dir=Path(out_dir))
    title = "aebench results" + (f": {report.dataset}" if report.dataset else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(render_html_sections(report))
        + "\n</body></html>\n"
    )


def write_html(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write report.html into `out_dir` atomically."""
    return write_text_atomic(Path(out_dir) / REPORT_NAME, render_html(results, out_dir))
