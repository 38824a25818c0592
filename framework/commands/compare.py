"""`aebench compare OLD.json NEW.json`: the regression gate for CI (exit 1 when the new run is worse)."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aebench.cli import cli
from aebench.console import console, err_console

VERDICT_STYLE = {"regressed": "bold red", "worse": "red", "better": "green", "same": "", "info": "dim", "incomparable": "yellow"}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _comparison_table(comparison, old_path: str, new_path: str) -> Table:
    table = Table(title=f"aebench compare: {old_path} → {new_path}")
    for col, justify in [("sampler", "left"), ("metric", "left"), ("old", "right"), ("new", "right"),
                         ("change", "right"), ("change %", "right"), ("verdict", "left")]:
        table.add_column(col, justify=justify)
    for c in comparison.changes:
        style = VERDICT_STYLE.get(c.verdict, "")
        arrow = "" if c.higher_is_better is None else (" ↑" if c.higher_is_better else " ↓")
        rel = "—" if c.rel_change is None else f"{100 * c.rel_change:+.1f}%"
        change = "—" if c.abs_change is None else f"{c.abs_change:+.4g}"
        verdict = c.verdict + (f" ({c.reason})" if c.reason else "")
        table.add_row(Text(c.sampler), Text(c.metric + arrow), _fmt(c.old), _fmt(c.new), Text(change, style=style),
                      Text(rel, style=style), Text(verdict, style=style))
    return table


@cli.command("compare")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--tolerance", "tolerance", multiple=True, metavar="[METRIC=]FRACTION",
              help="Allowed relative worsening: 0.05 (the default) for all metrics, or METRIC=0.1 for one. Repeatable.")
@click.option("--abs-tolerance", "abs_tolerance", multiple=True, metavar="METRIC=VALUE",
              help="Gate METRIC by absolute change instead, e.g. hit_box=0.02 (two percentage points). Repeatable.")
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Only compare these metrics. Repeatable.")
@click.option("--strict", is_flag=True, help="Fail when counts, extractor, data set or model differ, instead of warning.")
@click.option("--allow-incomplete", is_flag=True, help="Also read results of runs that did not finish.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of a table.")
@click.pass_context
def compare_command(ctx: click.Context, old: str, new: str, tolerance: tuple[str, ...], abs_tolerance: tuple[str, ...],
                    metrics: tuple[str, ...], strict: bool, allow_incomplete: bool, as_json: bool) -> None:
    """Compare two results.json files; exit 1 if NEW is worse than OLD beyond the tolerance."""
    from aebench.compare import compare_results, load_results, parse_tolerances

    default, per_metric = parse_tolerances(tolerance)
    _, absolute = parse_tolerances(abs_tolerance, require_key=True)
    comparison = compare_results(
        load_results(old, allow_incomplete=allow_incomplete),
        load_results(new, allow_incomplete=allow_incomplete),
        tolerance=default, tolerances=per_metric, abs_tolerances=absolute, metrics=list(metrics) or None, strict=strict,
    )
    if as_json:
        click.echo(json.dumps(comparison.to_dict(), indent=2))
    else:
        console.print(_comparison_table(comparison, old, new))
        for name in comparison.added:
            console.print(f"[green]new sampler:[/] {escape(name)}")
        for name in comparison.missing:
            console.print(f"[bold red]regression:[/] {escape(name)} ran in the old results but is missing or failed in the new")
        n = len(comparison.regressions) + len(comparison.missing)
        console.print(f"[bold red]{n} regression(s)[/]" if n else "[green]no regressions[/]")
    for warning in comparison.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if comparison.regressed:
        ctx.exit(1)
