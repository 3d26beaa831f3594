"""Parsed records -> flat rows, read the way the agent's decoder reads lines.

The trainer reads its JSON data through this (and `jenga-edge check` shows
what it reads): the same paths, `where` filter, normalizers and derived
fields as jenga_edge/decode.py, which tests/jenga_edge/test_event_model.py
holds to identical values on real Suricata output.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import derive
from .conditions import condition_mask
from .errors import EventError
from .events import TIME_INPUTS, EventModel, Step, parse_path
from .values import parse_time, to_number


def get_path(record: Any, steps: Sequence[Step]) -> Any:
    """The value at `steps`, or None where the record has nothing there."""
    for step in steps:
        if type(step) is int:
            if not isinstance(record, list) or step >= len(record):
                return None
        elif not isinstance(record, dict):
            return None
        record = record[step] if type(step) is int else record.get(step)
        if record is None:
            return None
    return record


@dataclass
class Rows:
    """What `RecordReader.read` kept, and why the others were not kept."""

    rows: list[dict[str, Any]]
    positions: list[int]  # each row's record number
    filtered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> records
    first_reject: dict[str, str] = field(default_factory=dict)  # reason -> its first message


class RecordReader:
    """Flat rows of the top-level scalar fields, the mapped names (normalized)
    and the derived fields (floats, None where missing)."""

    def __init__(self, model: EventModel):
        self.model = model
        self._paths = {n: parse_path(p) for n, p in model.mapping.items()}
        self._time_inputs = {i for d in model.derive.values() if isinstance(d, TIME_INPUTS) for i in d.inputs}
        self._num_inputs = {i for d in model.derive.values() if not isinstance(d, TIME_INPUTS) for i in d.inputs}

    def value(self, record: Mapping[str, Any], name: str) -> Any:
        """`name`'s value in `record`, normalized."""
        steps = self._paths.get(name) or parse_path(name)
        value = get_path(record, steps)
        norm = self.model.normalize.get(name)
        return norm.apply(value) if norm is not None else value

    def read(self, records: Sequence[Mapping[str, Any]]) -> Rows:
        keep = self._where(records)
        out = Rows([], [], filtered=int((~keep).sum()))
        inputs: dict[str, list[float]] = {n: [] for n in (*self._time_inputs, *self._num_inputs)}
        for i in np.flatnonzero(keep).tolist():
            record = records[i]
            try:
                values = {n: self._time(record, n) for n in self._time_inputs}
                values.update({n: self._number(record, n) for n in self._num_inputs})
            except EventError as exc:
                out.rejected[exc.reason] += 1
                out.first_reject.setdefault(exc.reason, str(exc))
                continue
            for n, v in values.items():
                inputs[n].append(v)
            out.rows.append(self._row(record))
            out.positions.append(i)
        columns = {n: np.array(v, dtype=np.float64) for n, v in inputs.items()}
        for name, spec in self.model.derive.items():
            computed = derive.compute(spec, columns.__getitem__)
            for row, v in zip(out.rows, computed.tolist()):
                row[name] = None if math.isnan(v) else v
        return out

    def _where(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        keep = np.ones(len(records), dtype=bool)
        for name, spec in self.model.where.items():
            keep &= condition_mask(name, spec, [self.value(r, name) for r in records])
        return keep

    def _row(self, record: Mapping[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in record.items() if not isinstance(v, (dict, list))}
        for name, norm in self.model.normalize.items():
            if name in row:
                row[name] = norm.apply(row[name])
        for name in self._paths:
            row[name] = self.value(record, name)
        return row

    def _time(self, record: Mapping[str, Any], name: str) -> float:
        raw = self.value(record, name)
        if raw is None:
            return math.nan
        t = parse_time(raw)
        if t is None:
            raise EventError("bad_timestamp", f"field {name!r} is {raw!r:.60}, expected an ISO 8601 time", name)
        return t

    def _number(self, record: Mapping[str, Any], name: str) -> float:
        raw = self.value(record, name)
        return math.nan if raw is None else to_number(raw, name)
