"""Tree-model tasks (`learner: lightgbm`): fitting, scoring and saving a LightGBM booster.

A tree task reads the same vectorized rows as the network (numeric float32 with NaN,
categorical vocabulary indices from the fitted schema), so the exported TreeEnsemble
graph (export/tree_onnx.py) takes the bundle's two inputs unchanged. It learns from
the raw values: LightGBM routes NaN itself (its learned missing direction), and the
numeric encodings of the schema are monotone, so a tree gains nothing from them.

lightgbm is the optional `[trees]` extra, imported only when a task uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from jenga_edge.contract.errors import ConfigError

from .config import LightGBMLearner
from .labels import balanced_weights

# LightGBM's own early-stopping metric for our selection metric (binary tasks);
# others stop on the log loss of the task's objective.
_BINARY_METRICS = {"pr_auc": "average_precision", "roc_auc": "auc"}


def lightgbm() -> Any:
    """The lightgbm module, or one line saying which extra provides it."""
    try:
        import lightgbm as lgb
    except ImportError:
        raise ConfigError(
            "a task has learner: lightgbm, but lightgbm is not installed; pip install 'jenga-ai-edge[trees]'"
        ) from None
    return lgb


def features(num: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """The booster's input: numeric columns, then categorical indices, as float64
    (exact for float32 values and for indices; NaN stays NaN)."""
    return np.hstack([num.astype(np.float64), cat.astype(np.float64)])


@dataclass
class TreeModel:
    """A fitted booster and what scoring it needs."""

    booster: Any  # lightgbm.Booster, truncated to its best iteration
    n_classes: int
    best_iteration: int
    fit_seconds: float = 0.0

    def predict(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """P(threat) [rows] for a binary task, class probabilities [rows, C] otherwise."""
        if len(num) == 0:
            shape = (0,) if self.n_classes == 2 else (0, self.n_classes)
            return np.empty(shape, np.float32)
        return np.asarray(self.booster.predict(features(num, cat)), dtype=np.float32)

    def to_string(self) -> str:
        return str(self.booster.model_to_string())

    @classmethod
    def from_string(cls, text: str, n_classes: int) -> TreeModel:
        booster = lightgbm().Booster(model_str=text)
        return cls(booster, n_classes, booster.current_iteration())


def params(learner: LightGBMLearner, n_classes: int, selection: str, seed: int) -> dict[str, Any]:
    """LightGBM parameters: deterministic with the seed, NaN as its own missing value."""
    objective: dict[str, Any]
    if n_classes == 2:
        objective = {"objective": "binary", "metric": _BINARY_METRICS.get(selection, "binary_logloss")}
    else:
        objective = {"objective": "multiclass", "num_class": n_classes, "metric": "multi_logloss"}
    return {
        **objective,
        "learning_rate": learner.learning_rate,
        "num_leaves": learner.num_leaves,
        "max_depth": learner.max_depth,
        "min_child_samples": learner.min_child_samples,
        "bagging_fraction": learner.subsample,
        "bagging_freq": 1 if learner.subsample < 1.0 else 0,
        "feature_fraction": learner.colsample,
        "lambda_l2": learner.reg_lambda,
        "num_threads": learner.num_threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        # export/tree_onnx.py maps NaN exactly; zero-as-missing would need extra nodes.
        "zero_as_missing": False,
        "verbosity": -1,
    }


def fit(
    learner: LightGBMLearner,
    num: np.ndarray,
    cat: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    n_classes: int,
    weights: np.ndarray | None,
    selection: str,
    seed: int,
) -> TreeModel:
    """Boost on the training rows, stop early on the validation rows; keep the best rounds.
    `weights` are per-class (the task's class_weighting), applied per training row."""
    lgb = lightgbm()
    t0 = time.perf_counter()
    x = features(num, cat)
    train = _dataset(lgb, x, num.shape[1], y, train_idx, weights, free_raw_data=False)
    val = lgb.Dataset(x[val_idx], y[val_idx], reference=train, categorical_feature=_categorical(x, num.shape[1]))
    booster = lgb.train(
        params(learner, n_classes, selection, seed),
        train,
        num_boost_round=learner.n_estimators,
        valid_sets=[val],
        callbacks=[lgb.early_stopping(learner.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    # Reloaded from its own text, cut at the best round: what is scored, saved and
    # exported are then the very same trees.
    kept = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return TreeModel(kept, n_classes, best, time.perf_counter() - t0)


def refit(
    learner: LightGBMLearner,
    tree: TreeModel,
    num: np.ndarray,
    cat: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    n_train: int,
    weights: np.ndarray | None,
    selection: str,
    seed: int,
) -> TreeModel:
    """The same booster settings on `rows` (training and validation together), for the
    early-stopped rounds scaled by how many more rows it sees (more data supports more
    rounds at the same shrinkage): no validation rows are left to stop on."""
    lgb = lightgbm()
    t0 = time.perf_counter()
    rounds = max(1, round(tree.best_iteration * len(rows) / max(n_train, 1)))
    data = _dataset(lgb, features(num, cat), num.shape[1], y, rows, weights)
    booster = lgb.train(params(learner, tree.n_classes, selection, seed), data, num_boost_round=rounds)
    kept = lgb.Booster(model_str=booster.model_to_string())
    return TreeModel(kept, tree.n_classes, rounds, time.perf_counter() - t0)


def _categorical(x: np.ndarray, n_numeric: int) -> list[int]:
    """The booster's categorical columns: every one after the numeric ones."""
    return list(range(n_numeric, x.shape[1]))


def _dataset(
    lgb: Any, x: np.ndarray, n_numeric: int, y: np.ndarray, rows: np.ndarray, weights: np.ndarray | None, **kw: Any
) -> Any:
    """A LightGBM training set of `rows`, each weighted by its class (`weights` per class)."""
    row_w = weights[y[rows]] if weights is not None else None
    return lgb.Dataset(
        x[rows], y[rows], weight=row_w, categorical_feature=_categorical(x, n_numeric), params={"verbose": -1}, **kw
    )


def class_weights(y: np.ndarray, n_classes: int, weighting: str) -> np.ndarray | None:
    """Inverse class frequency (balanced), as the network's loss weighs classes."""
    return None if weighting == "none" else balanced_weights(y, n_classes)
