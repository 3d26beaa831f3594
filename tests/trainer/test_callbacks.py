import json

import numpy as np
import pytest
import torch

from tests.conftest import base_config, net_source, network_tasks
from trainer.callbacks import BatchInfo, Callback, JsonlAlertHandler, NestedLearningCallback, SecuritySentinelCallback
from trainer.config import config_from_dict
from trainer.inference import predict_file
from trainer.run import run_experiment


def test_sentinel_alerts_on_rows_at_or_above_threshold():
    got = []
    cb = SecuritySentinelCallback(threshold=0.9, action_target="firewall", handler=got.append)
    scores = np.array([0.1, 0.95, 0.9, 0.89, 1.0])
    cb.on_batch_end(None, BatchInfo("predict", "net_watch", "anomaly_detection", scores, ["a", "b", "c", "d", "e"]))
    assert [a["row_id"] for a in got] == ["b", "c", "e"]
    assert got[0]["timestamp"].endswith("Z")
    assert got[0] == {
        "timestamp": got[0]["timestamp"],
        "phase": "predict",
        "task": "net_watch",
        "row_id": "b",
        "score": 0.95,
        "threshold": 0.9,
        "action_target": "firewall",
    }
    assert cb.summary()["sentinel_alerts"] == {"predict": {"net_watch": 3}}


def test_sentinel_finds_binary_tasks_by_type_not_by_name():
    got = []
    cb = SecuritySentinelCallback(0.5, handler=got.append)
    probs = np.array([[0.0, 1.0], [1.0, 0.0]])
    cb.on_batch_end(None, BatchInfo("evaluate", "threat", "classification", probs, [0, 1]))
    cb.on_batch_end(None, BatchInfo("evaluate", "flows", "anomaly_detection", np.array([0.7]), [7]))
    assert [(a["task"], a["row_id"]) for a in got] == [("flows", 7)]


def test_sentinel_respects_phases_and_validates_threshold():
    got = []
    cb = SecuritySentinelCallback(0.5, handler=got.append, phases=("predict",))
    cb.on_batch_end(None, BatchInfo("train", "t", "anomaly_detection", np.array([0.9]), [0]))
    assert got == []
    with pytest.raises(ValueError):
        SecuritySentinelCallback(threshold=1.5)


@pytest.mark.slow
def test_sentinel_fires_during_training_and_evaluation(data_dir, tmp_path):
    cfg = config_from_dict(
        base_config({"net": net_source(data_dir / "network.jsonl")}, network_tasks(), tmp_path, epochs=3)
    )
    seen = []
    cb = SecuritySentinelCallback(0.8, handler=seen.append)
    run = run_experiment(cfg, tmp_path, callbacks=[cb], out=None)
    phases = {(a["phase"], a["task"]) for a in seen}
    assert ("train", "threat") in phases and ("evaluate", "threat") in phases
    assert not any(a["task"] == "attack_type" for a in seen)
    assert run.result.summary["sentinel_alerts"]["train"]["threat"] > 0


def test_sentinel_on_a_known_malicious_batch(trained_network, tmp_path):
    from trainer.synthetic import generate

    fresh = generate("network", 2000, seed=2024)
    floods = [r for r in fresh if r["attack_type"] == "ddos"][:30]
    normal = [r for r in fresh if r["label"] == "normal"][:30]
    data = tmp_path / "batch.json"
    data.write_text(json.dumps(floods + normal))
    alerts = tmp_path / "alerts.jsonl"
    summary = predict_file(
        str(trained_network.model_dir), str(data), "auto", str(tmp_path / "s.jsonl"), 0.9, "firewall", str(alerts)
    )
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert summary["sentinel_alerts"]["predict"]["threat"] == len(lines)
    flagged = {a["row_id"] for a in lines}
    assert len(flagged & set(range(30))) >= 24  # most floods alert
    assert len(flagged - set(range(30))) <= 3  # few normal rows do
    assert all(a["task"] == "threat" and a["score"] >= 0.9 and a["action_target"] == "firewall" for a in lines)
    scores = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(scores) == 60 and "label" in scores[0]["attack_type"]


