"""The bundle format: the one contract between jenga-export and the edge agent.

    BUNDLE_DIR/
      manifest.json           what is in the bundle and the sha256 of every graph
      <task>.onnx             one graph per task
      merged-<source>.onnx    optional: all tasks of one schema in one graph
      signature.json          optional: an Ed25519 signature of the bundle_id (contract/signature.py)

The manifest is these Structs, encoded as JSON: jenga-export builds them,
the agent decodes manifest.json into them, unknown keys refused, so the two
sides cannot drift apart silently. docs/bundle-format.md describes every field.

Version 5: a schema may hold text features (schema version 3); their graphs take two
more inputs, `text_bytes` uint8 [batch, t, L] and `text_lengths` int64 [batch, t]
(contract/schema.py, contract/text_input.py); L, the `bytes` axis, is free up to the
schema's text_width, so the agent passes only as many as a batch's longest text.
Version 4 bundles still load: they
hold no text.
Version 4: a task names its `learner` (network, or lightgbm: an ONNX-ML
TreeEnsemble graph, export/tree_onnx.py); version 3 bundles are refused with a
message to re-export (their id does not cover the new key).
Version 3: `bundle_id` is the sha256 of the canonical manifest (every key
but `bundle_id` itself: thresholds, labels, schemas, graph sha256s), so an
edited manifest no longer matches its id and is refused; a signature over the
id covers the whole bundle. Version 2 (jenga 0.2): every graph output carries
its `role` (see contract/tasks.py), and a merged graph lists its outputs per
task the same way. Version 1 and 2 bundles are refused with a message to
re-export.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .digest import sha256
from .errors import BundleError, SchemaError
from .schema import FeatureSchema
from .tasks import Role, TaskKind, task_kind
from .typed import Invalid, convert

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "jenga.bundle"
BUNDLE_FORMAT_VERSION = 5
READABLE_VERSIONS = (4, 5)  # 4: no text features (checked at decode)
LEARNERS = ("network", "lightgbm")


class _Struct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class TensorSpec(_Struct, kw_only=True, omit_defaults=True):
    """A graph input or output. Inputs list their `features`; outputs their `role`."""

    name: str
    dtype: str  # float32 | int64
    shape: list[Any]  # ["batch", 38]
    role: Role | None = None
    features: list[str] | None = None


class TaskEntry(_Struct, kw_only=True):
    """One task: its graph file, what goes in and out, and how to read it."""

    name: str
    type: str  # a task kind (contract/tasks.py)
    mode: str  # supervised | novelty | distance | fused
    source: str
    file: str
    sha256: str
    opset: int
    size_bytes: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str]
    threshold: float | None
    schema: FeatureSchema
    schema_sha256: str
    metrics: dict[str, Any] = {}
    parity: dict[str, Any] = {}
    # What computes the outputs: a head on the shared trunk (network) or a tree ensemble
    # (lightgbm, an ai.onnx.ml TreeEnsemble graph). The agent scores both alike.
    learner: str = "network"

    @property
    def kind(self) -> TaskKind:
        return task_kind(self.type)

    def __post_init__(self) -> None:
        try:
            task_kind(self.type)  # an unknown kind is refused at decode
        except SchemaError as exc:
            raise Invalid("type", str(exc)) from None
        if self.learner not in LEARNERS:
            raise Invalid("learner", f"{self.learner!r}: expected one of {', '.join(LEARNERS)}")
        if self.schema.sha256 != self.schema_sha256:
            raise Invalid("schema_sha256", "does not match the schema")
        check_inputs(self.inputs, self.schema)
        check_outputs(self.outputs, self.kind, "outputs")


def input_specs(schema: FeatureSchema) -> list[TensorSpec]:
    """The inputs every graph of a schema takes, in this order (what the agent feeds;
    check_inputs' rule): `numeric` and `categorical` always, `text_bytes` and
    `text_lengths` when the schema has text features."""
    text = [f.name for f in schema.text]
    specs = [
        TensorSpec(name=name, dtype=dtype, shape=["batch", len(feats)], features=[f.name for f in feats])
        for name, dtype, feats in (
            ("numeric", "float32", schema.numeric),
            ("categorical", "int64", schema.categorical),
        )
    ]
    if text:
        specs += [
            TensorSpec(name="text_bytes", dtype="uint8", shape=["batch", len(text), "bytes"], features=text),
            TensorSpec(name="text_lengths", dtype="int64", shape=["batch", len(text)], features=text),
        ]
    return specs


def check_inputs(inputs: list[TensorSpec], schema: FeatureSchema) -> None:
    """A task's inputs are exactly input_specs(schema): names, dtypes, a batch axis, one
    column per feature in schema order, and the text width (what the agent feeds)."""
    want = {s.name: s for s in input_specs(schema)}
    if sorted(i.name for i in inputs) != sorted(want):
        raise Invalid("inputs", f"names {', '.join(i.name for i in inputs) or 'none'}, expected {', '.join(want)}")
    for k, spec in enumerate(inputs):
        w = want[spec.name]
        if (spec.dtype, spec.shape, spec.features) != (w.dtype, w.shape, w.features):
            raise Invalid(
                f"inputs[{k}]",
                f"{spec.name} {spec.dtype} {spec.shape} {spec.features} is not the schema's: "
                f"{w.dtype} {w.shape} {w.features}",
            )


def check_outputs(outputs: list[TensorSpec], kind: TaskKind, key: str) -> None:
    """A task's outputs must be exactly its kind's: each role once, with its dtype (the
    agent reads scores by role: a missing, doubled or mistyped one cannot be scored)."""
    got = [f"{o.role or '<no role>'} {o.dtype}" for o in outputs]
    want = [f"{o.role} {o.dtype}" for o in kind.outputs]
    if sorted(got) != sorted(want):
        show = ", ".join(got) or "none"
        raise Invalid(key, f"(role, dtype) {show} are not those of task kind {kind.name} ({', '.join(want)})")


class MergedEntry(_Struct, kw_only=True):
    """Several tasks of one source in one graph: the trunk runs once for all of them."""

    file: str
    sha256: str
    source: str
    tasks: list[str]
    size_bytes: int
    outputs: dict[str, list[TensorSpec]]  # task -> its outputs (names "<task>.<role>")
    parity: dict[str, Any] = {}


class Producer(_Struct, kw_only=True):
    name: str
    version: str
    torch: str
    onnx: str
    onnxruntime: str
    exporter: str
    opset: int


class SourceModel(_Struct, kw_only=True):
    path: str
    sha256: str  # of the best_model's model.json
    weights_sha256: str
    best_epoch: int | None = None


class Requires(_Struct, kw_only=True):
    agent_min_version: str
    onnxruntime_min_version: str
    opset: int


class Manifest(_Struct, kw_only=True):
    format: str
    format_version: int
    bundle_id: str
    created: str
    project_name: str
    producer: Producer
    source_model: SourceModel
    requires: Requires
    tasks: list[TaskEntry]
    merged: list[MergedEntry] = []

    def __post_init__(self) -> None:
        if self.format_version < 5 and any(t.schema.text for t in self.tasks):
            raise Invalid("format_version", f"{self.format_version} bundles hold no text features; this one does")
        tasks = {t.name: t for t in self.tasks}
        if len(tasks) < len(self.tasks):
            raise Invalid("tasks", "a task name is listed twice")
        for i, m in enumerate(self.merged):
            if any(t not in tasks for t in m.tasks) or set(m.outputs) != set(m.tasks):
                raise Invalid(f"merged[{i}]", f"{m.file} names tasks it does not describe")
            for t in m.tasks:
                check_outputs(m.outputs[t], tasks[t].kind, f"merged[{i}].outputs.{t}")


def canonical_manifest(manifest: Manifest) -> bytes:
    """The bytes `bundle_id` is the sha256 of: the manifest as decoded, without `bundle_id`,
    as compact JSON (UTF-8, keys sorted at every level, numbers in their shortest exact
    form). Computed from the Structs the agent acts on, not from the file's bytes, so
    whitespace and key order do not matter but every value does."""
    data = msgspec.to_builtins(manifest)
    del data["bundle_id"]
    return msgspec.json.encode(data, order="sorted")


def manifest_digest(manifest: Manifest) -> str:
    """The bundle_id a manifest must carry: the hex sha256 of its canonical form."""
    return sha256(canonical_manifest(manifest)).hexdigest()


def seal(manifest: Manifest) -> Manifest:
    """The manifest with its bundle_id computed (what jenga-export writes)."""
    return msgspec.structs.replace(manifest, bundle_id=manifest_digest(manifest))


def encode_manifest(manifest: Manifest) -> bytes:
    """manifest.json's bytes (indented, a trailing newline)."""
    raw = msgspec.json.encode(manifest)
    return msgspec.json.format(raw, indent=2) + b"\n"


def decode_manifest(data: bytes, where: str) -> Manifest:
    """Check the format and version first (their errors say what to do), then decode strictly."""
    try:
        head = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(head, dict) or head.get("format") != BUNDLE_FORMAT:
        found = head.get("format") if isinstance(head, dict) else type(head).__name__
        raise BundleError(f"{where}: format is {found!r}, expected {BUNDLE_FORMAT!r}")
    version = head.get("format_version")
    if version not in READABLE_VERSIONS:
        hint = (
            _OLD_VERSIONS.get(version, "use a jenga-edge that reads it, or re-export")
            if isinstance(version, int)
            else "re-export"
        )
        reads = ", ".join(map(str, READABLE_VERSIONS))
        raise BundleError(f"{where}: format_version {version!r} is not supported (this agent reads {reads}); {hint}")
    manifest = convert(Manifest, head, where, error=BundleError)
    check_bundle_id(manifest, where)
    return manifest


_OLD_VERSIONS = {
    1: "it was written by jenga-export 0.1; re-export the model with this version",
    2: "it was written by jenga-export 0.2, whose bundle_id covers no threshold, label or schema; "
    "re-export the model with this version",
    3: "it was written before tasks named their learner; re-export the model with this version",
}


def check_bundle_id(manifest: Manifest, where: str) -> None:
    """The recorded bundle_id must be the digest of the manifest: any edit (a threshold,
    a label, a graph's sha256) changes the digest, so it no longer matches."""
    actual = manifest_digest(manifest)
    if manifest.bundle_id != actual:
        raise BundleError(
            f"{where}: bundle_id {manifest.bundle_id[:16]!r}… does not match the manifest's content "
            f"(sha256 {actual[:16]}…): the manifest was edited after export; refusing it"
        )
