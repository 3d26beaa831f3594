"""Torch modules that are exactly what each ONNX graph computes.

Every graph takes the two schema inputs (either may be zero-width):
  numeric      float32 [batch, n]   NaN = missing (imputed inside)
  categorical  int64   [batch, m]   vocabulary indices, 0 = out of vocabulary
Outputs are the task kind's (jenga_edge/contract/tasks.py), named by their
role: binary tasks `score` [batch]; multiclass `probabilities` [batch, C] and
`label` int64 [batch]. The merged graph prefixes each with `<task>.`.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model import MultiTaskModel

INPUT_NAMES = ("numeric", "categorical")


def output_names(model: MultiTaskModel, task: str, prefix: str = "") -> list[str]:
    return model.specs[task].kind.contract.output_names(prefix)


def _outputs(model: MultiTaskModel, task: str, scores: torch.Tensor) -> list[torch.Tensor]:
    """The graph outputs of one task from its scores, in output_names order."""
    return model.specs[task].kind.graph_outputs(scores)


class TaskGraph(nn.Module):
    def __init__(self, model: MultiTaskModel, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor):
        scores = self.model(self.task, features={"numeric": numeric, "categorical": categorical})["scores"]
        out = _outputs(self.model, self.task, scores)
        return out[0] if len(out) == 1 else tuple(out)


class MergedGraph(nn.Module):
    """All tasks of one source: the adapter and trunk run once per event."""

    def __init__(self, model: MultiTaskModel, tasks: list[str]):
        super().__init__()
        self.model, self.tasks = model, list(tasks)
        self.source = model.specs[tasks[0]].source

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor):
        h = self.model.shared(self.source, numeric, categorical)
        outs: list[torch.Tensor] = []
        for task in self.tasks:
            outs += _outputs(self.model, task, self.model.head_outputs(task, h, numeric, categorical)["scores"])
        return tuple(outs)

    def output_names(self) -> list[str]:
        return [n for t in self.tasks for n in output_names(self.model, t, prefix=f"{t}.")]
