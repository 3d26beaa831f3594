"""`jenga-train report`: the curve functions against hand-computed values, the figures'
operating point at the threshold, and the command end to end on the session's model
(its numbers are the model's own scores: what `evaluate` reports on the same file)."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from trainer import figures as F
from trainer import metrics as M
from trainer.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# sklearn's roc_curve documentation example, worked by hand.
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_roc_curve_hand_example():
    fpr, tpr, thr = M.roc_curve(Y, S)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert thr.tolist() == [math.inf, 0.8, 0.4, 0.35, 0.1]
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.roc_auc(Y, S)) == 0.75


def test_pr_curve_hand_example():
    precision, recall, thr = M.pr_curve(Y, S)
    assert precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert recall.tolist() == [0.5, 0.5, 1.0, 1.0]
    assert thr.tolist() == [0.8, 0.4, 0.35, 0.1]
    assert float(np.sum(np.diff(recall, prepend=0) * precision)) == pytest.approx(M.pr_auc(Y, S))


def test_recall_at_fpr_and_rates_hand_example():
    assert M.recall_at_fpr(Y, S, 0.0) == 0.5  # only 0.8 scores above both normal rows
    assert M.recall_at_fpr(Y, S, 0.49) == 0.5
    assert M.recall_at_fpr(Y, S, 0.5) == 1.0  # 0.35 and up: one normal row of two, both threats
    fpr, recall = M.rates_at(Y, S, [0.0, 0.35, 0.36, 0.9])
    assert fpr.tolist() == [1.0, 0.5, 0.5, 0.0] and recall.tolist() == [1.0, 1.0, 0.5, 0.0]
    assert math.isnan(M.recall_at_fpr([0, 0], [0.1, 0.2], 0.05))
    with pytest.raises(ValueError, match="positives and negatives"):
        M.roc_curve([0, 0], [0.1, 0.2])


@pytest.mark.parametrize("seed", range(5))
def test_recall_at_fpr_is_the_recall_at_the_target_fpr_threshold(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.2
    s = np.round(np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1), 2)  # rounded: ties
    for budget in (0.0, 0.01, 0.05, 0.3):
        t = M.choose_threshold(y, s, {"target_fpr": budget})
        assert M.recall_at_fpr(y, s, budget) == M.binary_metrics(y, s, t)["recall"]


def _marker(fig) -> tuple[float, float]:
    (ax,) = fig.axes
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(F.OPERATING_POINT)]
    return float(line.get_xdata()[0]), float(line.get_ydata()[0])


def test_the_operating_point_is_drawn_at_the_threshold():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    t = 0.52
    m = M.binary_metrics(y, s, t)
    assert _marker(F.roc_figure(y, s, t, "x")) == pytest.approx((m["fpr"], m["recall"]))
    assert _marker(F.pr_figure(y, s, t, "x")) == pytest.approx((m["recall"], m["precision"]))
    # ... and it is the ROC curve's point of the lowest curve threshold at or above t.
    fpr, tpr, thr = M.roc_curve(y, s)
    k = int(np.flatnonzero(thr >= t)[-1])
    assert (fpr[k], tpr[k]) == pytest.approx((m["fpr"], m["recall"]))


# --------------------------------------------------------------------------
# The command, on the session's trained model (slow)
# --------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def holdout_report() -> dict:
    """A holdout.json as `jenga-train holdout` writes it (trainer/holdout.py)."""
    folds = [
        {"held_out": ["ddos"], "n_unseen": 90, "threshold": 0.6, "unseen_recall": 0.9, "normal_fpr": 0.01,
         "unseen_roc_auc": 0.97, "unseen_pr_auc": 0.9, "recall_by_type": {"ddos": 0.9}},
        {"held_out": ["port_scan"], "n_unseen": 80, "threshold": 0.55, "unseen_recall": 0.4, "normal_fpr": 0.02,
         "unseen_roc_auc": 0.8, "unseen_pr_auc": 0.5, "recall_by_type": {"port_scan": 0.4}},
    ]  # fmt: skip
    keys = ["unseen_recall", "unseen_roc_auc", "unseen_pr_auc", "normal_fpr"]
    summary = {k: M.summarize([f[k] for f in folds]) for k in keys}
    return {"task": "threat", "group_column": "attack_type", "folds": folds, "summary": summary}


@pytest.fixture
def model_with_holdout(tmp_path, trained_network):
    """A copy of the session's model, with a holdout.json where `jenga-train holdout` puts it."""
    run = tmp_path / "run"
    shutil.copytree(trained_network.model_dir, run / "best_model")
    (run / "holdout.json").write_text(json.dumps(holdout_report()))
    return run / "best_model"


