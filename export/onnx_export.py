"""torch module -> checked ONNX graph with self-describing metadata.

Exporter: torch's default `torch.onnx.export(..., dynamo=True)` (torch.export
+ onnxscript). The TorchScript exporter (`dynamo=False`) still works in torch
2.13 but is deprecated and slated for removal, so a bundle built on it would
rest on a path with no future.

Opset: 18 by default, not 17. The dynamo exporter emits opset 18 natively and
reaches 17 only through onnx's version converter, which fails on our novelty
head (ReduceMean takes `axes` as an input from opset 18; the converter cannot
turn a computed input back into an attribute) and then silently keeps 18.
Opset 18 needs onnxruntime >= 1.14 (2023), which every supported gateway has.
A graph whose opset is not the one asked for is an export error.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch

from jenga_edge.contract.errors import JengaError

from .graphs import INPUT_NAMES

EXAMPLE_BATCH = 4  # not 0 or 1: torch.export would specialize the batch axis


class ExportError(JengaError):
    """The exporter or the ONNX checker rejected a graph."""

    exit_code = 1


def example_inputs(n_numeric: int, n_categorical: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.zeros(EXAMPLE_BATCH, n_numeric, dtype=torch.float32),
        torch.zeros(EXAMPLE_BATCH, n_categorical, dtype=torch.int64),
    )


def export_graph(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], outputs: Sequence[str], path: Path, opset: int
) -> onnx.ModelProto:
    """Export with a symbolic batch axis, run the full checker, return the model."""
    batch = torch.export.Dim("batch", min=1)
    shapes = {"numeric": {0: batch}, "categorical": {0: batch}}
    module.eval()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx", "onnxscript"):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                inputs,
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=list(outputs),
                dynamic_shapes=shapes,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean "no graph"
        raise ExportError(
            f"{path.name}: torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    model = onnx.load(str(path))
    if opset_of(model) != opset:
        raise ExportError(
            f"{path.name}: asked for opset {opset}, the exporter produced "
            f"{opset_of(model)}; use --opset {opset_of(model)}"
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path.name}: onnx.checker rejected the graph: {str(exc)[:300]}") from None
    return model


def set_metadata(
    model: onnx.ModelProto, props: dict[str, object], *, producer_version: str, model_version: int, doc: str
) -> None:
    """metadata_props so a lone .onnx file describes itself (values are strings)."""
    model.producer_name = "jenga-export"
    model.producer_version = producer_version
    model.model_version = model_version
    model.doc_string = doc
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def opset_of(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@contextlib.contextmanager
def _quiet(*loggers: str):
    """The exporter logs progress and optional-package notes at WARNING; a
    failure still surfaces as the exception, with its message."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)
