"""Unseen-attack validation: hold out whole attack types, train, and measure
how well the model catches attacks of a type it never saw.

Attack types (raw labels, or the task's group_column) are split into folds.
Each fold trains a fresh model with those types removed from training and
validation of every task of the source (so no other task leaks them), picks
its threshold on half of the remaining validation rows, then scores the
held-out attacks against the normal rows of the other half, which nothing in
training saw. Results are mean and spread over
folds: the number security users ask for first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from jenga_edge.contract.errors import ConfigError, DataError
from jenga_edge.contract.schema import category_key
from jenga_edge.contract.tasks import task_kind

from . import metrics as M
from .config import ExperimentConfig
from .dataset import Holdout, read_source
from .task_kinds import fit_label_map


def attack_groups(cfg: ExperimentConfig, task_name: str) -> tuple[str, list[str]]:
    """The grouping column and its values that belong to the positive class."""
    task = next((t for t in cfg.tasks if t.name == task_name), None)
    if task is None:
        raise ConfigError(f"--task {task_name!r}: no such task (tasks: {', '.join(t.name for t in cfg.tasks)})")
    if not task_kind(task.type).binary:
        raise ConfigError(
            f"--task {task_name!r}: the unseen-attack protocol needs a binary task (anomaly_detection), not {task.type}"
        )
    rows = read_source(cfg, task.source)
    labels = fit_label_map(task, [r.get(task.label.column) for r in rows])
    column = task.group_column or task.label.column
    groups: dict[str, int] = {}
    for r in rows:
        lab = r.get(task.label.column)
        if lab is not None and labels.lookup.get(category_key(lab)) == 1:
            g = category_key(r.get(column))
            groups[g] = groups.get(g, 0) + 1
    if len(groups) < 2:
        raise DataError(
            f"task {task_name!r}: need at least two attack types in {column!r} to hold some out, found {sorted(groups)}"
        )
    return column, sorted(groups, key=lambda g: (-groups[g], g))


def make_folds(groups: list[str], k: int, seed: int) -> list[list[str]]:
    k = min(k, len(groups))
    order = list(np.random.default_rng(seed).permutation(len(groups)))
    return [sorted(groups[i] for i in order[f::k]) for f in range(k)]


def run_holdout(
    cfg: ExperimentConfig, task_name: str, folds: int = 4, output_dir: Path | None = None, out=sys.stderr
) -> dict:
    from .distributed import from_env
    from .run import run_experiment  # late import: run pulls in the training loop

    if from_env().active:
        raise ConfigError(
            "holdout under torchrun: not supported (every rank would score and write each fold); "
            "run `jenga-train holdout` as one process"
        )
    if cfg.training.init_from:
        raise ConfigError(
            "holdout trains a fresh model per fold; a model continued from "
            f"training.init_from ({cfg.training.init_from}) has already seen every attack type"
        )
    column, groups = attack_groups(cfg, task_name)
    task_cfg = next(t for t in cfg.tasks if t.name == task_name)
    per_fold = []
    for i, held in enumerate(make_folds(groups, folds, cfg.training.seed)):
        print(f"fold {i + 1}: holding out {', '.join(held)}", file=out, flush=True)
        run = run_experiment(
            cfg,
            Path(output_dir or cfg.output_dir) / "holdout" / f"fold{i + 1}",
            holdout=Holdout(task_cfg.source, column, frozenset(held)),
            save=False,
            out=out,
        )
        per_fold.append(_fold_metrics(run, task_name, held))
    keys = ["unseen_recall", "unseen_roc_auc", "unseen_pr_auc", "normal_fpr"]
    return {
        "task": task_name,
        "group_column": column,
        "folds": per_fold,
        "summary": {k: M.summarize([f[k] for f in per_fold]) for k in keys},
    }


def _fold_metrics(run, task_name: str, held: list[str]) -> dict:
    trainer = run.trainer
    task = trainer.tasks[task_name]
    src = trainer.sources[task.source]
    if src.held_idx.size == 0:
        raise DataError(f"fold holding out {held} has no rows")
    normal = src.test_idx[task.y[src.test_idx] == 0]  # never used for threshold or early stopping
    rows = np.concatenate([normal, src.held_idx])
    y = np.r_[np.zeros(normal.size, dtype=np.int64), np.ones(src.held_idx.size, dtype=np.int64)]
    threshold = run.result.thresholds[task_name]
    scores = _scores(trainer, task_name, rows)
    held_scores, normal_scores = scores[normal.size :], scores[: normal.size]
    per_type = {g: float(np.mean(held_scores[task.groups[src.held_idx] == g] >= threshold)) for g in held}
    out = {
        "held_out": held,
        "n_unseen": int(src.held_idx.size),
        "threshold": threshold,
        "unseen_recall": float(np.mean(held_scores >= threshold)),
        "normal_fpr": float(np.mean(normal_scores >= threshold)),
        "unseen_roc_auc": M.roc_auc(y, scores),
        "unseen_pr_auc": M.pr_auc(y, scores),
        "recall_by_type": per_type,
    }
    if task.cfg.combine:
        # A fused task's members on the same rows, each at its own threshold: what fusing gained.
        out["members"] = {m: _member_metrics(run, m, normal, src.held_idx) for m in task.cfg.combine}
    return out


def _member_metrics(run, name: str, normal: np.ndarray, held: np.ndarray) -> dict:
    threshold = run.result.thresholds[name]
    scores = _scores(run.trainer, name, np.concatenate([normal, held]))
    return {
        "threshold": threshold,
        "unseen_recall": float(np.mean(scores[normal.size :] >= threshold)),
        "normal_fpr": float(np.mean(scores[: normal.size] >= threshold)),
    }


def _scores(trainer, task_name: str, rows: np.ndarray) -> np.ndarray:
    import torch

    from .predict import score_rows

    task = trainer.tasks[task_name]
    idx = torch.as_tensor(rows, device=trainer.device)
    return score_rows(
        trainer.model,
        task_name,
        trainer.num[task.source],
        trainer.cat[task.source],
        idx,
        trainer.tcfg.eval_batch_size,
        trees=trainer.trees,
        text=trainer.text.get(task.source),
    )["scores"]
