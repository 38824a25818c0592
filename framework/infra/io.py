"""Safe file output: atomic writes (a temporary name beside the target, then a rename, so no reader
ever sees a half-written checkpoint, cache entry or results file) with the permissions the user's
umask asks for, and output folders that are checked before any work and leave nothing behind when
the work fails before writing anything.

A write that finds the disk full (or the quota spent) fails as a `DiskFullError` (`aebench.errors`) that
names the file and what to do, whichever writer hit it: Python's own files, matplotlib, numpy, or safetensors (whose
Rust writer reports the OSError as text). The target keeps its previous content, since only the
temporary file was being written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from aebench.errors import AebenchError, DiskFullError, disk_full, is_disk_full

_UMASK_LOCK = threading.Lock()
def current_umask() -> int:
    """The process umask (reading it means setting it, so set it straight back under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _missing_parents(path: Path) -> list[Path]:
    """`path` and the ancestors of it that do not exist yet, outermost first."""
    missing: list[Path] = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return list(reversed(missing))


def _probe(path: Path) -> None:
    fd, name = tempfile.mkstemp(dir=path, prefix=".aebench-probe-")
    os.close(fd)
    os.unlink(name)


def ensure_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create `path` if needed and check it can be written, with a one-line error otherwise."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as exc:
        raise AebenchError(f"Cannot write to {what} {path} ({exc.strerror or exc}); choose another folder.") from None
    return path


def check_writable_dir(path: str | Path, what: str = "output folder") -> None:
    """Check that `path` could be created and written, without leaving anything behind: the nearest
    existing ancestor gets a probe file, and folders made for the check are removed again."""
    path = Path(path).expanduser()
    created = _missing_parents(path)
    try:
        ensure_writable_dir(path, what)
    finally:
        remove_empty(created)


def check_writable_file(path: str | Path, what: str = "output file") -> None:
    """Check that a file can be written at `path` (its folder can be made and written), before work
    that would be lost if the write failed at the end."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise AebenchError(f"{what} {path} is a folder; give a file name.")
    check_writable_dir(path.parent, f"the folder of {what}")


def remove_empty(folders: list[Path]) -> None:
    """Remove the given folders, innermost first, where they are (still) empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


@contextmanager
def output_folder(path: str | Path, what: str = "--out folder") -> Iterator[Path]:
    """Create and check an output folder; if the block fails and the folders it created are still
    empty, remove them, so a run that stops before writing anything leaves nothing behind."""
    path = Path(path).expanduser()
    created = _missing_parents(path)
    ensure_writable_dir(path, what)
    try:
        yield path
    except BaseException:
        remove_empty(created)
        raise


def clear_folder(path: str | Path) -> None:
    """Remove a folder this program made (e.g. the figures of a run being replaced) and its files."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `path` only if the block succeeds.
    The file gets the mode a plain `open()` would give it (0666 minus the umask), not mkstemp's 0600."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise disk_full(path) from exc
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
