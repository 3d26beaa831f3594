"""The committed lab corpus: intact, labelled as its manifest says, as big as promised, and
read alike by the trainer and the agent (runs everywhere: no root, no tools)."""

from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from jenga_edge.contract.digest import sha256_file as sha256
from jenga_edge.contract.schema import FeatureSchema
from jenga_edge.decode import EventDecoder
from lab import corpus, scenario
from lab.runner import HARD_EXTRA_S
from trainer.config import load_config
from trainer.dataset import prepare

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "lab" / "corpus"
RUNS = corpus.runs(CORPUS)
ATTACK_TOOLS = {"nmap", "masscan", "hping3", "hydra", "slowloris", "iodine"}
BENIGN = {"web", "dns", "ssh", "ftp", "machine", "chatter"}


def records(run: Path) -> list[dict]:
    with gzip.open(run / "labelled.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_the_corpus_holds_its_runs_of_the_committed_scenarios_and_stays_small():
    # corpus.yaml: seed 7 trains, seed 8 evaluates; office.yaml (benign only) trains
    assert [r.name for r in RUNS] == ["corpus-s7", "corpus-s8", "office-s10", "office-s11"]
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 10 * 2**20, f"{total:,} bytes: the issue allows about 10 MB"
    for run in RUNS:
        m = manifest(run)
        assert run.name == f"{m['scenario']}-s{m['seed']}"
        committed = sha256(REPO / "lab" / "scenarios" / f"{m['scenario']}.yaml")
        assert m["scenario_sha256"] == committed, f"{run.name} was made from another {m['scenario']}.yaml"
        assert m["host_unchanged"] and m["failed_steps"] == [] and m["problems"] == []
        assert m["published"]["labelled_sha256"] == sha256(run / "labelled.jsonl.gz")
        assert set(m["published"]["left_out"]) <= {"iodine"}  # only the tunnel's query records are capped
        assert m["sha256"]["truth.json"] == sha256(run / "truth.json")
        assert m["suricata"].startswith("This is Suricata version 7.")


def test_the_soc_model_never_trains_on_an_evaluation_run():
    cfg = load_config(REPO / "examples" / "configs" / "suricata_flows.yaml")
    files = [p.resolve() for p in cfg.source_paths("eve")]
    assert files == [(CORPUS / "corpus-s7" / "labelled.jsonl.gz").resolve()]


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.name)
def test_labels_and_counts_are_what_the_manifest_says(run):
    m = manifest(run)
    recs = records(run)
    flows = collections.Counter(
        f"{r['lab']['label']}:{r['lab']['tool'] or 'unknown'}" for r in recs if r["event_type"] == "flow"
    )
    assert dict(flows) == m["counts"]["flows"]  # every flow record is committed
    others = collections.Counter(r["lab"]["step"] for r in recs if r["event_type"] != "flow")
    assert max(others.values()) <= m["published"]["cap_app_records_per_step"]
    assert not any(k.startswith("unknown") for k in flows), flows
    tools = collections.Counter()
    for key, n in flows.items():
        label, tool = key.split(":")
        for t in tool.split("|"):
            tools[(label, t)] += n
    for behaviour in BENIGN:
        assert tools[("benign", behaviour)] >= 100, (behaviour, tools)
    attackers = {r["lab"]["attacker"] for r in recs if r["lab"]["label"] == "attack"}
    if m["scenario"] == "office":  # benign only
        assert not attackers and not any(label == "attack" for label, _ in tools), tools
        return
    for tool in ATTACK_TOOLS - {"iodine"}:
        # hydra: 125 SSH + 48 FTP flows a run (the FTP server refuses non-anonymous logins at USER)
        assert tools[("attack", tool)] >= 150, (tool, tools)
    assert tools[("attack", "iodine")] >= 5  # one flow per tunnel session; its thousands of queries are dns records
    assert {"10.77.0.66", "10.77.0.67", "10.77.0.68", "10.77.0.69", "203.0.113.7", "10.77.0.200"} <= attackers


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.name)
def test_truth_holds_every_step_of_the_scenario_within_its_bounds(run):
    sc = scenario.load(REPO / "lab" / "scenarios" / f"{manifest(run)['scenario']}.yaml")
    truth = {s["name"]: s for s in json.loads((run / "truth.json").read_text())["steps"]}
    assert set(truth) == {s.name for s in sc.steps}
    for step in sc.steps:
        t = truth[step.name]
        assert t["tool"] == step.tool and t["role"] == step.role
        assert 0 < t["end"] - t["start"] <= step.duration + HARD_EXTRA_S, step.name  # stops are sequential


def _agent_reads(schema: FeatureSchema, path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """One capture as a fresh agent decodes it (windows in event-time order), back in file
    order: (numeric, categorical, attack flows)."""
    with gzip.open(path, "rb") as fh:
        raw = [line.rstrip(b"\n") for line in fh]
    recs = [json.loads(line) for line in raw]
    flows = [i for i, r in enumerate(recs) if r["event_type"] == "flow"]
    order = sorted(flows, key=lambda i: recs[i]["timestamp"])  # event time: the windows' clock
    batch = EventDecoder(schema).decode([raw[i] for i in order])
    assert not batch.rejects and len(batch) == len(flows)
    back = np.argsort([order[j] for j in batch.index])
    return batch.num[back], batch.cat[back], sum(recs[i]["lab"]["label"] == "attack" for i in flows)


@pytest.mark.parametrize("runs", [["corpus-s7"], ["corpus-s7", "office-s10"]], ids="+".join)
def test_the_trainer_and_the_agent_read_the_corpus_alike(runs):
    """The SOC config's event model on the committed corpus: the trainer's arrays equal the
    agent decoder's on the same records. With a list of runs (`path: [...]`), each run is read
    as a fresh agent reads it: no host's windows carry over from one capture to the next
    (the two runs share addresses)."""
    files = [CORPUS / r / "labelled.jsonl.gz" for r in runs]
    paths = json.dumps([str(f) for f in files])
    cfg = load_config(REPO / "examples" / "configs" / "suricata_flows.yaml", [f"sources.eve.path={paths}"])
    sources, tasks = prepare(cfg)
    data = sources["eve"]
    schema: FeatureSchema = data.schema
    assert schema.events is not None and "lab" not in " ".join(schema.names)
    parts = [_agent_reads(schema, f) for f in files]
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), data.num, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), data.cat)
    y = {t.name: t.y for t in tasks}["threat"]
    assert y.sum() == sum(p[2] for p in parts)
