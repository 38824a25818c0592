"""`aebench compare OLD.json NEW.json`: the regression gate for CI. Exit 0: no regression; 1: a
regression (every one named); 2: the files cannot be compared (bad file, the same file twice,
different settings, an unknown metric in an option)."""

from __future__ import annotations

import json

import click
from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aebench.cli import cli
from aebench.infra.console import console, err_console

VERDICT_STYLE = {"regressed": "bold red", "worse": "yellow", "better": "green", "same": "", "info": "dim",
                 "incomparable": "yellow"}


def _value(c, which: str) -> str:
    from aebench.infra.numbers import format_number

    value = getattr(c, which)
    return format_number(value, unit=c.unit) if value is not None else "—"


def _interval(c, which: str) -> str:
    from aebench.infra.numbers import format_number

    low, high, value = getattr(c, f"{which}_low"), getattr(c, f"{which}_high"), getattr(c, which)
    if low is None or high is None:
        return ""
    return f"[{format_number(low, unit=c.unit, like=value)}, {format_number(high, unit=c.unit, like=value)}]"


def _change_text(c) -> str:
    if c.rel_change is not None:
        return f"{100 * c.rel_change:+.1f}%"
    if c.abs_change is not None:
        from aebench.infra.numbers import format_number

        return ("+" if c.abs_change >= 0 else "") + format_number(c.abs_change, unit=c.unit)
    return "—"


def _metric_text(c) -> str:
    arrow = "" if c.higher_is_better is None else (" ↑" if c.higher_is_better else " ↓")
    return c.label + arrow


def _table(changes, *, sampler_column: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    columns = (["sampler"] if sampler_column else []) + ["metric", "old", "new", "change", "verdict"]
    for col in columns:
        table.add_column(col, justify="right" if col in ("old", "new", "change") else "left", no_wrap=True,
                         overflow="fold")
    for c in changes:
        style = VERDICT_STYLE.get(c.verdict, "")
        cells = ([Text(c.sampler)] if sampler_column else []) + [
            Text(_metric_text(c)), Text(_value(c, "old")), Text(_value(c, "new")), Text(_change_text(c), style=style),
            Text(c.verdict, style=style)]
        table.add_row(*cells)
    return table


def comparison_renderables(comparison, console: Console, old_path: str, new_path: str) -> list[RenderableType]:
    """The comparison as tables that fit the console: one table when it fits, else one per sampler."""
    from aebench.reports.layout import fits

    out: list[RenderableType] = [Text(f"aebench compare: {old_path} → {new_path}", style="bold")]
    wide = _table(comparison.changes, sampler_column=True)
    if fits(console, wide):
        out.append(wide)
    else:
        samplers = list(dict.fromkeys(c.sampler for c in comparison.changes))
        for name in samplers:
            out += [Text(name, style="bold"), _table([c for c in comparison.changes if c.sampler == name],
                                                     sampler_column=False)]
    for c in comparison.changes:
        if c.verdict == "regressed":
            old_i, new_i = _interval(c, "old"), _interval(c, "new")
            detail = f" (old {_value(c, 'old')} {old_i}".rstrip() + f", new {_value(c, 'new')} {new_i}".rstrip() + ")"
            out.append(Text(f"{c.verdict}: {c.sampler} {c.metric}: {c.reason}{detail}",
                            style=VERDICT_STYLE.get(c.verdict, "")))
    return out


def render_markdown(comparison, old_path: str, new_path: str) -> str:
    """The comparison as markdown for a CI step summary: the verdict first, regressions named, then
    every comparison in a table."""
    from aebench.reports.blocks import md_table as _md_table
    from aebench.reports.blocks import md_text as _cell

    lines = ["# aebench compare", "", f"`{_cell(old_path)}` → `{_cell(new_path)}`", "",
             f"**{_cell(comparison.headline())}**", ""]
    if comparison.regressions or comparison.missing:
        lines += ["## Regressions", ""]
        lines += [f"- **{_cell(c.sampler)}** {_cell(c.metric)}: {_cell(_value(c, 'old'))} → {_cell(_value(c, 'new'))} "
                  f"({_cell(_change_text(c))}; {_cell(c.reason)})" for c in comparison.regressions]
        lines += [f"- **{_cell(name)}**: ran in the old results, missing or failed in the new" for name in comparison.missing]
        lines.append("")
    for title, items in (("Settings that differ", comparison.differences), ("Notes", comparison.notes)):
        if items:
            lines += [f"## {title}", ""] + [f"- {_cell(x)}" for x in items] + [""]
    lines += ["## All comparisons", ""]
    rows = [[_cell(c.sampler), _cell(_metric_text(c)), _cell(f"{_value(c, 'old')} {_interval(c, 'old')}".strip()),
             _cell(f"{_value(c, 'new')} {_interval(c, 'new')}".strip()), _cell(_change_text(c)),
             _cell(c.verdict + (f" ({c.reason})" if c.reason else ""))] for c in comparison.changes]
    lines += _md_table(["sampler", "metric", "old", "new", "change", "verdict"], rows, right_from=2)
    lines += ["", f"Rule: {_cell(comparison.rule)}."]
    if comparison.added:
        lines += ["", "New samplers: " + ", ".join(_cell(a) for a in comparison.added) + "."]
    return "\n".join(lines) + "\n"


@cli.command("compare")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--tolerance", "tolerance", multiple=True, metavar="[METRIC=]FRACTION",
              help="Relative change a regression must exceed: 0.05 (the default) for all metrics, or METRIC=0.1 "
                   "for one. Repeatable.")
