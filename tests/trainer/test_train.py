import json

import numpy as np
import pytest
import torch

from tests.conftest import base_config, net_source, network_tasks
from trainer.config import config_from_dict
from trainer.inference import evaluate_file
from trainer.run import run_experiment

pytestmark = pytest.mark.slow  # every test here trains a model


def test_reaches_the_quality_bar_on_held_out_generated_data(trained_network, data_dir):
    # network_test.jsonl comes from another seed: never seen in training,
    # early stopping or threshold selection.
    results = evaluate_file(str(trained_network.model_dir), str(data_dir / "network_test.jsonl"))
    assert results["threat"]["roc_auc"] >= 0.95
    assert results["threat"]["f1"] >= 0.85
    assert results["attack_type"]["accuracy"] >= 0.85


def test_history_is_written_per_epoch(trained_network):
    lines = (trained_network.model_dir.parent / "metrics.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert len(history) == len(trained_network.result.history) >= 2
    first = history[0]
    assert set(first) >= {"epoch", "train_loss", "val", "selection", "lr", "samples_per_second"}
    assert set(first["val"]) == {"threat", "attack_type"}
    assert {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"} <= set(first["val"]["threat"])
    assert {"accuracy", "macro_f1"} <= set(first["val"]["attack_type"])


def test_threshold_rule_target_fpr_is_met_on_validation(data_dir, tmp_path):
    tasks = network_tasks(multitask=False)
    tasks[0]["threshold_rule"] = {"target_fpr": 0.02}
    cfg = config_from_dict(base_config({"net": net_source(data_dir / "network.jsonl")}, tasks, tmp_path))
    run = run_experiment(cfg, tmp_path, out=None)
    m = run.result.metrics["threat"]
    assert m["fpr"] <= 0.02
    assert run.result.thresholds["threat"] == m["threshold"]


def test_early_stopping_stops_and_restores_the_best_epoch(data_dir, tmp_path):
    cfg = config_from_dict(
        base_config(
            {"net": net_source(data_dir / "network.jsonl")},
            network_tasks(False),
            tmp_path,
            epochs=40,
            learning_rate=0.02,
            early_stopping={"patience": 2},
        )
    )
    run = run_experiment(cfg, tmp_path, out=None)
    hist = run.result.history
    assert len(hist) < 40
    best = max(h["selection"] for h in hist)
    assert run.result.best_score == pytest.approx(best)
    assert run.result.metrics["threat"]["pr_auc"] == pytest.approx(best, abs=1e-9)


def test_same_seed_same_weights(data_dir, tmp_path):
    def weights(sub):
        cfg = config_from_dict(
            base_config({"net": net_source(data_dir / "network.jsonl")}, network_tasks(), tmp_path / sub, epochs=2)
        )
        return run_experiment(cfg, tmp_path / sub, out=None).trainer.model.state_dict()

    a, b = weights("a"), weights("b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_heterogeneous_sources_share_one_trunk(data_dir, tmp_path):
    sources = {
        "net": net_source(data_dir / "network.jsonl"),
        "tx": {"path": str(data_dir / "fraud.jsonl")},
        "ops": {"path": str(data_dir / "aiops.jsonl"), "ignore": ["host"]},
    }
    tasks = [
        network_tasks(False)[0],
        {"name": "fraud", "type": "anomaly_detection", "source": "tx", "label": {"column": "label"}},
        {
            "name": "incident",
            "type": "anomaly_detection",
            "source": "ops",
            "label": {"column": "label", "positive_labels": ["incident"]},
        },
    ]
    cfg = config_from_dict(base_config(sources, tasks, tmp_path, epochs=15, task_sampling="proportional"))
    run = run_experiment(cfg, tmp_path, out=None)
    model = run.trainer.model
    assert set(model.adapters) == {"net", "tx", "ops"}
    schemas = {n: s.schema.names for n, s in run.trainer.sources.items()}
    assert "transaction_amount" in schemas["tx"] and "cpu_usage" in schemas["ops"]
    assert not set(schemas["tx"]) & set(schemas["ops"])
    for name in ("threat", "fraud", "incident"):
        assert run.result.metrics[name]["roc_auc"] >= 0.9, (name, run.result.metrics[name])
    saved = json.loads((run.model_dir / "model.json").read_text())
    assert set(saved["schemas"]) == {"net", "tx", "ops"}


def test_novelty_task_scores_unseen_anomalies_above_normal_rows(data_dir, tmp_path):
    # Trained on normal rows only: attacks of every type are unseen patterns.
    tasks = [
        {
            "name": "odd",
            "type": "anomaly_detection",
            "mode": "novelty",
            "source": "net",
            "label": {"column": "label", "positive_labels": ["malicious"]},
        }
    ]
    src = net_source(data_dir / "network.jsonl")
    src["ignore"] += ["attack_type"]
    cfg = config_from_dict(base_config({"net": src}, tasks, tmp_path, epochs=20, learning_rate=0.005))
    run = run_experiment(cfg, tmp_path, out=None)
    task = run.trainer.tasks["odd"]
    assert (task.y[task.train_idx] == 0).all()
    m = run.result.metrics["odd"]
    assert m["roc_auc"] >= 0.85, m
    # A flow unlike anything in the data: scored as anomalous.
    import trainer.checkpoint as ck
    from trainer.inference import _tensors
    from trainer.predict import score_rows

    loaded = ck.load(run.model_dir)
    weird = [
        {
            "packet_size": 9000,
            "port": 31337,
            "protocol": "icmp",
            "duration": 9000.0,
            "request_count": 100000,
            "bytes_sent": 1e10,
            "bytes_received": 0,
        }
    ]
    num, cat = _tensors(loaded, weird)["net"]
    s = score_rows(loaded.model, "odd", num, cat)["scores"][0]
    normal_val = task.val_idx[task.y[task.val_idx] == 0]
    normal_scores = score_rows(
        loaded.model,
        "odd",
        torch.as_tensor(run.trainer.sources["net"].num),
        torch.as_tensor(run.trainer.sources["net"].cat),
        torch.as_tensor(normal_val),
    )["scores"]
    assert s > np.quantile(normal_scores, 0.99)
