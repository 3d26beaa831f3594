"""Evaluation metrics for the security-model trainer, in plain numpy.

The trainer must not depend on scikit-learn, yet its reports are compared
against numbers people compute with it, so ``roc_auc`` and ``pr_auc`` follow
sklearn's ``roc_auc_score`` and ``average_precision_score`` definitions
(equal up to float rounding), and ``multiclass_metrics`` follows sklearn's
default ``f1_score(average="macro")`` label set.

Conventions shared by every function here:

* Binary labels are 0/1 (bools accepted); anything else is rejected rather
  than guessed, because a silently flipped positive class inverts every
  metric.
* Scores must be finite; NaN would make sorting, and so every ranking
  metric, meaningless.
* A sample is predicted positive iff ``score >= threshold``.
* Ratios whose denominator is zero are reported as 0.0 (never a numpy
  warning); AUCs that are undefined are reported as NaN so they cannot be
  mistaken for a real score.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

__all__ = [
    "FALLBACK_THRESHOLD",
    "binary_metrics",
    "choose_threshold",
    "multiclass_metrics",
    "pr_auc",
    "pr_curve",
    "rates_at",
    "recall_at_fpr",
    "roc_auc",
    "roc_curve",
    "summarize",
    "threshold_fallback",
]

# Returned by choose_threshold when the rule cannot be met from the data (max_f1
# without positives or negatives, target_fpr without negatives). It is never
# silent: threshold_fallback says why, and the trainer warns and records it.
FALLBACK_THRESHOLD = 0.5


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def _as_1d_float(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert: {exc}") from None
    if arr.ndim != 1:
        hint = " (use .ravel() for a column vector)" if arr.ndim == 2 and 1 in arr.shape else ""
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    return arr


def _check_same_length(a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{a_name} and {b_name} must have the same length, got {a.shape[0]} and {b.shape[0]}")


def _check_finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/inf value(s); clean or clip them first")


def _binary_inputs(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels as bool, scores as float64) after validating both."""
    y = _as_1d_float("y_true", y_true)
    s = _as_1d_float("scores", scores)
    _check_same_length("y_true", y, "scores", s)
    is_binary = (y == 0) | (y == 1)
    if not np.all(is_binary):
        found = np.unique(y[~is_binary])[:5].tolist()
        raise ValueError(f"y_true must contain only 0/1 labels, found {found}; map the positive class to 1")
    _check_finite("scores", s)
    return y.astype(bool), s


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _labels_in_range(name: str, values: np.ndarray, n_classes: int) -> np.ndarray:
    _check_finite(name, values)
    as_int = values.astype(np.int64)
    if not np.all(as_int == values):
        raise ValueError(f"{name} must hold integer class ids, found non-integer values")
    if as_int.min() < 0 or as_int.max() >= n_classes:
        raise ValueError(
            f"{name} must hold class ids in [0, {n_classes - 1}], found range [{as_int.min()}, {as_int.max()}]"
        )
    return as_int


# --------------------------------------------------------------------------
# Shared ranking core
# --------------------------------------------------------------------------


def _descending_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (thresholds, tps, fps) at each distinct score, highest first.

    Entry k counts the samples with ``score >= thresholds[k]``. Grouping by
    distinct score is what makes tied scores enter together, which is how
    sklearn's curves (and a real deployed threshold) treat ties.
    """
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    # Last index of each run of equal scores; 0.0 and -0.0 compare equal.
    ends = np.append(np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1)
    tps = np.cumsum(y_sorted, dtype=np.int64)[ends]
    fps = (ends + 1) - tps
    return s_sorted[ends], tps, fps


# --------------------------------------------------------------------------
# Binary metrics
# --------------------------------------------------------------------------


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    Computed as the Mann-Whitney statistic (a tie counts 1/2), which equals
    the trapezoidal area sklearn integrates. Done in integer arithmetic so
    the only rounding is the final division.
    """
    y, s = _binary_inputs(y_true, scores)
    _, tps, fps = _descending_counts(y, s)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    pos_in_group = np.diff(tps, prepend=0)
    neg_in_group = np.diff(fps, prepend=0)
    neg_below = n_neg - fps
    # Twice the U statistic: each positive beats the negatives strictly below
    # its score (2 each) and ties those at its score (1 each).
    twice_u = int(np.sum(pos_in_group * (2 * neg_below + neg_in_group)))
    return twice_u / (2 * n_pos * n_neg)


def pr_auc(y_true: Any, scores: Any) -> float:
    """Average precision, sklearn's step-wise ``sum_k (R_k - R_{k-1}) P_k``.

    Each distinct score is one threshold, so tied samples are added to the
    curve together. NaN when there are no positives (recall is undefined).
    """
    y, s = _binary_inputs(y_true, scores)
    _, tps, fps = _descending_counts(y, s)
    n_pos = int(tps[-1])
    if n_pos == 0:
        return float("nan")
    precision = tps / (tps + fps)  # tps + fps >= 1 at every group end
    recall_step = np.diff(tps, prepend=0)
    return float(np.sum(recall_step * precision) / n_pos)


