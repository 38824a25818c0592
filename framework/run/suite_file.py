"""Reading a suite TOML file and checking its shape, so a mistake in the file is reported with the
entry, the key and where it belongs, instead of surfacing later as an unrelated error.

The classic mistakes this catches: `[samplers]` (one table) instead of `[[samplers]]` (an array of
tables); a misspelt key in a `[[samplers]]` entry; a sampler option written directly in the entry
instead of under `options`; a run setting such as `n = 400` written after a `[[samplers]]` header
(TOML then puts it inside that entry); entry keys or plugin names at the top level; `seeds` that is
neither a count nor a list of seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from aebench.errors import AebenchError, OptionError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENTRY_KEYS = ("name", "label", "options")
# settings that are tables of plugin name -> options
OPTION_TABLES = {"region_options": "region", "metric_options": "metric"}
PLAIN_TABLES = ("dataset_options", "feature_options")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file, or a one-line error for a missing file or bad syntax."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise AebenchError(f"Config file {path} does not exist; check the path given to --config.") from None
    except IsADirectoryError:
        raise AebenchError(f"Config file {path} is a folder; give the TOML file to --config.") from None
    except tomllib.TOMLDecodeError as exc:
        raise AebenchError(f"Config file {path} is not valid TOML ({exc}); fix the syntax.") from None



def _registry(kind: str) -> Any:
    from aebench.plugins import get_registry

    return get_registry(kind)


def _option_owners(key: str) -> list[str]:
    """Registered samplers that have an option called `key`."""
    import dataclasses

    out = []
    for entry in _registry("sampler").entries():
        if key in {f.name for f in dataclasses.fields(entry.obj.Options)}:
            out.append(entry.name)
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def check_suite(data: Mapping[str, Any], path: str | Path, run_keys: Iterable[str]) -> None:
    """Raise OptionError naming the entry, the key and where it belongs for any shape mistake in a
    suite file's parsed `data`; `run_keys` are the valid top-level settings."""
    name = Path(path).name
    run_keys = set(run_keys) | {"seed"}
    for key, value in data.items():
        if key not in run_keys:
            raise OptionError(_top_level_message(name, key, value, run_keys))
    if "samplers" in data:
        _check_samplers(data["samplers"], name, run_keys)
    if "seeds" in data or "seed" in data:
        check_seeds(data.get("seed"), data.get("seeds"), where=f"{name}: ")
    for key, kind in OPTION_TABLES.items():
        if key in data:
            _check_option_table(data[key], key, kind, name)
    for key in PLAIN_TABLES:
        if key in data and not isinstance(data[key], Mapping):
            raise OptionError(f"{name}: {key} must be a table, e.g. {key} = {{ size = 32 }}; got {_toml_value(data[key])}.")


def _top_level_message(name: str, key: str, value: Any, run_keys: set[str]) -> str:
    if key in ENTRY_KEYS:
        return (f"{name}: '{key}' at the top level belongs inside a [[samplers]] entry; write it under a "
                f"[[samplers]] header (with name = \"...\").")
    if key in _registry("sampler"):
        return (f"{name}: '{key}' is a sampler, not a run setting; add it as an entry: [[samplers]] then "
                f"name = \"{key}\" (and options = {{ ... }}).")
    for table, kind in OPTION_TABLES.items():
        if key in _registry(kind):
            return f"{name}: '{key}' is a {kind}; put its options under [{table}.{key}]."
    owners = _option_owners(key)
    if owners:
        return (f"{name}: '{key}' is not a run setting but an option of {', '.join(owners)}; put it in that "
                f"sampler's [[samplers]] entry as options = {{ {key} = {_toml_value(value)} }}.")
    return f"{name}: unknown setting '{key}'.{did_you_mean(key, run_keys)} Available: {', '.join(sorted(run_keys))}"


def _check_samplers(samplers: Any, name: str, run_keys: set[str]) -> None:
    if isinstance(samplers, Mapping):
        raise OptionError(
            f"{name}: [samplers] is a single table; write [[samplers]] (double brackets) once per sampler, "
            f"each entry with name = \"...\" and optionally label and options."
        )
    if isinstance(samplers, str):
        samplers = [samplers]
    if not isinstance(samplers, list):
        raise OptionError(f"{name}: samplers must be a list of names or [[samplers]] entries, got {_toml_value(samplers)}.")
    for i, entry in enumerate(samplers, start=1):
        if isinstance(entry, str):
            continue
        if not isinstance(entry, Mapping):
            raise OptionError(f"{name}: samplers entry {i} is {_toml_value(entry)}; use a sampler name or a "
                              f"[[samplers]] table with name, label and options.")
        _check_entry(entry, i, name, run_keys)
    labels: dict[str, int] = {}
    for i, entry in enumerate(samplers, start=1):
        sampler = entry if isinstance(entry, str) else str(entry.get("name"))
        label = sampler if isinstance(entry, str) else str(entry.get("label") or sampler)
        if label in labels:
            first = labels[label]
            how = "both run" if label == sampler else "are both labelled"
            raise OptionError(
                f"{name}: [[samplers]] entries {first} and {i} {how} '{label}' (a sampler listed twice under one "
                f"label); give one of them its own label, e.g. label = \"{sampler}_2\", or remove one."
            )
        labels[label] = i


