"""Torch-side scoring of files with a saved best_model/ (evaluate and predict)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from jenga_edge.contract.errors import DataError

from . import checkpoint
from .callbacks import CallbackList, JsonlAlertHandler, RecordingHandler, SecuritySentinelCallback
from .dataset import vectorize_rows, vectorize_text_rows
from .labels import DROP
from .predict import score_rows
from .readers import read_rows
from .task_kinds import trainer_kind


def _tensors(loaded: checkpoint.LoadedModel, rows: list[dict], where: str = "data") -> dict[str, tuple]:
    out = {}
    for name, schema in loaded.schemas.items():
        num, cat = vectorize_rows(schema, rows, where)
        out[name] = (torch.as_tensor(num), torch.as_tensor(cat))
    return out


def _text_tensors(loaded: checkpoint.LoadedModel, rows: list[dict], where: str = "data") -> dict[str, tuple]:
    """(text_bytes, text_lengths) per source whose schema has text features."""
    out = {}
    for name, schema in loaded.schemas.items():
        text = vectorize_text_rows(schema, rows, where)
        if text is not None:
            out[name] = (torch.as_tensor(text[0]), torch.as_tensor(text[1]))
    return out


def read_for_model(loaded: checkpoint.LoadedModel, data_path: str, fmt: str = "auto") -> list[dict]:
    """Rows of a data file, read with the model's event model when its sources have one."""
    models = []
    for schema in loaded.schemas.values():
        if schema.events is not None and schema.events not in models:
            models.append(schema.events)
    if len(models) > 1:
        raise DataError(f"{data_path}: the model's sources read events differently; give each its own data file")
    # Label and group columns may be paths into the record (`lab.label`, `lab.tool`):
    # read them as the features are.
    tasks = loaded.meta["config"]["tasks"]
    labels = [t["label"]["column"] for t in tasks] + [t["group_column"] for t in tasks if t.get("group_column")]
    return read_rows(data_path, fmt, events=models[0] if models else None, names=labels)


@dataclass
class LabelledScores:
    """One task's labels and the model's own scores on the labelled rows of a file."""

    task: dict  # the task's entry in model.json (type, threshold, labels, ...)
    y: np.ndarray  # encoded labels of the kept rows
    scores: np.ndarray  # P(threat) per row, or class probabilities per row
    rows: np.ndarray  # the kept rows' indices into the file's rows


def labelled_scores(loaded: checkpoint.LoadedModel, rows: list[dict], data_path: str) -> dict[str, LabelledScores]:
    """Per task whose source and label column the rows have: its labels and scores."""
    cols = {t["name"]: t for t in loaded.meta["config"]["tasks"]}
    needed = [t for t in loaded.meta["tasks"] if _source_fits(loaded, t["source"], rows)]
    if not needed:
        raise DataError(f"{data_path}: its columns fit none of the model's sources")
    arrays, texts = _tensors(loaded, rows, data_path), _text_tensors(loaded, rows, data_path)
    out = {}
    for t in needed:
        column = cols[t["name"]]["label"]["column"]
        if column not in rows[0]:
            continue
        y = loaded.labels[t["name"]].encode([r.get(column) for r in rows], column)
        keep = np.flatnonzero(y != DROP)
        num, cat = arrays[t["source"]]
        rows_kept = torch.as_tensor(keep)
        text = texts.get(t["source"])
        scores = score_rows(loaded.model, t["name"], num, cat, rows_kept, trees=loaded.trees, text=text)["scores"]
        out[t["name"]] = LabelledScores(t, y[keep], scores, keep)
    if not out:
        raise DataError(f"{data_path}: no task's label column is present; evaluate needs labelled rows")
    return out


def evaluate_file(model_dir: str, data_path: str, fmt: str = "auto") -> dict[str, dict]:
    loaded = checkpoint.load(model_dir)
    rows = read_for_model(loaded, data_path, fmt)
    results = {}
    for name, ls in labelled_scores(loaded, rows, data_path).items():
        n_classes = len(loaded.labels[name].classes)
        results[name] = trainer_kind(ls.task["type"]).metrics(ls.y, ls.scores, n_classes, ls.task["threshold"])
    return results


def _source_fits(loaded: checkpoint.LoadedModel, source: str, rows: list[dict]) -> bool:
    names = set(loaded.schemas[source].names)
    return len(names & set(rows[0])) >= max(1, len(names) // 2)


def predict_file(
    model_dir: str, data_path: str, fmt: str, output: str, threshold: float, action_target: str, alerts_path: str | None
) -> dict:
    loaded = checkpoint.load(model_dir)
    rows = read_for_model(loaded, data_path, fmt)
    tasks = [t for t in loaded.meta["tasks"] if _source_fits(loaded, t["source"], rows)]
    if not tasks:
        raise DataError(f"{data_path}: its columns fit none of the model's sources")
    handler = JsonlAlertHandler(alerts_path) if alerts_path else RecordingHandler()
    sentinel = SecuritySentinelCallback(threshold, action_target, handler, phases=("predict",))
    cbs = CallbackList([sentinel])
    arrays, texts = _tensors(loaded, rows, data_path), _text_tensors(loaded, rows, data_path)
    per_task = {}
    for t in tasks:
        num, cat = arrays[t["source"]]
        text = texts.get(t["source"])
        cbs.fire("on_predict", loaded.model, t["name"], len(rows))
        per_task[t["name"]] = score_rows(
            loaded.model, t["name"], num, cat, callbacks=cbs, phase="predict", trees=loaded.trees, text=text
        )["scores"]
    with _open_out(output) as fh:
        for i in range(len(rows)):
            fh.write(json.dumps(_row_result(i, loaded, tasks, per_task)) + "\n")
    cbs.fire("on_train_end", loaded.model, {})  # closes the alert handler
    return {"rows": len(rows), **sentinel.summary()}


def _row_result(i: int, loaded: checkpoint.LoadedModel, tasks: list[dict], per_task: dict) -> dict:
    out: dict = {"row": i}
    for t in tasks:
        classes = loaded.labels[t["name"]].classes
        out[t["name"]] = trainer_kind(t["type"]).row_result(per_task[t["name"]][i], classes, t["threshold"])
    return out


@contextmanager
def _open_out(path: str):
    if path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as fh:
        yield fh