def _safe_ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def binary_metrics(y_true: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """Thresholded and ranking metrics for one binary task.

    precision/recall/f1/fpr are 0.0 where their denominator is zero (e.g. no
    predicted positives), so reports stay numeric; roc_auc/pr_auc are NaN
    when undefined (see their docstrings).
    """
    y, s = _binary_inputs(y_true, scores)
    t = _check_threshold(threshold)
    pred = s >= t
    tp = int(np.count_nonzero(pred & y))
    fp = int(np.count_nonzero(pred & ~y))
    fn = int(np.count_nonzero(~pred & y))
    tn = int(y.size - tp - fp - fn)
    return {
        "accuracy": (tp + tn) / y.size,
        "precision": _safe_ratio(tp, tp + fp),
        "recall": _safe_ratio(tp, tp + fn),
        "f1": _safe_ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y, s),
        "pr_auc": pr_auc(y, s),
        "fpr": _safe_ratio(fp, fp + tn),
        # The numbers a SOC budgets by: how much is caught at 1 % and 5 % false alarms.
        "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01),
        "recall_at_5pct_fpr": recall_at_fpr(y, s, 0.05),
        "threshold": t,
        "support": int(y.size),
        "positives": tp + fn,
    }


# --------------------------------------------------------------------------
# Curves (what `jenga-train report` draws)
# --------------------------------------------------------------------------


def roc_curve(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, highest threshold first,
    after (0, 0) at threshold +inf; point k is what ``score >= thresholds[k]`` flags.
    sklearn's ``roc_curve(drop_intermediate=False)``. Needs both classes.
    """
    y, s = _binary_inputs(y_true, scores)
    thresholds, tps, fps = _descending_counts(y, s)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_curve needs positives and negatives in y_true")
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos], np.r_[np.inf, thresholds]


def pr_curve(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds): one point per distinct score, highest threshold
    first (recall rising). The area under its steps is ``pr_auc``. Needs positives."""
    y, s = _binary_inputs(y_true, scores)
    thresholds, tps, fps = _descending_counts(y, s)
    if tps[-1] == 0:
        raise ValueError("pr_curve needs positives in y_true")
    return tps / (tps + fps), tps / tps[-1], thresholds


def recall_at_fpr(y_true: Any, scores: Any, max_fpr: float) -> float:
    """The best recall of any threshold whose false-positive rate is <= max_fpr (the
    threshold choose_threshold's {target_fpr: max_fpr} picks); NaN without both classes."""
    y, s = _binary_inputs(y_true, scores)
    _, tps, fps = _descending_counts(y, s)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ok = int(np.searchsorted(fps / n_neg, max_fpr, side="right"))  # fps only grows
    return float(tps[ok - 1] / n_pos) if ok else 0.0


def rates_at(y_true: Any, scores: Any, thresholds: Any) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, recall) at each given threshold (``score >= t`` flags); 0.0 for a class
    that is absent, as binary_metrics reports it."""
    y, s = _binary_inputs(y_true, scores)
    t = _as_1d_float("thresholds", thresholds)

    def flagged_share(values: np.ndarray) -> np.ndarray:
        if values.size == 0:
            return np.zeros(t.size)
        return 1.0 - np.searchsorted(np.sort(values), t, side="left") / values.size

    return flagged_share(s[~y]), flagged_share(s[y])


# --------------------------------------------------------------------------
# Multiclass metrics
# --------------------------------------------------------------------------


def _predicted_labels(probs_or_pred: Any, n: int, n_classes: int) -> np.ndarray:
    try:
        arr = np.asarray(probs_or_pred, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"probs_or_pred must be numeric, could not convert: {exc}") from None
    if arr.ndim == 2:
        if arr.shape != (n, n_classes):
            raise ValueError(
                f"probability array must have shape ({n}, {n_classes}) = (len(y_true), n_classes), got {arr.shape}"
            )
        _check_finite("probs_or_pred", arr)
        # argmax, not a probability check: logits rank classes the same way.
        return np.argmax(arr, axis=1)
    if arr.ndim != 1:
        raise ValueError(f"probs_or_pred must be a 1-D label array or an [n, n_classes] array, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"y_true and probs_or_pred must have the same length, got {n} and {arr.shape[0]}")
    return _labels_in_range("probs_or_pred", arr, n_classes)


def multiclass_metrics(y_true: Any, probs_or_pred: Any, n_classes: int) -> dict[str, Any]:
    """Accuracy, macro F1, per-class F1 and confusion matrix.

    ``probs_or_pred`` is either an [n, n_classes] score array (argmax is the
    prediction) or 1-D predicted class ids.

    macro_f1 averages F1 over the classes that appear in y_true or in the
    predictions, as sklearn's ``f1_score(average="macro")`` does by default:
    a class absent from a held-out fold has no defined F1 and counting it as
    0 would punish the model for the split. per_class_f1 still lists all
    n_classes entries, with 0.0 for such absent classes.

    confusion[i][j] counts samples of true class i predicted as class j.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    n_classes = int(n_classes)
    y = _labels_in_range("y_true", _as_1d_float("y_true", y_true), n_classes)
    pred = _predicted_labels(probs_or_pred, y.size, n_classes)

    confusion = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    true_pos = np.diag(confusion)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (row total + column total).
    denom = confusion.sum(axis=1) + confusion.sum(axis=0)
    present = denom > 0
    f1 = np.zeros(n_classes)
    f1[present] = 2 * true_pos[present] / denom[present]
    return {
        "accuracy": float(true_pos.sum() / y.size),
        "macro_f1": float(f1[present].mean()),
        "per_class_f1": f1.tolist(),
        "confusion": confusion.tolist(),
        "support": int(y.size),
    }


