"""Batched, gradient-free scoring with the torch model, firing callbacks per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .callbacks import BatchInfo, CallbackList
from .model import MultiTaskModel


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
) -> dict[str, np.ndarray]:
    """Scores for rows `idx` of a source, and what a head gives besides: a novelty head's
    reconstruction `errors`, a fused task's `members` statistics [rows, members]."""
    was_training = model.training
    model.eval()
    spec = model.specs[task]
    idx = torch.arange(num.shape[0], device=num.device) if idx is None else idx
    scores: list[np.ndarray] = []
    extra: dict[str, list[np.ndarray]] = {}
    for start in range(0, idx.numel(), batch_size):
        b = idx[start : start + batch_size]
        out = model(task, features={"numeric": num.index_select(0, b), "categorical": cat.index_select(0, b)})
        s = out["scores"].float().cpu().numpy()
        scores.append(s)
        for key in ("errors", "members"):
            if key in out:
                extra.setdefault(key, []).append(out[key].float().cpu().numpy())
        if callbacks is not None and callbacks.callbacks:
            ids = _ids(row_ids, b)
            callbacks.fire("on_batch_end", model, BatchInfo(phase, task, spec.type, s, ids))
    model.train(was_training)
    width = () if spec.binary else (model.heads[task].out_features,)
    result = {"scores": np.concatenate(scores) if scores else np.empty((0, *width), np.float32)}
    result.update({key: np.concatenate(parts) for key, parts in extra.items()})
    return result


def _ids(row_ids: Sequence[Any] | None, b: torch.Tensor) -> list:
    pos = b.cpu().numpy()
    return pos.tolist() if row_ids is None else [row_ids[i] for i in pos]