@click.option("--abs-tolerance", "abs_tolerance", multiple=True, metavar="METRIC=VALUE",
              help="Absolute floor a regression of METRIC must exceed, e.g. kid=0.01 or hit_box=0.02 (two "
                   "percentage points); default: the tolerance times the metric's typical size. Repeatable.")
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Only compare these metrics. Repeatable.")
@click.option("--allow-different-settings", "allow_different", is_flag=True,
              help="Compare even when data set, model, extractor, counts or sampler/region/metric options "
                   "differ (they are listed in the output); by default such runs are refused.")
@click.option("--allow-incomplete", is_flag=True, help="Also read results of runs that did not finish.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON (for scripts).")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the comparison as markdown (for a CI step summary, e.g. >> $GITHUB_STEP_SUMMARY).")
@click.pass_context
def compare_command(ctx: click.Context, old: str, new: str, tolerance: tuple[str, ...], abs_tolerance: tuple[str, ...],
                    metrics: tuple[str, ...], allow_different: bool, allow_incomplete: bool, as_json: bool,
                    as_markdown: bool) -> None:
    """Compare two results.json files; exit 1 if NEW regressed against OLD, 2 if they cannot be compared.

    A metric regressed when the new 95% interval lies wholly on its bad side of the old one and the change
    is beyond the relative tolerance and the metric's absolute floor."""
    from aebench.errors import OptionError
    from aebench.verdict.compare import compare_results, load_pair, parse_tolerances

    if as_json and as_markdown:
        raise OptionError("Give either --json or --markdown, not both.")
    default, per_metric = parse_tolerances(tolerance)
    _, absolute = parse_tolerances(abs_tolerance, require_key=True)
    old_doc, new_doc = load_pair(old, new, allow_incomplete=allow_incomplete)
    comparison = compare_results(old_doc, new_doc, tolerance=default, tolerances=per_metric, abs_tolerances=absolute,
                                 metrics=list(metrics) or None, allow_different=allow_different)
    if as_json:
        click.echo(json.dumps(comparison.to_dict(), indent=2))
    elif as_markdown:
        click.echo(render_markdown(comparison, old, new), nl=False)
    else:
        for part in comparison_renderables(comparison, console, old, new):
            console.print(part)
        for difference in comparison.differences:
            console.print(f"[yellow]compared although {escape(difference)}[/]", highlight=False)
        for note in comparison.notes:
            console.print(f"note: {escape(note)}", highlight=False)
        for name in comparison.added:
            console.print(f"[green]new sampler:[/] {escape(name)}")
        for name in comparison.missing:
            console.print(f"[bold red]regression:[/] {escape(name)} ran in the old results but is missing or failed in the new")
        console.print(Text(comparison.headline(), style="bold red" if comparison.regressed else "green"))
    if comparison.differences:
        err_console.print(f"[yellow]warning:[/] compared runs with different settings: "
                          f"{escape('; '.join(comparison.differences))}", highlight=False, soft_wrap=True)
    if comparison.regressed:
        ctx.exit(1)
