"""What every registered class shares: a CLI name, a one-line description, and a typed Options dataclass."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from aebench.errors import OptionError
from aebench.options import NoOptions, build_options, check_options_class, describe_options, options_to_dict


class Plugin:
    """Base of samplers, data sets, regions, metrics, feature extractors and architectures."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None, **values: Any):
        if options is None:
            options = build_options(self.Options, values, owner=self.name)
        elif values:
            raise TypeError("pass either an options object or keyword values, not both")
        elif isinstance(options, Mapping):
            options = build_options(self.Options, options, owner=self.name)
        elif not isinstance(options, self.Options):
            raise OptionError(f"{self.name}: options must be {self.Options.__name__}, got {type(options).__name__}.")
        self.options = options

    def options_dict(self) -> dict[str, Any]:
        return options_to_dict(self.options)

    @classmethod
    def option_help(cls) -> list[dict[str, Any]]:
        return describe_options(cls.Options)

    @classmethod
    def check_definition(cls) -> None:
        """Raise AebenchError when the class's declarations are malformed (the registry calls it when the class
        is registered, so a mistake fails there, not as a silent gap later). Subclasses add their own checks."""
        check_options_class(cls.Options)
