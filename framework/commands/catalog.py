"""`aebench regions`, `aebench metrics`, `aebench extractors`, `aebench architectures`: every registered
plugin of that kind with its description and every option (type, default, help), so each setting a
run or suite accepts can be discovered from the command line. Samplers and data sets have their own
commands (`aebench samplers`, `aebench datasets`)."""

from __future__ import annotations

import json
from typing import Any, Callable

import click
from rich.markup import escape
from rich.table import Table

from aebench.cli import cli
from aebench.infra.console import console


def _region_facts(cls: Any) -> dict[str, Any]:
    return {}


def _metric_facts(cls: Any) -> dict[str, Any]:
    columns = [{"key": c.key, "label": c.label, "higher_is_better": c.higher_is_better, "group": c.group,
                "role": c.role, "detects": list(c.detects), "margin": c.margin} for c in getattr(cls, "columns", ())]
    return {"needs": sorted(cls.needs), "columns": columns}


def _extractor_facts(cls: Any) -> dict[str, Any]:
    return {"num_features": int(getattr(cls, "num_features", 0) or 0), "judge": bool(getattr(cls, "judge", False))}


# kind -> (command, how a run sets an option, extra facts about one registered class)
KINDS: dict[str, tuple[str, str, Callable[[Any], dict[str, Any]]]] = {
    "region": ("regions", "--set {name}.OPTION=VALUE, or [region_options.{name}] in a suite", _region_facts),
    "metric": ("metrics", "--set {name}.OPTION=VALUE, or [metric_options.{name}] in a suite", _metric_facts),
    "feature extractor": ("extractors", "--set {name}.OPTION=VALUE (with --features {name}), or feature_options "
                                        "in a suite", _extractor_facts),
    "architecture": ("architectures", "aebench train --set model.OPTION=VALUE", lambda cls: {}),
}


def plugin_rows(kind: str, names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One JSON-ready row per registered plugin of `kind` (all, or those named): name, description,
    plugin, how to set its options, the options, and facts particular to the kind."""
    from aebench.plugins import get_registry

    registry = get_registry(kind)
    entries = [registry.entry(n) for n in names] if names else registry.entries()
    _, how, facts = KINDS[kind]
    return [{"name": e.name, "description": e.description, "plugin": e.plugin, "set_with": how.format(name=e.name),
             "options": e.obj.option_help(), **facts(e.obj)} for e in entries]


def _shown(default: Any) -> str:
    return ",".join(map(str, default)) if isinstance(default, list) else str(default)


def _print(kind: str, rows: list[dict[str, Any]]) -> None:
    command = KINDS[kind][0]
    overview = Table(title=f"aebench {command}", show_lines=True)
    overview.add_column(kind, style="bold cyan", no_wrap=True)
    overview.add_column("description")
    if kind == "metric":
        overview.add_column("needs")
    if kind == "feature extractor":
        overview.add_column("features")
        overview.add_column("validated judge")
    overview.add_column("options (default)")
    for r in rows:
        opts = "\n".join(f"{o['name']}={_shown(o['default'])}" for o in r["options"]) or "(none)"
        extra: list[str] = []
        if kind == "metric":
            extra = [", ".join(r["needs"])]
        if kind == "feature extractor":
            extra = [str(r["num_features"]), "yes" if r["judge"] else "no"]
        overview.add_row(r["name"], escape(r["description"]), *extra, escape(opts))
    console.print(overview)
    for r in rows:
        if not r["options"]:
            continue
        table = Table(title=escape(f"{r['name']} options ({r['set_with']})"), title_justify="left")
        for column in ("option", "type", "default", "help"):
            table.add_column(column, no_wrap=column in ("option", "default"))
        for o in r["options"]:
            table.add_row(o["name"], o["type"], escape(_shown(o["default"])), escape(o["help"]))
        console.print(table)
        if r.get("columns"):
            keys = Table(title=f"{r['name']} results keys", title_justify="left")
            for column in ("key", "label", "better", "group", "role", "margin"):
                keys.add_column(column)
            for c in r["columns"]:
                better = {True: "higher", False: "lower", None: "-"}[c["higher_is_better"]]
                keys.add_row(c["key"], c["label"], better, c["group"], c["role"], c.get("margin") or "-")
            console.print(keys)


def _make_command(kind: str) -> None:
    command = KINDS[kind][0]

    @cli.command(command, help=f"List registered {command} with every option (type, default, help); name some "
                               f"for just those.")
    @click.argument("names", nargs=-1)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
    def _list(names: tuple[str, ...], as_json: bool) -> None:
        rows = plugin_rows(kind, names)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        _print(kind, rows)


for _kind in KINDS:
    _make_command(_kind)
