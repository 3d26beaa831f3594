"""Load plain YAML/JSON data into typed dataclasses, validating at the boundary.

Shared by the trainer's experiment files and the agent's firmware configs, so a
malformed file gets the same kind of message everywhere: the key path, what was
expected, what was found, and a close match for a misspelt key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import ConfigError

_MISSING = dataclasses.MISSING


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a float: PyYAML follows YAML 1.1, where a
    float needs a dot, and `learning_rate: 1e-3` would otherwise be a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning I/O and syntax problems into ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}:{where}: invalid YAML: {problem}") from None


def build(cls: type, data: Any, path: str = "", source: str = "config") -> Any:
    """Turn `data` into an instance of dataclass `cls`, or raise ConfigError."""
    return _convert(cls, data, path, source)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def fail(source: str, path: str, message: str) -> typing.NoReturn:
    where = f"{source}: {path}" if path else source
    raise ConfigError(f"{where}: {message}")


def describe(tp: Any) -> str:
    """A human name for a type annotation, used in 'expected ...' messages."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is list:
        return f"a list of {describe(args[0])}"
    if origin is dict:
        return f"a mapping of {describe(args[0])} to {describe(args[1])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            Any: "any value"}.get(tp, getattr(tp, "__name__", str(tp)))


def _found(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _convert(tp: Any, value: Any, path: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, source)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, path, source)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in typing.get_args(tp)):
            return value
        fail(source, path, f"expected {describe(tp)}, got {_found(value)}{_suggest(value, typing.get_args(tp))}")
    if origin is list:
        if not isinstance(value, list):
            fail(source, path, f"expected {describe(tp)}, got {_found(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, join(path, i), source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(source, path, f"expected {describe(tp)}, got {_found(value)}")
        ktp, vtp = typing.get_args(tp)
        return {_convert(ktp, k, path, source): _convert(vtp, v, join(path, str(k)), source)
                for k, v in value.items()}
    return _convert_scalar(tp, value, path, source)


def _convert_scalar(tp: Any, value: Any, path: str, source: str) -> Any:
    # bool is a subclass of int in Python; a config saying `epochs: true` is a mistake.
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    if tp is type(None) and value is None:
        return None
    fail(source, path, f"expected {describe(tp)}, got {_found(value)}")


def _convert_union(tp: Any, value: Any, path: str, source: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for alt in args:
        if alt is type(None):
            continue
        try:
            return _convert(alt, value, path, source)
        except ConfigError as exc:
            errors.append(str(exc))
    # One alternative of a matching shape gives the most useful message.
    for alt, err in zip([a for a in args if a is not type(None)], errors):
        if dataclasses.is_dataclass(alt) and isinstance(value, dict):
            raise ConfigError(err)
        if typing.get_origin(alt) is list and isinstance(value, list):
            raise ConfigError(err)
    choices = [c for a in args if typing.get_origin(a) is Literal for c in typing.get_args(a)]
    fail(source, path, f"expected {describe(tp)}, got {_found(value)}{_suggest(value, choices)}")


def _convert_dataclass(cls: type, value: Any, path: str, source: str) -> Any:
    if not isinstance(value, dict):
        fail(source, path, f"expected {describe(cls)}, got {_found(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            hint = _suggest(key, list(fields))
            fail(source, join(path, str(key)),
                 f"unknown key{hint}; expected one of: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is _MISSING and f.default_factory is _MISSING:
                fail(source, join(path, name), f"missing required key, expected {describe(hints[name])}")
            continue
        converted = _convert(hints[name], value[name], join(path, name), source)
        _check_bounds(f, converted, join(path, name), source)
        kwargs[name] = converted
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        # Raised by a __post_init__ cross-field check: add where it happened.
        msg = str(exc)
        if msg.startswith(f"{source}:"):
            raise
        fail(source, path, msg)


def _check_bounds(f: dataclasses.Field, value: Any, path: str, source: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo:
            fail(source, path, f"expected a value >= {lo}, got {value}")
        if hi is not None and value > hi:
            fail(source, path, f"expected a value <= {hi}, got {value}")
    if isinstance(value, (list, dict, str)) and f.metadata.get("nonempty") and not value:
        fail(source, path, "expected a non-empty value")


def _suggest(value: Any, choices: typing.Iterable[Any]) -> str:
    if not isinstance(value, str):
        return ""
    names = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    if not close and value:
        # A prefix is a common shorthand ('anomaly' for 'anomaly_detection').
        close = [n for n in names if n.startswith(value)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def bounded(default: Any = _MISSING, *, lo: float | None = None, hi: float | None = None,
            nonempty: bool = False, factory: Any = _MISSING) -> Any:
    """A dataclass field whose numeric value is range-checked at load time."""
    meta = {"min": lo, "max": hi, "nonempty": nonempty}
    if factory is not _MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def apply_overrides(data: dict, overrides: typing.Iterable[str], source: str = "--set") -> dict:
    """Apply `a.b[0].c=VALUE` overrides (VALUE parsed as YAML) to nested data."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source} {item!r}: expected KEY=VALUE, e.g. training.epochs=5")
        key, raw = item.split("=", 1)
        value = parse_yaml(raw) if raw != "" else ""
        _set_path(data, key.strip(), value, source)
    return data


def _set_path(data: Any, key: str, value: Any, source: str) -> None:
    parts = _split_key(key, source)
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"{source} {key}: no list item [{part}] here")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"{source} {key}: {part!r} is not inside a mapping")
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"{source} {key}: no list item [{last}] here")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{source} {key}: {last!r} is not inside a mapping")


def _split_key(key: str, source: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in key.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            idx, _, rest = rest.partition("]")
            if not idx.isdigit():
                raise ConfigError(f"{source} {key}: expected a list index like [0], got [{idx}]")
            parts.append(int(idx))
            rest = rest.lstrip("[")
    if not parts:
        raise ConfigError(f"{source} {key!r}: empty key")
    return parts
