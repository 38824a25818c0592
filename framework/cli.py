"""The `aebench` command: a click group; each subcommand lives in its own module under aebench.commands."""

from __future__ import annotations

import importlib
import sys

import click

from aebench import __version__
from aebench.errors import AebenchError

COMMAND_MODULES = (
    "aebench.commands.plugins",
    "aebench.commands.datasets",
    "aebench.commands.samplers",
    "aebench.commands.catalog",
    "aebench.commands.train",
    "aebench.commands.judge",
    "aebench.commands.stats",
    "aebench.commands.run",
    "aebench.commands.compare",
    "aebench.commands.validate",
)


def _add_plugins(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> None:
    from aebench.plugins import add_plugin_file

    for path in paths:
        add_plugin_file(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aebench")
@click.option("--plugin", "plugin_files", multiple=True, metavar="FILE.py", expose_value=False, callback=_add_plugins,
              help="Load an unpackaged plugin module (a .py file with @hookimpl functions); repeatable.")
def cli() -> None:
    """Benchmark strategies for sampling the latent space of a trained autoencoder."""


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning `AebenchError` into one line on stderr and a non-zero exit."""
    _load_commands()
    try:
        rc = cli.main(args=argv, prog_name="aebench", standalone_mode=False)
    except AebenchError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except OSError as exc:  # a disk or permission problem the checks before the work could not foresee
        from aebench.errors import disk_full, is_disk_full

        if is_disk_full(exc) and exc.filename:
            click.echo(f"Error: {disk_full(exc.filename)}", err=True)
            return 1
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"Error: cannot read or write{where} ({exc.strerror or exc}); check the path, free space and "
                   f"permissions.", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