def _check_entry(entry: Mapping[str, Any], i: int, name: str, run_keys: set[str]) -> None:
    sampler = entry.get("name")
    what = f"[[samplers]] entry {i}" + (f" ({sampler})" if isinstance(sampler, str) else "")
    if "name" not in entry:
        raise OptionError(f"{name}: {what} has no name; add name = \"<sampler>\" (see `aebench samplers`).")
    if not isinstance(sampler, str):
        raise OptionError(f"{name}: {what}: name must be a sampler name in quotes, got {_toml_value(sampler)}.")
    if "label" in entry and not isinstance(entry["label"], str):
        raise OptionError(f"{name}: {what}: label must be a string in quotes, got {_toml_value(entry['label'])}.")
    if "options" in entry and not isinstance(entry["options"], Mapping):
        raise OptionError(f"{name}: {what}: options must be a table, e.g. options = {{ k = 10 }}; "
                          f"got {_toml_value(entry['options'])}.")
    fields: set[str] = set()
    if sampler in _registry("sampler"):
        import dataclasses

        fields = {f.name for f in dataclasses.fields(_registry("sampler").get(sampler).Options)}
    for key, value in entry.items():
        if key in ENTRY_KEYS:
            continue
        if key in fields:
            raise OptionError(f"{name}: {what}: '{key}' is an option of {sampler}; write it under options: "
                              f"options = {{ {key} = {_toml_value(value)} }}.")
        if key in run_keys:
            raise OptionError(
                f"{name}: {what}: '{key}' is a run setting, but keys after a [[samplers]] header belong to that "
                f"entry; move `{key} = {_toml_value(value)}` above the first [[samplers]]."
            )
        hint = did_you_mean(key, [*ENTRY_KEYS, *fields])
        raise OptionError(f"{name}: {what}: unknown key '{key}'.{hint} An entry takes name, label and options"
                          + (f" (options of {sampler}: {', '.join(sorted(fields))})." if fields else "."))


def _check_option_table(value: Any, key: str, kind: str, name: str) -> None:
    example = f"[{key}.<{kind}>] with option = value lines"
    if not isinstance(value, Mapping):
        raise OptionError(f"{name}: {key} must be a table of {kind} names, e.g. {example}; got {_toml_value(value)}.")
    registry = _registry(kind)
    for owner, options in value.items():
        if owner not in registry:
            raise OptionError(f"{name}: {key}.{owner}: '{owner}' is not a {kind}.{did_you_mean(owner, registry.names())} "
                              f"Available: {', '.join(registry.names())}")
        if not isinstance(options, Mapping):
            raise OptionError(f"{name}: {key}.{owner} must be a table of options, e.g. {key}.{owner} = {{ k = 5 }}; "
                              f"got {_toml_value(options)}.")


def check_seeds(seed: Any, seeds: Any, where: str = "") -> None:
    """`seeds` is a count (`seeds = 3`: seeds seed, seed+1, seed+2) or an explicit list; `seed` is the
    first seed of a count and cannot go with a list."""
    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if seed is not None and (not is_int(seed) or seed < 0):
        raise OptionError(f"{where}seed must be a non-negative integer (the first seed, --seed), got {_toml_value(seed)}.")
    if seeds is None:
        return
    if is_int(seeds):
        if seeds < 1:
            flag = "" if where else f" (--seeds {seeds})"  # from a file, or from the command line / Python
            raise OptionError(f"{where}seeds = {seeds}{flag}: give a count of at least 1 (seeds = 3 runs seeds 0, 1, 2) "
                              f"or a list (seeds = [0, 5]).")
        return
    if isinstance(seeds, (list, tuple)):
        if not seeds or not all(is_int(s) and s >= 0 for s in seeds):
            raise OptionError(f"{where}seeds = {_toml_value(seeds)}: a list of seeds holds non-negative integers, "
                              f"e.g. seeds = [0, 5].")
        if len(set(seeds)) != len(seeds):
            raise OptionError(f"{where}seeds = {_toml_value(seeds)} repeats a seed; list each seed once.")
        if seed is not None:
            raise OptionError(f"{where}seed = {seed} goes with a count (seeds = 3), not with the list "
                              f"seeds = {_toml_value(seeds)}; drop seed or write the list only.")
        return
    raise OptionError(f"{where}seeds must be a count (seeds = 3 runs seeds 0, 1, 2) or a list (seeds = [0, 5]), "
                      f"got {_toml_value(seeds)}.")


def resolve_seeds(seed: int | None, seeds: int | list[int] | None) -> list[int]:
    """The seeds a run uses: a count starting at `seed` (default 0), an explicit list, or [seed]."""
    check_seeds(seed, seeds)
    start = seed or 0
    if seeds is None:
        return [start]
    if isinstance(seeds, int):
        return list(range(start, start + seeds))
    return list(seeds)
