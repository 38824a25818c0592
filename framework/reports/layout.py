"""The results table in the terminal: a table that never cuts a name or a number, whatever the width, and
the verdict under it (the verdict section's terminal form, see `aebench.reports.sections`).

The layout is chosen by measuring, not by guessing: one wide table when it fits; else a ranked
summary plus one table per metric group (columns split further when a group is still too wide);
else one line per metric. Every cell keeps its full text, with the spread over seeds (± std) next to
the mean.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from aebench.reports.table import GROUP_TITLES, ColumnView, ResultsTable, RowView, format_number

Layout = Literal["wide", "grouped", "lines"]
TERMINAL_ROLES = ("headline", "diagnostic")


def fits(console: Console, renderable: RenderableType) -> bool:
    """Whether `renderable` shows at its natural width, nothing folded or cut."""
    unbounded = console.options.update_width(1_000_000)  # else rich clamps the measure to the width
    return console.measure(renderable, options=unbounded).maximum <= console.width


def _table(*, narrow: bool = False) -> Table:
    return Table(box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow, collapse_padding=narrow)


def _add_text_column(table: Table, header: str, *, right: bool = False, style: str = "") -> None:
    table.add_column(Text(header, style=style), justify="right" if right else "left", no_wrap=True, overflow="fold")


def _header_style(col: ColumnView) -> str:
    return {"ranks": "bold", "diagnostic": "italic", "untrusted": "dim", "info": "dim"}.get(col.status, "")


def _name_cell(row: RowView) -> Text:
    return Text(row.name, style="red" if row.failed else ("dim" if row.is_reference else ""))


def _cell(row: RowView, col: ColumnView, spread: str) -> Text:
    cell = row.cells.get(col.key)
    if cell is None:
        return Text("")
    style = "bold green" if cell.best else ("dim" if col.status in ("untrusted", "info") else "")
    return Text(cell.text(spread), style=style)


def metric_table(model: ResultsTable, columns: Sequence[ColumnView], *, spread: str = "std", rank: bool = True,
                 time: bool = True, narrow: bool = False) -> Table:
    """One rich table: rank, sampler, n, the given metric columns, time. Failed rows say 'failed'."""
    table = _table(narrow=narrow)
    if rank:
        _add_text_column(table, "rank", right=True)
    _add_text_column(table, "sampler")
    if not narrow:
        _add_text_column(table, "n", right=True)
    for col in columns:
        _add_text_column(table, col.header, right=True, style=_header_style(col))
    if time:
        _add_text_column(table, "time", right=True)
    for row in model.rows:
        cells: list[Text] = []
        if rank:
            cells.append(Text(row.rank_text if not row.failed else "", style="bold green" if row.best else ""))
        cells.append(_name_cell(row))
        if not narrow:
            cells.append(Text("ref" if row.is_reference else str(row.n or "")))
        if row.failed:
            cells += [Text("failed", style="red") if i == 0 else Text("") for i in range(len(columns))]
        else:
            cells += [_cell(row, col, spread) for col in columns]
        if time:
            cells.append(Text(f"{row.time_s:.1f} s" if row.time_s is not None else ""))
        table.add_row(*cells, style="dim" if row.is_reference else None)
    return table


def _chunks(console: Console, model: ResultsTable, columns: list[ColumnView], title: str,
            make: Callable[[ResultsTable, list[ColumnView]], Table]) -> list[RenderableType] | None:
    """A title line, then `columns` split, in order, into as few tables as fit the width; None when one
    column alone does not fit."""
    out: list[RenderableType] = [Text(title, style="bold")]
    start = 0
    while start < len(columns):
        end = start + 1
        if not fits(console, make(model, columns[start:end])):
            return None
        while end < len(columns) and fits(console, make(model, columns[start:end + 1])):
            end += 1
        out.append(make(model, columns[start:end]))
        start = end
    return out


def _lines(model: ResultsTable, columns: Sequence[ColumnView]) -> list[RenderableType]:
    """The narrowest layout: per sampler, one line per metric."""
    out: list[RenderableType] = []
    for row in model.rows:
        head = Text(row.name, style="bold" if not row.is_reference else "dim")
        if row.is_reference:
            head.append(" (reference)", style="dim")
        elif row.rank:
            head.append(f"  rank {row.rank_text}", style="bold green" if row.best else "")
        out.append(head)
        if row.failed:
            out.append(Text("  failed", style="red"))
            continue
        for col in columns:
            cell = row.cells.get(col.key)
            if cell is not None:
                out.append(Text(f"  {col.header}: {cell.text('std')}", style="bold green" if cell.best else ""))
    return out


def layout_results(model: ResultsTable, console: Console, columns: Sequence[ColumnView]) -> tuple[Layout, list[RenderableType]]:
    """The widest layout that fits `console.width` without cutting anything."""
    columns = list(columns)
    wide = metric_table(model, columns)
    if fits(console, wide):
        return "wide", [Text(model.title, style="bold"), wide]
    ranking = [c for c in columns if c.status == "ranks"]
    parts: list[RenderableType] = []
    if ranking:
        def summary_table(m: ResultsTable, cols: list[ColumnView]) -> Table:
            return metric_table(m, cols, spread="none", narrow=True)
        summary = _chunks(console, model, ranking, f"{model.title}: ranking", summary_table)
        if summary is None:
            return "lines", [Text(model.title, style="bold"), *_lines(model, columns)]
        parts += summary
    else:
        parts.append(Text(model.title, style="bold"))

    def group_table(m: ResultsTable, cols: list[ColumnView]) -> Table:
        return metric_table(m, cols, spread="std", rank=False, time=False, narrow=True)

    for group, cols in model.groups(columns):
        tables = _chunks(console, model, cols, GROUP_TITLES.get(group, group), group_table)
        if tables is None:
            return "lines", [Text(model.title, style="bold"), *_lines(model, columns)]
        parts += tables
    return "grouped", parts


def first_clause(text: str) -> str:
    """A description's opening clause (up to the first ':' or ';' outside brackets), for one terminal line."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in ":;":
            return text[:i].strip()
    return text.strip().rstrip(".")


