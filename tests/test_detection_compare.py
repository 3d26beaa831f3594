"""bench/detection_compare.py's helpers on tiny data: the metrics every model in its
table is judged by, and the split all of them share. (The peers are in the `bench`
extra; CI installs train+dev, so what needs scikit-learn is skipped there.)"""

from __future__ import annotations

import importlib.util
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
        {"dataset": "d", "kind": "supervised", "model": "m", **dict.fromkeys([c[0] for c in dc.COLUMNS], v)}
        for v in (1.0, 3.0)
    ]
    (s,) = dc.summarise(rows)
    assert s["seeds"] == 2 and s["roc_auc"] == 2.0 and s["roc_auc_std"] == pytest.approx(np.sqrt(2))
    assert "| d | supervised | m | 2.0000 ± 1.4142 |" in dc.markdown([s])
