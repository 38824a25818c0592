"""User-facing errors: one line that names the problem and the fix; the CLI prints it and exits non-zero."""

from __future__ import annotations

import difflib
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
