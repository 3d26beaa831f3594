"""The trainer's text path: schema fitting, byte storage, batches, and the modes a text source
supports (supervised, distance, fused). Export and the CLI: tests/export/test_text_export.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import base_config
from tests.text_data import write_names
from trainer.config import config_from_dict
from trainer.dataset import prepare
from trainer.model import batch_inputs
from trainer.run import run_experiment

DGA = {"column": "label", "positive_labels": ["dga"]}


def experiment(tmp_path, tasks: list[dict], rows: int = 300, **model) -> dict:
    data = write_names(tmp_path / "names.jsonl", rows, seed=2)
    text = {"domain": {"max_bytes": 32, "normalize": "dns", "truncate": "tail"}}
    src = {
        "dns": {"path": str(data), "features": ["domain"], "kinds": {"domain": "text"}, "text": text},
        "flows": {"path": str(data), "features": ["qlen"]},
    }
    raw = base_config(src, tasks, tmp_path / "run", epochs=1, batch_size=64)
    raw["model"].update({"hidden_sizes": [16], "text": {"channels": 8, "widths": [2, 3]}, **model})
    return raw


def test_text_columns_are_stored_as_bytes_and_batched_as_trimmed_ids(tmp_path):
    tasks = [
        {"name": "dga", "type": "anomaly_detection", "source": "dns", "label": DGA},
        {"name": "flows", "type": "anomaly_detection", "source": "flows", "label": DGA},
    ]
    sources, _ = prepare(config_from_dict(experiment(tmp_path, tasks)))
    dns, flows = sources["dns"], sources["flows"]
    assert dns.schema.version == 3 and [f.kind for f in dns.schema.features] == ["text"]
    feature = dns.schema.features[0]
    assert (feature.max_bytes, feature.normalize, feature.truncate) == (32, "dns", "tail")
    assert dns.text is not None and dns.text[0].dtype == np.uint8 and dns.text[0].shape == (300, 1, 32)
    assert dns.num.shape == (300, 0) and dns.cat.shape == (300, 0)
    assert flows.schema.version == 2 and flows.text is None  # no text: the schema as before
    text = (torch.as_tensor(dns.text[0]), torch.as_tensor(dns.text[1]))
    rows = torch.arange(8)
    inputs = batch_inputs(torch.as_tensor(dns.num), torch.as_tensor(dns.cat), text, rows)
    longest = int(dns.text[1][:8].max())
    assert inputs["input_ids"].dtype == torch.int64 and inputs["input_ids"].shape == (8, 1, longest)
    assert torch.equal(inputs["attention_mask"].sum(dim=2), text[1][:8])


@pytest.mark.slow
def test_distance_and_fused_tasks_work_on_a_text_source(tmp_path):
    tasks = [
        {"name": "dga", "type": "anomaly_detection", "source": "dns", "label": DGA},
        {"name": "far", "type": "anomaly_detection", "source": "dns", "label": DGA, "mode": "distance"},
        {
            "name": "both",
            "type": "anomaly_detection",
            "source": "dns",
            "label": DGA,
            "mode": "fused",
            "combine": ["dga", "far"],
        },
    ]
    run = run_experiment(config_from_dict(experiment(tmp_path, tasks)), tmp_path / "run", out=None)
    for name in ("dga", "far", "both"):
        assert 0.0 <= run.result.metrics[name]["roc_auc"] <= 1.0, name
    assert run.result.metrics["dga"]["roc_auc"] > 0.6  # one epoch of a tiny model: it learns
