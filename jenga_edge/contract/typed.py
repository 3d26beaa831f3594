"""Typed configs: msgspec Structs, validated when loaded, with errors a user can act on.

Shared by the trainer's experiment files and the agent's firmware configs, so a
malformed file gets the same kind of message everywhere: the key path, what was
expected, what was found, and a close match for a misspelt key::

    exp.yaml: training.epochz: unknown key (did you mean 'epochs'?); expected one of: ...

A config section is a `Config` subclass. Bounds and help text live in the
annotation, so the checks and the generated reference (docs/config-reference.md)
come from one place::

    class BatchingConfig(Config, kw_only=True):
        max_batch: Annotated[int, doc("events scored together", ge=1, le=65536)] = 256

A kind of a registry (a source, a sink, an action) is a tagged Struct: its
`type` key picks the class (see jenga_edge/kinds.py). Cross-field checks go in
`__post_init__` and raise `Invalid(key, message)`; the key is joined to the
section's path.

`msgspec.convert` does the work; this module turns its errors into our
messages. `load_yaml` and `apply_overrides` read the file and the `--set`
overrides.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeGuard, Union

import msgspec
import yaml

from .errors import ConfigError, JengaError

__all__ = [
    "Config",
    "Invalid",
    "apply_overrides",
    "convert",
    "describe",
    "doc",
    "join",
    "load_yaml",
    "parse_yaml",
    "suggest",
]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: keyword-only, unknown keys refused.

    (kw_only applies to the fields a class defines: subclasses say it again.)
    """


def doc(text: str, **bounds: Any) -> msgspec.Meta:
    """A field's help text and bounds (ge, le, gt, lt, min_length, max_length, pattern)."""
    return msgspec.Meta(description=text, **bounds)


class Invalid(ValueError):
    """Raised by a `__post_init__`: `key` (a field, or a path below the section
    such as "allowlist[2]") is wrong; msgspec adds where the section is."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a float: PyYAML follows YAML 1.1, where a
    float needs a dot, and `learning_rate: 1e-3` would otherwise be a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning I/O and syntax problems into ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}:{where}: invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None


# --------------------------------------------------------------------------- convert

_T = typing.TypeVar("_T")


def convert(
    tp: type[_T],
    data: Any,
    source: str = "config",
    *,
    error: type[JengaError] = ConfigError,
    dec_hook: Callable[[type, Any], Any] | None = None,
) -> _T:
    """`data` (plain YAML/JSON values) as an instance of `tp`, or `error` (ConfigError)
    saying where and what; `dec_hook` builds types msgspec does not know."""
    try:
        return msgspec.convert(data, tp, strict=True, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise error(_explain(exc, tp, data, source)) from None


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _where(source: str, parts: list[str | int]) -> str:
    path = ""
    for p in parts:
        path = join(path, p)
    return f"{source}: {path}" if path else source


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_BOUND = re.compile(r"^Expected `(\w+)` (>=|<=|>|<) (\S+)$")
_LENGTH = re.compile(r"^Expected `(\w+)` of length (>=|<=) (\d+)$")
_TYPE = re.compile(r"^Expected `([^`]+)`, got `(\w+)`$")
_FIELD = re.compile(r"^Object (contains unknown|missing required) field `(.+)`$")
_ENUM = re.compile(r"^Invalid (?:enum )?value (.+)$")


def _explain(exc: msgspec.ValidationError, tp: Any, data: Any, source: str) -> str:
    text = str(exc)
    key_error = text.startswith("Expected") and " - at `key` in `$" in text
    text = text.replace(" - at `key` in `$", " - at `$")
    message, _, at = text.partition(" - at `$")
    parts = _parse_path(at.rstrip("`"), tp, data)
    cause = exc.__cause__
    if isinstance(cause, Invalid):
        return f"{_where(source, [*parts, *_parse_key(cause.key)])}: {cause.message}"
    if isinstance(cause, ValueError) and not isinstance(cause, msgspec.ValidationError):
        return f"{_where(source, parts)}: {cause}"
    node_tp, value, _ = _walk(tp, data, parts)
    if key_error:
        return f"{_where(source, parts)}: keys must be strings, got {_found(_bad_key(value))}"
    m = _FIELD.match(message)
    if m:
        return _field_message(m.group(1) == "contains unknown", m.group(2), node_tp, value, parts, source)
    m = _BOUND.match(message)
    if m:
        return f"{_where(source, parts)}: expected a value {m.group(2)} {m.group(3)}, got {value!r}"
    m = _LENGTH.match(message)
    if m:
        if m.group(2) == ">=" and m.group(3) == "1":
            return f"{_where(source, parts)}: expected a non-empty value"
        return f"{_where(source, parts)}: expected a length {m.group(2)} {m.group(3)}, got {len(value)}"
    if _TYPE.match(message) or _ENUM.match(message):
        return (
            f"{_where(source, parts)}: expected {describe(node_tp)}, got {_found(value)}"
            f"{suggest(value, _choices(node_tp))}"
        )
    return f"{_where(source, parts)}: {message[:1].lower()}{message[1:]}"


def _field_message(unknown: bool, name: str, tp: Any, value: Any, parts: list[str | int], source: str) -> str:
    cls = _struct_of(tp, value)
    fields = _fields(cls) if cls is not None else {}
    where = _where(source, [*parts, name])
    tag_field = _tag_field(tp)
    if unknown:
        if not fields:
            return f"{where}: unknown key; this entry takes no keys" + (f" but {tag_field!r}" if tag_field else "")
        return f"{where}: unknown key{suggest(name, fields)}; expected one of: {', '.join(fields)}"
    if tag_field == name:
        return f"{where}: missing required key, expected {describe(_tag_literal(tp))}"
    return f"{where}: missing required key, expected {describe(fields.get(name, Any))}"


def _parse_key(key: str) -> list[str | int]:
    out: list[str | int] = []
    for name, index in _PATH_PART.findall("." + key):
        out.append(int(index) if index else name)
    return out


def _parse_path(text: str, tp: Any, data: Any) -> list[str | int]:
    """`$.a.b[0].c` -> ["a", "b", 0, "c"]; msgspec writes a dict key as `[...]`:
    the key is the first whose value fails on its own (msgspec stops at the first)."""
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(text):
        if index == "...":
            node_tp, value, _ = _walk(tp, data, parts)
            parts.append(_failing_key(node_tp, value))
        elif index:
            parts.append(int(index))
        else:
            parts.append(name)
    return parts


def _failing_key(tp: Any, value: Any) -> str:
    tp = _strip(tp)
    if typing.get_origin(tp) is not dict or not isinstance(value, dict):
        return "..."
    _, vtp = typing.get_args(tp)
    for key, item in value.items():
        try:
            msgspec.convert(item, vtp, strict=True)
        except msgspec.ValidationError:
            return str(key)
    return "..."


def _bad_key(value: Any) -> Any:
    if isinstance(value, dict):
        return next((k for k in value if not isinstance(k, str)), None)
    return None


# --------------------------------------------------------------------------- types


def _strip(tp: Any) -> Any:
    """The type under Annotated (and under Optional when the value is not None)."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_struct(tp: Any) -> TypeGuard[type[msgspec.Struct]]:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _fields(cls: type) -> dict[str, Any]:
    """Encoded field name -> annotation, in declaration order."""
    return {f.encode_name: f.type for f in msgspec.structs.fields(cls)}


