"""export/tree_onnx.py: a LightGBM booster as an ONNX-ML TreeEnsemble graph, exactly.

Each booster is scored by onnxruntime and by its own predict on rows with what a gateway
sends: NaN, unseen category indices, zeros, float32 extremes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from export.tree_onnx import ML_DOMAIN, TreeExportError, booster_graph

lgb = pytest.importorskip("lightgbm")

N_NUM, N_CAT = 4, 2


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, N_NUM)).astype(np.float32)
    num[:, :3][rng.random((n, 3)) < 0.25] = np.nan  # column 3 has no NaN in training: missing_type None
    num[:, 2] = np.where(rng.random(n) < 0.3, 0.0, num[:, 2])  # zeros next to NaN
    cat = rng.integers(0, 12, size=(n, N_CAT))
    return num, cat


def x(num: np.ndarray, cat: np.ndarray) -> np.ndarray:
    return np.hstack([num.astype(np.float64), cat.astype(np.float64)])


def labels(num: np.ndarray, cat: np.ndarray) -> np.ndarray:
    return ((np.nan_to_num(num[:, 0], nan=1.0) > 0.3) ^ np.isin(cat[:, 0], [1, 4, 7, 9]) ^ (num[:, 3] > 0.5)).astype(
        int
    )


def probe_rows() -> tuple[np.ndarray, np.ndarray]:
    num, cat = data(400, seed=1)
    cat[:, 1] = np.random.default_rng(2).integers(0, 40, 400)  # indices training never saw
    num[0] = np.nan  # an all-NaN row
    num[1] = 0.0
    num[2], num[3] = 3.0e38, -3.0e38
    num[4:40, 3] = np.nan  # NaN where training had none
    return num, cat


def train(objective: dict, y: np.ndarray, num: np.ndarray, cat: np.ndarray, rounds: int = 25, **extra):
    params = {
        **objective,
        "verbosity": -1,
        "num_threads": 1,
        "num_leaves": 15,
        "min_data_per_group": 5,
        "cat_smooth": 1.0,
        **extra,
    }
    return lgb.train(params, lgb.Dataset(x(num, cat), y, categorical_feature=[N_NUM, N_NUM + 1]), rounds)


def session(booster, task_type: str) -> ort.InferenceSession:
    onx = booster_graph(booster.dump_model(), task_type, N_NUM, N_CAT, 18)
    assert {o.domain: o.version for o in onx.opset_import}[ML_DOMAIN] == 5
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def splits(booster) -> dict[str, int]:
    seen = {"trees": 0, "categorical": 0, "nan_default": 0, "missing_none": 0}

    def walk(node):
        if "leaf_value" in node:
            return
        seen["categorical"] += node["decision_type"] == "=="
        seen["nan_default"] += node["missing_type"] == "NaN"
        seen["missing_none"] += node["decision_type"] == "<=" and node["missing_type"] == "None"
        walk(node["left_child"])
        walk(node["right_child"])

    for t in booster.dump_model()["tree_info"]:
        seen["trees"] += 1
        walk(t["tree_structure"])
    return seen


def test_a_binary_booster_with_nan_and_categorical_splits_is_exact():
    num, cat = data(3000)
    booster = train({"objective": "binary"}, labels(num, cat), num, cat)
    seen = splits(booster)
    assert seen["trees"] == 25 and seen["categorical"] and seen["nan_default"] and seen["missing_none"]
    pn, pc = probe_rows()
    (got,) = session(booster, "anomaly_detection").run(["score"], {"numeric": pn, "categorical": pc})
    assert got.shape == (400,) and got.dtype == np.float32
    np.testing.assert_allclose(got, booster.predict(x(pn, pc)), atol=1e-5, rtol=0)


def test_a_multiclass_booster_is_exact_and_labels_its_argmax():
    num, cat = data(3000)
    y = (labels(num, cat) + cat[:, 1] % 3) % 3
    booster = train({"objective": "multiclass", "num_class": 3}, y, num, cat, rounds=15)
    assert splits(booster)["trees"] == 45
    pn, pc = probe_rows()
    probs, label = session(booster, "classification").run(None, {"numeric": pn, "categorical": pc})
    ref = booster.predict(x(pn, pc))
    np.testing.assert_allclose(probs, ref, atol=1e-5, rtol=0)
    assert (label == ref.argmax(1)).all()


def test_a_sigmoid_scale_and_a_single_leaf_tree_are_kept():
    num, cat = data(600)
    y = labels(num, cat)
    booster = train({"objective": "binary", "sigmoid": 0.5}, y, num, cat, rounds=5)
    # min_gain_to_split too high for any split: every tree is one leaf (the average).
    stump = train({"objective": "binary"}, y, num, cat, rounds=3, min_gain_to_split=1e9)
    pn, pc = probe_rows()
    for b in (booster, stump):
        (got,) = session(b, "anomaly_detection").run(["score"], {"numeric": pn, "categorical": pc})
        np.testing.assert_allclose(got, b.predict(x(pn, pc)), atol=1e-5, rtol=0)


def test_zero_as_missing_and_a_wrong_task_kind_are_refused():
    num, cat = data(1500)
    zero = train({"objective": "binary"}, labels(num, cat), num, cat, rounds=3, zero_as_missing=True)
    with pytest.raises(TreeExportError, match="zero as missing"):
        booster_graph(zero.dump_model(), "anomaly_detection", N_NUM, N_CAT, 18)
    multi = train({"objective": "multiclass", "num_class": 3}, cat[:, 0] % 3, num, cat, rounds=2)
    with pytest.raises(TreeExportError, match="anomaly_detection task needs a binary"):
        booster_graph(multi.dump_model(), "anomaly_detection", N_NUM, N_CAT, 18)
