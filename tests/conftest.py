"""Shared fixtures: small generated datasets and configs built in the tests.

`slow` marks a test that trains a real model (itself, or through the session's
trained_network / network_bundle fixtures): `pytest -m "not slow"` is the fast
loop, `make test` runs everything.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from trainer.synthetic import generate, write


def network_tasks(multitask: bool = True) -> list[dict]:
    tasks = [
        {
            "name": "threat",
            "type": "anomaly_detection",
            "source": "net",
            "label": {"column": "label", "positive_labels": ["malicious"]},
            "group_column": "attack_type",
        }
    ]
    if multitask:
        tasks.append(
            {
                "name": "attack_type",
                "type": "classification",
                "source": "net",
                "label": {"column": "attack_type"},
                "loss_weight": 0.5,
            }
        )
    return tasks


def base_config(sources: dict, tasks: list, out: Path, **training) -> dict:
    """A small, fast experiment as a plain dict (what a YAML file would hold)."""
    train = {
        "epochs": 6,
        "batch_size": 128,
        "learning_rate": 0.003,
        "progress": False,
        "early_stopping": {"patience": 6},
    }
    train.update(training)
    return {
        "project_name": "test",
        "output_dir": str(out),
        "sources": copy.deepcopy(sources),
        "model": {"hidden_sizes": [32, 16], "dropout": 0.0},
        "training": train,
        "tasks": copy.deepcopy(tasks),
    }


def net_source(path: Path) -> dict:
    return {"path": str(path), "ignore": ["src_ip", "dst_ip"], "kinds": {"port": "categorical"}}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    write(generate("network", 3000, seed=5), d / "network.jsonl")
    write(generate("network", 1500, seed=99), d / "network_test.jsonl")
    write(generate("fraud", 3000, seed=6), d / "fraud.jsonl")
    write(generate("aiops", 2500, seed=7), d / "aiops.jsonl")
    return d


@pytest.fixture(scope="session")
def trained_network(tmp_path_factory, data_dir):
    """One multitask network model (threat + attack_type), trained once per session."""
    from trainer.config import config_from_dict
    from trainer.run import run_experiment

    out = tmp_path_factory.mktemp("run")
    cfg = config_from_dict(
        base_config({"net": net_source(data_dir / "network.jsonl")}, network_tasks(), out, epochs=12)
    )
    return run_experiment(cfg, out, out=None)


@pytest.fixture(scope="session")
def network_bundle(tmp_path_factory, trained_network):
    """The session's multitask network model exported once: (bundle dir, manifest)."""
    from export.bundle_writer import ExportOptions, export_bundle

    out = tmp_path_factory.mktemp("bundle") / "net"
    manifest = export_bundle(trained_network.model_dir, out, ExportOptions(), log=lambda s: None)
    return out, manifest


@pytest.fixture(scope="session")
def soc_bundle(tmp_path_factory):
    """The SOC sensor's model (examples/configs/suricata_flows.yaml) trained briefly on the
    committed lab corpus and exported: the bundle firmware_configs/soc_sensor_suricata.yaml
    is written for."""
    from export.bundle_writer import ExportOptions, export_bundle
    from trainer.config import load_config
    from trainer.run import run_experiment

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(
        repo / "examples" / "configs" / "suricata_flows.yaml",
        [f"sources.eve.path={repo / 'lab' / 'corpus' / 'corpus-s7' / 'labelled.jsonl.gz'}", "training.epochs=3",
         "training.progress=false"],
    )  # fmt: skip
    out = tmp_path_factory.mktemp("soc")
    run = run_experiment(cfg, out / "run", out=open(os.devnull, "w"))  # noqa: SIM115
    export_bundle(run.model_dir, out / "bundle", ExportOptions(), log=lambda s: None)
    return out / "bundle"


TRAINED_FIXTURES = {"trained_network", "network_bundle", "soc_bundle"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
