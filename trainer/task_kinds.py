"""The trainer's half of each task kind: labels, head, loss, metrics, threshold, graph outputs.

The contract's half, which the bundle carries and the agent reads (graph
outputs, their roles and dtypes), is jenga_edge/contract/tasks.py under the
same name. A new kind is a class here plus a line in TRAINER_KINDS, and a
TaskKind there.

Novelty is a mode of the binary kind, not a kind: its head (an autoencoder)
lives with the model (trainer/model.py), its score is still P(threat)-like in
[0, 1], and everything after the head is the binary kind's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jenga_edge.contract.schema import category_key
from jenga_edge.contract.tasks import ANOMALY_DETECTION, CLASSIFICATION, TaskKind

from . import metrics as M
from .config import TaskConfig
from .labels import LabelMap, fit_binary_labels, fit_multiclass_labels


class TrainerKind:
    contract: ClassVar[TaskKind]
    selection_metrics: ClassVar[frozenset[str]]
    default_metric: ClassVar[str]

    @property
    def binary(self) -> bool:
        return self.contract.binary

    def fit_labels(self, task: TaskConfig, keys: list[str]) -> LabelMap:
        raise NotImplementedError

    def head(self, in_dim: int, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head's output -> {"logits", "scores"} (scores: what the graph's score reads)."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def metrics(
        self, y: np.ndarray, scores: np.ndarray, n_classes: int, threshold: float | None = None, rule: Any = None
    ) -> dict[str, Any]:
        """Validation metrics; a binary kind picks its threshold by `rule` when none is given."""
        raise NotImplementedError

    def selection_metric(self, wanted: str) -> str:
        """The configured early-stopping metric if it applies to this kind, else the kind's default."""
        return wanted if wanted in self.selection_metrics else self.default_metric

    def graph_outputs(self, scores: torch.Tensor) -> list[torch.Tensor]:
        """The graph's outputs from the scores, in the contract's output order."""
        raise NotImplementedError

    def row_result(self, scores: np.ndarray, classes: tuple[str, ...], threshold: float | None) -> dict[str, Any]:
        """One row of `jenga-train predict`."""
        raise NotImplementedError


class Binary(TrainerKind):
    """anomaly_detection: one logit, sigmoid; class-weighted BCE; a threshold tuned on validation."""

    contract = ANOMALY_DETECTION
    selection_metrics = frozenset({"pr_auc", "roc_auc", "f1", "accuracy"})
    default_metric = "pr_auc"

    def fit_labels(self, task: TaskConfig, keys: list[str]) -> LabelMap:
        return fit_binary_labels(task, keys)

    def head(self, in_dim: int, n_classes: int) -> nn.Module:
        return nn.Linear(in_dim, 1)

    def scores(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = logits.squeeze(1)
        return {"logits": logits, "scores": torch.sigmoid(logits)}

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        weight = weights.index_select(0, y) if weights is not None else None
        return F.binary_cross_entropy_with_logits(logits, y.float(), weight=weight)

    def metrics(
        self, y: np.ndarray, scores: np.ndarray, n_classes: int, threshold: float | None = None, rule: Any = None
    ) -> dict[str, Any]:
        fallback = None
        if threshold is None:
            rule = rule if rule is not None else "max_f1"
            threshold = M.choose_threshold(y, scores, rule)
            fallback = M.threshold_fallback(y, rule)
        out = M.binary_metrics(y, scores, threshold)
        if fallback is not None:
            out["threshold_fallback"] = fallback  # the trainer warns; the manifest keeps it
        return out

    def graph_outputs(self, scores: torch.Tensor) -> list[torch.Tensor]:
        return [scores]

    def row_result(self, scores: np.ndarray, classes: tuple[str, ...], threshold: float | None) -> dict[str, Any]:
        s = float(scores)
        return {"score": round(s, 6), "threshold": threshold, "threat": bool(threshold is not None and s >= threshold)}


class Multiclass(TrainerKind):
    """classification: one logit per class, softmax; class-weighted cross-entropy; the argmax is the label."""

    contract = CLASSIFICATION
    selection_metrics = frozenset({"accuracy", "macro_f1"})
    default_metric = "macro_f1"

    def fit_labels(self, task: TaskConfig, keys: list[str]) -> LabelMap:
        return fit_multiclass_labels(task, keys)

    def head(self, in_dim: int, n_classes: int) -> nn.Module:
        return nn.Linear(in_dim, n_classes)

    def scores(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": logits, "scores": torch.softmax(logits, dim=1)}

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=weights)

    def metrics(
        self, y: np.ndarray, scores: np.ndarray, n_classes: int, threshold: float | None = None, rule: Any = None
    ) -> dict[str, Any]:
        return M.multiclass_metrics(y, scores, n_classes)

    def graph_outputs(self, scores: torch.Tensor) -> list[torch.Tensor]:
        return [scores, torch.argmax(scores, dim=1)]

    def row_result(self, scores: np.ndarray, classes: tuple[str, ...], threshold: float | None) -> dict[str, Any]:
        k = int(np.argmax(scores))
        return {"label": classes[k], "probability": round(float(scores[k]), 6)}


TRAINER_KINDS: dict[str, TrainerKind] = {k.contract.name: k for k in (Binary(), Multiclass())}


def trainer_kind(name: str) -> TrainerKind:
    return TRAINER_KINDS[name]


def fit_label_map(task: TaskConfig, raw: list[Any]) -> LabelMap:
    """The task's label vocabulary from its raw label values."""
    keys = sorted({category_key(v) for v in raw if v is not None})
    return trainer_kind(task.type).fit_labels(task, keys)
