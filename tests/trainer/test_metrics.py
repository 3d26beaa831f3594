"""Tests for trainer.metrics against brute-force references written here.

The references are deliberately naive (pairwise loops, explicit sums over
thresholds) so they are easy to audit; the module's vectorized versions must
agree with them on random data full of ties.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from trainer.metrics import (
    FALLBACK_THRESHOLD,
    binary_metrics,
    choose_threshold,
    multiclass_metrics,
    pr_auc,
    roc_auc,
    summarize,
    threshold_fallback,
)

SEEDS = range(12)


# --------------------------------------------------------------------------
# Brute-force references
# --------------------------------------------------------------------------


def ref_roc_auc(y, s):
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    if not pos or not neg:
        return math.nan
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def confusion_at(y, s, t):
    tp = sum(1 for yi, si in zip(y, s) if si >= t and yi == 1)
    fp = sum(1 for yi, si in zip(y, s) if si >= t and yi == 0)
    fn = sum(1 for yi, si in zip(y, s) if si < t and yi == 1)
    tn = sum(1 for yi, si in zip(y, s) if si < t and yi == 0)
    return tp, fp, fn, tn


def ref_ap(y, s):
    n_pos = sum(y)
    if n_pos == 0:
        return math.nan
    total, prev_recall = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        tp, fp, _, _ = confusion_at(y, s, t)
        recall = tp / n_pos
        total += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
    return total


def ref_f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def ref_max_f1_threshold(y, s):
    best_t, best_f1 = None, -1.0
    for t in sorted(set(s), reverse=True):  # descending: strict > keeps the higher on ties
        tp, fp, fn, _ = confusion_at(y, s, t)
        f1 = ref_f1(tp, fp, fn)
        if f1 > best_f1:
            best_t, best_f1 = t, f1
    return best_t


def fpr_at(y, s, t):
    _, fp, _, tn = confusion_at(y, s, t)
    return fp / (fp + tn)


def random_binary(seed, n=None, tied=True):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(5, 120))
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1  # both classes present
    if tied:
        levels = int(rng.integers(2, 12))
        s = rng.integers(0, levels, n) / levels + 0.2 * y * rng.random(n).round(1)
    else:
        s = rng.random(n)
    return y, s


# --------------------------------------------------------------------------
# roc_auc / pr_auc
# --------------------------------------------------------------------------


def test_known_small_example():
    # The example from sklearn's documentation, values checked by hand.
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(y, s) == pytest.approx(0.75)
    assert pr_auc(y, s) == pytest.approx(5 / 6)


def test_all_tied_scores_give_chance_auc():
    y, s = [0, 1, 0, 1, 1], [0.3] * 5
    assert roc_auc(y, s) == pytest.approx(0.5)
    assert pr_auc(y, s) == pytest.approx(3 / 5)  # one threshold: precision = prevalence


def test_perfect_and_inverted_ranking():
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert pr_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tied", [True, False])
def test_auc_matches_brute_force(seed, tied):
    y, s = random_binary(seed, tied=tied)
    assert roc_auc(y, s) == pytest.approx(ref_roc_auc(y.tolist(), s.tolist()), abs=1e-12)
    assert pr_auc(y, s) == pytest.approx(ref_ap(y.tolist(), s.tolist()), abs=1e-12)


def test_auc_accepts_bool_labels_and_lists():
    y, s = random_binary(3)
    assert roc_auc(y.astype(bool).tolist(), s.tolist()) == roc_auc(y, s)


def test_single_class_is_nan():
    assert math.isnan(roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert math.isnan(roc_auc([0, 0], [0.1, 0.5]))
    assert math.isnan(pr_auc([0, 0, 0], [0.1, 0.5, 0.9]))
    # With only positives every threshold has precision 1.
    assert pr_auc([1, 1], [0.2, 0.7]) == 1.0


# --------------------------------------------------------------------------
# binary_metrics
# --------------------------------------------------------------------------


def test_binary_metrics_hand_example():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    s = [0.9, 0.6, 0.4, 0.7, 0.2, 0.1, 0.6, 0.3]
    # threshold 0.6 -> predicted positive: 0.9, 0.6, 0.7, 0.6  => tp=2, fp=2, fn=2, tn=2
    r = binary_metrics(y, s, 0.6)
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5)
    assert r["fpr"] == pytest.approx(0.5)
    assert r["threshold"] == 0.6
    assert r["support"] == 8
    assert r["positives"] == 4
    assert r["roc_auc"] == pytest.approx(ref_roc_auc(y, s))
    assert r["pr_auc"] == pytest.approx(ref_ap(y, s))
    # Only 0.9 (a threat) scores above every normal row: a quarter caught within 1 % or 5 % FPR.
    assert r["recall_at_1pct_fpr"] == r["recall_at_5pct_fpr"] == 0.25
    assert set(r) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "fpr",
        "recall_at_1pct_fpr",
        "recall_at_5pct_fpr",
        "threshold",
        "support",
        "positives",
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_match_brute_force(seed):
    y, s = random_binary(seed)
    t = float(np.median(s))
    tp, fp, fn, tn = confusion_at(y.tolist(), s.tolist(), t)
    r = binary_metrics(y, s, t)
    assert r["accuracy"] == pytest.approx((tp + tn) / len(y))
    assert r["precision"] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
    assert r["recall"] == pytest.approx(tp / (tp + fn))
    assert r["f1"] == pytest.approx(ref_f1(tp, fp, fn))
    assert r["fpr"] == pytest.approx(fp / (fp + tn))


def test_binary_metrics_degenerate_inputs_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            nothing_flagged = binary_metrics([0, 1, 0], [0.1, 0.2, 0.3], threshold=0.9)
            only_negatives = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3], threshold=0.15)
            only_positives = binary_metrics([1, 1], [0.1, 0.2], threshold=0.15)
    assert nothing_flagged["precision"] == 0.0
    assert nothing_flagged["f1"] == 0.0
    assert only_negatives["recall"] == 0.0
    assert only_negatives["precision"] == 0.0
    assert only_negatives["fpr"] == pytest.approx(2 / 3)
    assert math.isnan(only_negatives["roc_auc"]) and math.isnan(only_negatives["pr_auc"])
    assert only_positives["fpr"] == 0.0
    assert only_positives["recall"] == 0.5


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", None, True])
def test_binary_metrics_rejects_bad_threshold(bad):
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        binary_metrics([0, 1], [0.1, 0.9], bad)


# --------------------------------------------------------------------------
# multiclass_metrics
# --------------------------------------------------------------------------


def ref_multiclass(y, pred, n_classes):
    cm = [[0] * n_classes for _ in range(n_classes)]
    for a, b in zip(y, pred):
        cm[a][b] += 1
    f1s, present = [], []
    for c in range(n_classes):
        tp = cm[c][c]
        fn = sum(cm[c]) - tp
        fp = sum(cm[r][c] for r in range(n_classes)) - tp
        f1s.append(ref_f1(tp, fp, fn))
        if c in y or c in pred:
            present.append(f1s[-1])
    acc = sum(cm[c][c] for c in range(n_classes)) / len(y)
    return acc, sum(present) / len(present), f1s, cm


def test_multiclass_hand_example():
    y = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    r = multiclass_metrics(y, pred, 3)
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class_f1"] == pytest.approx([0.5, 0.8, 2 / 3])
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_skips_classes_absent_from_truth_and_predictions():
    # Class 3 never appears: it is listed with F1 0 but not averaged.
    r = multiclass_metrics([0, 1, 2, 2], [0, 1, 2, 1], 4)
    assert r["per_class_f1"] == pytest.approx([1.0, 2 / 3, 2 / 3, 0.0])
    assert r["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
    # A class that is only predicted (never true) is averaged, with F1 0.
    r = multiclass_metrics([0, 0], [0, 2], 3)
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 80)), int(rng.integers(2, 7))
    y = rng.integers(0, max(c - 1, 1), n)  # often leaves the last class out
    probs = rng.random((n, c))
    pred = probs.argmax(axis=1)
    acc, macro, f1s, cm = ref_multiclass(y.tolist(), pred.tolist(), c)
    for given in (probs, pred, pred.tolist()):
        r = multiclass_metrics(y, given, c)
        assert r["accuracy"] == pytest.approx(acc)
        assert r["macro_f1"] == pytest.approx(macro)
        assert r["per_class_f1"] == pytest.approx(f1s)
        assert r["confusion"] == cm


def test_multiclass_validation():
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        multiclass_metrics([0, 1, 2], np.zeros((3, 4)), 3)
    with pytest.raises(ValueError, match="same length"):
        multiclass_metrics([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\]"):
        multiclass_metrics([0, 1, 3], [0, 1, 2], 3)
    with pytest.raises(ValueError, match="probs_or_pred must hold class ids"):
        multiclass_metrics([0, 1, 2], [0, 1, -1], 3)
    with pytest.raises(ValueError, match="integer class ids"):
        multiclass_metrics([0, 1, 2], [0, 1.5, 2], 3)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        multiclass_metrics([0, 0], [0, 0], 1)
    with pytest.raises(ValueError, match="1-D label array or an"):
        multiclass_metrics([0, 1], np.zeros((2, 2, 2)), 2)


# --------------------------------------------------------------------------
# choose_threshold
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tied", [True, False])
def test_max_f1_matches_brute_force(seed, tied):
    y, s = random_binary(seed, tied=tied)
    t = choose_threshold(y, s, "max_f1")
    assert t == ref_max_f1_threshold(y.tolist(), s.tolist())


def test_max_f1_tie_prefers_higher_threshold():
    # t=0.8 -> tp=1, fp=0, fn=1: F1 = 2/3.  t=0.2 -> tp=2, fp=2, fn=0: F1 = 2/3.
    y, s = [1, 1, 0, 0], [0.8, 0.2, 0.2, 0.2]
    assert choose_threshold(y, s, "max_f1") == 0.8


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("target", [0.0, 0.01, 0.1, 0.25, 0.5, 1.0])
def test_target_fpr_is_lowest_threshold_within_budget(seed, target):
    y, s = random_binary(seed)
    yl, sl = y.tolist(), s.tolist()
    t = choose_threshold(y, s, {"target_fpr": target})
    assert fpr_at(yl, sl, t) <= target
    lower = [v for v in set(sl) if v < t]
    if lower:
        # Dropping to the next distinct score would break the budget.
        assert fpr_at(yl, sl, max(lower)) > target
    within = [v for v in set(sl) if fpr_at(yl, sl, v) <= target]
    if within:
        assert t == min(within)
    else:
        assert t > max(sl)  # nothing flagged is the only way to honour it


def test_target_fpr_keeps_tied_scores_together():
    # Negatives at 0.9 and 0.5; the 0.5 group mixes a positive and a negative.
    y = [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    s = [0.95, 0.9, 0.5, 0.5, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1]
    # 7 negatives: one false positive = FPR 1/7 ~ 0.143, two = 0.286.
    assert choose_threshold(y, s, {"target_fpr": 0.15}) == 0.9
    assert choose_threshold(y, s, {"target_fpr": 0.3}) == 0.4
    assert choose_threshold(y, s, {"target_fpr": 0.1}) == 0.95
    # Highest score is a negative: no score value reaches FPR 0.
    t = choose_threshold([0, 1, 0], [0.9, 0.5, 0.1], {"target_fpr": 0.0})
    assert t > 0.9 and binary_metrics([0, 1, 0], [0.9, 0.5, 0.1], t)["fpr"] == 0.0


def test_single_class_falls_back_and_says_why():
    assert choose_threshold([0, 0, 0], [0.1, 0.2, 0.3], "max_f1") == FALLBACK_THRESHOLD
    assert "target_fpr" in threshold_fallback([0, 0, 0], "max_f1")
    for rule in ("max_f1", {"target_fpr": 0.01}):
        assert choose_threshold([1, 1], [0.1, 0.2], rule) == FALLBACK_THRESHOLD
        assert "no normal" in threshold_fallback([1, 1], rule)
    assert threshold_fallback([0, 1], "max_f1") is None
    assert FALLBACK_THRESHOLD == 0.5


def test_target_fpr_needs_only_normal_rows():
    # Normal-only validation (novelty training on normal data): the threshold is the
    # quantile of the normal scores that leaves at most target_fpr of them above it.
    scores = np.linspace(0.0, 1.0, 101)
    y = np.zeros(101, dtype=int)
    t = choose_threshold(y, scores, {"target_fpr": 0.02})
    assert t == pytest.approx(0.99)
    assert np.mean(scores >= t) <= 0.02 < np.mean(scores >= scores[scores < t].max())
    assert threshold_fallback(y, {"target_fpr": 0.02}) is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("max_recall", "unknown threshold rule 'max_recall'"),
        ({"target_fpr": 1.5}, r"target_fpr must be a number in \[0, 1\]"),
        ({"target_fpr": -0.01}, r"target_fpr must be a number in \[0, 1\]"),
        ({"target_fpr": float("nan")}, r"target_fpr must be a number in \[0, 1\]"),
        ({"target_fpr": "0.01"}, r"target_fpr must be a number in \[0, 1\]"),
        ({"target_fpr": True}, r"target_fpr must be a number in \[0, 1\]"),
        ({"target_fpr": 0.01, "extra": 1}, "exactly the key 'target_fpr'"),
        ({"fpr": 0.01}, "exactly the key 'target_fpr'"),
        (0.01, "threshold rule must be 'max_f1'"),
    ],
)
def test_bad_rules_raise(rule, message):
    with pytest.raises(ValueError, match=message):
        choose_threshold([0, 1], [0.1, 0.9], rule)
    # Rejected even when the data would otherwise take the fallback path.
    with pytest.raises(ValueError, match=message):
        choose_threshold([0, 0], [0.1, 0.9], rule)


def test_choose_threshold_is_correct_on_a_million_rows():
    rng = np.random.default_rng(0)
    n = 1_000_000
    y = rng.random(n) < 0.05
    s = np.round(rng.random(n) + 0.5 * y, 4)  # heavy ties
    t_fpr = choose_threshold(y, s, {"target_fpr": 0.01})
    t_f1 = choose_threshold(y, s, "max_f1")
    neg = s[~y]
    assert np.mean(neg >= t_fpr) <= 0.01
    assert np.mean(neg >= np.max(s[s < t_fpr])) > 0.01
    assert t_f1 in set(np.unique(s).tolist())


# --------------------------------------------------------------------------
# Input validation shared by the binary functions
# --------------------------------------------------------------------------

BINARY_FUNCS = [
    roc_auc,
    pr_auc,
    lambda y, s: binary_metrics(y, s, 0.5),
    lambda y, s: choose_threshold(y, s, "max_f1"),
]


@pytest.mark.parametrize("func", BINARY_FUNCS)
@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([0, 1, 1], [0.1, 0.2], "same length, got 3 and 2"),
        ([[0], [1]], [0.1, 0.2], r"y_true must be 1-D, got shape \(2, 1\) \(use .ravel\(\)"),
        ([0, 1], [[0.1, 0.2], [0.3, 0.4]], r"scores must be 1-D"),
        ([], [], "y_true is empty"),
        ([0, 2], [0.1, 0.2], r"only 0/1 labels, found \[2.0\]"),
        ([-1, 1], [0.1, 0.2], "map the positive class to 1"),
        ([0, 1], [0.1, float("nan")], "scores contains 1 NaN/inf"),
        ([0, 1], ["a", "b"], "scores must be numeric"),
    ],
)
def test_binary_input_validation(func, y, s, message):
    with pytest.raises(ValueError, match=message):
        func(y, s)


# --------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------


def test_summarize():
    r = summarize([1.0, 2.0, 3.0, 4.0])
    assert r == {"mean": 2.5, "std": pytest.approx(math.sqrt(1.25)), "min": 1.0, "max": 4.0, "n": 4}
    assert summarize([0.7]) == {"mean": 0.7, "std": 0.0, "min": 0.7, "max": 0.7, "n": 1}


def test_summarize_propagates_nan_folds():
    r = summarize([0.9, float("nan")])
    assert r["n"] == 2 and math.isnan(r["mean"]) and math.isnan(r["std"])


def test_summarize_validation():
    with pytest.raises(ValueError, match="values is empty"):
        summarize([])
    with pytest.raises(ValueError, match="values must be 1-D"):
        summarize([[0.1, 0.2]])
