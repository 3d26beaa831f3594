"""Tests for trainer/refinery.py: column selection, kind inference and schema fitting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jenga_edge.contract.errors import DataError
from jenga_edge.contract.schema import OOV_INDEX, OOV_TOKEN, FeatureSchema
from trainer.config import MissingPolicy, SourceConfig, config_from_dict
from trainer.dataset import prepare
from trainer.encodings import ENCODINGS
from trainer.refinery import fit_schema, infer_kind, select_columns


def src(**kw) -> SourceConfig:
    kw.setdefault("path", "unused.jsonl")
    return SourceConfig(**kw)


def fit(rows, columns=None, **kw):
    cfg = src(**kw)
    columns = columns or list(rows[0])
    return fit_schema(rows, columns, cfg)


def feature(schema, name):
    return next(f for f in schema.features if f.name == name)


# --- infer_kind -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,kind",
    [
        ([1, 2, 3.5], "numeric"),
        ([1, None, 7], "numeric"),
        (["1.5", "2", 3], "numeric"),
        ([None, None], "numeric"),
        ([], "numeric"),
        ([True, False, None], "boolean"),
        (["true", "False", " TRUE "], "boolean"),
        # 0/1 numbers stay numeric: a later value of 3 must not become a type error
        ([0, 1, 1, 0], "numeric"),
        ([0.0, 1.0, None], "numeric"),
        (["0", "1"], "numeric"),
        ([0, 1, 2], "numeric"),
        (["tcp", "udp"], "categorical"),
        ([1, 2, "x"], "categorical"),
        (["yes", "no"], "categorical"),
        ([{"a": 1}], "categorical"),
    ],
)
def test_infer_kind(values, kind):
    assert infer_kind(values) == kind


def test_infer_kind_with_non_finite_values():
    assert infer_kind([True, False, None]) == "boolean"
    assert infer_kind([0, 1, math.nan]) == "numeric"
    assert infer_kind([math.nan]) == "numeric"


# --- kinds ------------------------------------------------------------------------------


def test_fit_infers_kinds():
    rows = [{"n": i, "b": i % 2 == 0, "c": "ab"[i % 2]} for i in range(10)]
    s = fit(rows)
    assert [(f.name, f.kind) for f in s.features] == [("n", "numeric"), ("b", "boolean"), ("c", "categorical")]


def test_kinds_override_numeric_port_as_categorical():
    rows = [{"port": p} for p in [22, 22, 443, 443, 443, 80, 80]]
    s = fit(rows, kinds={"port": "categorical"}, min_category_count=1)
    f = feature(s, "port")
    assert f.kind == "categorical"
    assert f.categories == (OOV_TOKEN, "22", "443", "80")
    _, cat = s.vectorize([{"port": 443}, {"port": "22"}, {"port": 80.0}, {"port": 8080}])
    assert cat[:, 0].tolist() == [2, 1, 3, OOV_INDEX]


def test_kinds_override_boolean_from_strings():
    rows = [{"f": v} for v in ["yes", "no", "yes", "yes"]]
    f = feature(fit(rows, kinds={"f": "boolean"}), "f")
    assert f.kind == "boolean" and f.encoding == "none" and f.impute == 1.0


def test_kinds_override_numeric_on_strings_names_column_and_row():
    rows = [{"x": 1}, {"x": 2}, {"x": "oops"}]
    with pytest.raises(DataError) as exc:
        fit(rows, kinds={"x": "numeric"})
    msg = str(exc.value)
    assert "column 'x', training row 2" in msg
    assert "kinds.x: categorical" in msg


# --- categorical vocabularies -----------------------------------------------------------


def test_vocabulary_unk_first_then_sorted():
    rows = [{"c": v} for v in ["udp", "tcp", "tcp", "udp", "icmp", "icmp", "tcp"]]
    f = feature(fit(rows), "c")
    assert f.categories == (OOV_TOKEN, "icmp", "tcp", "udp")
    assert f.categories[OOV_INDEX] == OOV_TOKEN


def test_min_category_count_drops_rare_values():
    rows = [{"c": v} for v in ["a"] * 5 + ["b"] * 3 + ["c"] * 1 + [None] * 4]
    assert feature(fit(rows), "c").categories == (OOV_TOKEN, "a", "b")  # default 2
    assert feature(fit(rows, min_category_count=4), "c").categories == (OOV_TOKEN, "a")
    assert feature(fit(rows, min_category_count=1), "c").categories == (OOV_TOKEN, "a", "b", "c")


def test_max_categories_keeps_most_frequent():
    rows = [{"c": v} for v in ["d"] * 5 + ["a"] * 2 + ["c"] * 4 + ["b"] * 3]
    f = feature(fit(rows, max_categories=2), "c")
    assert f.categories == (OOV_TOKEN, "c", "d")


def test_max_categories_ties_broken_by_value():
    rows = [{"c": v} for v in ["z", "z", "y", "y", "x", "x"]]
    assert feature(fit(rows, max_categories=2), "c").categories == (OOV_TOKEN, "x", "y")


def test_number_forms_share_one_category():
    rows = [{"c": v} for v in [22, 22.0, "22", "ssh", "ssh"]]
    f = feature(fit(rows, kinds={"c": "categorical"}), "c")
    assert f.categories == (OOV_TOKEN, "22", "ssh")


def test_oov_for_unseen_and_rare_values():
    rows = [{"c": v} for v in ["a", "a", "b", "b", "rare"]]
    s = fit(rows)
    _, cat = s.vectorize([{"c": "a"}, {"c": "b"}, {"c": "rare"}, {"c": "never"}, {}], strict=False)
    assert cat[:, 0].tolist() == [1, 2, OOV_INDEX, OOV_INDEX, OOV_INDEX]


def test_all_rare_leaves_only_unk():
    rows = [{"c": v} for v in "abcdef"]
    assert feature(fit(rows), "c").categories == (OOV_TOKEN,)


def test_categorical_allow_missing_from_policy():
    rows = [{"c": "a"}, {"c": "a"}, {"n": 1, "c": "a"}]
    s = fit(rows, columns=["c"], missing=MissingPolicy(allow_missing_at_edge=False))
    assert feature(s, "c").allow_missing is False


# --- numeric encodings ------------------------------------------------------------------


def normalish(n=200, seed=0):
    return np.random.default_rng(seed).normal(50.0, 5.0, n)


def heavy(n=200):
    return np.array([1.0] * (n - 10) + [1e6] * 10)


def test_standard_encoding_stats():
    x = normalish()
    f = feature(fit([{"x": float(v)} for v in x], encoding="standard"), "x")
    assert f.encoding == "standard"
    assert f.mean == pytest.approx(x.mean())
    assert f.std == pytest.approx(x.std())
    assert f.impute == pytest.approx(np.median(x))


def test_log1p_encoding_stats_in_log_units():
    x = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
    f = feature(fit([{"x": float(v)} for v in x], encoding="log1p"), "x")
    t = np.log1p(x)
    assert f.encoding == "log1p"
    assert f.mean == pytest.approx(t.mean()) and f.std == pytest.approx(t.std())
    assert f.impute == pytest.approx(10.0)  # raw units


def test_none_encoding_identity_params():
    f = feature(fit([{"x": float(v)} for v in normalish()], encoding="none"), "x")
    assert f.encoding == "none" and f.mean == 0.0 and f.std == 1.0


def test_auto_picks_log1p_for_heavy_tail():
    f = feature(fit([{"x": float(v)} for v in heavy()]), "x")
    assert f.encoding == "log1p"


def test_auto_picks_standard_otherwise():
    assert feature(fit([{"x": float(v)} for v in normalish()]), "x").encoding == "standard"


def test_auto_negative_heavy_tail_is_standard():
    x = np.concatenate([heavy(), [-1.0]])
    assert feature(fit([{"x": float(v)} for v in x]), "x").encoding == "standard"


def test_per_column_encodings_override_default():
    rows = [{"a": float(v), "b": float(v)} for v in normalish()]
    s = fit(rows, encoding="none", encodings={"b": "piecewise_linear"})
    assert feature(s, "a").encoding == "none"
    assert feature(s, "b").encoding == "piecewise_linear"


def test_piecewise_edges_from_quantiles():
    x = normalish(101)
    f = feature(fit([{"x": float(v)} for v in x], encoding="piecewise_linear", piecewise_bins=4), "x")
    assert f.encoding == "piecewise_linear"
    expected = np.quantile(x, np.linspace(0, 1, 5))
    assert f.edges == pytest.approx(tuple(expected))
    assert all(b > a for a, b in zip(f.edges, f.edges[1:]))
    assert f.edges[0] == pytest.approx(x.min()) and f.edges[-1] == pytest.approx(x.max())
    assert ENCODINGS[f.encoding].width(f) == 4


def test_piecewise_duplicate_quantiles_collapse():
    x = [0.0] * 50 + [1.0] * 3 + [2.0] * 2
    f = feature(fit([{"x": v} for v in x], encoding="piecewise_linear", piecewise_bins=8), "x")
    assert len(f.edges) >= 2
    assert all(b > a for a, b in zip(f.edges, f.edges[1:]))
    assert len(f.edges) <= 9


@pytest.mark.parametrize("encoding", ["piecewise_linear", "standard", "log1p", "auto"])
def test_constant_column_falls_back(encoding):
    f = feature(fit([{"x": 7.0} for _ in range(20)], encoding=encoding), "x")
    assert f.encoding in ("standard", "log1p")
    if encoding == "piecewise_linear":
        assert f.encoding == "standard" and f.edges == ()
    assert f.std == 1.0
    f.check()


def test_all_missing_column():
    f = feature(fit([{"x": None, "y": 1}, {"x": None, "y": 2}], columns=["x"]), "x")
    assert f.kind == "numeric" and f.encoding == "none" and f.impute == 0.0


def test_non_finite_training_values_ignored():
    rows = [{"x": v} for v in [1.0, 2.0, 3.0, math.nan, math.inf]]
    f = feature(fit(rows, encoding="standard"), "x")
    assert f.mean == pytest.approx(2.0) and f.impute == pytest.approx(2.0)


def test_boolean_column_with_nan_fits():
    rows = [{"b": v} for v in [True, False, True, math.nan]]
    f = feature(fit(rows), "b")
    assert f.kind == "boolean" and f.impute == 1.0


def test_zero_one_column_accepts_other_numbers_later():
    # NSL-KDD's wrong_fragment: 0/1 in the training rows, 3 in a held-out attack type.
    f = feature(fit([{"w": v} for v in [0, 1, 0, 1]]), "w")
    assert f.kind == "numeric"
    num, _ = FeatureSchema((f,)).vectorize([{"w": 3}], strict=True)
    assert num[0, 0] == 3.0


# --- missing policy ---------------------------------------------------------------------


@pytest.mark.parametrize("policy,expected", [("median", 2.5), ("mean", 26.5), ("zero", 0.0)])
def test_missing_policy(policy, expected):
    rows = [{"x": v} for v in [1.0, 2.0, 3.0, 100.0, None]]
    f = feature(fit(rows, encoding="standard", missing=MissingPolicy(numeric=policy)), "x")
    assert f.impute == pytest.approx(expected)
    assert f.mean == pytest.approx(26.5)  # scaling stats ignore the missing row either way


def test_boolean_impute_is_rounded():
    rows = [{"b": v} for v in [True, True, False, None]]
    f = feature(fit(rows, missing=MissingPolicy(numeric="mean")), "b")
    assert f.impute == 1.0
    f = feature(fit([{"b": v} for v in [True, False, False]]), "b")
    assert f.impute == 0.0


def test_allow_missing_at_edge_propagates():
    rows = [{"x": float(v), "b": True} for v in range(5)]
    s = fit(rows, missing=MissingPolicy(allow_missing_at_edge=False))
    assert all(not f.allow_missing for f in s.features)


# --- select_columns ---------------------------------------------------------------------

ROWS = [{"id": 1, "a": 1.0, "b": "x", "label": "ok", "attack_type": "none", "junk": 0, "c": 2}]


def test_auto_columns_exclude_labels_ids_ignores_groups():
    cfg = src(id_column="id", ignore=["junk"])
    cols = select_columns(ROWS, cfg, reserved={"label", "attack_type"})
    assert cols == ["a", "b", "c"]


def test_auto_columns_keep_first_seen_order_across_rows():
    rows = [{"a": 1, "label": 0}, {"z": 2, "a": 1, "label": 1}, {"m": 3}]
    assert select_columns(rows, src(), reserved={"label"}) == ["a", "z", "m"]


def test_explicit_features():
    cfg = src(features=["c", "a"])
    assert select_columns(ROWS, cfg, reserved={"label"}) == ["c", "a"]


def test_unknown_explicit_feature():
    with pytest.raises(DataError) as exc:
        select_columns(ROWS, src(features=["a", "colour"]), reserved=set())
    msg = str(exc.value)
    assert "['colour'] are not columns of the data" in msg
    assert "columns: id, a, b, label" in msg


def test_no_columns_left():
    with pytest.raises(DataError, match="no feature columns left"):
        select_columns([{"label": 1, "id": 2}], src(id_column="id"), reserved={"label"})


# --- fitted on the training split only (through dataset.prepare) ----------------------


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _cfg(path, **source):
    return config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path), **source}},
            "training": {"validation_fraction": 0.25, "seed": 3},
            "tasks": [
                {
                    "name": "t",
                    "type": "anomaly_detection",
                    "source": "s",
                    "label": {"column": "label"},
                    "group_column": "grp",
                }
            ],
        },
        check_files=True,
    )


def test_stats_come_from_training_rows_only(tmp_path):
    n = 80
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"x": 0.0, "c": "a", "pw": 0.0, "label": i % 2, "grp": "g", "rid": i} for i in range(n)])
    cfg = _cfg(path, encodings={"x": "standard", "pw": "piecewise_linear"}, piecewise_bins=4, id_column="rid")
    sources, _ = prepare(cfg)
    train, val = sources["s"].train_idx, sources["s"].val_idx
    assert len(val) == 20 and len(train) == 60

    rng = np.random.default_rng(0)
    train_x = {int(i): float(v) for i, v in zip(train, rng.normal(10, 2, len(train)))}
    rows = []
    for i in range(n):
        if i in train_x:
            rows.append({"x": train_x[i], "c": "ab"[i % 2], "pw": train_x[i], "label": i % 2, "grp": "g", "rid": i})
        else:  # validation rows: wildly different values and categories
            rows.append({"x": 1e9, "c": "evil", "pw": -1e9, "label": i % 2, "grp": "g", "rid": i})
    _write_jsonl(path, rows)
    sources, _ = prepare(cfg)
    sd = sources["s"]
    np.testing.assert_array_equal(sd.train_idx, train)
    schema = sd.schema
    assert schema.names == ["x", "c", "pw"]
    tx = np.array([train_x[int(i)] for i in train])
    fx = feature(schema, "x")
    assert fx.mean == pytest.approx(tx.mean())
    assert fx.std == pytest.approx(tx.std())
    assert fx.impute == pytest.approx(np.median(tx))
    assert feature(schema, "c").categories == (OOV_TOKEN, "a", "b")
    fpw = feature(schema, "pw")
    assert fpw.edges == pytest.approx(tuple(np.quantile(tx, np.linspace(0, 1, 5))))
    assert fpw.edges[0] > -1e8 and fpw.edges[-1] < 1e8
    # validation rows are vectorized with the training vocabulary: "evil" is OOV
    cat = sd.cat[:, [f.name for f in schema.categorical].index("c")]
    assert (cat[sd.val_idx] == OOV_INDEX).all()
    assert (cat[sd.train_idx] != OOV_INDEX).all()
    # ids come from id_column; label/group/id columns are not features
    assert sd.ids == list(range(n))
    assert not {"label", "grp", "rid"} & set(schema.names)


def test_kinds_naming_no_column_is_a_typo(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"protocol": "tcp", "x": i, "y": i % 2}) for i in range(20)))
    raw = {
        "project_name": "p",
        "sources": {"s": {"path": str(path), "kinds": {"protocl": "categorical"}}},
        "training": {"progress": False},
        "tasks": [{"name": "t", "type": "anomaly_detection", "source": "s", "label": {"column": "y"}}],
    }
    with pytest.raises(
        DataError, match=r"sources\.s\.kinds\.protocl: not a feature column \(did you mean 'protocol'\?\)"
    ):
        prepare(config_from_dict(raw))
