"""End to end through the real CLI (click's CliRunner: in process, as a user would run it)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import base_config, net_source, network_tasks
from trainer.cli import main

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # trains models


def jenga_train(*args) -> SimpleNamespace:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def write_config(tmp_path, data_dir, **training) -> Path:
    cfg = base_config(
        {"net": net_source(data_dir / "network.jsonl")}, network_tasks(), tmp_path / "out", epochs=3, **training
    )
    cfg["training"]["progress"] = True
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_evaluate_predict(tmp_path, data_dir):
    cfg = write_config(tmp_path, data_dir)
    proc = jenga_train("--config", str(cfg), "--set", "training.epochs=2")
    assert proc.returncode == 0, proc.stderr
    assert "epoch   2/2" in proc.stderr and "best epoch" in proc.stdout
    model = tmp_path / "out" / "best_model"
    assert (model / "model.json").is_file()
    assert len((tmp_path / "out" / "metrics.jsonl").read_text().splitlines()) == 2

    ev = jenga_train("evaluate", "--model", str(model), "--data", str(data_dir / "network_test.jsonl"), "--json")
    assert ev.returncode == 0, ev.stderr
    assert set(json.loads(ev.stdout)) == {"threat", "attack_type"}

    pred = jenga_train(
        "predict",
        "--model",
        str(model),
        "--data",
        str(REPO / "examples/network_traffic.json"),
        "--threshold",
        "0.5",
        "--alerts",
        str(tmp_path / "alerts.jsonl"),
    )
    assert pred.returncode == 0, pred.stderr
    rows = [json.loads(x) for x in pred.stdout.splitlines()]
    assert len(rows) == 30 and set(rows[0]) == {"row", "threat", "attack_type"}
    summary = json.loads(pred.stderr.strip().splitlines()[-1])
    assert summary["sentinel_alerts"]["predict"]["threat"] == len((tmp_path / "alerts.jsonl").read_text().splitlines())


def test_bad_config_is_one_line_and_exit_2(tmp_path, data_dir):
    cfg = write_config(tmp_path, data_dir)
    text = cfg.read_text().replace("epochs:", "epochz:")
    cfg.write_text(text)
    proc = jenga_train("--config", str(cfg))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "training.epochz" in lines[0] and "did you mean 'epochs'" in lines[0]


def test_bad_override_and_missing_model(tmp_path, data_dir):
    cfg = write_config(tmp_path, data_dir)
    proc = jenga_train("--config", str(cfg), "--set", "training.batch_size=lots")
    assert proc.returncode == 2 and "training.batch_size: expected an integer" in proc.stderr
    proc = jenga_train("evaluate", "--model", str(tmp_path), "--data", str(data_dir / "network.jsonl"))
    assert proc.returncode == 2 and "not a best_model directory" in proc.stderr


def test_no_arguments_prints_help_and_fails():
    proc = jenga_train()
    assert proc.returncode == 2 and "--config" in proc.stdout


def test_holdout_protocol_reports_mean_and_spread(tmp_path, data_dir):
    cfg = write_config(tmp_path, data_dir)
    proc = jenga_train(
        "holdout", "--config", str(cfg), "--task", "threat", "--folds", "3", "--output-dir", str(tmp_path / "ho")
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ho" / "holdout.json").read_text())
    assert report["group_column"] == "attack_type"
    held = sorted(g for f in report["folds"] for g in f["held_out"])
    assert held == ["ddos", "exfiltration", "port_scan"]  # each attack type held out once
    for f in report["folds"]:
        assert 0 <= f["unseen_recall"] <= 1 and f["n_unseen"] > 0
    s = report["summary"]["unseen_roc_auc"]
    assert s["n"] == 3 and s["min"] <= s["mean"] <= s["max"]
    assert "unseen_recall" in proc.stdout


def test_generate_to_an_unknown_suffix_is_one_line(tmp_path):
    proc = jenga_train("generate", "--use-case", "network", "--rows", "5", "-o", tmp_path / "x.txt")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: cannot write {tmp_path / 'x.txt'}: the name must end in .jsonl, .json or "
        ".csv (the format follows it)\n"
    )
