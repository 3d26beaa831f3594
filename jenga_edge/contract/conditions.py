"""Field conditions, shared by rules and the event model's `where` filter.

A condition on one field is a value (eq), a list (in), or a mapping of
operators: {gte: 1024}, {not_in: [53, 123]}. Values compare as category keys,
so 22, 22.0 and "22" are the same; a missing value (None) passes only ne and
not_in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError
from .values import category_key

if TYPE_CHECKING:
    import numpy.typing as npt

OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte")


def check_condition(spec: Any, where: str) -> None:
    """Catch at load time what would otherwise fail on the first matching event."""
    if not isinstance(spec, dict):
        return
    for op, arg in spec.items():
        if op not in OPS:
            raise ConfigError(f"{where}: unknown operator {op!r}; expected one of: {', '.join(OPS)}")
        if op in ("in", "not_in") and not isinstance(arg, list):
            raise ConfigError(f"{where}.{op}: expected a list, got {arg!r}")
        if op in ("gt", "gte", "lt", "lte") and (isinstance(arg, bool) or not isinstance(arg, (int, float))):
            raise ConfigError(f"{where}.{op}: expected a number, got {arg!r}")


def condition_mask(name: str, spec: Any, values: list[Any]) -> npt.NDArray[np.bool_]:
    """One field's condition as a boolean mask; a list means 'in', a scalar 'eq',
    a mapping names operators: {gte: 1024}, {not_in: [53, 123]}."""
    ops = spec if isinstance(spec, dict) else ({"in": spec} if isinstance(spec, list) else {"eq": spec})
    mask = np.ones(len(values), dtype=bool)
    for op, arg in ops.items():
        if op in ("eq", "ne", "in", "not_in"):  # each distinct value tested once, not each row
            keys = {category_key(a) for a in arg} if op in ("in", "not_in") else {category_key(arg)}
            positive = op in ("eq", "in")
            try:
                uniq = set(values)
            except TypeError:  # an unhashable value (an object read through a list path)
                uniq = None
            # True == 1 (and False == 0) as set members: with a 0 or 1 about, look for booleans in the values
            if uniq is not None and not ((0 in uniq or 1 in uniq) and any(type(v) is bool for v in values)):
                table = {
                    v: (v is not None and category_key(v) in keys) == positive or (v is None and not positive)
                    for v in uniq
                }
                mask &= np.fromiter(map(table.__getitem__, values), dtype=bool, count=len(values))
                continue
            hit = np.fromiter(
                (v is not None and category_key(v) in keys for v in values), dtype=bool, count=len(values)
            )
            missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            mask &= hit if positive else ~hit | missing  # a missing value passes ne and not_in
        else:
            mask &= np.fromiter((_test(op, v, arg) for v in values), dtype=bool, count=len(values))
    return mask


def _test(op: str, value: Any, arg: Any) -> bool:
    if value is None:
        return op in ("ne", "not_in")
    if op in ("eq", "ne"):
        same = category_key(value) == category_key(arg)
        return same if op == "eq" else not same
    if op in ("in", "not_in"):
        hit = category_key(value) in {category_key(a) for a in arg}
        return hit if op == "in" else not hit
    try:
        v, a = float(value), float(arg)
    except (TypeError, ValueError):
        return False
    except OverflowError:  # an integer beyond any float: compare exactly
        if isinstance(value, int) and isinstance(arg, (int, float)) and not isinstance(value, bool):
            return {"gt": value > arg, "gte": value >= arg, "lt": value < arg, "lte": value <= arg}[op]
        return False
    return {"gt": v > a, "gte": v >= a, "lt": v < a, "lte": v <= a}[op]


# --------------------------------------------------------------- compound conditions

COMBINATORS = ("any", "all", "not", "macro")  # reserved keys of a condition mapping


class Condition:
    """A compiled condition: a mapping whose entries all hold (AND). An entry is a
    field and its condition, or one of:

    * `any: [cond, ...]`: at least one holds (or);
    * `all: [cond, ...]`: every one holds;
    * `not: cond`: it does not hold;
    * `macro: name` (or a list of names): the named conditions hold (Falco's macros).
    """

    def __init__(self, spec: Any, macros: dict[str, Any], where: str, _stack: tuple[str, ...] = ()):
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping of fields (or any/all/not/macro) to conditions")
        self.fields: set[str] = set()
        self._parts: list[tuple[str, Any]] = []  # ("field", (name, spec)) | ("any"|"all"|"not", [Condition])
        for key, value in spec.items():
            at = f"{where}.{key}"
            if key in ("any", "all"):
                if not isinstance(value, list) or not value:
                    raise ConfigError(f"{at}: expected a non-empty list of conditions")
                subs = [Condition(v, macros, f"{at}[{i}]", _stack) for i, v in enumerate(value)]
                self._parts.append((key, subs))
            elif key == "not":
                self._parts.append(("not", [Condition(value, macros, at, _stack)]))
            elif key == "macro":
                for name in value if isinstance(value, list) else [value]:
                    if name not in macros:
                        known = ", ".join(sorted(macros)) or "none defined"
                        raise ConfigError(f"{at}: unknown macro {name!r} (macros: {known})")
                    if name in _stack:
                        raise ConfigError(f"{at}: macro {name!r} uses itself ({' -> '.join([*_stack, name])})")
                    sub = Condition(macros[name], macros, f"macros.{name}", (*_stack, name))
                    self._parts.append(("all", [sub]))
            else:
                check_condition(value, at)
                self._parts.append(("field", (key, value)))
                self.fields.add(key)
                continue
            for sub in self._parts[-1][1]:
                self.fields |= sub.fields

    def mask(self, values: dict[str, list[Any]], n: int) -> npt.NDArray[np.bool_]:
        out = np.ones(n, dtype=bool)
        for kind, part in self._parts:
            if not out.any():
                break
            if kind == "field":
                name, spec = part
                out &= condition_mask(name, spec, values[name])
            elif kind == "any":
                hit = np.zeros(n, dtype=bool)
                for sub in part:
                    hit |= sub.mask(values, n)
                out &= hit
            elif kind == "all":
                for sub in part:
                    out &= sub.mask(values, n)
            else:  # not
                out &= ~part[0].mask(values, n)
        return out


def check_macros(macros: dict[str, Any]) -> None:
    """Every macro compiles (fields, operators, the macros it uses, no cycle)."""
    for name, spec in macros.items():
        Condition(spec, macros, f"macros.{name}", (name,))
