"""The event model as text: where each field comes from (validate, inspect)."""

from __future__ import annotations

from collections.abc import Iterable

from ..contract.events import Duration, EventModel, Ratio, Sum
from ..contract.text import terminal_safe


def describe(model: EventModel, names: Iterable[str]) -> list[str]:
    """One line for the filter, then one per name: `name <- path (normalizers)` or
    `name = how it is derived`."""
    where = ", ".join(f"{k}: {v}" for k, v in model.where.items()) or "every record"
    out = [f"scored: {where}"]
    for name in names:
        spec = model.derive.get(name)
        if spec is not None:
            out.append(f"{name} = {_derived(spec)}")
            continue
        line = f"{name} <- {' | '.join(model.paths(name))}"
        norm = model.normalize.get(name)
        if norm is not None:
            steps = [s for s, on in (("strip", norm.strip), ("lower", norm.lower)) if on]
            steps += [f"map {len(norm.map)} value(s)"] if norm.map else []
            line += f" ({', '.join(steps) or 'as is'})"
        out.append(line)
    return [terminal_safe(line) for line in out]


def _derived(spec: Duration | Ratio | Sum) -> str:
    if isinstance(spec, Duration):
        return f"seconds from {spec.start} to {spec.end}"
    if isinstance(spec, Ratio):
        return f"({' + '.join(spec.num)}) / ({' + '.join(spec.den)})"
    return " + ".join(spec.of)
