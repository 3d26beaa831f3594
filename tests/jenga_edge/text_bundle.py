"""A small bundle with a text feature, built without torch: one hand-written ONNX graph.

The graph (onnx.helper) takes the four inputs of a schema with text (numeric,
categorical, text_bytes uint8 [batch, 1, bytes], text_lengths int64 [batch, 1]) and
scores a DNS name from byte statistics: digits and length push the score up, as in
a DGA name (`xjw8f2kq1093.com`), a short all-letter name stays low. Padding bytes
(0) add nothing, so the score is the same at any width of the bytes axis. The
manifest is format 5 and sealed, so verify_bundle accepts it as it accepts an export.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import onnx
from onnx import TensorProto, helper

from jenga_edge import __version__
from jenga_edge.contract.bundle_format import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    Manifest,
    Producer,
    Requires,
    SourceModel,
    TaskEntry,
    TensorSpec,
    encode_manifest,
    input_specs,
    seal,
)
from jenga_edge.contract.digest import sha256
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.schema import OOV_TOKEN, TEXT_SCHEMA_VERSION, Feature, FeatureSchema
from jenga_edge.contract.tasks import task_kind

OPSET = 17
THRESHOLD = 0.5


def dns_schema(events: EventModel | None = None, max_bytes: int = 64) -> FeatureSchema:
    return FeatureSchema(
        (
            Feature("qlen", "numeric"),
            Feature("rrtype", "categorical", categories=(OOV_TOKEN, "A", "AAAA", "TXT")),
            Feature("domain", "text", max_bytes=max_bytes, normalize="dns", truncate="tail", allow_missing=False),
        ),
        version=TEXT_SCHEMA_VERSION,
        events=events,
    )


def byte_stats_graph(bytes_axis: str | int = "bytes") -> onnx.ModelProto:
    """score = sigmoid(0.8 * digits + 0.05 * length - 3 + 0.1 * rrtype + 0.001 * qlen (0 if missing))."""
    f = TensorProto.FLOAT
    const = [
        helper.make_tensor("c48", TensorProto.UINT8, [], [48]),
        helper.make_tensor("c57", TensorProto.UINT8, [], [57]),
        helper.make_tensor("w_digit", f, [], [0.8]),
        helper.make_tensor("w_len", f, [], [0.05]),
        helper.make_tensor("w_cat", f, [], [0.1]),
        helper.make_tensor("w_num", f, [], [0.001]),
        helper.make_tensor("bias", f, [], [-3.0]),
        helper.make_tensor("zero", f, [], [0.0]),
        helper.make_tensor("axes12", TensorProto.INT64, [2], [1, 2]),
        helper.make_tensor("axes1", TensorProto.INT64, [1], [1]),
    ]
    n = helper.make_node
    nodes = [
        n("GreaterOrEqual", ["text_bytes", "c48"], ["ge"]),
        n("LessOrEqual", ["text_bytes", "c57"], ["le"]),
        n("And", ["ge", "le"], ["is_digit"]),
        n("Cast", ["is_digit"], ["digit_f"], to=f),
        n("ReduceSum", ["digit_f", "axes12"], ["digits"], keepdims=0),
        n("Cast", ["text_lengths"], ["len_f"], to=f),
        n("ReduceSum", ["len_f", "axes1"], ["length"], keepdims=0),
        n("Cast", ["categorical"], ["cat_f"], to=f),
        n("ReduceSum", ["cat_f", "axes1"], ["cat_sum"], keepdims=0),
        n("IsNaN", ["numeric"], ["nan"]),
        n("Where", ["nan", "zero", "numeric"], ["num_0"]),
        n("ReduceSum", ["num_0", "axes1"], ["num_sum"], keepdims=0),
        n("Mul", ["digits", "w_digit"], ["a"]),
        n("Mul", ["length", "w_len"], ["b"]),
        n("Mul", ["cat_sum", "w_cat"], ["c"]),
        n("Mul", ["num_sum", "w_num"], ["d"]),
        n("Sum", ["a", "b", "c", "d", "bias"], ["x"]),
        n("Sigmoid", ["x"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dns_byte_stats",
        [
            helper.make_tensor_value_info("numeric", f, ["batch", 1]),
            helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", 1]),
            helper.make_tensor_value_info("text_bytes", TensorProto.UINT8, ["batch", 1, bytes_axis]),
            helper.make_tensor_value_info("text_lengths", TensorProto.INT64, ["batch", 1]),
        ],
        [helper.make_tensor_value_info("score", f, ["batch"])],
        const,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_text_bundle(out: Path, schema: FeatureSchema | None = None, task: str = "dga") -> Path:
    """A verified-to-be bundle in `out`: dga.onnx (the byte statistics graph) and a sealed manifest."""
    schema = schema or dns_schema()
    out.mkdir(parents=True, exist_ok=True)
    graph = byte_stats_graph().SerializeToString()
    (out / f"{task}.onnx").write_bytes(graph)
    kind = task_kind("anomaly_detection")
    entry = TaskEntry(
        name=task,
        type=kind.name,
        mode="supervised",
        source="dns",
        file=f"{task}.onnx",
        sha256=sha256(graph).hexdigest(),
        opset=OPSET,
        size_bytes=len(graph),
        inputs=input_specs(schema),
        outputs=[msgspec.convert(o, TensorSpec) for o in kind.output_specs(2)],
        labels=["benign", "dga"],
        threshold=THRESHOLD,
        schema=schema,
        schema_sha256=schema.sha256,
    )
    manifest = Manifest(
        format=BUNDLE_FORMAT,
        format_version=BUNDLE_FORMAT_VERSION,
        bundle_id="",
        created="2026-12-02T00:00:00Z",
        project_name="text-test",
        producer=Producer(
            name="tests",
            version="0",
            torch="none",
            onnx=onnx.__version__,
            onnxruntime="",
            exporter="onnx.helper",
            opset=OPSET,
        ),
        source_model=SourceModel(path="hand-written", sha256="0" * 64, weights_sha256="0" * 64),
        requires=Requires(agent_min_version=__version__, onnxruntime_min_version="1.0", opset=OPSET),
        tasks=[entry],
    )
    (out / MANIFEST).write_bytes(encode_manifest(seal(manifest)))
    return out
