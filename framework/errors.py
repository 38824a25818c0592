"""User-facing errors: one line that names the problem and the fix; the CLI prints it and exits non-zero."""

from __future__ import annotations

import difflib
import errno
import os
from pathlib import Path
from typing import Iterable


class AebenchError(Exception):
    """An error caused by input the user can fix; its message is shown as-is, on one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UnknownNameError(AebenchError):
    """A sampler, data set, region, metric or extractor name that nothing registered."""


class DuplicateNameError(AebenchError):
    """Two plugins registered the same name for the same kind of thing."""


class OptionError(AebenchError):
    """An option of the wrong type or out of range."""


class CheckpointError(AebenchError):
    """A checkpoint that is missing, corrupt, truncated or does not match what it is used with."""


class DataError(AebenchError):
    """A data set that is missing or malformed."""


class NotFittedError(AebenchError):
    """A sampler or region used before `fit`."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" Did you mean 'x'?" for the closest of `choices` to a misspelt `word`, or "" when none is close."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


# a full disk is recognised here, beside its error, so that the CLI's last-resort handler and every writer
# (aebench.infra.io.atomic_path) name it the same way
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# how writers that wrap the OSError in their own exception spell it (safetensors: "I/O error: No space left
# on device (os error 28)")
DISK_FULL_TEXTS = (f"os error {errno.ENOSPC}", f"os error {errno.EDQUOT}", os.strerror(errno.ENOSPC),
                   os.strerror(errno.EDQUOT))


class DiskFullError(AebenchError):
    """A write that found no space left on its disk. Not bad input: exit status 1, like other I/O failures."""

    exit_code = 1


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it wraps) says the disk is full or the quota is spent."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if not isinstance(current, OSError) and any(text in str(current) for text in DISK_FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full(path: str | Path) -> DiskFullError:
    """The one-line error for a write of `path` that found the disk full."""
    path = Path(path)
    return DiskFullError(
        f"The disk is full: no space left to write {path.name} in {path.parent}. Free space on that disk (or point "
        f"--out / --cache-dir at another one) and run the same command again; `aebench run --resume` keeps the "
        f"cells already finished, and the files written before are intact."
    )
