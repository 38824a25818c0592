"""A name -> class table for one kind of plugin object, with did-you-mean errors and duplicate checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Iterator, TypeVar

from aebench.errors import AebenchError, DuplicateNameError, UnknownNameError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered class and the plugin that registered it."""

    name: str
    obj: T
    plugin: str

    @property
    def description(self) -> str:
        return getattr(self.obj, "description", "") or ""


class Registry(Generic[T]):
    """Every registered object of one kind (sampler, dataset, ...), keyed by its CLI name."""

    def __init__(self, kind: str, base: type | None = None):
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry[T]] = {}

    def add(self, obj: T, plugin: str = "?") -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise AebenchError(
                f"Plugin '{plugin}' registered a {self.kind} without a name; give the class a `name` attribute."
            )
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise AebenchError(
                f"Plugin '{plugin}' registered {self.kind} '{name}' that is not a subclass of "
                f"{self.base.__module__}.{self.base.__name__}; subclass it."
            )
        check = getattr(obj, "check_definition", None)
        if callable(check):
            try:
                check()
            except AebenchError as exc:
                raise type(exc)(f"Plugin '{plugin}' registered {self.kind} '{name}': {exc}") from None
        if name in self._entries:
            other = self._entries[name].plugin
            raise DuplicateNameError(
                f"Duplicate {self.kind} name '{name}' registered by plugins '{other}' and '{plugin}'; "
                f"rename one of them or uninstall one plugin."
            )
        self._entries[name] = Entry(name, obj, plugin)

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        names = sorted(self._entries)
        hint = did_you_mean(str(name), names)
        available = ", ".join(names) if names else "(none)"
        return f"Unknown {self.kind} '{name}'.{hint} Available: {available}"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Registry({self.kind!r}, {self.names()!r})"
