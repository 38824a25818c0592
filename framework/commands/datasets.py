"""`aebench datasets`: every registered data set with its description and options."""

from __future__ import annotations

import json

import click
from rich.table import Table

from aebench.cli import cli
from aebench.infra.console import console


def dataset_rows() -> list[dict]:
    """One JSON-ready row per registered data set."""
    from aebench.plugins import get_registry

    return [{"name": e.name, "plugin": e.plugin, "description": e.description,
             "citation": getattr(e.obj, "citation", ""), "options": e.obj.option_help()}
            for e in get_registry("dataset").entries()]


@cli.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets_command(as_json: bool) -> None:
    """List the data sets aebench can load (set options with --set dataset.OPTION=VALUE)."""
    rows = dataset_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="aebench data sets", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("options (default): help", overflow="fold")
    for r in rows:
        opts = "\n".join(f"{o['name']} ({o['default']!r}): {o['help']}" for o in r["options"])
        table.add_row(r["name"], r["description"] + (f"\n[dim]{r['citation']}[/dim]" if r["citation"] else ""), opts)
    console.print(table)
