"""A fused task: one calibrated score from a supervised and a novelty head (issue 12, part 3).

Config cross-checks and the calibration's properties need no training; one tiny
model (a few epochs on 3000 synthetic flows) is trained per module, exported
once, and run by the agent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.bundle_writer import ExportOptions, export_bundle
from jenga_edge.bundle import verify_bundle
from jenga_edge.check import check_lines
from jenga_edge.contract.errors import ConfigError
from tests.conftest import base_config, net_source
from tests.jenga_edge.test_agent import malicious_events, read_jsonl, run_to_eof, write_config
from trainer.config import config_from_dict
from trainer.inference import evaluate_file
from trainer.model import P_FLOOR, DistanceHead, FusedHead
from trainer.predict import score_rows
from trainer.run import run_experiment
from trainer.synthetic import generate, write

LABEL = {"column": "label", "positive_labels": ["malicious"]}


def tasks(**fused) -> list[dict]:
    return [
        {"name": "threat", "type": "anomaly_detection", "source": "net", "label": LABEL},
        {"name": "odd", "type": "anomaly_detection", "mode": "novelty", "source": "net", "label": LABEL},
        {"name": "kind", "type": "classification", "source": "net", "label": {"column": "attack_type"}},
        {"name": "far", "type": "anomaly_detection", "mode": "distance", "source": "net", "label": LABEL},
        {
            "name": "detector",
            "type": "anomaly_detection",
            "mode": "fused",
            "combine": ["threat", "odd", "far"],
            "source": "net",
            "label": LABEL,
            "threshold_rule": {"target_fpr": 0.05},
            **fused,
        },
    ]


def raw_config(tmp_path: Path, task_list: list[dict], data: Path | None = None, **training) -> dict:
    sources = {"net": net_source(data or tmp_path / "net.jsonl"), "other": net_source(tmp_path / "other.jsonl")}
    return base_config(sources, task_list, tmp_path / "run", **training)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("fused", "extra_task", "message"),
    [
        ({"combine": ["threat", "nope"]}, None, "tasks[4].combine[1]: unknown task 'nope'"),
        ({"combine": ["threat", "kind"]}, None, "tasks[4].combine[1]: task 'kind' is classification"),
        ({"combine": ["threat", "threat"]}, None, "tasks[4].combine[1]: task 'threat' is named twice"),
        ({"combine": ["threat"]}, None, "tasks[4].combine: mode: fused needs at least two member tasks"),
        ({"combine": None}, None, "tasks[4].combine: mode: fused needs at least two"),
        (
            {"combine": ["threat", "elsewhere"]},
            {"name": "elsewhere", "type": "anomaly_detection", "source": "other", "label": LABEL},
            "tasks[4].combine[1]: task 'elsewhere' reads source 'other', this task reads 'net'",
        ),
        (
            {"combine": ["threat", "inner"]},
            {
                "name": "inner",
                "type": "anomaly_detection",
                "mode": "fused",
                "combine": ["threat", "odd"],
                "source": "net",
                "label": LABEL,
            },
            "tasks[4].combine[1]: task 'inner' is fused itself",
        ),
        (
            {"combine": ["threat", "boosted"]},
            {"name": "boosted", "type": "anomaly_detection", "source": "net", "label": LABEL, "learner": "lightgbm"},
            "tasks[4].combine[1]: task 'boosted' is a tree model; a fused task combines heads of the network",
        ),
    ],
)
def test_fused_members_are_cross_checked_with_key_paths(tmp_path, fused, extra_task, message):
    task_list = tasks(**fused) + ([extra_task] if extra_task else [])
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)
    assert message in str(exc.value)


def test_distance_and_fused_tasks_need_a_task_that_trains_the_trunk(tmp_path):
    task_list = [t for t in tasks(combine=["far", "far2"]) if t["name"] in ("far", "detector")]
    task_list.insert(1, {**task_list[0], "name": "far2"})
    with pytest.raises(
        ConfigError, match=r"tasks\[0\]\.mode: mode: distance trains nothing itself; source 'net' needs"
    ):
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)


def test_a_tree_task_does_not_train_the_trunk_a_distance_task_reads(tmp_path):
    task_list = [t for t in tasks() if t["name"] in ("threat", "far")]
    task_list[0]["learner"] = "lightgbm"
    with pytest.raises(ConfigError, match=r"tasks\[1\]\.mode: mode: distance trains nothing itself"):
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)


def test_a_tree_learner_is_refused_on_a_fused_task(tmp_path):
    task_list = tasks(learner="lightgbm")
    with pytest.raises(ConfigError, match=r"tasks\[4\]\.learner: a tree model is for supervised tasks; mode: fused"):
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)


def test_combine_is_only_for_a_fused_task(tmp_path):
    task_list = tasks()
    task_list[0]["combine"] = ["odd", "detector"]
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.combine: is only for mode: fused \(this task is supervised\)"):
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)


def test_fused_is_not_a_mode_of_classification(tmp_path):
    task_list = tasks()
    task_list[2]["mode"] = "fused"
    with pytest.raises(ConfigError, match=r"tasks\[2\]\.mode: fused mode is not for classification"):
        config_from_dict(raw_config(tmp_path, task_list), check_files=False)


# ----------------------------------------------------------- calibration


def normal_stats(n: int, seed: int) -> torch.Tensor:
    """Two members' statistics on normal rows: correlated, one with many ties (a
    supervised logit that saturates on identical flows)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.5 * a + rng.normal(size=n)
    a[: n // 5] = -3.0  # a fifth of the rows share one value
    return torch.as_tensor(np.stack([a, b], axis=1), dtype=torch.float32)


@pytest.mark.parametrize("combination", ["fisher", "cauchy", "min_p"])
def test_p_values_and_scores_are_monotone_bounded_and_uniform_on_normal_rows(combination):
    head = FusedHead(2, combination)
    head.calibrate(normal_stats(4000, seed=1))
    grid = torch.linspace(-8, 20, 561)  # past the extra bin above the normal rows
    for member in range(2):
        z = torch.zeros(grid.numel(), 2)
        z[:, member] = grid
        p, s = head.p_values(z)[:, member], head.score(z)
        assert torch.all((p >= P_FLOOR) & (p <= 1 - P_FLOOR))
        assert torch.all(torch.diff(p) <= 0) and p[0] > 0.99 and p[-1] == P_FLOOR  # less normal, smaller p
        assert torch.all((s >= 0) & (s <= 1)) and torch.all(torch.diff(s) >= 0) and s[-1] > 0.99
    fresh = head.score(normal_stats(4000, seed=2)).numpy()  # normal rows the calibration never saw
    for q in (0.5, 0.9, 0.95, 0.99):
        assert abs(np.mean(fresh >= q) - (1 - q)) < 0.025 + 0.1 * (1 - q)


def test_calibration_on_other_rows_calibrates_the_combined_statistic_there():
    head = FusedHead(2, "fisher")
    members, combined = normal_stats(3000, seed=3), normal_stats(3000, seed=4) + 0.5
    head.calibrate(members, combined=combined)
    assert abs(float(head.score(combined).median()) - 0.5) < 0.03  # the combined CDF is the shifted rows'
    assert float(head.score(members).median()) < 0.4


def test_distance_head_is_the_mahalanobis_distance_from_the_normal_rows():
    rng = np.random.default_rng(5)
    h = rng.multivariate_normal([1.0, -2.0, 0.5], [[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]], size=3000)
    head = DistanceHead(3)
    head.fit(torch.as_tensor(h, dtype=torch.float32))
    x = rng.normal(size=(50, 3))
    mean, cov = h.mean(axis=0), np.cov(h, rowvar=False)
    cov += 1e-3 * np.trace(cov) / 3 * np.eye(3)
    want = np.einsum("ij,jk,ik->i", x - mean, np.linalg.inv(cov), x - mean)
    got = head(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4)
    head.calibrate(head(torch.as_tensor(h[:1500], dtype=torch.float32)))
    s = head.score(head(torch.as_tensor(h[1500:], dtype=torch.float32))).numpy()  # fresh normal rows: ~uniform
    assert abs(np.mean(s >= 0.9) - 0.1) < 0.03 and abs(np.mean(s >= 0.5) - 0.5) < 0.05


# -------------------------------------------------------- a trained model


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fused")
    write(generate("network", 3000, seed=5), d / "net.jsonl")
    write(generate("network", 1500, seed=99), d / "net_test.jsonl")
    task_list = [t for t in tasks() if t["name"] != "kind"]
    raw = base_config({"net": net_source(d / "net.jsonl")}, task_list, d / "run", epochs=4)
    run = run_experiment(config_from_dict(raw), d / "run", out=None)
    return d, run


@pytest.mark.slow
def test_fused_threshold_holds_the_target_fpr_on_normal_rows(fused_run):
    d, run = fused_run
    tr = run.trainer
    task = tr.tasks["detector"]
    trained = run.result.history[0]["train_loss"]
    assert "detector" not in trained and "far" not in trained  # no head to train, no loss, no steps of their own
    assert "far" in run.result.thresholds and tr.model.fused_head("detector").member_left.shape[0] == 3
    t = run.result.thresholds["detector"]
    m = run.result.metrics["detector"]
    assert "threshold_fallback" not in m and m["fpr"] <= 0.05
    scores = score_rows(tr.model, "detector", tr.num["net"], tr.cat["net"], torch.as_tensor(task.val_idx))["scores"]
    normal = task.y[task.val_idx] == 0
    assert np.mean(scores[normal] >= t) <= 0.05 and np.mean(scores[~normal] >= t) > 0.5
    meta = json.loads((run.model_dir / "model.json").read_text())
    entry = next(e for e in meta["tasks"] if e["name"] == "detector")
    assert entry["mode"] == "fused" and entry["threshold"] == t
    # The saved model reloads with its calibration, and on normal rows it never saw
    # (another seed of the generator) stays near its target.
    fresh = evaluate_file(str(run.model_dir), str(d / "net_test.jsonl"))["detector"]
    assert fresh["threshold"] == t and fresh["fpr"] <= 0.08 and fresh["recall"] > 0.5


@pytest.fixture(scope="module")
def fused_bundle(fused_run):
    d, run = fused_run
    manifest = export_bundle(run.model_dir, d / "bundle", ExportOptions(), log=lambda s: None)
    return d / "bundle", manifest


@pytest.mark.slow
def test_fused_task_exports_with_parity_in_its_own_and_the_merged_graph(fused_run, fused_bundle):
    (_, run), (out, manifest) = fused_run, fused_bundle
    task = next(t for t in manifest.tasks if t.name == "detector")
    assert task.mode == "fused" and [(o.name, o.role) for o in task.outputs] == [("score", "score")]
    assert task.threshold == run.result.thresholds["detector"]
    # The export gate compared torch and onnxruntime on every case (validation rows, missing
    # values, unseen categories, extreme magnitudes, batch sizes): within its tolerance.
    for per_output in task.parity["cases"].values():
        assert all(0 <= v <= 1e-5 for v in per_output.values()), per_output
    merged = manifest.merged[0]
    assert [o.name for o in merged.outputs["detector"]] == ["detector.score"]
    for per_output in merged.parity["cases"].values():
        assert all(0 <= v <= 1e-5 for v in per_output.values()), per_output
    tr = run.trainer
    rows = torch.as_tensor(tr.tasks["detector"].val_idx[:300])
    torch_scores = score_rows(tr.model, "detector", tr.num["net"], tr.cat["net"], rows)["scores"]
    sess = ort.InferenceSession(str(out / "detector.onnx"), providers=["CPUExecutionProvider"])
    onnx_scores = sess.run(None, {"numeric": tr.num["net"][rows].numpy(), "categorical": tr.cat["net"][rows].numpy()})
    np.testing.assert_allclose(onnx_scores[0], torch_scores, atol=1e-4)


@pytest.mark.slow
def test_the_agent_alerts_on_a_rule_over_the_fused_task(fused_run, fused_bundle, tmp_path):
    out, _ = fused_bundle
    assert "detector" in verify_bundle(out).tasks
    lines = malicious_events(200, "10.9.9.9")
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    rules = [{"rule": "fused", "task": "detector", "priority": "error", "actions": ["alert"]}]
    cfg = write_config(tmp_path, out, [{"type": "stdin"}], rules=rules)
    summary = run_to_eof(cfg, tmp_path / "in.jsonl")
    alerts = [a for a in read_jsonl(tmp_path / "alerts.jsonl") if a["event_type"] == "alert"]
    assert summary["scored"] == len(lines) and summary["alerts"] == len(alerts) > len(lines) // 2
    assert {a["rule"] for a in alerts} == {"fused"}
    assert all(a["task"] == "detector" and a["score"] >= a["threshold"] for a in alerts)
    assert alerts[0]["threshold"] == pytest.approx(fused_run[1].result.thresholds["detector"])
    # `jenga-edge check` reads the same verdicts off the same task.
    results = check_lines(verify_bundle(out), lines, ["detector"])
    assert sum(r.tasks[0].threat for r in results) == len(alerts)


@pytest.mark.slow
def test_fused_and_distance_tasks_on_an_ensemble_export_with_parity(tmp_path):
    """model.ensemble: k: a distance task reads the members' mean representation and a fused
    task a supervised member's mean logit; both score one row each and pass the export gate."""
    write(generate("network", 1200, seed=5), tmp_path / "net.jsonl")
    task_list = [t for t in tasks() if t["name"] != "kind"]
    raw = base_config({"net": net_source(tmp_path / "net.jsonl")}, task_list, tmp_path / "run", epochs=2)
    raw["model"]["ensemble"] = 3
    run = run_experiment(config_from_dict(raw), tmp_path / "run", out=None)
    tr = run.trainer
    rows = torch.as_tensor(tr.tasks["detector"].val_idx[:200])
    for name in ("far", "detector"):
        scores = score_rows(tr.model, name, tr.num["net"], tr.cat["net"], rows)["scores"]
        assert scores.shape == (len(rows),) and np.all((scores >= 0) & (scores <= 1))
    manifest = export_bundle(run.model_dir, tmp_path / "bundle", ExportOptions(), log=lambda s: None)
    for task in manifest.tasks:
        for per_output in task.parity["cases"].values():
            assert all(0 <= v <= 1e-5 for v in per_output.values()), (task.name, per_output)
