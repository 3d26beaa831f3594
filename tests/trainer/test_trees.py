"""Tree-model tasks (`learner: lightgbm`, trainer/trees.py): config, training, best_model/."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from jenga_edge.contract.errors import BundleError, ConfigError
from trainer import checkpoint
from trainer import metrics as M
from trainer.config import config_from_dict
from trainer.inference import evaluate_file

from ..conftest import base_config, net_source, network_tasks
from .test_config import BASE, load_err, raw

FAST_TREES = {"kind": "lightgbm", "n_estimators": 60, "num_threads": 1, "early_stopping_rounds": 10}


def with_learner(i: int, **task) -> dict:
    data = raw()
    data["tasks"][i].update(task)
    return data


@pytest.mark.parametrize(
    ("task", "where", "message"),
    [
        ({"learner": "xgboost"}, "tasks[0].learner", "xgboost"),
        ({"learner": {"kind": "lightgbm", "num_leaves": 1}}, "tasks[0].learner.num_leaves", ">= 2"),
        ({"learner": {"kind": "lightgbm", "n_estimatorz": 5}}, "tasks[0].learner", "n_estimatorz"),
        ({"learner": "lightgbm", "mode": "novelty"}, "tasks[0].learner", "a tree model is for supervised tasks"),
    ],
)
def test_a_bad_learner_names_its_key_path(task, where, message):
    err = load_err(with_learner(0, **task))
    assert f"exp.yaml: {where}" in err and message in err


def test_the_learner_shorthand_and_the_default():
    cfg = config_from_dict(with_learner(1, learner="lightgbm"), check_files=False)
    assert cfg.tasks[0].tree_learner() is None  # the network head, as before
    learner = cfg.tasks[1].tree_learner()
    assert learner is not None and learner.kind == "lightgbm" and learner.num_leaves == 31
    assert BASE["tasks"][0].get("learner") is None


def test_without_lightgbm_the_error_names_the_extra(monkeypatch):
    from trainer import trees

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now raises ImportError
    with pytest.raises(ConfigError, match=r"lightgbm is not installed; pip install 'jenga-ai-edge\[trees\]'"):
        trees.lightgbm()


def tree_tasks() -> list[dict]:
    threat, attack = network_tasks()
    return [
        dict(threat, name="threat_tree", learner=FAST_TREES, threshold_rule={"target_fpr": 0.02}),
        dict(attack, learner=FAST_TREES),
        threat,
    ]


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory, data_dir):
    from trainer.run import run_experiment

    out = tmp_path_factory.mktemp("trees")
    cfg = config_from_dict(
        base_config({"net": net_source(data_dir / "network.jsonl")}, tree_tasks(), out, epochs=2, seed=3)
    )
    return run_experiment(cfg, out, out=None)


@pytest.mark.slow
def test_tree_tasks_train_beside_a_network_task_and_round_trip(tree_run):
    trainer = tree_run.trainer
    assert set(trainer.trees) == {"threat_tree", "attack_type"} and set(trainer.model.heads) == {"threat"}
    loaded = checkpoint.load(tree_run.model_dir)
    meta = json.loads((tree_run.model_dir / checkpoint.META_FILE).read_text())
    entry = next(t for t in meta["tasks"] if t["name"] == "threat_tree")
    assert entry["learner"]["kind"] == "lightgbm" and (tree_run.model_dir / entry["learner"]["file"]).is_file()
    src = trainer.sources["net"]
    for name in ("threat_tree", "attack_type"):
        np.testing.assert_array_equal(
            loaded.trees[name].predict(src.num, src.cat), trainer.trees[name].predict(src.num, src.cat)
        )
    # The threshold rule is applied to the tree's validation scores as for a network task.
    task = trainer.tasks["threat_tree"]
    val_scores = trainer.trees["threat_tree"].predict(src.num[task.val_idx], src.cat[task.val_idx])
    want = M.choose_threshold(task.y[task.val_idx], val_scores, {"target_fpr": 0.02})
    assert tree_run.result.thresholds["threat_tree"] == pytest.approx(want)


@pytest.mark.slow
def test_evaluate_scores_a_tree_task_from_best_model(tree_run, data_dir):
    results = evaluate_file(str(tree_run.model_dir), str(data_dir / "network_test.jsonl"))
    assert results["threat_tree"]["roc_auc"] > 0.9 and results["attack_type"]["macro_f1"] > 0.5
    assert "threat" in results


@pytest.mark.slow
def test_a_changed_booster_file_is_refused(tree_run, tmp_path):
    import shutil

    d = tmp_path / "best_model"
    shutil.copytree(tree_run.model_dir, d)
    path = d / "threat_tree.lightgbm.txt"
    path.write_text(path.read_text().replace("learning_rate", "learning_rate "))
    with pytest.raises(BundleError, match=r"threat_tree.lightgbm.txt: missing or its sha256 does not match"):
        checkpoint.load(d)


def test_lightgbm_is_imported_only_by_a_task_that_uses_it():
    import subprocess
    from pathlib import Path

    code = (
        "import sys\n"
        "import trainer.run, trainer.inference, trainer.holdout, export.bundle_writer, jenga_edge.agent\n"
        "assert 'lightgbm' not in sys.modules, 'imported at start'\n"
        "from trainer import trees\n"
        "trees.lightgbm()\n"
        "assert 'lightgbm' in sys.modules\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.slow
def test_init_from_refits_the_trees_and_refuses_a_head_turned_tree(tree_run, data_dir, tmp_path):
    from trainer.run import run_experiment

    def cfg(tasks):
        return config_from_dict(
            base_config(
                {"net": net_source(data_dir / "network.jsonl")},
                tasks,
                tmp_path,
                epochs=1,
                init_from=str(tree_run.model_dir),
            )
        )

    again = run_experiment(cfg(tree_tasks()), tmp_path / "again", out=None)
    assert set(again.trainer.trees) == {"threat_tree", "attack_type"}
    checkpoint.load(again.model_dir)  # the continued network and the refitted trees load together
    turned = tree_tasks()
    turned[2]["learner"] = FAST_TREES
    with pytest.raises(ConfigError, match=r"task 'threat' is a network head in .*a tree model cannot continue it"):
        run_experiment(cfg(turned), tmp_path / "turned", out=None)


@pytest.mark.slow
def test_refit_boosts_again_on_training_and_validation_rows_keeping_the_early_stopped_threshold(tmp_path, data_dir):
    from trainer import trees
    from trainer.run import run_experiment

    threat, _ = network_tasks()
    learner = dict(FAST_TREES, n_estimators=200, refit=True)
    task = dict(threat, name="threat_tree", learner=learner, threshold_rule={"target_fpr": 0.02})
    cfg = config_from_dict(
        base_config({"net": net_source(data_dir / "network.jsonl")}, [task, threat], tmp_path, epochs=1)
    )
    run = run_experiment(cfg, tmp_path, out=None)
    tr, t = run.trainer, run.trainer.tasks["threat_tree"]
    src = tr.sources["net"]
    m = run.result.metrics["threat_tree"]
    n_rows = len(t.train_idx) + len(t.val_idx)
    assert m["refit_rows"] == n_rows and tr.trees["threat_tree"].best_iteration == m["refit_rounds"]
    # The early-stopped booster (same seed and rows) gives the threshold; the refit one is what is saved.
    stopped = trees.fit(
        cfg.tasks[0].tree_learner(),
        src.num,
        src.cat,
        t.y,
        t.train_idx,
        t.val_idx,
        2,
        trees.class_weights(t.y[t.train_idx], 2, "balanced"),
        "pr_auc",
        cfg.training.seed,
    )
    val = stopped.predict(src.num[t.val_idx], src.cat[t.val_idx])
    assert run.result.thresholds["threat_tree"] == pytest.approx(
        M.choose_threshold(t.y[t.val_idx], val, {"target_fpr": 0.02})
    )
    assert m["refit_rounds"] == max(1, round(stopped.best_iteration * n_rows / len(t.train_idx)))
    loaded = checkpoint.load(run.model_dir)
    np.testing.assert_array_equal(
        loaded.trees["threat_tree"].predict(src.num, src.cat), tr.trees["threat_tree"].predict(src.num, src.cat)
    )
    assert not np.array_equal(loaded.trees["threat_tree"].predict(src.num, src.cat), stopped.predict(src.num, src.cat))
