"""`jenga-train report`: a saved model judged in pictures, on labelled rows.

Every number and curve comes from the model's own scores on the given file,
computed as `jenga-train evaluate` computes them (inference.labelled_scores):
the report and evaluate cannot disagree. It writes into OUT_DIR one PNG per
figure, report.json (the numbers) and report.html, one self-contained page
(the PNGs embedded as data: URIs) to attach to a ticket or a review.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jenga_edge.contract.errors import DataError
from jenga_edge.contract.schema import category_key

from . import checkpoint
from . import figures as F
from . import metrics as M
from .inference import LabelledScores, labelled_scores, read_for_model

MAX_GROUPS = 30  # bars per "recall by type" figure; the rest are named in a note
HOLDOUT_FILE = "holdout.json"  # what `jenga-train holdout` writes into OUTPUT_DIR (best_model's parent)


@dataclass
class Section:
    title: str
    numbers: dict[str, Any]
    figures: list[tuple[str, str]] = field(default_factory=list)  # (PNG file name, caption)
    notes: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] | None = None


def write_report(
    model_dir: str, data_path: str, fmt: str, out_dir: str, holdout_path: str | None = None
) -> dict[str, Any]:
    """Draw every figure into out_dir; return what report.json holds."""
    holdout = _holdout_file(Path(model_dir), holdout_path)  # a wrong --holdout fails before any scoring
    loaded = checkpoint.load(model_dir)
    rows = read_for_model(loaded, data_path, fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task_cfgs = {t["name"]: t for t in loaded.meta["config"]["tasks"]}
    sections = []
    for name, ls in labelled_scores(loaded, rows, data_path).items():
        if ls.task["type"] == "classification":
            sections.append(_multiclass_section(name, ls, loaded.labels[name].classes, out))
        else:
            sections.append(_binary_section(name, ls, task_cfgs[name], rows, out))
    sections.append(_holdout_section(holdout, out))
    report = {
        "model": str(Path(model_dir).resolve()),
        "data": str(Path(data_path).resolve()),
        "rows": len(rows),
        "sections": [
            {"title": s.title, "numbers": s.numbers, "figures": [f for f, _ in s.figures], "notes": s.notes}
            for s in sections
        ],
    }
    (out / "report.json").write_text(json.dumps(_null_nan(report), indent=2, default=_json_default, allow_nan=False))
    (out / "report.html").write_text(_html(report, sections, out), encoding="utf-8")
    return report


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


def _binary_section(name: str, ls: LabelledScores, task_cfg: dict, rows: list[dict], out: Path) -> Section:
    threshold = ls.task["threshold"]
    if threshold is None:
        raise DataError(f"task {name!r}: the model stores no threshold; train it again")
    m = M.binary_metrics(ls.y, ls.scores, threshold)
    numbers = {k: m[k] for k in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr", "threshold")}
    numbers |= {
        "fpr_at_threshold": m["fpr"],
        "recall_at_threshold": m["recall"],
        "precision_at_threshold": m["precision"],
    }
    numbers |= {"rows": m["support"], "positives": m["positives"]}
    sec = Section(f"{name} ({ls.task['type']}, {ls.task.get('mode', 'supervised')})", numbers)
    both = 0 < m["positives"] < m["support"]
    if both:
        _add(
            sec,
            out,
            f"{name}-roc.png",
            F.roc_figure(ls.y, ls.scores, threshold, name),
            "ROC curve, operating point marked",
        )
        _add(sec, out, f"{name}-pr.png", F.pr_figure(ls.y, ls.scores, threshold, name), "Precision-recall curve")
    else:
        sec.notes.append("ROC and PR curves left out: the data holds only one class for this task.")
    _add(sec, out, f"{name}-scores.png", F.histogram_figure(ls.y, ls.scores, threshold, name), "Scores per class")
    rates = F.threshold_figure(ls.y, ls.scores, threshold, name)
    _add(sec, out, f"{name}-threshold.png", rates, "False-positive rate and recall against the threshold")
    _recall_by_group(sec, name, ls, task_cfg, rows, threshold, out)
    return sec


def _recall_by_group(
    sec: Section, name: str, ls: LabelledScores, task_cfg: dict, rows: list[dict], threshold: float, out: Path
) -> None:
    """The share flagged per attack type: the task's group_column, else its raw label (as the holdout groups)."""
    column = task_cfg.get("group_column") or task_cfg["label"]["column"]
    if column not in rows[0]:
        sec.notes.append(f"Recall per type left out: the data has no column {column!r}.")
        return
    groups = np.array([category_key(rows[i].get(column)) for i in ls.rows])
    names, counts = np.unique(groups, return_counts=True)
    attack = {g for g in names if np.all(ls.y[groups == g] == 1)}
    if len(attack) < 2:
        sec.notes.append(f"Recall per type left out: column {column!r} names fewer than two attack types.")
        return
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))[:MAX_GROUPS]
    if len(names) > MAX_GROUPS:
        sec.notes.append(f"Recall per type: the {MAX_GROUPS} largest of {len(names)} groups are drawn.")
    flagged = {str(names[i]): float(np.mean(ls.scores[groups == names[i]] >= threshold)) for i in order}
    sec.numbers["flagged_by_group"] = flagged
    colors = ["tab:red" if g in attack else "tab:blue" for g in flagged]
    fig = F.bars_figure(
        list(flagged),
        list(flagged.values()),
        colors,
        f"{name}: flagged at the threshold, per {column}",
        "share flagged",
    )
    caption = f"Share flagged per {column}: recall for attack types (red), false-positive rate for normal ones (blue)"
    _add(sec, out, f"{name}-by-type.png", fig, caption)


