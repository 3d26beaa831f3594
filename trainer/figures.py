"""The figures of `jenga-train report`, drawn with matplotlib (the `train` extra).

Figures are plain `matplotlib.figure.Figure` objects saved as PNG by the Agg
renderer: pyplot is never imported, so no display and no global backend state
are needed or touched. matplotlib is imported when a figure is drawn, never
when the trainer's CLI starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import metrics as M

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OPERATING_POINT = "operating point"  # the label of the marker tests look for
THRESHOLD_GRID = np.linspace(0.0, 1.0, 201)  # scores of both modes are in [0, 1]


def _figure(width: float = 5.5, height: float = 4.2) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_png(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=100)


def roc_figure(y: np.ndarray, scores: np.ndarray, threshold: float, task: str) -> Figure:
    fpr, tpr, _ = M.roc_curve(y, scores)
    op_fpr, op_tpr = M.rates_at(y, scores, [threshold])
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, drawstyle="default", label=f"ROC (AUC {M.roc_auc(y, scores):.4f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    label = f"{OPERATING_POINT}: threshold {threshold:.4g}"
    ax.plot(op_fpr, op_tpr, "o", color="crimson", markersize=8, label=label)
    for budget in (0.01, 0.05):
        ax.axvline(budget, color="grey", linewidth=0.6, linestyle="--")
    xlabel = "false-positive rate (linear below 0.01, log above)"
    ax.set(xlabel=xlabel, ylabel="recall (true-positive rate)", title=f"{task}: ROC")
    ax.set_xscale("symlog", linthresh=0.01)  # the low-FPR corner is where a detector lives
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_figure(y: np.ndarray, scores: np.ndarray, threshold: float, task: str) -> Figure:
    precision, recall, _ = M.pr_curve(y, scores)
    m = M.binary_metrics(y, scores, threshold)
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", label=f"PR (AP {m['pr_auc']:.4f})")
    ax.axhline(float(np.mean(y)), linestyle=":", color="grey", label="share of positives")
    label = f"{OPERATING_POINT}: threshold {threshold:.4g}"
    ax.plot([m["recall"]], [m["precision"]], "o", color="crimson", markersize=8, label=label)
    ax.set(xlabel="recall", ylabel="precision", title=f"{task}: precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return fig


def histogram_figure(y: np.ndarray, scores: np.ndarray, threshold: float, task: str) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    bins = np.linspace(0.0, 1.0, 51).tolist()
    for value, name, color in ((0, "normal", "tab:blue"), (1, "threat", "tab:red")):
        part = scores[y == value]
        if part.size:
            ax.hist(part, bins=bins, alpha=0.55, color=color, label=f"{name} (n={part.size})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_yscale("log")  # the classes differ by orders of magnitude in count
    ax.set(xlabel="score", ylabel="rows", title=f"{task}: scores per class")
    ax.legend(fontsize=8)
    return fig


def threshold_figure(y: np.ndarray, scores: np.ndarray, threshold: float, task: str) -> Figure:
    fpr, recall = M.rates_at(y, scores, THRESHOLD_GRID)
    fig = _figure()
    ax = fig.add_subplot()
    if np.any(y == 0):
        ax.plot(THRESHOLD_GRID, fpr, label="false-positive rate")
    if np.any(y == 1):
        ax.plot(THRESHOLD_GRID, recall, label="recall")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="threshold", ylabel="rate", title=f"{task}: rates against the threshold", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    return fig


def bars_figure(
    names: Sequence[str], values: Sequence[float], colors: Sequence[str], title: str, xlabel: str
) -> Figure:
    fig = _figure(6.5, max(2.5, 0.3 * len(names) + 1.2))
    ax = fig.add_subplot()
    pos = np.arange(len(names))
    ax.barh(pos, values, color=colors)
    ax.set_yticks(pos, labels=list(names), fontsize=8)
    ax.invert_yaxis()  # the first (largest) group on top
    for p, v in zip(pos, values, strict=True):
        ax.text(min(v, 0.9) + 0.01, float(p), f"{v:.3f}", va="center", fontsize=7)
    ax.set(xlim=(0, 1.0), xlabel=xlabel, title=title)
    return fig


def confusion_figure(confusion: list[list[int]], classes: Sequence[str], task: str) -> Figure:
    counts = np.asarray(confusion)
    n = len(classes)
    fig = _figure(max(4.0, 0.6 * n + 2.5), max(3.5, 0.6 * n + 2.0))
    ax = fig.add_subplot()
    # Colour by the share of each true class, so a small class's errors show as much as a large one's.
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            color = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=list(classes), fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"{task}: confusion matrix")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def holdout_figure(folds: list[dict]) -> Figure:
    keys = ("unseen_recall", "unseen_roc_auc", "normal_fpr")
    fig = _figure(6.5, 3.8)
    ax = fig.add_subplot()
    pos = np.arange(len(folds))
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        ax.bar(pos + (k - 1) * width, [f[key] for f in folds], width, label=key)
    names = [f"fold {i + 1}\n" + _short(", ".join(f["held_out"])) for i, f in enumerate(folds)]
    ax.set_xticks(pos, labels=names, fontsize=8)
    ax.set(ylim=(0, 1.2), title="holdout: unseen attack types per fold")
    ax.legend(fontsize=8, loc="upper left", ncols=len(keys))
    return fig


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
