"""A tree-model task from training to an alert: train (a LightGBM task beside two network
tasks), export (its TreeEnsemble graph in the same bundle), then the torch-free agent
verifies, scores with onnxruntime, and a rule on the tree task alerts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from export.bundle_writer import ExportOptions, export_bundle
from jenga_edge.bundle import verify_bundle
from jenga_edge.score import Scorer
from trainer import checkpoint
from trainer.config import config_from_dict
from trainer.readers import read_rows
from trainer.run import run_experiment

from .conftest import base_config, net_source, network_tasks
from .jenga_edge.test_agent import REPO, check_accounting, read_jsonl, run_to_eof, write_config

pytest.importorskip("lightgbm")

TREES = {"kind": "lightgbm", "n_estimators": 60, "num_threads": 1, "early_stopping_rounds": 10}


@pytest.fixture(scope="module")
def tree_bundle(tmp_path_factory, data_dir):
    threat, attack = network_tasks()
    tasks = [dict(threat, name="threat_tree", learner=TREES), threat, attack]
    out = tmp_path_factory.mktemp("trees_e2e")
    cfg = config_from_dict(base_config({"net": net_source(data_dir / "network.jsonl")}, tasks, out, epochs=2))
    run = run_experiment(cfg, out / "run", out=None)
    export_bundle(run.model_dir, out / "bundle", ExportOptions(), log=lambda s: None)
    return run.model_dir, out / "bundle"


@pytest.mark.slow
def test_the_tree_graph_is_in_the_bundle_and_scores_as_the_booster(tree_bundle, data_dir):
    model_dir, bundle_dir = tree_bundle
    bundle = verify_bundle(bundle_dir)
    entry = bundle.tasks["threat_tree"]
    assert entry.learner == "lightgbm" and bundle.tasks["threat"].learner == "network"
    assert bundle.manifest.requires.onnxruntime_min_version == "1.20"
    domains = {o.domain for o in onnx.load_from_string(bundle.graph(entry.file)).opset_import}
    assert "ai.onnx.ml" in domains
    assert [m.tasks for m in bundle.manifest.merged] == [["threat", "attack_type"]]  # the trunk's tasks only
    scorer = Scorer(bundle)
    # The merged graph scores the network tasks; the tree task runs its own graph beside it.
    assert scorer.merged and scorer.graph_refs["threat_tree"]["file"] == "threat_tree.onnx"
    assert scorer.graph_refs["threat"]["file"] == "merged-net.onnx"
    rows = read_rows(data_dir / "network_test.jsonl")
    num, cat = entry.schema.vectorize(rows, strict=False)
    got = scorer.score(num, cat).score["threat_tree"]
    want = checkpoint.load(model_dir).trees["threat_tree"].predict(num, cat)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_a_rule_on_the_tree_task_alerts_and_check_flags_a_threat(tree_bundle, data_dir, tmp_path):
    _, bundle_dir = tree_bundle
    rules = [{"rule": "tree_threat", "task": "threat_tree", "priority": "error", "actions": ["alert"]}]
    cfg = write_config(tmp_path, bundle_dir, [{"type": "stdin"}], rules=rules)
    summary = run_to_eof(cfg, data_dir / "network_test.jsonl")
    check_accounting(summary, tmp_path)
    alerts = [a for a in read_jsonl(tmp_path / "alerts.jsonl") if a["event_type"] == "alert"]
    assert summary["scored"] == 1500 and alerts
    assert {a["rule"] for a in alerts} == {"tree_threat"}
    assert all(a["model"]["file"] == "threat_tree.onnx" for a in alerts)
    malicious = [r for r in read_rows(data_dir / "network_test.jsonl") if r["label"] == "malicious"][:50]
    events = tmp_path / "malicious.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in malicious))
    proc = subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "check", "--bundle", str(bundle_dir), "--tasks", "threat_tree",
         "-f", str(events)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "threat_tree" in proc.stdout, proc.stderr  # 1: a threat was found


@pytest.mark.slow
def test_inspect_names_each_tasks_learner(tree_bundle):
    _, bundle_dir = tree_bundle
    proc = subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "inspect", "--bundle", str(bundle_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:4] == ["task", "type", "mode", "learner"])
    rows = [line.split() for line in lines[start + 1 :]]
    rows = rows[: rows.index([])] if [] in rows else rows  # the tasks table ends at a blank line
    col = lines[start].split().index("learner")
    learners = {r[0]: r[col] for r in rows}
    assert learners == {"threat_tree": "lightgbm", "threat": "network", "attack_type": "network"}, proc.stdout