# --------------------------------------------------------------------------
# Threshold selection
# --------------------------------------------------------------------------


def _parse_rule(rule: Any) -> tuple[str, float]:
    if isinstance(rule, str):
        if rule == "max_f1":
            return "max_f1", 0.0
        raise ValueError(f"unknown threshold rule {rule!r}; use 'max_f1' or {{'target_fpr': x}}")
    if isinstance(rule, dict):
        if set(rule) != {"target_fpr"}:
            raise ValueError(
                f"threshold rule dict must have exactly the key 'target_fpr', got keys {sorted(map(str, rule))}"
            )
        target = rule["target_fpr"]
        # numbers.Real declares only < and <= (typeshed): the range test (NaN included) uses those.
        if isinstance(target, bool) or not isinstance(target, Real) or target < 0.0 or not target <= 1.0:
            raise ValueError(f"target_fpr must be a number in [0, 1], got {target!r}")
        return "target_fpr", float(target)
    raise ValueError(f"threshold rule must be 'max_f1' or {{'target_fpr': x}}, got {type(rule).__name__} {rule!r}")


def choose_threshold(y_true: Any, scores: Any, rule: str | dict[str, float]) -> float:
    """Pick a decision threshold (predict positive iff score >= threshold).

    rule="max_f1": the score value with the highest F1; among equal F1 the
        higher threshold wins, since it raises fewer alerts for the same F1.
    rule={"target_fpr": x}: the lowest score value whose false-positive rate
        is <= x, i.e. the best recall the FPR budget allows. Tied scores are
        always on the same side of the threshold. If even the highest score
        exceeds the budget, the threshold is just above the highest score
        (nothing is flagged), which is the only way to honour the budget.

    target_fpr needs only negatives (normal rows): with no positives at all it
    is still the (1 - x) quantile of the negatives' scores, so normal-only
    novelty training gets a real threshold. When the rule cannot be met
    (max_f1 without positives or negatives, target_fpr without negatives),
    FALLBACK_THRESHOLD (0.5) is returned and threshold_fallback() says why;
    callers must surface that. O(n log n).
    """
    kind, target = _parse_rule(rule)  # reject bad rules even on degenerate data
    y, s = _binary_inputs(y_true, scores)
    if threshold_fallback(y, rule) is not None:
        return FALLBACK_THRESHOLD
    thresholds, tps, fps = _descending_counts(y, s)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])

    if kind == "max_f1":
        f1 = 2 * tps / (n_pos + tps + fps)  # 2TP / (2TP + FP + FN)
        # thresholds are descending and argmax takes the first maximum, so a
        # tie resolves to the higher threshold. Equal rationals divide to the
        # same float, so ties are exact.
        return float(thresholds[int(np.argmax(f1))])

    fpr = fps / n_neg  # nondecreasing as the threshold falls
    last_ok = int(np.searchsorted(fpr, target, side="right")) - 1
    if last_ok < 0:
        return float(np.nextafter(thresholds[0], np.inf))
    return float(thresholds[last_ok])


def threshold_fallback(y_true: Any, rule: str | dict[str, float]) -> str | None:
    """Why choose_threshold cannot apply `rule` to these labels, or None when it can."""
    kind, _ = _parse_rule(rule)
    y = np.asarray(y_true).astype(bool)
    n_pos = int(np.count_nonzero(y))
    n_neg = int(y.size - n_pos)
    if n_neg == 0:
        return (
            f"no normal (negative) rows among {y.size} validation rows: the threshold fell back to {FALLBACK_THRESHOLD}"
        )
    if kind == "max_f1" and n_pos == 0:
        return (
            f"max_f1 needs positive validation rows and there are none: the threshold fell back to "
            f"{FALLBACK_THRESHOLD}; use threshold_rule: {{target_fpr: F}}, which needs only normal rows"
        )
    return None


# --------------------------------------------------------------------------
# Cross-fold reporting
# --------------------------------------------------------------------------


def summarize(values: list[float]) -> dict[str, Any]:
    """mean, population std (ddof=0), min, max and n of per-fold results.

    NaN values (e.g. a fold whose roc_auc was undefined) propagate into the
    statistics on purpose, so a degenerate fold is visible in the report
    instead of silently shrinking n.
    """
    arr = _as_1d_float("values", values)
    return {
        "mean": float(np.mean(arr)),
        "std": float(np.std(arr, ddof=0)),
        "min": float(np.min(arr)),
        "max": float(np.max(arr)),
        "n": int(arr.size),
    }