def _tag_field(tp: Any) -> str | None:
    members = [m for m in _members(tp) if _is_struct(m)]
    for m in members:
        field = m.__struct_config__.tag_field
        if field is not None:
            return str(field)
    return None


def _tag_literal(tp: Any) -> Any:
    tags = tuple(m.__struct_config__.tag for m in _members(tp) if _is_struct(m))
    return Literal[tags]


def _members(tp: Any) -> list[Any]:
    tp = _strip(tp)
    return [_strip(a) for a in typing.get_args(tp)] if _is_union(tp) else [tp]


def _struct_of(tp: Any, value: Any) -> type[msgspec.Struct] | None:
    """The Struct that `value` (a mapping) is read as, picking a tagged union's member."""
    structs = [m for m in _members(tp) if _is_struct(m)]
    if len(structs) <= 1:
        return structs[0] if structs else None
    field = _tag_field(tp)
    if isinstance(value, dict) and field is not None:
        for s in structs:
            if s.__struct_config__.tag == value.get(field):
                return s
    return None


def _walk(tp: Any, data: Any, parts: list[str | int]) -> tuple[Any, Any, bool]:
    """The annotation and the value at `parts`; found is False once the data ends."""
    value, found = data, True
    for p in parts:
        tp = _resolve(tp, value)
        if found and isinstance(value, dict) and p in value:  # noqa: SIM114 - apart, the checker narrows p
            value = value[p]
        elif found and isinstance(value, list) and isinstance(p, int) and p < len(value):
            value = value[p]
        else:
            value, found = None, False
        if p == _tag_field(tp):  # the kind's `type`, known or not
            tp = _tag_literal(tp)
        elif _is_struct(tp):
            tp = _fields(tp).get(p, Any) if isinstance(p, str) else Any
        elif typing.get_origin(tp) in (list, tuple):  # list[X], tuple[X, ...]
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = Any
    return tp, value, found


def _resolve(tp: Any, value: Any) -> Any:
    """The member of a union that `value` is read as (a struct for a mapping, ...)."""
    tp = _strip(tp)
    if not _is_union(tp):
        return tp
    if isinstance(value, dict):
        struct = _struct_of(tp, value)
        if struct is not None:
            return struct
        maps = [m for m in _members(tp) if typing.get_origin(m) is dict]
        return maps[0] if maps else tp
    if isinstance(value, list):
        lists = [m for m in _members(tp) if typing.get_origin(m) in (list, tuple)]
        return lists[0] if lists else tp
    return tp


def describe(tp: Any) -> str:
    """A human name for a type annotation, used in 'expected ...' messages."""
    tp = _strip(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if _is_union(tp):
        structs = [m for m in _members(tp) if _is_struct(m)]
        if len(structs) > 1 and _tag_field(tp):
            rest = [m for m in _members(tp) if not _is_struct(m)]
            tags = ", ".join(repr(s.__struct_config__.tag) for s in structs)
            return " or ".join([*(describe(a) for a in rest), f"a mapping with {_tag_field(tp)}: one of {tags}"])
        return " or ".join(describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {describe(args[0])}"
    if origin is dict:
        return f"a mapping of {describe(args[0])} to {describe(args[1])}"
    if _is_struct(tp):
        return f"a mapping ({tp.__name__})"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Any: "any value"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _choices(tp: Any) -> list[Any]:
    out: list[Any] = []
    for m in _members(tp):
        if typing.get_origin(m) is Literal:
            out.extend(typing.get_args(m))
    return out


def _found(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def suggest(value: Any, choices: Iterable[Any]) -> str:
    """' (did you mean X?)' for a close match among `choices`, else ''."""
    if not isinstance(value, str):
        return ""
    names = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    if not close and value:
        # A prefix is a common shorthand ('anomaly' for 'anomaly_detection').
        close = [n for n in names if n.startswith(value)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- overrides


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str = "--set") -> dict[str, Any]:
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
