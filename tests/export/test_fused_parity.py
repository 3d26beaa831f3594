"""The export gate on a fused task (min_p over a supervised and a distance head).

A fused score passes two piecewise-linear CDFs and a log: where normal rows crowd,
their segments are steep, and the float32 difference between torch's and
onnxruntime's trunk (a few 1e-6, two GEMM kernels) comes out of the score larger
than atol (agent_bench's 2-epoch NSL-KDD export: 2.0e-5). The gate judges that score
against atol plus what its calibration makes of an atol-sized member error, and
still catches a graph whose calibration differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from export.bundle_writer import ParityError, _check_parity
from export.graphs import TaskGraph
from export.onnx_export import export_graph
from export.opsets import DEFAULT_OPSET
from tests.trainer.test_model import schema
from trainer.config import ModelConfig
from trainer.model import MultiTaskModel, TaskSpec


def steep_fused_model(rows: int = 2000) -> tuple[MultiTaskModel, dict]:
    """An untrained (seeded) model whose fused head is calibrated on normal rows crowded
    into a tenth of the rows' spread (as many identical flows crowd a real data set): the
    calibration bins stack at their minimum width, a steep CDF around the rows."""
    torch.manual_seed(0)
    specs = [
        TaskSpec("threat", "anomaly_detection", "supervised", "s", 2),
        TaskSpec("far", "anomaly_detection", "distance", "s", 2),
        TaskSpec("detector", "anomaly_detection", "fused", "s", 2, members=("threat", "far"), combination="min_p"),
    ]
    model = MultiTaskModel({"s": schema()}, specs, ModelConfig(hidden_sizes=[256, 128])).eval()
    rng = np.random.default_rng(0)
    num = np.stack(
        [rng.normal(1, 2, rows), rng.lognormal(0, 1, rows), rng.uniform(0, 40, rows), rng.integers(0, 2, rows)], axis=1
    ).astype(np.float32)
    cat = rng.integers(0, 3, (rows, 1)).astype(np.int64)
    with torch.no_grad():
        n, c = torch.from_numpy(num), torch.from_numpy(cat)
        h = model.shared("s", n, c)
        model.distance_head("far").fit(h)
        model.distance_head("far").calibrate(model.distance_head("far")(h))
        z = model.head_outputs("detector", h, n, c)["members"]
        middle = z.median(dim=0).values
        model.fused_head("detector").calibrate(middle + 0.1 * (z - middle))
    return model, {"validation": (num, cat)}


@pytest.fixture(scope="module")
def steep(tmp_path_factory) -> tuple[MultiTaskModel, dict, TaskGraph, Path]:
    model, cases = steep_fused_model()
    graph = TaskGraph(model, "detector")
    path = tmp_path_factory.mktemp("fused") / "detector.onnx"
    export_graph(graph, schema(), ["score"], path, DEFAULT_OPSET)
    return model, cases, graph, path


def test_float32_rounding_through_a_steep_calibration_passes_the_gate(steep):
    _model, cases, graph, path = steep
    parity = _check_parity(graph, path, ["score"], cases, 1e-5, "detector")
    tolerance = parity["tolerance"]["score"]
    assert parity["score"] > 1e-5  # the rounding the old gate refused ...
    assert tolerance["max_diff_over_tolerance"] <= 1  # ... is within what an atol-sized member error moves
    assert tolerance["max"] < 1e-2 and "member statistic" in tolerance["basis"]


def test_a_fused_graph_with_another_calibration_still_fails(steep):
    model, cases, graph, path = steep
    head = model.fused_head("detector")
    saved = head.cal_left.clone()
    try:
        head.cal_left += 1e-3  # torch now scores a calibration the graph does not hold
        with pytest.raises(ParityError, match="x its calibrated tolerance"):
            _check_parity(graph, path, ["score"], cases, 1e-5, "detector")
    finally:
        head.cal_left.copy_(saved)


def steep_distance_model(rows: int = 2000) -> tuple[MultiTaskModel, dict]:
    """A distance task (no fused task) whose calibration is fitted on distances crowded into
    a tenth of their spread: its CDF is steep where the rows lie (the lab corpus's SOC model
    with a distance task gave 2.2e-5 against torch, and its export was refused)."""
    torch.manual_seed(0)
    specs = [
        TaskSpec("threat", "anomaly_detection", "supervised", "s", 2),
        TaskSpec("far", "anomaly_detection", "distance", "s", 2),
    ]
    model = MultiTaskModel({"s": schema()}, specs, ModelConfig(hidden_sizes=[256, 128])).eval()
    rng = np.random.default_rng(1)
    num = np.stack(
        [rng.normal(1, 2, rows), rng.lognormal(0, 1, rows), rng.uniform(0, 40, rows), rng.integers(0, 2, rows)], axis=1
    ).astype(np.float32)
    cat = rng.integers(0, 3, (rows, 1)).astype(np.int64)
    with torch.no_grad():
        h = model.shared("s", torch.from_numpy(num), torch.from_numpy(cat))
        head = model.distance_head("far")
        head.fit(h)
        d = head(h)
        middle = d.median()
        head.calibrate(middle * torch.exp(0.01 * torch.log(d / middle)))  # log distances crowded 100-fold
    return model, {"validation": (num, cat)}


@pytest.fixture(scope="module")
def steep_distance(tmp_path_factory) -> tuple[MultiTaskModel, dict, TaskGraph, Path]:
    model, cases = steep_distance_model()
    graph = TaskGraph(model, "far")
    path = tmp_path_factory.mktemp("distance") / "far.onnx"
    export_graph(graph, schema(), ["score"], path, DEFAULT_OPSET)
    return model, cases, graph, path


def test_a_distance_score_through_a_steep_calibration_passes_the_gate(steep_distance):
    _model, cases, graph, path = steep_distance
    parity = _check_parity(graph, path, ["score"], cases, 1e-5, "far")
    tolerance = parity["tolerance"]["score"]
    assert parity["score"] > 1e-5  # the rounding the old gate refused ...
    assert tolerance["max_diff_over_tolerance"] <= 1  # ... is within what an atol-sized move of log d gives


def test_a_distance_graph_with_another_calibration_still_fails(steep_distance):
    model, cases, graph, path = steep_distance
    head = model.distance_head("far")
    saved = head.cal_left.clone()
    try:
        head.cal_left += 1e-2
        with pytest.raises(ParityError, match="x its calibrated tolerance"):
            _check_parity(graph, path, ["score"], cases, 1e-5, "far")
    finally:
        head.cal_left.copy_(saved)
