"""User-facing errors: one line that names the problem and the fix; the CLI prints it and exits non-zero."""


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