def _multiclass_section(name: str, ls: LabelledScores, classes: tuple[str, ...], out: Path) -> Section:
    m = M.multiclass_metrics(ls.y, ls.scores, len(classes))
    confusion = np.asarray(m["confusion"])
    recall = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    numbers = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "rows": m["support"]}
    numbers["recall_by_class"] = dict(zip(classes, recall.tolist(), strict=True))
    numbers["confusion"] = m["confusion"]
    sec = Section(f"{name} ({ls.task['type']})", numbers)
    _add(
        sec,
        out,
        f"{name}-confusion.png",
        F.confusion_figure(m["confusion"], classes, name),
        "Confusion matrix (counts; colour: the share of the true class)",
    )
    fig = F.bars_figure(classes, recall.tolist(), ["tab:green"] * len(classes), f"{name}: recall per class", "recall")
    _add(sec, out, f"{name}-by-class.png", fig, "Recall per class")
    return sec


def _holdout_file(model_dir: Path, holdout_path: str | None) -> Path:
    if holdout_path:
        if not Path(holdout_path).is_file():
            raise DataError(f"--holdout {holdout_path}: file not found")
        return Path(holdout_path)
    return model_dir.resolve().parent / HOLDOUT_FILE


def _holdout_section(path: Path, out: Path) -> Section:
    sec = Section("holdout: unseen attack types", {})
    if not path.is_file():
        sec.notes.append(f"No holdout results ({path} is absent): run `jenga-train holdout` with this --output-dir.")
        return sec
    try:
        report = json.loads(path.read_text())
        folds = report["folds"]
        table = [_fold_row(i, f) for i, f in enumerate(folds, 1)]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a holdout report written by `jenga-train holdout` ({exc!r})") from None
    sec.title = f"holdout: unseen attack types, task {report.get('task')} ({path})"
    sec.numbers = {k: v for k, v in report.get("summary", {}).items()}
    sec.table = table
    _add(sec, out, "holdout-folds.png", F.holdout_figure(folds), "Per fold: unseen-type recall, ROC-AUC, normal FPR")
    return sec


def _fold_row(i: int, f: dict) -> dict[str, Any]:
    row: dict[str, Any] = {"fold": i, "held out": ", ".join(f["held_out"]), "unseen rows": f["n_unseen"]}
    for key in ("threshold", "unseen_recall", "unseen_roc_auc", "unseen_pr_auc", "normal_fpr"):
        row[key] = float(f[key])
    return row


def _add(sec: Section, out: Path, file: str, fig: Any, caption: str) -> None:
    F.save_png(fig, out / file)
    sec.figures.append((file, caption))


def _null_nan(v: Any) -> Any:
    """An undefined number (an AUC without both classes) as null: report.json stays strict JSON."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _null_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_null_nan(x) for x in v]
    return v


def _json_default(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else str(v)


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em}
figcaption{font-size:.85em;color:#555}.note{color:#8a5300}"""


def fmt(v: Any) -> str:
    """A number as the page shows it (4 decimals; NaN as n/a)."""
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4f}"
    return html.escape(str(v))


def _html(report: dict, sections: list[Section], out: Path) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>jenga-train report</title>",
        f"<style>{STYLE}</style></head><body><h1>jenga-train report</h1>",
        f"<p>model <code>{html.escape(report['model'])}</code>, data <code>{html.escape(report['data'])}</code>, "
        f"{report['rows']} rows. Every number and figure is from the model's own scores on these rows.</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.append(_numbers_table(s.numbers))
        if s.table:
            parts.append(_rows_table(s.table))
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in s.notes]
        for file, caption in s.figures:
            data = base64.b64encode((out / file).read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(caption)} ({html.escape(file)})</figcaption></figure>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _numbers_table(numbers: dict[str, Any]) -> str:
    """The scalar numbers, one row each; a summary of folds ({mean, std, ...}) as mean ± std."""
    cells = []
    for key, v in numbers.items():
        if isinstance(v, dict) and "mean" in v:
            cells.append(f"<tr><td>{html.escape(key)}</td><td>{fmt(v['mean'])} ± {fmt(v['std'])}</td></tr>")
        elif isinstance(v, (int, float)):
            cells.append(f"<tr><td>{html.escape(key)}</td><td>{fmt(v)}</td></tr>")
    return f"<table><tr><th>number</th><th>value</th></tr>{''.join(cells)}</table>" if cells else ""


def _rows_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
