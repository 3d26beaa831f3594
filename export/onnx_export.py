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
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch

from jenga_edge.contract.errors import JengaError
from jenga_edge.contract.schema import FeatureSchema

from .graphs import input_names

EXAMPLE_BATCH = 4  # not 0 or 1: torch.export would specialize the batch axis


class ExportError(JengaError):
    """The exporter or the ONNX checker rejected a graph."""

    exit_code = 1


def example_inputs(schema: FeatureSchema) -> tuple[torch.Tensor, ...]:
    """One tensor per graph input (input_names order). The example text is as wide as the
    schema allows but holds shorter texts, so no length is baked in."""
    inputs: tuple[torch.Tensor, ...] = (
        torch.zeros(EXAMPLE_BATCH, len(schema.numeric), dtype=torch.float32),
        torch.zeros(EXAMPLE_BATCH, len(schema.categorical), dtype=torch.int64),
    )
    if schema.text:
        t, width = len(schema.text), schema.text_width
        lengths = torch.arange(EXAMPLE_BATCH * t, dtype=torch.int64).reshape(EXAMPLE_BATCH, t) % (width + 1)
        inputs += (torch.full((EXAMPLE_BATCH, t, width), 97, dtype=torch.uint8), lengths)
    return inputs


def dynamic_shapes(schema: FeatureSchema) -> tuple[dict[int, Any], ...]:
    """A symbolic batch axis on every input; for text, a symbolic `bytes` axis up to the
    schema's text_width, so the agent may trim a batch to its longest text."""
    batch = torch.export.Dim("batch", min=1)
    shapes: tuple[dict[int, Any], ...] = ({0: batch}, {0: batch})
    if schema.text:
        # torch.export specializes an axis whose example is 1, hence a fixed axis for width 1.
        width = schema.text_width
        text_axis = {2: torch.export.Dim("bytes", min=1, max=width)} if width > 1 else {}
        shapes += ({0: batch, **text_axis}, {0: batch})
    return shapes


def export_graph(
    module: torch.nn.Module, schema: FeatureSchema, outputs: Sequence[str], path: Path, opset: int
) -> onnx.ModelProto:
    """Export with symbolic batch (and text bytes) axes, run the full checker, return the model."""
    inputs = example_inputs(schema)
    shapes = dynamic_shapes(schema)
    module.eval()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            _quiet("torch.onnx", "onnxscript"),
            fusable_gelu(module),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                inputs,
                str(path),
                input_names=input_names(schema),
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


class ErfGelu(torch.nn.Module):
    """nn.GELU (exact, erf) written as x * (1 + erf(x / sqrt 2)) * 0.5: the order of
    the products onnxruntime's GeluFusion recognises, so the graph runs one Gelu
    kernel instead of Div, Erf, Add and two Muls. torch's own decomposition multiplies
    by 0.5 first, which no fusion pattern matches (4 GELUs of the NSL-KDD merged graph:
    0.18 us per event at batch 256). Equal to nn.GELU within float rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1.0 + torch.erf(x / math.sqrt(2.0))) * 0.5


@contextlib.contextmanager
def fusable_gelu(module: torch.nn.Module) -> Iterator[None]:
    """Every exact nn.GELU inside `module` is an ErfGelu while it is exported, then
    itself again (parity compares the graph with the trained modules)."""
    swapped = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.GELU) and child.approximate == "none"
    ]
    for parent, name, _ in swapped:
        setattr(parent, name, ErfGelu())
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


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
