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
        if op in ("eq", "ne", "in", "not_in"):  # one set of keys per call, not per value
            keys = {category_key(a) for a in arg} if op in ("in", "not_in") else {category_key(arg)}
            hit = np.fromiter(
                (v is not None and category_key(v) in keys for v in values), dtype=bool, count=len(values)
            )
            missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            mask &= hit if op in ("eq", "in") else ~hit | missing  # a missing value passes ne and not_in
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
