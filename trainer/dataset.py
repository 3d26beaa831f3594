"""From config to arrays: read each source, split it, fit its schema, encode labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jenga_edge.contract.errors import DataError, EventError
from jenga_edge.contract.schema import FeatureSchema, category_key

from .config import ExperimentConfig, TaskConfig
from .labels import DROP, LabelMap
from .readers import read_rows
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
        rows = read_source(cfg, name)
        reserved = {t.label.column for t in my_tasks} | {t.group_column for t in my_tasks if t.group_column}
        _check_label_columns(rows, my_tasks, name)
        train_idx, val_idx = split_indices(len(rows), cfg.training.validation_fraction, cfg.training.seed)
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
                schema = FeatureSchema(schema.features, events=scfg.events)
        num, cat = vectorize_rows(schema, rows, str(cfg.source_path(name)))
        ids = [r.get(scfg.id_column, i) if scfg.id_column else i for i, r in enumerate(rows)]
        sources[name] = SourceData(name, schema, num, cat, ids, train_idx, val_idx, held_idx, test_idx)
        tasks += [_task_data(t, rows, train_idx, val_idx) for t in my_tasks]
    position = {t.name: i for i, t in enumerate(cfg.tasks)}
    return sources, sorted(tasks, key=lambda t: position[t.name])


def read_source(cfg: ExperimentConfig, name: str) -> list[dict]:
    """Rows of source `name`. With an event model, a task's label and group columns may be
    paths into the record (`lab.label`), read like the features."""
    scfg = cfg.sources[name]
    names = list(scfg.features or [])
    for t in cfg.tasks:
        if t.source == name:
            names += [c for c in (t.label.column, t.group_column) if c and c not in names]
    return read_rows(cfg.source_path(name), scfg.format, scfg.columns, scfg.limit, scfg.events, names)


def _check_label_columns(rows: list[dict], tasks: list[TaskConfig], source: str) -> None:
    head = rows[0]
    for t in tasks:
        for col in filter(None, (t.label.column, t.group_column)):
            if col not in head:
                raise DataError(
                    f"task {t.name!r}: column {col!r} is not in source {source!r} (columns: {', '.join(head)})"
                )


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 1:
        raise DataError(f"only {n} rows: too few to hold out a validation split")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


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


def vectorize_rows(schema: FeatureSchema, rows: list[dict], where: str) -> tuple[np.ndarray, np.ndarray]:
    """The trainer's (lenient) vectorizing, with a row number in any error."""
    try:
        return schema.vectorize(rows, strict=False)
    except EventError as exc:
        raise DataError(f"{where}: row {exc.row}: {exc}") from None
