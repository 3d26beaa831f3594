"""A small callback API for training, evaluation and prediction.

Hooks receive the running Trainer or Predictor as `ctx`. Batch hooks get a
BatchInfo; scores are only computed for them when a callback sets
`wants_scores`, because moving them off the GPU every step costs a sync.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from jenga_edge.contract.tasks import task_kind


@dataclass
class BatchInfo:
    phase: str  # train | evaluate | predict
    task: str
    task_type: str  # a task kind: anomaly_detection | classification
    scores: np.ndarray | None  # positive-class probability (binary) or class probabilities
    row_ids: Sequence[Any]
    step: int = 0
    loss: float | None = None

    @property
    def binary(self) -> bool:
        return task_kind(self.task_type).binary


class Callback:
    wants_scores = False

    def on_train_start(self, ctx: Any) -> None: ...
    def on_train_end(self, ctx: Any, summary: dict) -> None: ...
    def on_epoch_start(self, ctx: Any, epoch: int) -> None: ...
    def on_epoch_end(self, ctx: Any, epoch: int, logs: dict) -> None: ...
    def on_batch_end(self, ctx: Any, batch: BatchInfo) -> None: ...
    def on_before_optimizer_step(self, ctx: Any, step: int) -> None: ...
    def on_evaluate(self, ctx: Any, metrics: dict) -> None: ...
    def on_predict(self, ctx: Any, task: str, n_rows: int) -> None: ...

    def summary(self) -> dict:
        return {}


class CallbackList:
    """Fires one hook on every callback, in order."""

    def __init__(self, callbacks: Sequence[Callback] = ()):
        self.callbacks = list(callbacks)
        self.wants_scores = any(c.wants_scores for c in self.callbacks)

    def fire(self, hook: str, *args: Any) -> None:
        for c in self.callbacks:
            getattr(c, hook)(*args)

    def summary(self) -> dict:
        out: dict = {}
        for c in self.callbacks:
            out.update(c.summary())
        return out


# ---------------------------------------------------------------- sentinel


class ActionHandler(Protocol):
    def __call__(self, alert: dict) -> None: ...


class RecordingHandler:
    """Keeps the first `keep` alerts in memory; counting is the callback's job."""

    def __init__(self, keep: int = 100):
        self.keep = keep
        self.alerts: list[dict] = []

    def __call__(self, alert: dict) -> None:
        if len(self.alerts) < self.keep:
            self.alerts.append(alert)

    def close(self) -> None: ...


class JsonlAlertHandler:
    """Appends alerts as JSON Lines; fsync on close so a finished run's alerts are on disk."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run, closed at its end

    def __call__(self, alert: dict) -> None:
        self._fh.write(json.dumps(alert, default=str) + "\n")

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


class SecuritySentinelCallback(Callback):
    """Watches threat probabilities of every binary task on every batch and
    raises an alert for each row at or above `threshold`.

    Binary tasks are found by task type, never by a word in the task's name.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        action_target: str = "firewall",
        handler: ActionHandler | None = None,
        phases: Sequence[str] = ("train", "evaluate", "predict"),
    ):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold, self.action_target = threshold, action_target
        self.handler = handler if handler is not None else RecordingHandler()
        self.phases = set(phases)
        self.counts: Counter = Counter()
        # Scores of training batches cost a device sync per step: ask only when watching them.
        self.wants_scores = "train" in self.phases

    def on_batch_end(self, ctx: Any, batch: BatchInfo) -> None:
        if not batch.binary or batch.phase not in self.phases or batch.scores is None:
            return
        hits = np.flatnonzero(batch.scores >= self.threshold)
        self.counts[(batch.phase, batch.task)] += int(hits.size)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for i in hits.tolist():  # plain ints: row_ids is any Sequence
            self.handler(
                {
                    "timestamp": now,
                    "phase": batch.phase,
                    "task": batch.task,
                    "row_id": _plain(batch.row_ids[i]),
                    "score": float(batch.scores[i]),
                    "threshold": self.threshold,
                    "action_target": self.action_target,
                }
            )

    def on_train_end(self, ctx: Any, summary: dict) -> None:
        getattr(self.handler, "close", lambda: None)()

    def summary(self) -> dict:
        by: dict[str, dict[str, int]] = {}
        for (phase, task), n in sorted(self.counts.items()):
            by.setdefault(phase, {})[task] = n
        return {"sentinel_alerts": by, "sentinel_threshold": self.threshold}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------- nested learning


class NestedLearningCallback(Callback):
    """Two update speeds: task heads and adapters learn at the full rate every
    step; the shared trunk learns at `trunk_lr_scale` of it, from gradients
    accumulated over `accumulate_steps` steps and applied once.

    Why: the trunk holds what all tasks share. When a model is retrained on new
    data (training.init_from), fast trunk updates wash that out for every task;
    slow, averaged ones let the heads adapt while the trunk drifts little
    (tests/trainer/test_callbacks.py measures the drift with and without).
    """

    def __init__(self, trunk_lr_scale: float = 0.1, accumulate_steps: int = 4):
        if not 0.0 <= trunk_lr_scale <= 1.0 or accumulate_steps < 1:
            raise ValueError("trunk_lr_scale must be in [0, 1] and accumulate_steps >= 1")
        self.scale, self.k = trunk_lr_scale, accumulate_steps
        self._acc: dict[int, torch.Tensor] = {}
        self.trunk_updates = 0

    def on_train_start(self, ctx: Any) -> None:
        for group in ctx.optimizer.param_groups:
            if group.get("name") == "trunk":
                group["lr_scale"] = self.scale

    def on_before_optimizer_step(self, ctx: Any, step: int) -> None:
        params = [p for p in ctx.model.trunk.parameters() if p.grad is not None]
        for p in params:
            acc = self._acc.get(id(p))
            self._acc[id(p)] = p.grad.detach().clone() if acc is None else acc.add_(p.grad)
        if (step + 1) % self.k:
            for p in params:
                p.grad = None  # AdamW skips parameters without a gradient this step
            return
        for p in params:
            p.grad = self._acc.pop(id(p)).div_(self.k)
        self.trunk_updates += 1

    def summary(self) -> dict:
        return {
            "nested_learning": {
                "trunk_lr_scale": self.scale,
                "accumulate_steps": self.k,
                "trunk_updates": self.trunk_updates,
            }
        }


def from_config(cfg: Any, write_files: bool = True) -> list[Callback]:
    """Callbacks named in training.callbacks. write_files False (torchrun's ranks > 0): the
    sentinel keeps its alerts in memory, rank 0 writes the alerts file."""
    cbs: list[Callback] = []
    if cfg.sentinel is not None:
        s = cfg.sentinel
        to_file = s.alerts_file and write_files
        handler: Callable = JsonlAlertHandler(s.alerts_file) if to_file else RecordingHandler()
        cbs.append(SecuritySentinelCallback(s.threshold, s.action_target, handler, s.phases))
    if cfg.nested_learning is not None:
        n = cfg.nested_learning
        cbs.append(NestedLearningCallback(n.trunk_lr_scale, n.accumulate_steps))
    return cbs