def test_report_writes_every_figure_and_a_self_contained_page(tmp_path, model_with_holdout, data_dir):
    data = data_dir / "network_test.jsonl"
    res = invoke("report", "--model", model_with_holdout, "--data", data, "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    out = tmp_path / "rep"
    expected = {
        *(f"threat-{k}.png" for k in ("roc", "pr", "scores", "threshold", "by-type")),
        "attack_type-confusion.png",
        "attack_type-by-class.png",
        "holdout-folds.png",
    }
    assert {p.name for p in out.glob("*.png")} == expected
    page = (out / "report.html").read_text()
    for name in expected:
        png = (out / name).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 2000, name
        assert __import__("base64").b64encode(png).decode() in page, f"{name} is not embedded"
    assert "<img" in page and not re.search(r"src=['\"](?!data:)", page)  # nothing fetched from outside

    # The numbers are the model's own scores on this file: what `evaluate` reports.
    ev = json.loads(invoke("evaluate", "--model", model_with_holdout, "--data", data, "--json").stdout)
    sections = {s["title"].split(" ")[0]: s for s in json.loads((out / "report.json").read_text())["sections"]}
    threat = sections["threat"]["numbers"]
    for key in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr", "threshold"):
        assert threat[key] == ev["threat"][key], key
        assert f"<td>{key}</td><td>{threat[key]:.4f}</td>" in page
    assert (threat["fpr_at_threshold"], threat["recall_at_threshold"]) == (ev["threat"]["fpr"], ev["threat"]["recall"])
    assert 0 < threat["roc_auc"] <= 1 and threat["threshold"] == ev["threat"]["threshold"]
    # Per attack type: recall of each attack type, the FPR of the normal rows.
    assert set(threat["flagged_by_group"]) == {"none", "ddos", "port_scan", "exfiltration"}
    attack = sections["attack_type"]["numbers"]
    assert attack["accuracy"] == ev["attack_type"]["accuracy"]
    assert attack["confusion"] == ev["attack_type"]["confusion"]
    # The holdout's per-fold table.
    assert "<td>ddos</td>" in page and "<td>port_scan</td>" in page and "0.6500 ± 0.2500" in page


def test_report_without_holdout_or_types_says_what_it_left_out(tmp_path, trained_network, data_dir):
    rows = [json.loads(x) for x in (data_dir / "network_test.jsonl").read_text().splitlines()[:400]]
    for r in rows:
        del r["attack_type"]  # no group column, no classification labels
    data = tmp_path / "no_types.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    shutil.copytree(trained_network.model_dir, run / "best_model")
    res = invoke("report", "--model", run / "best_model", "--data", data, "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "rep").glob("*.png")}
    assert names == {f"threat-{k}.png" for k in ("roc", "pr", "scores", "threshold")}
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Recall per type left out: the data has no column &#x27;attack_type&#x27;" in page
    assert "No holdout results" in page


def test_a_missing_holdout_file_is_one_line(tmp_path, trained_network, data_dir):
    res = CliRunner().invoke(
        main,
        ["report", "--model", str(trained_network.model_dir), "--data", str(data_dir / "network_test.jsonl"),
         "-o", str(tmp_path / "rep"), "--holdout", str(tmp_path / "nope.json")],
    )  # fmt: skip
    assert res.exit_code == 2 and res.stderr.startswith("error: --holdout") and res.stderr.count("\n") == 1


def test_normal_rows_only_get_no_curves_and_strict_json(tmp_path, trained_network, data_dir):
    """Rows of one class (a normal-only capture): no ROC or PR curve, the page says why,
    the undefined AUCs are null in report.json and n/a on the page."""
    rows = [json.loads(x) for x in (data_dir / "network_test.jsonl").read_text().splitlines()]
    data = tmp_path / "normal.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows if r["label"] != "malicious"))
    res = invoke("report", "--model", trained_network.model_dir, "--data", data, "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "rep").glob("threat-*.png")}
    assert names == {"threat-scores.png", "threat-threshold.png"}
    numbers = json.loads((tmp_path / "rep" / "report.json").read_text())["sections"][0]["numbers"]
    assert numbers["roc_auc"] is None and numbers["recall_at_1pct_fpr"] is None and numbers["positives"] == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "<td>roc_auc</td><td>n/a</td>" in page and "only one class" in page
