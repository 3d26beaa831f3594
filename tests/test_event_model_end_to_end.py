"""One event model from training to the edge: the trainer reads real Suricata
eve.json (gzip, nested) through its source's `events`, the bundle carries the
model, and the agent's decoder turns the same raw lines into the very arrays
the trainer trained on, without any mapping in the agent's config."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from export.bundle_writer import ExportOptions, export_bundle
from jenga_edge.bundle import verify_bundle
from jenga_edge.check import FILTERED, check_lines, exit_code
from jenga_edge.decode import EventDecoder
from trainer.config import config_from_dict
from trainer.dataset import prepare
from trainer.run import run_experiment

from .conftest import base_config

FIXTURES = Path(__file__).parent / "fixtures" / "suricata"

EVENTS = {
    "where": {"event_type": "flow"},
    "mapping": {
        "bytes_toserver": "flow.bytes_toserver",
        "bytes_toclient": "flow.bytes_toclient",
        "pkts_toserver": "flow.pkts_toserver",
        "pkts_toclient": "flow.pkts_toclient",
    },
    "normalize": {"proto": {"lower": True}},
    "time": "flow.start",
    "windows": {
        "hosts_60s": {"kind": "distinct", "key": ["src_ip"], "field": "dest_ip", "window_s": 60},
        "flows_10s": {"kind": "count", "key": ["src_ip"], "window_s": 10},
        "same_srv_100": {"kind": "count", "key": ["src_ip", "dest_port"], "among_last": 100},
        "bytes_damped": {"kind": "damped", "key": ["src_ip"], "field": "bytes_toserver", "lambda": 1, "stat": "mean"},
    },
    "derive": {
        "duration": {"kind": "duration", "start": "flow.start", "end": "flow.end"},
        "bytes_per_packet": {
            "kind": "ratio",
            "num": ["bytes_toserver", "bytes_toclient"],
            "den": ["pkts_toserver", "pkts_toclient"],
        },
    },
}
FEATURES = [
    *("proto", "dest_port", "bytes_toserver", "bytes_toclient", "pkts_toserver", "duration", "bytes_per_packet"),
    *("hosts_60s", "flows_10s", "same_srv_100", "bytes_damped"),
]


def labelled_eve(path: Path) -> list[bytes]:
    """The seven captures' eve.json as one file, each record labelled by its capture."""
    raw: list[bytes] = []
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for fixture in sorted(FIXTURES.glob("*.eve.json.gz")):
            label = "attack" if fixture.name.startswith("attack") else "benign"
            with gzip.open(fixture, "rt", encoding="utf-8") as fh:
                for line in fh:
                    raw.append(line.rstrip("\n").encode())
                    out.write(json.dumps({**json.loads(line), "label": label}) + "\n")
    return raw


@pytest.fixture(scope="module")
def eve_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("eve")
    raw = labelled_eve(d / "eve.json.gz")
    source = {"path": str(d / "eve.json.gz"), "events": EVENTS, "features": FEATURES}
    task = {
        "name": "attack",
        "type": "anomaly_detection",
        "source": "eve",
        "label": {"column": "label", "positive_labels": ["attack"]},
    }
    cfg = config_from_dict(base_config({"eve": source}, [task], d / "run", epochs=2), "eve.yaml")
    return cfg, raw, d


def test_the_agent_reads_raw_eve_lines_into_the_trainers_arrays(eve_run):
    cfg, raw, _ = eve_run
    sources, _ = prepare(cfg)
    data = sources["eve"]
    assert data.schema.events is not None and data.schema.names == FEATURES
    assert data.schema.features[0].categories[1:3] in (("tcp", "udp"), ("udp", "tcp"))  # normalized in training
    # the trainer ran the windows in event-time order: the agent gets the stream in that order
    start = [json.loads(line).get("flow", {}).get("start", "") for line in raw]
    order = sorted(range(len(raw)), key=start.__getitem__)
    batch = EventDecoder(data.schema).decode([raw[i] for i in order])
    assert not batch.rejects
    assert len(batch) == len(data.num) and len(batch) + len(batch.filtered) == len(raw)
    back = np.argsort([order[j] for j in batch.index])  # the agent's rows in the file's order, as the trainer's
    np.testing.assert_array_equal(batch.num[back], data.num)
    np.testing.assert_array_equal(batch.cat[back], data.cat)
    hosts = [f.name for f in data.schema.numeric].index("hosts_60s")
    assert data.num[:, hosts].max() >= 7  # the nmap scan's 7 hosts are in the training rows


@pytest.mark.slow
def test_the_bundle_carries_the_event_model_to_check(eve_run):
    cfg, raw, d = eve_run
    run = run_experiment(cfg, d / "run", out=None)
    export_bundle(run.model_dir, d / "bundle", ExportOptions(), log=lambda s: None)
    bundle = verify_bundle(d / "bundle")
    assert bundle.tasks["attack"].schema.events == cfg.sources["eve"].events
    lines = raw[:200]
    results = check_lines(bundle, lines, explain=0)
    kinds = {json.loads(line)["event_type"] for line in lines}
    filtered = [r for r in results if r.reason == FILTERED]
    scored = [r for r in results if r.ok]
    assert len(filtered) + len(scored) == len(lines) and scored and filtered and kinds > {"flow"}
    assert exit_code([*filtered, *[r for r in scored if not r.tasks[0].threat]]) == 0  # filtered is not an error
    assert all(r.note is None for r in results)  # a file: the windows ran over it in order
    flow = next(line for line in lines if b'"event_type":"flow"' in line)
    (one,) = check_lines(bundle, [flow], explain=0)
    assert one.ok and "first-seen key" in (one.note or "")  # one event: the model's windows saw no history
