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
from .window_state import MAX_EVENT_TIME, WindowEngine


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

    def __init__(self, model: EventModel, names: Sequence[str] = ()):
        """`names`: fields every row must hold even when no mapping names them (a
        feature spelled as its path, flow.state), read as the agent reads them."""
        self.model = model
        self._names = [n for n in names if n not in model.derive and n not in model.windows]
        self._paths = {n: tuple(parse_path(p) for p in model.paths(n)) for n in model.mapping}
        self._time_inputs = {i for d in model.derive.values() if isinstance(d, TIME_INPUTS) for i in d.inputs}
        self._num_inputs = {i for d in model.derive.values() if not isinstance(d, TIME_INPUTS) for i in d.inputs}
        self._engine_spec = WindowEngine(model) if model.windows else None  # what windows read
        if self._engine_spec is not None:
            self._num_inputs |= set(self._engine_spec.numeric)
            self._time_inputs |= set(self._engine_spec.time_fields)
        self._window_keys = list(dict.fromkeys(k for w in model.windows.values() for k in w.key))

    def value(self, record: Mapping[str, Any], name: str) -> Any:
        """`name`'s value in `record`, normalized."""
        value = None
        for steps in self._paths.get(name) or (parse_path(name),):  # the first path holding a value
            value = get_path(record, steps)
            if value is not None:
                break
        norm = self.model.normalize.get(name)
        return norm.apply(value) if norm is not None else value

    def read(self, records: Sequence[Mapping[str, Any]]) -> Rows:
        keep = self._where(records)
        out = Rows([], [], filtered=int((~keep).sum()))
        inputs: dict[str, list[float]] = {n: [] for n in (*self._time_inputs, *self._num_inputs)}
        times: list[float] = []
        fields = self._engine_spec.fields if self._engine_spec is not None else []
        window_values: dict[str, list[Any]] = {f: [] for f in fields}
        for i in np.flatnonzero(keep).tolist():
            record = records[i]
            try:
                values = {n: self._time(record, n) for n in self._time_inputs}
                values.update({n: self._number(record, n) for n in self._num_inputs})
                t = self._window_time(record) if self._engine_spec is not None else math.nan
            except EventError as exc:
                out.rejected[exc.reason] += 1
                out.first_reject.setdefault(exc.reason, str(exc))
                continue
            for n, v in values.items():
                inputs[n].append(v)
            if self._engine_spec is not None:
                times.append(t)
                for f in fields:
                    window_values[f].append(self.value(record, f))
            out.rows.append(self._row(record))
            out.positions.append(i)
        columns = {n: np.array(v, dtype=np.float64) for n, v in inputs.items()}
        for name, spec in self.model.derive.items():
            computed = derive.compute(spec, columns.__getitem__)
            for row, v in zip(out.rows, computed.tolist()):
                row[name] = None if math.isnan(v) else v
        if self._engine_spec is not None and out.rows:
            self._windows(out.rows, np.array(times, dtype=np.float64), window_values, columns)
        return out

    def _window_time(self, record: Mapping[str, Any]) -> float:
        """The event time windows run on; a record without it, or without a key, is
        rejected as the agent rejects it."""
        assert self.model.time is not None
        t = self._time(record, self.model.time)
        if math.isnan(t):
            raise EventError("missing_field", f"field {self.model.time!r} (the event time windows run on) is missing")
        if abs(t) > MAX_EVENT_TIME:
            raise EventError("bad_timestamp", f"field {self.model.time!r} is beyond the year 5000", self.model.time)
        for k in self._window_keys:
            if self.value(record, k) is None:
                raise EventError("missing_field", f"field {k!r} (a window key) is missing", k)
        return t

    def _windows(
        self,
        rows: list[dict[str, Any]],
        times: np.ndarray,
        window_values: dict[str, list[Any]],
        columns: dict[str, np.ndarray],
    ) -> None:
        """Window features over the rows in event-time order (ties: file order)."""
        engine = WindowEngine(self.model)
        order = np.argsort(times, kind="stable")
        idx = order.tolist()
        sorted_rows = [rows[i] for i in idx]
        values = {f: [col[i] for i in idx] for f, col in window_values.items()}
        numbers = {f: columns[f][order] for f in (*engine.numeric, *engine.time_fields)}
        out = engine.update(times[order], values, numbers)
        for name, col in out.items():
            for row, v in zip(sorted_rows, col.tolist()):
                row[name] = None if math.isnan(v) else v

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
        for name in self._names:
            if name not in row:
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
        x = math.nan if raw is None else to_number(raw, name)
        return x if math.isfinite(x) else math.nan  # as the agent reads an input it cannot use
