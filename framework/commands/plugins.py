"""`aebench plugins`: every loaded plugin and what it registered."""

from __future__ import annotations

import json

import click
from rich.table import Table

from aebench.cli import cli
from aebench.infra.console import console


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--external", is_flag=True, help="Only installed third-party plugins, not the built-ins.")
def plugins_command(as_json: bool, external: bool) -> None:
    """List installed plugins and what each registered."""
    from aebench.plugins import plugin_table

    rows = plugin_table()
    rows = [r for r in rows if not (external and r["builtin"])]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="aebench plugins")
    table.add_column("plugin")
    table.add_column("version")
    table.add_column("built-in")
    table.add_column("registered")
    for r in rows:
        reg = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(r["registered"].items()))
        table.add_row(r["name"], r.get("version") or "", "yes" if r["builtin"] else "no", reg or "(nothing)")
    if not rows:
        console.print("No third-party plugins installed (`pip install aebench-...`).")
        return
    console.print(table)