def verdict_lines(model: ResultsTable, hidden: Sequence[ColumnView] = ()) -> list[RenderableType]:
    """The verdict under the table: what ranks and why, what does not, what the diagnostics mean (the
    labelled variants and failed rows are the report's "samplers" and "failed" sections)."""
    v = model.verdict
    out: list[RenderableType] = [Text(v.basis, style="bold")]
    if model.top_line():
        out.append(Text(model.top_line(), style="bold green"))
    if model.race_line():
        out.append(Text(model.race_line()))
    for col in model.columns:
        if col.status == "untrusted":
            out.append(Text(f"Not ranked, untrusted: {col.label}: {col.reason}.", style="yellow"))
    by_meaning: dict[str, list[str]] = {}
    for col in model.columns:
        if col.status == "diagnostic":
            by_meaning.setdefault(first_clause(col.description), []).append(col.label)
    if by_meaning:
        out.append(Text("Diagnostics, shown but never ranked (their caveats are in report.md):"))
    for meaning, labels in by_meaning.items():
        out.append(Padding(Text(f"{', '.join(labels)}" + (f": {meaning}" if meaning else "")), (0, 0, 0, 2)))
    flat = [c for c in model.columns if c.status == "flat"]
    if flat:
        out.append(Text("Set aside, the same for every sampler: " + ", ".join(
            f"{c.label} {format_number(c.flat_value, unit=c.unit)}" if c.flat_value is not None else f"{c.label} (no value)"
            for c in flat) + "."))
    if v.uncovered:
        out.append(Text(f"No trusted headline metric detects: {', '.join(v.uncovered)}.", style="yellow"))
    out += [Text(n) for n in v.notes]
    if hidden:
        out.append(Text(f"{len(hidden)} more metric(s) in report.md and report.html: "
                        + ", ".join(c.label for c in hidden) + ".", style="dim"))
    return out


def results_renderables(model: ResultsTable, console: Console,
                        metrics: Sequence[str] | None = None) -> tuple[Layout, list[RenderableType]]:
    """The results table in the widest layout that fits `console`, the verdict under it and the caption.

    Without `metrics` (the columns asked for), the terminal shows headline and diagnostic columns that carry
    information; report.md and report.html hold every metric."""
    if metrics is not None:
        shown = model.columns
    else:
        shown = [c for c in model.select(roles=TERMINAL_ROLES, informative_only=True)]
        if not shown:  # nothing declared as headline or diagnostic: show what there is
            shown = model.select(informative_only=True)
    hidden = [c for c in model.columns if c not in shown and c.informative]
    layout, parts = layout_results(model, console, shown)
    return layout, [*parts, *verdict_lines(model, hidden), Text(model.caption, style="dim")]


__all__ = ["Layout", "TERMINAL_ROLES", "fits", "first_clause", "layout_results", "metric_table", "results_renderables",
           "verdict_lines"]
