"""With an event model, a task's label and group columns may be paths into the record
(the lab's `lab.label`, `lab.tool`), read the way features are; the agent never needs them."""

from __future__ import annotations

import gzip
import json
import random

import numpy as np

from trainer.config import config_from_dict
from trainer.dataset import Holdout, prepare
from trainer.holdout import attack_groups

from ..conftest import base_config


def eve(path, n=600, seed=3):
    rng = random.Random(seed)
    with gzip.open(path, "wt") as fh:
        for i in range(n):
            tool = rng.choice(["web", "web", "dns", "nmap", "hydra"])
            attack = tool in ("nmap", "hydra")
            rec = {"event_type": "flow" if i % 5 else "dns", "src_ip": f"10.0.0.{i % 7}", "proto": "TCP",
                   "flow": {"pkts_toserver": rng.randint(1, 3) if attack else rng.randint(5, 50),
                            "bytes_toserver": rng.randint(40, 200) if attack else rng.randint(500, 9000)},
                   "lab": {"label": "attack" if attack else "benign", "tool": tool}}  # fmt: skip
            fh.write(json.dumps(rec) + "\n")


def config(tmp_path):
    eve(tmp_path / "eve.jsonl.gz")
    source = {
        "path": str(tmp_path / "eve.jsonl.gz"),
        "events": {"where": {"event_type": "flow"}, "mapping": {"pkts": "flow.pkts_toserver",
                   "bytes": "flow.bytes_toserver"}},
        "features": ["proto", "pkts", "bytes"],
    }  # fmt: skip
    task = {"name": "threat", "type": "anomaly_detection", "source": "eve", "group_column": "lab.tool",
            "label": {"column": "lab.label", "positive_labels": ["attack"]}}  # fmt: skip
    return config_from_dict(base_config({"eve": source}, [task], tmp_path / "run", epochs=1), "eve.yaml")


def test_a_label_path_is_read_from_the_nested_record(tmp_path):
    cfg = config(tmp_path)
    sources, tasks = prepare(cfg)
    with gzip.open(tmp_path / "eve.jsonl.gz", "rt") as fh:
        raw = [json.loads(x) for x in fh]
    flows = [r for r in raw if r["event_type"] == "flow"]
    expected = np.array([r["lab"]["label"] == "attack" for r in flows], dtype=np.int64)
    np.testing.assert_array_equal(tasks[0].y, expected)
    assert sources["eve"].schema.names == ["proto", "pkts", "bytes"]  # labels never become features
    assert set(tasks[0].groups.tolist()) == {"web", "dns", "nmap", "hydra"}


def test_holdout_groups_by_a_path_and_keeps_the_group_out(tmp_path):
    cfg = config(tmp_path)
    column, groups = attack_groups(cfg, "threat")
    assert column == "lab.tool" and sorted(groups) == ["hydra", "nmap"]
    sources, tasks = prepare(cfg, Holdout("eve", "lab.tool", frozenset({"nmap"})))
    src = sources["eve"]
    held = set(tasks[0].groups[src.held_idx].tolist())
    trained = set(tasks[0].groups[src.train_idx].tolist())
    assert held == {"nmap"} and "nmap" not in trained and "hydra" in trained
