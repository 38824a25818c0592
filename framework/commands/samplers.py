"""`aebench samplers`: every registered sampler, whether it walks paths, and its options."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from aebench.cli import cli
from aebench.infra.console import console


def sampler_table(names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One dict per sampler (all, or those named): name, description, path sampler?, plugin, options."""
    from aebench.plugins import get_registry

    registry = get_registry("sampler")
    entries = [registry.entry(n) for n in names] if names else registry.entries()
    return [{"name": e.name, "description": e.description, "path_sampler": bool(e.obj.is_path_sampler),
             "plugin": e.plugin, "unavailable": _unavailable(e.obj), "options": e.obj.option_help()}
            for e in entries]


def _unavailable(cls: Any) -> str | None:
    reason = getattr(cls, "unavailable_reason", None)
    return reason() if callable(reason) else None


def _shown(default: Any) -> str:
    return ",".join(map(str, default)) if isinstance(default, list) else str(default)


def _overview(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="aebench samplers")
    table.add_column("sampler", style="bold cyan", no_wrap=True)
    table.add_column("path")
    table.add_column("description")
    table.add_column("options (default)")
    for r in rows:
        opts = ", ".join(f"{o['name']}={_shown(o['default'])}" for o in r["options"]) or "(none)"
        description = r["description"]
        if r.get("unavailable"):
            description = f"[red]unavailable[/red] ({r['unavailable']}). {description}"
        table.add_row(r["name"], "yes" if r["path_sampler"] else "", description, opts)
    return table


def _option_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"{row['name']} options (--set {row['name']}.OPTION=VALUE)", title_justify="left")
    for column in ("option", "type", "default", "help"):
        table.add_column(column, no_wrap=column in ("option", "default"))
    for o in row["options"]:
        table.add_row(o["name"], o["type"], _shown(o["default"]), o["help"])
    return table


@cli.command("samplers")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def samplers_command(names: tuple[str, ...], as_json: bool) -> None:
    """List samplers with their options; name some (e.g. `aebench samplers gmm`) for option details."""
    rows = sampler_table(names)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    console.print(_overview(rows))
    for r in rows if names else ():
        if r["options"]:
            console.print(_option_table(r))
