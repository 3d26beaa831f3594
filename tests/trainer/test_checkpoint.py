import json
import shutil

import numpy as np
import pytest
import torch

from jenga_edge.contract.errors import BundleError
from trainer import checkpoint
from trainer.predict import score_rows


def test_best_model_holds_everything_export_needs(trained_network):
    d = trained_network.model_dir
    meta = json.loads((d / "model.json").read_text())
    assert meta["format"] == "jenga.best_model" and meta["format_version"] == 2
    assert set(meta["schemas"]) == {"net"}
    assert meta["config"]["project_name"] == "test"
    by_name = {t["name"]: t for t in meta["tasks"]}
    assert 0 < by_name["threat"]["threshold"] < 1
    assert by_name["threat"]["labels"]["classes"] == ["normal", "threat"]
    assert by_name["attack_type"]["labels"]["classes"] == ["ddos", "exfiltration", "none", "port_scan"]
    assert by_name["threat"]["metrics"]["roc_auc"] > 0.9
    assert meta["weights"]["sha256"] == checkpoint.sha256_file(d / "weights.pt")


def test_weights_load_with_weights_only(trained_network):
    state = torch.load(trained_network.model_dir / "weights.pt", weights_only=True)
    assert any(k.startswith("trunk.") for k in state)


def test_round_trip_reproduces_predictions_bit_for_bit(trained_network):
    loaded = checkpoint.load(trained_network.model_dir)
    src = trained_network.trainer.sources["net"]
    num, cat = torch.as_tensor(src.num), torch.as_tensor(src.cat)
    trained = trained_network.trainer.model.cpu()
    for task in ("threat", "attack_type"):
        a = score_rows(trained, task, num, cat)["scores"]
        b = score_rows(loaded.model, task, num, cat)["scores"]
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # and the saved schema vectorizes raw rows exactly as training did
    assert loaded.schemas["net"].sha256 == src.schema.sha256


def test_tampered_weights_are_refused(trained_network, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(trained_network.model_dir, d)
    raw = bytearray((d / "weights.pt").read_bytes())
    raw[-100] ^= 0xFF
    (d / "weights.pt").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="sha256"):
        checkpoint.load(d)


def test_foreign_or_missing_directories_are_refused(trained_network, tmp_path):
    with pytest.raises(BundleError, match="not a best_model directory"):
        checkpoint.load(tmp_path)
    d = tmp_path / "m"
    shutil.copytree(trained_network.model_dir, d)
    meta = json.loads((d / "model.json").read_text())
    meta["format_version"] = 99
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="format_version 99"):
        checkpoint.load(d)
