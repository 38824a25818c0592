"""report.html: one self-contained file (inline CSS, figures embedded as base64 PNG data URIs, no
scripts, no external assets) with the same content as report.md plus every sampler's figures."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any, Mapping

from aebench.infra.io import write_text_atomic
from aebench.reports.markdown import (
    failures,
    figure_links,
    group_tables,
    notes,
    provenance,
    region_table,
    summary_table,
    verdict_items,
)
from aebench.reports.table import RowView, build_table

REPORT_NAME = "report.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.ref td { color: #777; } td.best { font-weight: bold; color: #1a7f37; }
th.flat, td.flat { color: #aaa; } th.untrusted, td.untrusted { color: #888; font-style: italic; }
th.diagnostic { font-style: italic; } p.basis { font-weight: bold; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; }
dl.prov dt { font-weight: bold; } dl.prov dd { margin: 0; }
.failed { color: #b00020; } .caption { color: #555; font-size: 0.9em; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 560px; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def embed_png(out_dir: Path, rel: str) -> str | None:
    """A figure file as a data URI, or None when it is missing or not a PNG."""
    try:
        data = (out_dir / rel).read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(out_dir: Path, label: str, rel: str) -> str:
    uri = embed_png(out_dir, rel)
    if uri is None:
        return f'<figure><figcaption>{escape(label)}: figure missing ({escape(rel)})</figcaption></figure>'
    return f'<figure><img src="{uri}" alt="{escape(label)}"><figcaption>{escape(label)}</figcaption></figure>'


def _column_class(col: Any) -> str:
    return {"flat": "num flat", "untrusted": "num untrusted", "diagnostic": "num diagnostic"}.get(col.status, "num")


def _row_html(cells: list[tuple[str, bool]], row: RowView, classes: list[str], first_metric: int) -> str:
    """One table row from the table model: `classes` per cell; bold cells get 'best'; a failed row's
    first metric cell (index `first_metric`, where it says 'failed') gets 'failed'."""
    out = []
    for i, (text, best) in enumerate(cells):
        cls = classes[i]
        if best:
            cls = f"{cls} best".strip()
        if row.failed and i == first_metric:
            cls = f"{cls} failed".strip()
        out.append(f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>")
    row_class = ' class="ref"' if row.is_reference else ""
    return f"<tr{row_class}>{''.join(out)}</tr>"


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(results: Mapping[str, Any], out_dir: str | Path) -> str:
    """The whole report as one HTML page; figure paths in `results` are read relative to `out_dir`."""
    out_dir = Path(out_dir)
    dataset = (results.get("config") or {}).get("dataset") or (results.get("dataset") or {}).get("name", "")
    title = "aebench results" + (f": {dataset}" if dataset else "")
    parts = [f"<h1>{escape(title)}</h1>", '<dl class="prov">']
    parts += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in provenance(results)]
    parts.append("</dl>")

    table = build_table(results)
    parts += ["<h2>Verdict</h2>", f'<p class="basis">{escape(table.verdict.basis)}</p>']
    header, rows = summary_table(table)
    summary_classes = ["", "", *["num"] * (len(header) - 2)]
    parts.append(_table(header, [_row_html(cells, row, summary_classes, 3) for row, cells in zip(table.rows, rows)]))
    parts += ["<ul>", *(f"<li>{escape(item)}</li>" for item in verdict_items(table)), "</ul>"]
    parts.append("<h2>Metrics</h2>")
    every = table.select()  # flat columns too, greyed: they say why they are set aside
    for title, cols, rows in group_tables(table, every):
        head = "".join(f'<th class="{_column_class(c)}" title="{escape(c.reason)}">{escape(c.header)}</th>' for c in cols)
        classes = ["", *(_column_class(c) for c in cols)]
        body = [_row_html(cells, row, classes, 1) for row, cells in zip(table.rows, rows)]
        parts += [f"<h3>{escape(title)}</h3>",
                  f"<table><thead><tr><th>sampler</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"]
    parts.append('<p class="caption">Green: ahead on a metric that ranks (intervals apart from the rows behind); '
                 "italic grey: untrusted here; light grey: the same value for every sampler. ↑ higher is better, ↓ lower "
                 "is better; ± is the std over seeds, [low, high] a 95% interval; grey rows are references, never "
                 "ranked.</p>")
    if table.variants:
        parts += ["<h2>Samplers</h2>", _table(["label", "sampler and options"], [
            f"<tr><td>{escape(name)}</td><td>{escape(variant)}</td></tr>" for name, variant in table.variants])]

    failed_rows = failures(results)
    if failed_rows:
        parts.append("<h2>Failed</h2><ul>")
        parts += [f'<li><strong>{escape(name)}</strong>: <span class="failed">{escape(err)}</span></li>' for name, err in failed_rows]
        parts.append("</ul>")

    rheader, rrows = region_table(results)
    if rrows:
        body = [
            "<tr>" + "".join(f"<td>{escape(c)}</td>" if i == 0 else f'<td class="num">{escape(c)}</td>' for i, c in enumerate(r)) + "</tr>"
            for r in rrows
        ]
        parts += ["<h2>Regions</h2>", _table(rheader, body)]

    parts += ["<h2>Notes</h2><ul>", *(f"<li>{escape(n)}</li>" for n in notes(results)), "</ul>"]

    per_row = figure_links(results)
    if per_row:
        parts.append("<h2>Figures</h2>")
        for name, figs in per_row:
            parts.append(f"<h3>{escape(name)}</h3>")
            parts.append('<div class="figs">' + "".join(_figure(out_dir, k, v) for k, v in figs.items()) + "</div>")

    if results.get("validation"):
        from aebench.reports.validation import validation_html

        parts.append(validation_html(results, out_dir))

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_html(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write report.html into `out_dir` atomically."""
    return write_text_atomic(Path(out_dir) / REPORT_NAME, render_html(results, out_dir))
