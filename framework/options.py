"""Typed, validated options for plugins: a dataclass per plugin, filled from defaults, configs and `--set`.

A field's `metadata` carries its one-line help and optional bounds::

    @dataclass
    class Options:
        k: int = option(10, "mixture components", min=1)
        axes: tuple[int, ...] | None = option(None, "two latent axes; default: the two most dominant")
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Mapping, Union, get_args, get_origin

from aebench.errors import OptionError, did_you_mean


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           min_exclusive: bool = False) -> Any:
    """A dataclass field with a default, one-line help and optional numeric bounds."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults so options stay immutable")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """For plugins that take no options."""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        parts = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(p) for p in parts) + (" or none" if len(parts) < len(get_args(tp)) else "")
    if origin is tuple:
        args = get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert `value` (a Python value, or a string from the CLI) to the field type `tp`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except OptionError as exc:
                errors.append(str(exc))
        raise OptionError(f"{where}: cannot read {value!r} as {_type_name(tp)}.")
    if origin is Literal:
        allowed = get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise OptionError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}."
                          f"{did_you_mean(str(value), map(str, allowed))}")
    if origin is tuple:
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if isinstance(value, str):
            text = value.strip()
            if text[:1] in "[(" and text[-1:] in "])" and text:
                inner = text[1:-1].replace(" ", "")
                raise OptionError(f"{where}: write a list as comma-separated values without brackets, "
                                  f"e.g. --set {where.split()[-1]}={inner or '1,2'}, not {text}.")
            items = [v.strip() for v in text.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        try:
            return tuple(_coerce(v, item_tp, where) for v in items)
        except OptionError as exc:
            if isinstance(value, str):  # show the list syntax next to what could not be read
                raise OptionError(f"{exc} A list is comma-separated values, e.g. --set {where.split()[-1]}=1,2.") from None
            raise
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"{where}: {value!r} is not a boolean; use true or false.")
    if tp is int:
        if isinstance(value, bool):
            raise OptionError(f"{where}: {value!r} is not an integer.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise OptionError(f"{where}: {value!r} is not an integer.")
    if tp is float:
        if isinstance(value, bool):
            raise OptionError(f"{where}: {value!r} is not a number.")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{where}: {value!r} is not a number.") from None
        if math.isnan(out):
            raise OptionError(f"{where}: NaN is not allowed.")
        return out
    if tp is str:
        if not isinstance(value, str):
            raise OptionError(f"{where}: {value!r} is not a string.")
        return value
    raise OptionError(f"{where}: unsupported option type {tp!r}.")


def _check_bounds(value: Any, field: dataclasses.Field, where: str) -> None:
    lo, hi = field.metadata.get("min"), field.metadata.get("max")
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if lo is not None and (v < lo or (field.metadata.get("min_exclusive") and v == lo)):
            op = ">" if field.metadata.get("min_exclusive") else ">="
            raise OptionError(f"{where} must be {op} {lo}, got {v}.")
        if hi is not None and v > hi:
            raise OptionError(f"{where} must be <= {hi}, got {v}.")


def _coerced(cls: type, values: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """The given values of `cls`'s options read as their declared types, checked against their bounds."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    prefix = f"{owner}." if owner else ""
    unknown = [k for k in values if k not in fields]
    if unknown:
        hint = did_you_mean(unknown[0], fields)
        avail = ", ".join(fields) or "(none)"
        raise OptionError(f"Unknown option '{prefix}{unknown[0]}'.{hint} Available: {avail}")
    kwargs = {}
    for name, value in values.items():
        where = f"option {prefix}{name}"
        kwargs[name] = _coerce(value, hints[name], where)
        _check_bounds(kwargs[name], fields[name], where)
    for name, field in fields.items():
        if name not in kwargs and field.default is not dataclasses.MISSING:
            _check_bounds(field.default, field, f"option {prefix}{name}")
    return kwargs


def build_options(cls: type, values: Mapping[str, Any] | None = None, *, owner: str = "") -> Any:
    """Build an options dataclass from a mapping of (possibly string) values, with clear errors."""
    kwargs = _coerced(cls, values, owner)
    prefix = f"{owner}." if owner else ""
    try:
        return cls(**kwargs)
    except OptionError as exc:
        raise OptionError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def typed_options(cls: type, values: Mapping[str, Any] | None = None, *, owner: str = "") -> dict[str, Any]:
    """The given option values only, each read as its declared type (JSON-ready: tuples as lists): '32' from
    `--set dataset.size=32` and 32 from TOML or Python become the same setting. Checked as `build_options`."""
    build_options(cls, values, owner=owner)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in _coerced(cls, values, owner).items()}


def check_options_class(cls: type) -> None:
    """Raise OptionError unless `cls` is the one options style every plugin kind uses: a frozen dataclass
    whose fields are all declared with `option()` (one-line help, bounds) and have a type `--set` can read."""
    name = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise OptionError(f"its Options {name} is not a frozen dataclass; declare it with @dataclass(frozen=True) "
                          f"and fields from aebench.option().")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            raise OptionError(f"option '{f.name}' of {name} is a plain field; declare it with "
                              f"option(default, \"one-line help\") so --set, the catalog and bounds know it.")
        if f.default is not dataclasses.MISSING and f.default is not None:
            try:
                _coerce(f.default, hints[f.name], f"option '{f.name}'")
            except OptionError as exc:
                raise OptionError(f"{exc} Its default does not fit its type {_type_name(hints[f.name])} "
                                  f"(or --set cannot read that type); fix the default or the annotation.") from None


def describe_options(cls: type) -> list[dict[str, Any]]:
    """One dict per option: name, type, default and help (for `aebench samplers` and docs)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append({
            "name": f.name,
            "type": _type_name(hints[f.name]),
            "default": list(default) if isinstance(default, tuple) else default,
            "help": f.metadata.get("help", ""),
        })
    return out


def options_to_dict(opts: Any) -> dict[str, Any]:
    """JSON-ready dict of an options instance (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(opts).items()}


def parse_assignments(pairs: list[str] | tuple[str, ...],
                      owners: tuple[str, ...] | list[str] | None = None) -> dict[str, dict[str, str]]:
    """`--set OWNER.OPTION=VALUE` (the one grammar of every command; a list is comma-separated) ->
    {owner: {option: value}}. `owners`, when given, are the only owners this command takes."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise OptionError(f"--set {pair!r} has no '='; write --set OWNER.OPTION=VALUE.")
        key, value = pair.split("=", 1)
        key = key.strip()
        owner, _, opt = key.rpartition(".")
        if not opt or not owner:
            example = f"{owners[0]}.{opt or 'OPTION'}" if owners else f"OWNER.{opt or 'OPTION'}"
            what = "names no option" if not opt else "names no owner"
            raise OptionError(f"--set {pair!r} {what}; write --set {example}={value.strip() or 'VALUE'}.")
        if owners is not None and owner not in owners:
            raise OptionError(f"--set {key}: '{owner}' is not an owner this command takes; use "
                              f"{', '.join(o + '.OPTION' for o in owners)}.{did_you_mean(owner, owners)}")
        out.setdefault(owner, {})[opt] = value.strip()
    return out
