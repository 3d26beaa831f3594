"""Batched, gradient-free scoring with the torch model, firing callbacks per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from jenga_edge.contract.tasks import ANOMALY_DETECTION, CLASSIFICATION

from .callbacks import BatchInfo, CallbackList
from .model import MultiTaskModel, batch_inputs

if TYPE_CHECKING:
    from .trees import TreeModel


@torch.no_grad()
def score_rows(
    model: MultiTaskModel,
    task: str,
    num: torch.Tensor,
    cat: torch.Tensor,
    idx: torch.Tensor | None = None,
    batch_size: int = 8192,
    callbacks: CallbackList | None = None,
    phase: str = "evaluate",
    row_ids: Sequence[Any] | None = None,
    trees: Mapping[str, TreeModel] | None = None,
    text: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:
    """Scores for rows `idx` of a source, and what a head gives besides: a novelty head's
    reconstruction `errors`, a fused task's `members` statistics [rows, members]. A task
    in `trees` is scored by its tree model instead of the network. `text`: the source's
    (text_bytes, text_lengths) when its schema has text features."""
    if trees and task in trees:
        return _score_tree(trees[task], task, num, cat, idx, batch_size, callbacks, phase, row_ids)
    was_training = model.training
    model.eval()
    spec = model.specs[task]
    idx = torch.arange(num.shape[0], device=num.device) if idx is None else idx
    scores: list[np.ndarray] = []
    extra: dict[str, list[np.ndarray]] = {}
    for start in range(0, idx.numel(), batch_size):
        b = idx[start : start + batch_size]
        out = model(task, **batch_inputs(num, cat, text, b))
        s = out["scores"].float().cpu().numpy()
        scores.append(s)
        for key in ("errors", "members"):
            if key in out:
                extra.setdefault(key, []).append(out[key].float().cpu().numpy())
        if callbacks is not None and callbacks.callbacks:
            ids = _ids(row_ids, b.cpu().numpy())
            callbacks.fire("on_batch_end", model, BatchInfo(phase, task, spec.type, s, ids))
    model.train(was_training)
    width = () if spec.binary else (model.heads[task].out_features,)
    result = {"scores": np.concatenate(scores) if scores else np.empty((0, *width), np.float32)}
    result.update({key: np.concatenate(parts) for key, parts in extra.items()})
    return result


def _score_tree(
    tree: TreeModel,
    task: str,
    num: torch.Tensor,
    cat: torch.Tensor,
    idx: torch.Tensor | None,
    batch_size: int,
    callbacks: CallbackList | None,
    phase: str,
    row_ids: Sequence[Any] | None,
) -> dict[str, np.ndarray]:
    rows = np.arange(num.shape[0]) if idx is None else idx.cpu().numpy()
    num_np, cat_np = num.cpu().numpy(), cat.cpu().numpy()
    task_type = (ANOMALY_DETECTION if tree.n_classes == 2 else CLASSIFICATION).name
    scores = []
    for start in range(0, rows.size, batch_size):
        b = rows[start : start + batch_size]
        s = tree.predict(num_np[b], cat_np[b])
        scores.append(s)
        if callbacks is not None and callbacks.callbacks:
            ids = _ids(row_ids, b)
            callbacks.fire("on_batch_end", tree, BatchInfo(phase, task, task_type, s, ids))
    return {"scores": np.concatenate(scores) if scores else tree.predict(num_np[:0], cat_np[:0])}


def _ids(row_ids: Sequence[Any] | None, pos: np.ndarray) -> list:
    """The ids of the rows at positions `pos` (their positions when the rows have none)."""
    return pos.tolist() if row_ids is None else [row_ids[i] for i in pos]
