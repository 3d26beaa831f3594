"""Normal-only (novelty) training, time and group splits, and the few-positives warning.

Issue 12: novelty training on normal rows only logged pr_auc=nan every epoch,
stopped at epoch `patience` with selection -inf, and fell back to a 0.5
threshold although target_fpr needs only normal rows. Each test here trains a
tiny model for a few epochs (well under a second) or none at all.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from jenga_edge.contract.errors import ConfigError
from tests.conftest import base_config
from trainer.config import config_from_dict
from trainer.dataset import prepare
from trainer.predict import score_rows
from trainer.run import run_experiment
from trainer.train import Trainer

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def write_rows(path: Path, n: int = 600, attacks: int = 0, seed: int = 0, epoch_numbers: bool = False) -> Path:
    """Machine metrics of 6 hosts, one row a minute, written in shuffled order (so file
    order is not time order); the last `attacks` rows are spikes labelled 'anomaly'."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ts = T0 + timedelta(minutes=i)
        attack = i >= n - attacks
        rows.append(
            {
                "ts": ts.timestamp() if epoch_numbers else ts.isoformat().replace("+00:00", "Z"),
                "host": f"h{i % 6}",
                "cpu": float(rng.normal(50, 5) + (40 if attack else 0)),
                "mem": float(rng.normal(30, 3)),
                "label": "anomaly" if attack else "normal",
            }
        )
    order = rng.permutation(n)
    path.write_text("".join(json.dumps(rows[i]) + "\n" for i in order))
    return path


def novelty_task(rule) -> dict:
    return {
        "name": "novelty",
        "type": "anomaly_detection",
        "mode": "novelty",
        "source": "m",
        "label": {"column": "label", "positive_labels": ["anomaly"]},
        "threshold_rule": rule,
    }


def config(tmp_path: Path, tasks: list, data: Path | None = None, **training):
    data = data or write_rows(tmp_path / "m.jsonl")
    src = {"m": {"path": str(data), "ignore": ["ts", "host"]}}
    raw = base_config(src, tasks, tmp_path / "run", **training)
    raw["model"] = {"hidden_sizes": [16, 8], "dropout": 0.0, "decoder_sizes": [8]}
    return config_from_dict(raw)


def test_normal_only_novelty_threshold_is_the_normal_rows_quantile(tmp_path):
    cfg = config(tmp_path, [novelty_task({"target_fpr": 0.02})], epochs=8, early_stopping={"patience": 3})
    out = io.StringIO()
    run = run_experiment(cfg, tmp_path / "run", out=out)
    hist = run.result.history
    # Selection is the (negated) reconstruction loss: finite every epoch, never NaN/-inf,
    # so training is not cut at epoch `patience` for want of a metric.
    assert all(math.isfinite(h["selection"]) for h in hist)
    assert math.isfinite(run.result.best_score)
    assert all(math.isnan(h["val"]["novelty"]["pr_auc"]) for h in hist)  # no positives: undefined, not used
    m = run.result.metrics["novelty"]
    assert run.result.best_score == pytest.approx(-m["reconstruction_loss"])

    # The threshold against the model's own validation scores: at most 2 % of normal
    # rows at or above it, and the next lower score would exceed 2 %.
    tr = run.trainer
    idx = torch.as_tensor(tr.tasks["novelty"].val_idx)
    scores = score_rows(tr.model, "novelty", tr.num["m"], tr.cat["m"], idx)["scores"]
    t = run.result.thresholds["novelty"]
    assert t != 0.5 and "threshold_fallback" not in m
    assert np.mean(scores >= t) <= 0.02 < np.mean(scores >= scores[scores < t].max())
    assert m["fpr"] == pytest.approx(np.mean(scores >= t))
    assert "warnings" not in run.result.summary
    meta = json.loads((run.model_dir / "model.json").read_text())
    assert meta["tasks"][0]["threshold"] == t


def test_a_threshold_fallback_is_warned_and_recorded(tmp_path):
    # max_f1 cannot be tuned without positives: 0.5 is used, but said and kept.
    cfg = config(tmp_path, [novelty_task("max_f1")], epochs=2)
    out = io.StringIO()
    run = run_experiment(cfg, tmp_path / "run", out=out)
    m = run.result.metrics["novelty"]
    assert run.result.thresholds["novelty"] == 0.5
    assert "target_fpr" in m["threshold_fallback"]
    assert any("fell back to 0.5" in w for w in run.result.summary["warnings"])
    assert "warning: task 'novelty': max_f1 needs positive" in out.getvalue()
    meta = json.loads((run.model_dir / "model.json").read_text())
    assert "threshold_fallback" in meta["tasks"][0]["metrics"]


def test_few_validation_positives_are_warned(tmp_path):
    # 3 spikes, all in the latest rows: a time split puts them in validation, 3 < 10.
    supervised = {**novelty_task("max_f1"), "name": "spike", "mode": "supervised"}
    data = write_rows(tmp_path / "m.jsonl", attacks=3)
    cfg = config(tmp_path, [supervised], data, split="time", split_column="ts")
    out = io.StringIO()
    trainer = Trainer(cfg, *prepare(cfg), out=out)
    assert any("3 positive row(s)" in w and "min_validation_positives (10)" in w for w in trainer.warnings)
    assert "warning: task 'spike'" in out.getvalue()
    cfg = config(tmp_path, [supervised], data, split="time", split_column="ts", min_validation_positives=3)
    assert Trainer(cfg, *prepare(cfg), out=None).warnings == []


@pytest.mark.parametrize("epoch_numbers", [False, True])
def test_time_split_validates_on_the_latest_rows(tmp_path, epoch_numbers):
    data = write_rows(tmp_path / "m.jsonl", epoch_numbers=epoch_numbers)
    cfg = config(tmp_path, [novelty_task({"target_fpr": 0.02})], data, split="time", split_column="ts")
    sources, _ = prepare(cfg)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    key = (lambda r: r["ts"]) if epoch_numbers else (lambda r: datetime.fromisoformat(r["ts"]))
    src = sources["m"]
    assert src.val_idx.size == 120 and src.train_idx.size == 480
    assert max(key(rows[i]) for i in src.train_idx) < min(key(rows[i]) for i in src.val_idx)
    assert "ts" not in [f.name for f in src.schema.features]  # the split column is not a feature


def test_group_split_keeps_groups_apart(tmp_path):
    cfg = config(tmp_path, [novelty_task({"target_fpr": 0.02})], split="group", split_column="host")
    sources, _ = prepare(cfg)
    rows = [json.loads(line) for line in Path(cfg.sources["m"].path).read_text().splitlines()]
    src = sources["m"]
    train_hosts = {rows[i]["host"] for i in src.train_idx}
    val_hosts = {rows[i]["host"] for i in src.val_idx}
    assert train_hosts and val_hosts and not train_hosts & val_hosts
    assert src.train_idx.size + src.val_idx.size == 600
    assert 100 <= src.val_idx.size <= 200  # whole hosts of 100 rows, about 20 %


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"split": "time"}, "training.split_column: split: time needs the column"),
        ({"split_column": "ts"}, "training.split_column: is only for split: time or split: group"),
        ({"split": "weekly"}, "training.split: expected one of 'random', 'time', 'group'"),
    ],
)
def test_split_config_errors_name_the_key(tmp_path, training, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, [novelty_task({"target_fpr": 0.02})], **training)
