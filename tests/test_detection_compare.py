"""bench/detection_compare.py's helpers on tiny data: the metrics every model in its
table is judged by, and the split all of them share. (The peers are in the `bench`
extra; CI installs train+dev, so what needs scikit-learn is skipped there.)"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "detection_compare.py"
_spec = importlib.util.spec_from_file_location("detection_compare", _PATH)
assert _spec and _spec.loader
dc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("detection_compare", dc)  # dataclasses look their module up there
_spec.loader.exec_module(dc)


def test_recall_at_fpr_never_exceeds_the_target_fpr():
    # 100 negatives scored 0..99, positives at 97.5, 98.5, 50, 120
    y = np.array([0] * 100 + [1] * 4)
    s = np.array([*range(100), 97.5, 98.5, 50, 120], dtype=float)
    # 1 % FPR: one negative (99) may be above the threshold -> threshold 98: 98.5 and 120 are caught
    assert dc.recall_at_fpr(y, s, 0.01) == 0.5
    # 5 % FPR: five negatives (95..99) above threshold 94: three positives caught
    assert dc.recall_at_fpr(y, s, 0.05) == 0.75
    # 0 % FPR: nothing above the best negative
    assert dc.recall_at_fpr(y, s, 0.0) == 0.25


def test_recall_at_fpr_ties_are_not_flagged():
    # every score tied: flagging the tie would be 100 % FPR, so nothing is flagged
    y = np.array([0, 0, 0, 0, 1, 1])
    assert dc.recall_at_fpr(y, np.ones(6), 0.05) == 0.0
    assert np.isnan(dc.recall_at_fpr(np.zeros(4, int), np.arange(4.0), 0.05))


def test_detection_metrics_on_a_perfect_and_a_reversed_ranking():
    pytest.importorskip("sklearn")
    y = np.array([0, 0, 0, 1, 1])
    good = dc.detection_metrics(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert good["roc_auc"] == 1.0 and good["pr_auc"] == 1.0 and good["recall_at_1pct_fpr"] == 1.0
    bad = dc.detection_metrics(y, np.array([0.9, 0.8, 0.7, 0.2, 0.1]))
    assert bad["roc_auc"] == 0.0 and bad["recall_at_5pct_fpr"] == 0.0


def test_stratified_split_keeps_class_shares_and_is_seeded():
    y = np.array([1] * 50 + [0] * 950)
    tr, te = dc.stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 1000
    assert y[te].sum() == 10 and y[tr].sum() == 40
    _, te2 = dc.stratified_split(y, 0.2, seed=3)
    assert np.array_equal(te, te2)
    assert not np.array_equal(te, dc.stratified_split(y, 0.2, seed=4)[1])


def test_encoding_is_fitted_on_training_rows_only():
    train = [{"a": 1, "c": "x", "flag": True}, {"a": None, "c": "y"}, {"a": 3, "c": "x"}]
    enc = dc.Encoded.fit(train, ["a", "c", "flag"])
    assert enc.numeric == ["a", "flag"] and enc.categorical == ["c"]
    num, cat = enc.transform([{"a": 2, "c": "x", "flag": False}, {"a": 5, "c": "unseen"}])
    assert num.tolist()[0] == [2.0, 0.0] and np.isnan(num[1, 1])
    assert cat[0, 0] == 0  # the most frequent training value gets code 0
    assert np.isnan(cat[1, 0])  # a value never seen in training is missing, not a new code


def test_summary_is_mean_and_std_over_seeds():
    rows = [
        {
            "dataset": "d",
            "kind": "supervised",
            "model": "m",
            "seed": seed,
            **dict.fromkeys([c[0] for c in dc.COLUMNS], v),
        }
        for seed, v in ((0, 1.0), (1, 3.0))
    ]
    (s,) = dc.summarise(rows)
    assert s["seeds"] == s["runs"] == 2 and s["roc_auc"] == 2.0 and s["roc_auc_std"] == pytest.approx(np.sqrt(2))
    assert "| d | supervised | m | 2.0000 ± 1.4142 |" in dc.markdown([s])


# ----------------------------------------------------------------- the protocols added for issue 12


def _kdd_like(tmp_path: Path) -> dc.Dataset:
    """Normal rows and four attack types; a config whose binary task reads them, seed 7."""
    rows = [{"x": float(i), "proto": "tcp", "attack": "normal"} for i in range(40)]
    for name, n in (("smurf", 12), ("neptune", 9), ("satan", 6), ("warez", 3)):
        rows += [{"x": 100.0 + i, "proto": "udp", "attack": name} for i in range(n)]
    config = tmp_path / "kdd.yaml"
    config.write_text(
        "project_name: t\noutput_dir: out\n"
        "sources:\n  s: {path: unused.jsonl}\n"
        "training: {seed: 7}\n"
        "tasks:\n  - {name: attack, type: anomaly_detection, source: s,"
        " label: {column: attack, negative_labels: [normal]}}\n"
    )
    y = np.array([r["attack"] != "normal" for r in rows], dtype=np.int64)
    return dc.Dataset("kdd", rows, y, config, "s", "attack", None, ["attack"])


def test_holdout_folds_are_the_ones_jenga_train_holdout_makes(tmp_path):
    from trainer.config import load_config
    from trainer.holdout import attack_groups, make_folds
    from trainer.synthetic import write

    ds = _kdd_like(tmp_path)
    ho = dc.nsl_kdd_holdout(ds, 2, tmp_path)
    # what `jenga-train holdout --config ... --task attack --folds 2` iterates over, on the same rows
    data = write(ds.rows, tmp_path / "same.jsonl")
    cfg = load_config(str(ds.config), (f"sources.s.path={data}",))
    column, groups = attack_groups(cfg, "attack")
    assert ho.group_column == column == "attack"
    assert ho.folds == make_folds(groups, 2, 7)  # the config's seed, not a bench seed
    assert sorted(t for f in ho.folds for t in f) == ["neptune", "satan", "smurf", "warez"]
    assert ho.split == "holdout" and "2 folds" in ho.name


def test_holdout_split_trains_without_the_held_types_and_tests_them_against_normal_rows(tmp_path):
    ds = dc.replace(_kdd_like(tmp_path), split="holdout", group_column="attack", folds=[["neptune", "warez"]])
    (tr, te, extra), *more = dc.splits(ds, seed=0, test_fraction=0.25)
    assert not more and extra == {"fold": 1, "held_out": ["neptune", "warez"]}
    attack = np.array([r["attack"] for r in ds.rows])
    assert not np.isin(attack[tr], ["neptune", "warez"]).any()  # nobody trains on a held-out type
    assert set(attack[tr]) == {"normal", "smurf", "satan"}
    # positives: every row of a held-out type (12 of them); negatives: normal rows of the test split only
    assert sorted(np.flatnonzero(np.isin(attack, ["neptune", "warez"]))) == sorted(te[ds.y[te] == 1])
    assert set(attack[te]) == {"normal", "neptune", "warez"} and len(np.intersect1d(tr, te)) == 0
    assert (ds.y[te] == 0).sum() == 10  # 25 % of the 40 normal rows


def test_time_split_tests_only_the_later_rows_and_ignores_the_seed():
    rng = np.random.default_rng(0)
    minutes = rng.permutation(100)  # rows out of time order, as NAB's copies have them
    rows = [
        {"timestamp": f"2014-01-01T{m // 60:02d}:{m % 60:02d}:00Z", "value": 1.0, "label": "normal"} for m in minutes
    ]
    y = np.zeros(100, dtype=np.int64)
    ds = dc.Dataset(
        "t", rows, y, Path("c.yaml"), "s", None, "novelty", ["label"], split="time", time_column="timestamp"
    )
    (tr, te, extra), *more = dc.splits(ds, seed=0, test_fraction=0.2)
    assert not more and extra == {}
    assert len(tr) == 60 and len(te) == 40  # NAB_TEST_FRACTION, whatever --test-fraction says
    assert minutes[tr].max() < minutes[te].min()
    assert np.array_equal(te, dc.splits(ds, seed=5, test_fraction=0.2)[0][1])


def test_fold_summary_is_per_fold_mean_over_seeds():
    base = {"dataset": "d", "kind": "supervised", "model": "m", "test_positives": 9}
    metrics = dict.fromkeys(dc.FOLD_COLUMNS, 0.0)
    rows = [
        {**base, **metrics, "seed": s, "fold": f, "held_out": [f"t{f}"], "roc_auc": v}
        for s, f, v in ((0, 1, 0.5), (1, 1, 0.7), (0, 2, 0.9), (1, 2, 1.0))
    ]
    f1, f2 = dc.fold_summary(rows)
    assert (f1["fold"], f1["roc_auc"], f1["held_out"], f1["unseen_rows"]) == (1, pytest.approx(0.6), ["t1"], 9)
    assert f2["roc_auc"] == pytest.approx(0.95)
    assert "| 1 | t1 (9) | supervised | m | 0.6000 |" in dc.fold_markdown([f1, f2])
    assert dc.fold_summary([{**base, **metrics, "seed": 0}]) == []  # no fold: not a holdout run


def test_datasets_dga_is_a_pending_line_and_unknown_names_are_refused(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "r.json"
    assert dc.main(["--datasets", "dga", "--out", str(out)]) == 0
    assert "DGA domains" in capsys.readouterr().out
    meta = json.loads(out.read_text())["meta"]
    assert meta["pending"] == [dc.PENDING["dga"]] and "wall_s" in meta
    assert dc.main(["--datasets", "nsl-kdd,bogus", "--out", str(out)]) == 2
    assert "unknown bogus" in capsys.readouterr().err


@pytest.mark.skipif(not dc.NAB.is_dir(), reason="the shared NAB subset is not on this machine")
def test_nab_rows_carry_the_configs_window_features_row_for_row(tmp_path):
    ds = dc.nab("ec2_request_latency_system_failure", tmp_path)
    assert ds is not None and len(ds.rows) == len(ds.records) == 4032
    assert ds.features and "mean_24h" in ds.features and all(f in ds.rows[-1] for f in ds.features)
    assert [r["timestamp"] for r in ds.rows] == [r["timestamp"] for r in ds.records]
    assert ds.y.sum() == 346 and ds.supervised_task is None  # NAB README: rows inside windows


def test_a_fraud_table_of_your_own_gets_the_fraud_configs_label_column(tmp_path):
    table = tmp_path / "cards.csv"
    table.write_text("Time,V1,Amount,Class\n0,1.5,9.99,0\n1,-2.0,120.0,1\n2,0.3,5.0,0\n")
    ds = dc.fraud_table(table, "Class", None)
    assert ds.y.tolist() == [0, 1, 0] and ds.rows[1] == {"Time": 1, "V1": -2.0, "Amount": 120.0, "label": 1}
    assert ds.config.name == "fraud.yaml" and ds.supervised_task == "fraud" and "33.33% fraud" in ds.name
    with pytest.raises(SystemExit, match="no column 'label'"):
        dc.fraud_table(table, "label", None)


def test_summary_leaves_untimed_runs_out_of_the_timing_mean():
    # holdout folds after the first export no bundle: their onnxruntime µs are NaN, not zero
    base = {"dataset": "d", "kind": "novelty", "model": "ours", **dict.fromkeys([c[0] for c in dc.COLUMNS], 1.0)}
    rows = [
        {**base, "seed": 0, "fold": 1, "score_us_batch": 4.0},
        {**base, "seed": 0, "fold": 2, "score_us_batch": np.nan},
    ]
    (s,) = dc.summarise(rows)
    assert s["score_us_batch"] == 4.0 and s["runs"] == 2 and s["seeds"] == 1


def test_merge_reports_runs_made_in_parts_as_one(tmp_path, capsys):
    # a long run split by --first-seed: seed 0 in one file, seeds 1-2 in another
    metrics = dict.fromkeys([c[0] for c in dc.COLUMNS], 0.5)
    row = {"dataset": "d", "kind": "supervised", "model": "m", **metrics}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"meta": {"seeds": [0], "wall_s": 60.0}, "results": [{**row, "seed": 0}]}))
    runs = [{**row, "seed": s, "roc_auc": 1.0} for s in (1, 2)]
    b.write_text(json.dumps({"meta": {"seeds": [1, 2], "wall_s": 120.0, "pending": ["later"]}, "results": runs}))
    out = tmp_path / "m.json"
    assert dc.main(["--merge", str(a), str(b), "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    (s,) = merged["summary"]
    assert s["seeds"] == 3 and s["roc_auc"] == pytest.approx(2.5 / 3)
    assert merged["meta"]["seeds"] == [0, 1, 2] and merged["meta"]["wall_s"] == 180.0
    assert "run time 180 s" in capsys.readouterr().out
