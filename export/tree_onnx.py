"""A LightGBM booster -> an ONNX-ML TreeEnsemble graph with the bundle's inputs and outputs.

Written from the specs (the ai.onnx.ml TreeEnsemble operator, opset 5, and LightGBM's
`dump_model()` JSON), so the edge runs a tree task with onnxruntime alone:

  numeric float32 [batch, n], categorical int64 [batch, m]
    -> Cast to double, Concat: the booster's own feature order (numeric, then categorical)
    -> TreeEnsemble (SUM of leaf values per target: the raw score)
    -> binary: Sigmoid -> `score` [batch];  multiclass: Softmax -> `probabilities`, ArgMax -> `label`

Exactness, decision by decision (LightGBM's NumericalDecision / CategoricalDecision):
  * `<=` splits become BRANCH_LEQ on doubles: float32 inputs widen exactly, and the
    thresholds are the dump's doubles, so no comparison flips.
  * missing values: missing_type NaN sends NaN the `default_left` way; missing_type None
    scores NaN as 0.0, i.e. the way `0 <= threshold` goes. Both are
    nodes_missing_value_tracks_true. missing_type Zero (zero_as_missing) would also send
    zeros the default way; the trainer never sets it and it is refused here.
  * `==` (categorical) splits become BRANCH_MEMBER over the dump's category set; categorical
    inputs are vocabulary indices (never negative or NaN), compared as LightGBM's ints.
  * a single-leaf tree gets one always-true node, since a tree's root must be a node.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jenga_edge.contract.errors import JengaError
from jenga_edge.contract.tasks import task_kind

from .graphs import INPUT_NAMES

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 5  # TreeEnsemble (BRANCH_MEMBER for categorical sets); onnxruntime >= 1.20
ORT_MIN_FOR_ML_OPSET = "1.20"
_LEQ, _MEMBER = 0, 6  # TreeEnsemble nodes_modes
_SUM, _NONE = 1, 0  # aggregate_function, post_transform


class TreeExportError(JengaError):
    """A booster this converter cannot map exactly."""

    exit_code = 1


class _Trees:
    """The TreeEnsemble's flat node and leaf arrays, appended tree by tree."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.feature: list[int] = []
        self.mode: list[int] = []
        self.split: list[float] = []
        self.true_id: list[int] = []
        self.true_leaf: list[int] = []
        self.false_id: list[int] = []
        self.false_leaf: list[int] = []
        self.missing_true: list[int] = []
        self.members: list[float] = []
        self.leaf_target: list[int] = []
        self.leaf_weight: list[float] = []

    def add_tree(self, root: dict, target: int) -> None:
        if "leaf_value" in root:  # no split: one node whose both ways reach the leaf
            leaf = self._leaf(root, target)
            self.roots.append(self._node(0, _LEQ, 0.0, False))
            self._link(self.roots[-1], (leaf, True), (leaf, True))
            return
        self.roots.append(self._walk(root, target)[0])

    def _walk(self, node: dict, target: int) -> tuple[int, bool]:
        """(index, is_leaf) of `node` once appended, children first linked."""
        if "leaf_value" in node:
            return self._leaf(node, target), True
        mode, split, members, missing_true = _decision(node)
        me = self._node(int(node["split_feature"]), mode, split, missing_true)
        if mode == _MEMBER:
            if self.members:
                self.members.append(math.nan)  # sets are NaN-delimited, in node order
            self.members += members
        left, right = self._walk(node["left_child"], target), self._walk(node["right_child"], target)
        self._link(me, left, right)
        return me, False

    def _node(self, feature: int, mode: int, split: float, missing_true: bool) -> int:
        self.feature.append(feature)
        self.mode.append(mode)
        self.split.append(split)
        self.missing_true.append(int(missing_true))
        for arr in (self.true_id, self.true_leaf, self.false_id, self.false_leaf):
            arr.append(0)
        return len(self.feature) - 1

    def _link(self, me: int, true: tuple[int, bool], false: tuple[int, bool]) -> None:
        self.true_id[me], self.true_leaf[me] = true[0], int(true[1])
        self.false_id[me], self.false_leaf[me] = false[0], int(false[1])

    def _leaf(self, node: dict, target: int) -> int:
        self.leaf_target.append(target)
        self.leaf_weight.append(float(node["leaf_value"]))
        return len(self.leaf_weight) - 1


def _decision(node: dict) -> tuple[int, float, list[float], bool]:
    """(mode, split, member set, NaN goes the true way) of one split, as LightGBM decides it."""
    missing = node.get("missing_type", "None")
    if missing == "Zero":
        raise TreeExportError(
            "the booster treats zero as missing (zero_as_missing); retrain without it to export exactly"
        )
    if node["decision_type"] == "==":
        members = [float(c) for c in str(node["threshold"]).split("||")]
        # A NaN category is LightGBM's category 0 unless missing_type is NaN (then: right).
        return _MEMBER, 0.0, members, missing != "NaN" and 0.0 in members
    if node["decision_type"] != "<=":
        raise TreeExportError(f"unknown LightGBM decision_type {node['decision_type']!r}")
    threshold = float(node["threshold"])
    missing_true = bool(node["default_left"]) if missing == "NaN" else threshold >= 0.0
    return _LEQ, threshold, [], missing_true


