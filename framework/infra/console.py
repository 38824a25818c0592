"""One rich console for everything aebench prints (tables and progress bars go to stderr when
stdout is piped, so `--json` output stays clean)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
err_console = Console(stderr=True)


def progress_bar(transient: bool = False) -> Progress:
    """A progress bar with counts and time, on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=transient,
    )
