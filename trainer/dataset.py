"""From config to arrays: read each source, split it, fit its schema, encode labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from jenga_edge.contract.errors import DataError, EventError
from jenga_edge.contract.schema import FeatureSchema, category_key

from .config import ExperimentConfig, TaskConfig
from .labels import DROP, LabelMap
from .readers import read_rows, row_locator
from .refinery import check_column_options, fit_schema, select_columns
from .task_kinds import fit_label_map


@dataclass
class SourceData:
    name: str
    schema: FeatureSchema
    num: np.ndarray  # float32 [rows, numeric features], NaN = missing
    cat: np.ndarray  # int64 [rows, categorical features]
    ids: list[Any]
    train_idx: np.ndarray
    val_idx: np.ndarray
    held_idx: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    test_idx: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    # Text features only (else None): the graph's own inputs, uint8 [rows, t, text_width] and
    # int64 [rows, t]; kept as bytes (200k names x 64 bytes is 12.8 MB) and turned into
    # input_ids/attention_mask one batch at a time.
    text: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class TaskData:
    name: str
    cfg: TaskConfig
    source: str
    labels: LabelMap
    y: np.ndarray  # class index per source row, DROP where the task has no label
    groups: np.ndarray  # raw label (or group column) per source row, for held-out protocols
    train_idx: np.ndarray  # rows this task trains on (novelty: normal rows only)
    val_idx: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return self.labels.binary


@dataclass
class Holdout:
    """Rows of `source` whose `column` value is in `values` are kept out of training
    and validation alike (SourceData.held_idx), to measure unseen attack types."""

    source: str
    column: str
    values: frozenset[str]


def prepare(
    cfg: ExperimentConfig, holdout: Holdout | None = None, schemas: dict[str, FeatureSchema] | None = None
) -> tuple[dict[str, SourceData], list[TaskData]]:
    """Arrays for every source and task. `schemas` (from a saved model) replaces
    fitting, so retraining on new data keeps the inputs the model learned on."""
    sources, tasks = {}, []
    for name, scfg in cfg.sources.items():
        my_tasks = [t for t in cfg.tasks if t.source == name]
        if not my_tasks:
            continue
        starts: list[int] = []
        rows = read_source(cfg, name, starts)
        where = row_locator(cfg.source_paths(name), starts)
        reserved = {t.label.column for t in my_tasks} | {t.group_column for t in my_tasks if t.group_column}
        if cfg.training.split_column:
            reserved.add(cfg.training.split_column)
        _check_label_columns(rows, my_tasks, name, where, starts)
        train_idx, val_idx = split_source(cfg, name, rows)
        held_idx = test_idx = np.empty(0, dtype=np.int64)
        if holdout and holdout.source == name:
            held = np.array([category_key(r.get(holdout.column)) in holdout.values for r in rows])
            train_idx, val_idx, held_idx = train_idx[~held[train_idx]], val_idx[~held[val_idx]], np.flatnonzero(held)
            # Half of the validation rows become a test slice that neither early
            # stopping nor threshold selection sees: the fold's FPR is measured there.
            order = np.random.default_rng(cfg.training.seed + 1).permutation(val_idx.size)
            cut = val_idx.size // 2
            test_idx, val_idx = np.sort(val_idx[order[:cut]]), np.sort(val_idx[order[cut:]])
        columns = select_columns(rows, scfg, reserved)
        check_column_options(columns, scfg, f"sources.{name}")
        if schemas and name in schemas:
            schema = schemas[name]
        else:
            schema = fit_schema([rows[i] for i in train_idx], columns, scfg)
            if scfg.events is not None:
                schema = FeatureSchema(schema.features, version=schema.version, events=scfg.events)
        num, cat = vectorize_rows(schema, rows, where)
        text = vectorize_text_rows(schema, rows, where)
        ids = [r.get(scfg.id_column, i) if scfg.id_column else i for i, r in enumerate(rows)]
        sources[name] = SourceData(name, schema, num, cat, ids, train_idx, val_idx, held_idx, test_idx, text)
        tasks += [_task_data(t, rows, train_idx, val_idx) for t in my_tasks]
    position = {t.name: i for i, t in enumerate(cfg.tasks)}
    return sources, sorted(tasks, key=lambda t: position[t.name])


def read_source(cfg: ExperimentConfig, name: str, starts: list[int] | None = None) -> list[dict]:
    """Rows of source `name` (its files in order; `starts` receives where each file's rows
    begin). With an event model, a task's label and group columns may be paths into the
    record (`lab.label`), read like the features."""
    scfg = cfg.sources[name]
    names = list(scfg.features or [])
    for t in cfg.tasks:
        if t.source == name:
            names += [c for c in (t.label.column, t.group_column) if c and c not in names]
    if cfg.training.split_column and cfg.training.split_column not in names:
        names.append(cfg.training.split_column)
    return read_rows(cfg.source_paths(name), scfg.format, scfg.columns, scfg.limit, scfg.events, names, starts)


def _check_label_columns(
    rows: list[dict], tasks: list[TaskConfig], source: str, where: Where, starts: list[int]
) -> None:
    """The first row of each of the source's files has every label and group column."""
    for start in starts:  # read_rows gives one per file, at least one
        head = rows[start]
        for t in tasks:
            for col in filter(None, (t.label.column, t.group_column)):
                if col not in head:
                    raise DataError(
                        f"task {t.name!r}: column {col!r} is not in source {source!r} "
                        f"({_at(where, start)}, columns: {', '.join(head)})"
                    )


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 1:
        raise DataError(f"only {n} rows: too few to hold out a validation split")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_source(cfg: ExperimentConfig, name: str, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices of one source, by training.split."""
    t = cfg.training
    if t.split == "random" or not t.split_column:
        return split_indices(len(rows), t.validation_fraction, t.seed)
    if t.split_column not in rows[0]:
        raise DataError(
            f"training.split_column: {t.split_column!r} is not a column of source {name!r} "
            f"(columns: {', '.join(rows[0])})"
        )
    where = f"source {name!r}, training.split_column {t.split_column!r}"
    if t.split == "time":
        return time_split(timestamps(rows, t.split_column, where), t.validation_fraction)
    keys = np.array([category_key(r.get(t.split_column)) for r in rows], dtype=object)
    return group_split(keys, t.validation_fraction, t.seed, where)


def timestamps(rows: list[dict], column: str, where: str) -> np.ndarray:
    """Seconds (or any ordered number) per row: numbers as they are, text as ISO-8601."""
    out = np.empty(len(rows), dtype=np.float64)
    for i, r in enumerate(rows):
        v = r.get(column)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            out[i] = v
            continue
        try:
            ts = datetime.fromisoformat(str(v).strip()) if isinstance(v, str) else None
        except ValueError:
            ts = None
        if ts is None:
            raise DataError(f"{where}: row {i}: expected a number or an ISO-8601 timestamp, got {v!r}")
        # A naive timestamp is read as UTC, so mixed naive/aware text still orders.
        out[i] = (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()
    return out


def time_split(times: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The latest rows validate: a model is judged on the future of what it learned from."""
    n = times.size
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 1:
        raise DataError(f"only {n} rows: too few to hold out a validation split")
    order = np.argsort(times, kind="stable")
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val :])


