"""The output folder of `aebench run`: what a run may replace there.

A complete earlier run's results.json (perhaps a CI baseline) is never replaced without `--force`;
the check runs before any work, so refusing costs a second. When a run does replace an earlier one
(with `--force`, or an unfinished run's leftovers), the earlier results.json, reports and figures/
are removed just before the new run writes its first file, so old pictures are never mixed with new
ones and a run that fails its setup leaves the earlier run as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aebench.errors import AebenchError
from aebench.infra.io import clear_folder

RESULTS_NAME = "results.json"
FIGURE_DIR = "figures"
REPORT_NAMES = ("report.md", "report.html")


class OutputExistsError(AebenchError):
    """An output folder that holds a complete earlier run."""


def previous_status(out: str | Path) -> str | None:
    """The status of the run whose results.json is in `out` ('complete', 'running', ...), None if none,
    'unreadable' for a file that is not a results document."""
    path = Path(out) / RESULTS_NAME
    if not path.is_file():
        return None
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"
    status = doc.get("status") if isinstance(doc, dict) else None
    return str(status) if status else "unreadable"


def check_previous_run(out: str | Path, force: bool) -> None:
    """Refuse to start when `out` holds a complete run (or a results.json aebench cannot read) and
    `force` is not set."""
    status = previous_status(out)
    if force or status in (None, "running", "interrupted"):
        return
    what = "a complete earlier run" if status == "complete" else f"a results.json that is not a finished run ({status})"
    raise OutputExistsError(
        f"{Path(out) / RESULTS_NAME} holds {what}; pass --force to replace it (its figures and reports go too) "
        f"or --out NEW_FOLDER to keep it."
    )


def fresh_start_notice(out: str | Path) -> str:
    """The line `--resume` prints when `out` holds no earlier run to continue: what it found there, and
    that it starts a fresh run."""
    out = Path(out)
    if not out.exists():
        found = "does not exist yet"
    elif not out.is_dir():
        found = "is not a folder"
    else:
        others = [p.name for p in out.iterdir()]
        found = (f"holds no {RESULTS_NAME} of an earlier run (only {len(others)} other file(s), left alone: "
                 f"{', '.join(sorted(others)[:3])}{', ...' if len(others) > 3 else ''})" if others else "is empty")
    return f"--resume: {out} {found}; nothing to resume, so this is a fresh run."


def clear_previous_run(out: str | Path) -> list[str]:
    """Remove an earlier run's results.json, reports and figures/ from `out`; returns what was removed.
    Only a folder that holds a results.json is an earlier run's: anything else is left alone."""
    out = Path(out)
    if not (out / RESULTS_NAME).is_file():
        return []
    removed: list[str] = []
    if (out / FIGURE_DIR).exists():
        clear_folder(out / FIGURE_DIR)
        removed.append(FIGURE_DIR + "/")
    for name in (RESULTS_NAME, *REPORT_NAMES):
        if (out / name).is_file():
            (out / name).unlink()
            removed.append(name)
    return removed