def test_jsonl_handler_appends_and_syncs(tmp_path):
    h = JsonlAlertHandler(tmp_path / "a" / "alerts.jsonl")
    h({"x": 1})
    h({"x": 2})
    h.close()
    assert [json.loads(x)["x"] for x in (tmp_path / "a" / "alerts.jsonl").read_text().splitlines()] == [1, 2]


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_start(self, ctx):
        self.calls.append("train_start")

    def on_epoch_start(self, ctx, epoch):
        self.calls.append("epoch_start")

    def on_epoch_end(self, ctx, epoch, logs):
        self.calls.append("epoch_end")

    def on_evaluate(self, ctx, metrics):
        self.calls.append("evaluate")

    def on_train_end(self, ctx, summary):
        self.calls.append("train_end")


@pytest.mark.slow
def test_hooks_fire_in_order(data_dir, tmp_path):
    cfg = config_from_dict(
        base_config({"net": net_source(data_dir / "network.jsonl")}, network_tasks(False), tmp_path, epochs=2)
    )
    rec = Recorder()
    run_experiment(cfg, tmp_path, callbacks=[rec], out=None)
    assert rec.calls == ["train_start", "epoch_start", "epoch_end", "epoch_start", "epoch_end", "evaluate", "train_end"]


# ------------------------------------------------------------ nested learning


def _drift(before: dict, model, prefix: str) -> float:
    return sum(float((p.detach() - before[n]).norm()) for n, p in model.named_parameters() if n.startswith(prefix))


@pytest.mark.slow
def test_nested_learning_keeps_the_trunk_while_heads_adapt(data_dir, tmp_path):
    src = {"net": net_source(data_dir / "network.jsonl")}
    base = run_experiment(
        config_from_dict(base_config(src, network_tasks(), tmp_path / "base", epochs=4)), tmp_path / "base", out=None
    )
    before = {n: p.detach().clone() for n, p in base.trainer.model.named_parameters()}
    # Retrain on new data (another generator seed) from the saved model.
    new = {"net": net_source(data_dir / "network_test.jsonl")}

    def retrain(sub, callbacks):
        cfg = config_from_dict(
            base_config(
                new,
                network_tasks(),
                tmp_path / sub,
                epochs=4,
                early_stopping={"patience": 10},
                init_from=str(base.model_dir),
            )
        )
        return run_experiment(cfg, tmp_path / sub, callbacks=callbacks, out=None).trainer.model

    plain = retrain("plain", [])
    nested_cb = NestedLearningCallback(trunk_lr_scale=0.1, accumulate_steps=4)
    nested = retrain("nested", [nested_cb])
    trunk_plain, trunk_nested = _drift(before, plain, "trunk."), _drift(before, nested, "trunk.")
    heads_plain, heads_nested = _drift(before, plain, "heads."), _drift(before, nested, "heads.")
    assert trunk_nested < 0.3 * trunk_plain, (trunk_nested, trunk_plain)
    assert heads_nested > 0.5 * heads_plain, (heads_nested, heads_plain)  # heads still learn
    assert nested_cb.summary()["nested_learning"]["trunk_updates"] > 0


def test_nested_learning_accumulates_trunk_gradients():
    class Ctx:
        pass

    ctx = Ctx()
    ctx.model = torch.nn.Module()
    ctx.model.trunk = torch.nn.Linear(2, 1, bias=False)
    cb = NestedLearningCallback(trunk_lr_scale=0.5, accumulate_steps=3)
    w = ctx.model.trunk.weight
    grads = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[5.0, 9.0]])]
    for step, g in enumerate(grads):
        w.grad = g.clone()
        cb.on_before_optimizer_step(ctx, step)
        if step < 2:
            assert w.grad is None  # held back: no trunk update this step
    assert torch.allclose(w.grad, torch.tensor([[3.0, 5.0]]))  # the mean of the three
