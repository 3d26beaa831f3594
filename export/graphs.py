"""Torch modules that are exactly what each ONNX graph computes.

Every graph takes the schema's inputs (contract/bundle_format.py input_specs, in
that order; numeric and categorical may be zero-width):
  numeric       float32 [batch, n]         NaN = missing (imputed inside)
  categorical   int64   [batch, m]         vocabulary indices, 0 = out of vocabulary
  text_bytes    uint8   [batch, t, bytes]  only for a schema with text features:
  text_lengths  int64   [batch, t]         each text's bytes (contract/text_input.py)
The graph turns the text inputs into byte ids and a mask itself (text_ids, the
same function the trainer's batches use), so there is no tokenizer outside it.
Outputs are the task kind's (jenga_edge/contract/tasks.py), named by their
role: binary tasks `score` [batch]; multiclass `probabilities` [batch, C] and
`label` int64 [batch]. The merged graph prefixes each with `<task>.`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jenga_edge.contract.bundle_format import input_specs
from jenga_edge.contract.schema import FeatureSchema
from trainer.model import LOG_EPS, MultiTaskModel, cdf_value
from trainer.text_backbones import text_ids

INPUT_NAMES = ("numeric", "categorical")  # the tabular inputs (a tree graph's, which reads no text)


def input_names(schema: FeatureSchema) -> list[str]:
    """The graph's input names, in the order the agent feeds them."""
    return [s.name for s in input_specs(schema)]


def output_names(model: MultiTaskModel, task: str, prefix: str = "") -> list[str]:
    return model.specs[task].kind.contract.output_names(prefix)


def _outputs(model: MultiTaskModel, task: str, scores: torch.Tensor) -> list[torch.Tensor]:
    """The graph outputs of one task from its scores, in output_names order."""
    return model.specs[task].kind.graph_outputs(scores)


def _text(text_bytes: torch.Tensor | None, text_lengths: torch.Tensor | None) -> dict[str, Any]:
    """input_ids/attention_mask from the text inputs, in the graph (empty without text)."""
    if text_bytes is None or text_lengths is None:
        return {}
    ids, mask = text_ids(text_bytes, text_lengths)
    return {"input_ids": ids, "attention_mask": mask}


class TaskGraph(nn.Module):
    def __init__(self, model: MultiTaskModel, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        text_bytes: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
    ):
        features = {"numeric": numeric, "categorical": categorical}
        scores = self.model(self.task, features=features, **_text(text_bytes, text_lengths))["scores"]
        out = _outputs(self.model, self.task, scores)
        return out[0] if len(out) == 1 else tuple(out)


class MergedGraph(nn.Module):
    """All tasks of one source: the adapter and trunk run once per event."""

    def __init__(self, model: MultiTaskModel, tasks: list[str]):
        super().__init__()
        self.model, self.tasks = model, list(tasks)
        self.source = model.specs[tasks[0]].source

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        text_bytes: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
    ):
        h = self.model.shared(self.source, numeric, categorical, **_text(text_bytes, text_lengths))
        outs: list[torch.Tensor] = []
        for task in self.tasks:
            outs += _outputs(self.model, task, self.model.head_outputs(task, h, numeric, categorical)["scores"])
        return tuple(outs)

    def output_names(self) -> list[str]:
        return [n for t in self.tasks for n in output_names(self.model, t, prefix=f"{t}.")]


CALIBRATED = ("fused", "distance", "novelty")  # scores that pass a calibration CDF


def calibrated_tolerances(graph: nn.Module, arrays: list[Any], atol: float) -> dict[str, torch.Tensor]:
    """The parity tolerance of each calibrated task's outputs in `graph`, per row of `arrays`.

    A novelty or distance score is the normal validation rows' CDF of the log error or
    log distance; a fused score is a CDF of a CDF: each member statistic z (a logit, a log
    distance) goes through its member's piecewise-linear tail, -log p, and the calibration
    CDF. Where normal rows crowd, those segments are steep, so the float32 difference
    between torch's and onnxruntime's trunk (a few 1e-6 of z, inherent to two GEMM
    kernels; a Mahalanobis distance's whitening enlarges it) comes out of the score
    multiplied by those slopes (x2.4 on agent_bench's 2-epoch NSL-KDD export, far more
    where every bin stacks at its minimum width; the lab corpus's SOC model with a
    distance task: 2.2e-5; computing the calibration in float64 would not help: the inputs
    already differ). The score agrees as well as its input allows when it lies within what
    torch's own score moves if each statistic moves by atol (relative to its size, at
    least atol): atol plus that move. The score is monotone in each statistic, so z +- e
    bound it. Other outputs: none here (the caller keeps atol)."""
    model = getattr(graph, "model", None)
    if not isinstance(model, MultiTaskModel):
        return {}
    merged = not isinstance(graph, TaskGraph)  # a MergedGraph names its outputs "<task>.<output>"
    tasks: list[str] = list(getattr(graph, "tasks", [])) if merged else [str(graph.task)]
    calibrated = [t for t in tasks if model.specs[t].mode in CALIBRATED]
    if not calibrated:
        return {}
    numeric, categorical, *text = (torch.from_numpy(a) for a in arrays)
    with torch.no_grad():
        h = model.shared(model.specs[calibrated[0]].source, numeric, categorical, **(_text(*text) if text else {}))
        out: dict[str, torch.Tensor] = {}
        for task in calibrated:
            move = _score_move(model, task, h, numeric, categorical, atol)
            for name in output_names(model, task, prefix=f"{task}." if merged else ""):
                out[name] = atol + move
        return out


def _score_move(model: MultiTaskModel, task: str, h, numeric, categorical, atol: float) -> torch.Tensor:
    """How far torch's score moves when the task's statistic moves by atol x max(1, |z|)."""
    outputs = model.head_outputs(task, h, numeric, categorical)
    if model.specs[task].mode == "fused":
        z = outputs["members"].double()
        head = model.fused_head(task)

        def score(x: torch.Tensor) -> torch.Tensor:
            return head.score(x)
    else:  # novelty, distance: a CDF of the log error / log distance
        z = torch.log(outputs["errors"].double().clamp_min(LOG_EPS))
        cal = model.distance_head(task) if model.specs[task].mode == "distance" else model.novelty_head(task)

        def score(x: torch.Tensor) -> torch.Tensor:
            return cdf_value(x, cal.cal_left.double(), cal.cal_width.double())

    e = atol * z.abs().clamp_min(1.0)
    base = score(z)
    move = torch.maximum(score(z + e) - base, base - score(z - e)).abs()
    return torch.nan_to_num(move, nan=0.0)  # an infinite z (inf - inf): no more than atol