def group_split(keys: np.ndarray, val_fraction: float, seed: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups validate (seeded order) until they hold about val_fraction of the rows,
    so no group (a host, a user, a capture) is seen on both sides."""
    uniq, inverse, counts = np.unique(keys.astype(str), return_inverse=True, return_counts=True)
    if uniq.size < 2:
        raise DataError(f"{where}: split: group needs at least two groups, found {uniq.size}")
    target = max(1, round(keys.size * val_fraction))
    in_val = np.zeros(uniq.size, dtype=bool)
    taken = 0
    for g in np.random.default_rng(seed).permutation(uniq.size):
        if taken >= target or in_val.sum() == uniq.size - 1:  # one group at least stays to train on
            break
        in_val[g], taken = True, taken + int(counts[g])
    val = in_val[inverse]
    return np.flatnonzero(~val), np.flatnonzero(val)


def _task_data(task: TaskConfig, rows: list[dict], train_idx: np.ndarray, val_idx: np.ndarray) -> TaskData:
    raw = [r.get(task.label.column) for r in rows]
    # The label vocabulary may come from every row: it is the task's definition, not a
    # statistic, and a rare attack type may appear only in the validation split.
    labels = fit_label_map(task, raw)
    y = labels.encode(raw, task.label.column)
    group_col = task.group_column or task.label.column
    groups = np.array([category_key(r.get(group_col)) for r in rows], dtype=object)
    tr, va = train_idx[y[train_idx] != DROP], val_idx[y[val_idx] != DROP]
    if task.mode == "novelty":
        tr = tr[y[tr] == 0]  # learns what normal looks like, from normal rows only
    if tr.size == 0 or va.size == 0:
        raise DataError(f"task {task.name!r}: no labelled rows left for training or validation")
    return TaskData(task.name, task, task.source, labels, y, groups, tr, va)


# Where a row is, for errors: a file name (rows counted from 0), or a function that names
# the file and the row within it (trainer/readers.py row_locator, for a source of several files).
Where = str | Callable[[int], str]


def _at(where: Where, row: int | None) -> str:
    if callable(where):
        return where(row) if row is not None else "a row of the source"
    return f"{where}: row {row}"


def vectorize_rows(schema: FeatureSchema, rows: list[dict], where: Where) -> tuple[np.ndarray, np.ndarray]:
    """The trainer's (lenient) vectorizing, with a row number in any error."""
    try:
        return schema.vectorize(rows, strict=False)
    except EventError as exc:
        raise DataError(f"{_at(where, exc.row)}: {exc}") from None


def vectorize_text_rows(schema: FeatureSchema, rows: list[dict], where: Where) -> tuple[np.ndarray, np.ndarray] | None:
    """The text inputs (text_bytes, text_lengths) by the contract's one rule, or None
    for a schema without text features."""
    if not schema.text:
        return None
    try:
        return schema.vectorize_text(rows, strict=False)
    except EventError as exc:
        raise DataError(f"{_at(where, exc.row)}: {exc}") from None