def _ensemble_node(trees: _Trees, n_targets: int) -> onnx.NodeProto:
    attrs: dict[str, Any] = {
        "aggregate_function": _SUM,
        "post_transform": _NONE,
        "n_targets": n_targets,
        "tree_roots": trees.roots,
        "nodes_featureids": trees.feature,
        "nodes_modes": numpy_helper.from_array(np.array(trees.mode, np.uint8), "nodes_modes"),
        "nodes_splits": numpy_helper.from_array(np.array(trees.split, np.float64), "nodes_splits"),
        "nodes_truenodeids": trees.true_id,
        "nodes_trueleafs": trees.true_leaf,
        "nodes_falsenodeids": trees.false_id,
        "nodes_falseleafs": trees.false_leaf,
        "nodes_missing_value_tracks_true": trees.missing_true,
        "leaf_targetids": trees.leaf_target,
        "leaf_weights": numpy_helper.from_array(np.array(trees.leaf_weight, np.float64), "leaf_weights"),
    }
    if trees.members:
        attrs["membership_values"] = numpy_helper.from_array(np.array(trees.members, np.float64), "membership_values")
    return helper.make_node("TreeEnsemble", ["X"], ["raw"], domain=ML_DOMAIN, **attrs)


def _sigmoid_scale(objective: str) -> float:
    """LightGBM's binary link is 1 / (1 + exp(-sigmoid * raw)); `sigmoid` is 1 unless set."""
    for part in objective.split()[1:]:
        key, _, value = part.partition(":")
        if key == "sigmoid":
            return float(value)
    return 1.0


def _features(n_numeric: int, n_categorical: int) -> list[onnx.NodeProto]:
    """X double [batch, n + m]: the booster's columns; a zero-width input is left out."""
    nodes, parts = [], []
    for name, width in zip(INPUT_NAMES, (n_numeric, n_categorical)):
        if width:
            nodes.append(helper.make_node("Cast", [name], [f"{name}_f64"], to=TensorProto.DOUBLE))
            parts.append(f"{name}_f64")
    nodes.append(helper.make_node("Concat", parts, ["X"], axis=1))
    return nodes


def _binary_outputs(objective: str, outputs: list[str]) -> list[onnx.NodeProto]:
    nodes, raw = [], "raw"
    scale = _sigmoid_scale(objective)
    if scale != 1.0:
        nodes.append(helper.make_node("Constant", [], ["sigmoid_scale"], value_float=scale))
        nodes.append(helper.make_node("Cast", ["sigmoid_scale"], ["sigmoid_scale_f64"], to=TensorProto.DOUBLE))
        nodes.append(helper.make_node("Mul", ["raw", "sigmoid_scale_f64"], ["raw_scaled"]))
        raw = "raw_scaled"
    nodes += [
        helper.make_node("Sigmoid", [raw], ["p_f64"]),
        helper.make_node("Cast", ["p_f64"], ["p"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["flat"], value_ints=[-1]),
        helper.make_node("Reshape", ["p", "flat"], [outputs[0]]),
    ]
    return nodes


def _multiclass_outputs(outputs: list[str]) -> list[onnx.NodeProto]:
    return [
        helper.make_node("Softmax", ["raw"], ["p_f64"], axis=1),
        helper.make_node("Cast", ["p_f64"], [outputs[0]], to=TensorProto.FLOAT),
        helper.make_node("ArgMax", [outputs[0]], [outputs[1]], axis=1, keepdims=0),
    ]


def booster_graph(
    dump: dict, task_type: str, n_numeric: int, n_categorical: int, opset: int, name: str = "tree"
) -> onnx.ModelProto:
    """The checked graph of a booster's `dump_model()` for a task of `task_type`."""
    kind = task_kind(task_type)
    n_targets = int(dump.get("num_tree_per_iteration", 1))
    objective = str(dump.get("objective", ""))
    if dump.get("average_output"):
        raise TreeExportError("random-forest boosters (average_output) are not exported; use gbdt")
    if int(dump.get("max_feature_idx", -1)) >= n_numeric + n_categorical:
        raise TreeExportError(
            f"the booster reads feature {dump['max_feature_idx']}, the schema has {n_numeric + n_categorical}"
        )
    if (kind.binary and not objective.startswith("binary")) or (not kind.binary and n_targets < 2):
        raise TreeExportError(f"a {task_type} task needs a binary/multiclass booster, got objective {objective!r}")
    trees = _Trees()
    for i, info in enumerate(dump["tree_info"]):
        trees.add_tree(info["tree_structure"], i % n_targets)
    outputs = kind.output_names()
    nodes = [*_features(n_numeric, n_categorical), _ensemble_node(trees, n_targets)]
    nodes += _binary_outputs(objective, outputs) if kind.binary else _multiclass_outputs(outputs)
    inputs = [
        helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", n_numeric]),
        helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", n_categorical]),
    ]
    graph = helper.make_graph(nodes, name, inputs, _output_infos(kind.binary, outputs, n_targets))
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(ML_DOMAIN, ML_OPSET)]
    )
    model.ir_version = 10  # onnxruntime >= 1.20 reads IR 10
    onnx.checker.check_model(model, full_check=True)
    return model


def _output_infos(binary: bool, outputs: list[str], n_classes: int) -> list[onnx.ValueInfoProto]:
    if binary:
        return [helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, ["batch"])]
    return [
        helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, ["batch", n_classes]),
        helper.make_tensor_value_info(outputs[1], TensorProto.INT64, ["batch"]),
    ]


class BoosterReference:
    """The booster's own predict with the parity check's calling convention (torch tensors in
    and out, the task's outputs in order): the reference a tree graph is held to."""

    def __init__(self, tree: Any):
        self.tree = tree

    def __call__(self, numeric: Any, categorical: Any) -> Any:
        import torch  # the exporter's environment has it; this module stays importable without

        p = self.tree.predict(numeric.numpy(), categorical.numpy())
        if p.ndim == 1:
            return torch.from_numpy(p)
        return torch.from_numpy(p), torch.from_numpy(np.argmax(p, axis=1).astype(np.int64))
