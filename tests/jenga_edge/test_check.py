"""Tests for jenga_edge/check.py and the `jenga-edge check` command: verdicts, explanations, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from jenga_edge.bundle import Bundle, verify_bundle
from jenga_edge.check import (
    EXIT_BAD,
    EXIT_CLEAN,
    EXIT_THREAT,
    EventResult,
    TaskVerdict,
    check_lines,
    exit_code,
    pick_tasks,
    render,
)
from jenga_edge.cli import main as edge_cli
from jenga_edge.contract.bundle_format import TensorSpec
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.score import Scorer
from trainer.synthetic import generate

REPO = Path(__file__).resolve().parents[2]
DROP = ("label", "attack_type", "dst_ip")  # src_ip stays: an extra field is ignored


@pytest.fixture(scope="module")
def bundle(network_bundle) -> Bundle:
    return verify_bundle(network_bundle[0])


@pytest.fixture(scope="module")
def picked(bundle):
    """(clearly malicious events, clearly normal events) as JSON lines, chosen by the model's own scores."""
    rows = generate("network", 3000, seed=31)
    ddos = [r for r in rows if r["attack_type"] == "ddos"]
    normal = [r for r in rows if r["label"] == "normal"]
    thr = bundle.tasks["threat"].threshold
    scorer = Scorer(bundle, ["threat"])
    schema = scorer.schema

    def ranked(rs):
        clean = [{k: v for k, v in r.items() if k not in DROP} for r in rs]
        num, cat = schema.vectorize(clean, strict=True)
        return clean, scorer.score(num, cat).score["threat"]

    bad, bad_s = ranked(ddos)
    good, good_s = ranked(normal)
    # clear margins on both sides of the bundle's threshold (the session model is small: ~0.15 .. ~0.92)
    hi = [bad[i] for i in np.argsort(-bad_s)[:5] if bad_s[i] >= thr + 0.25 * (1 - thr)]
    lo = [good[i] for i in np.argsort(good_s)[:5] if good_s[i] <= 0.5 * thr]
    assert len(hi) == 5 and len(lo) == 5, "the session model should separate DDoS from normal traffic"
    return [json.dumps(r).encode() for r in hi], [json.dumps(r).encode() for r in lo]


BAD_LINES = [b"{not json", b'{"packet_size": "big"}', b"[1, 2]", b'{"duration": "NaN"}']


# --- check_lines and exit_code ------------------------------------------------------------------


def test_a_clearly_malicious_event_is_a_threat(bundle, picked):
    threat, _ = picked
    (r,) = check_lines(bundle, threat[:1])
    assert r.ok and r.event == 1
    assert [t.task for t in r.tasks] == ["threat", "attack_type"]
    t = r.tasks[0]
    assert t.threat and t.verdict == "threat" and t.threshold == pytest.approx(bundle.tasks["threat"].threshold)
    assert t.score >= t.threshold
    c = r.tasks[1]
    assert c.threshold is None and not c.threat and c.verdict in bundle.tasks["attack_type"].labels
    assert exit_code([r]) == EXIT_THREAT == 1


def test_normal_events_are_clean(bundle, picked):
    _, normal = picked
    results = check_lines(bundle, normal)
    assert [r.event for r in results] == [1, 2, 3, 4, 5]
    assert all(r.ok and not r.tasks[0].threat and r.tasks[0].verdict == "normal" for r in results)
    assert exit_code(results) == EXIT_CLEAN == 0


def test_only_bad_events_exit_2(bundle):
    results = check_lines(bundle, BAD_LINES)
    assert [(r.event, r.ok, r.reason) for r in results] == [
        (1, False, "bad_json"),
        (2, False, "wrong_type"),
        (3, False, "not_object"),
        (4, False, "non_finite"),
    ]
    assert results[1].field == "packet_size" and "packet_size" in results[1].message
    assert exit_code(results) == EXIT_BAD == 2


def test_good_and_bad_without_a_threat_exit_2(bundle, picked):
    _, normal = picked
    results = check_lines(bundle, [normal[0], BAD_LINES[0], normal[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert exit_code(results) == EXIT_BAD


def test_a_threat_wins_over_bad_events(bundle, picked):
    threat, normal = picked
    results = check_lines(bundle, [BAD_LINES[1], threat[0], normal[0]])
    assert exit_code(results) == EXIT_THREAT


def test_results_are_in_input_order_with_1_based_numbers(bundle, picked):
    threat, normal = picked
    lines = [normal[0], BAD_LINES[0], threat[0], BAD_LINES[2], normal[1], threat[1], BAD_LINES[3]]
    results = check_lines(bundle, lines)
    assert [r.event for r in results] == list(range(1, 8))
    assert [r.ok for r in results] == [True, False, True, False, True, True, False]
    assert [r.ok and r.tasks[0].threat for r in results] == [False, False, True, False, False, True, False]


def test_scores_match_the_scorer(bundle, picked):
    threat, normal = picked
    lines = threat + normal
    results = check_lines(bundle, lines, explain=0)
    rows = [json.loads(x) for x in lines]
    scorer = Scorer(bundle)
    s = scorer.score(*scorer.schema.vectorize(rows))
    np.testing.assert_allclose([r.tasks[0].score for r in results], s.score["threat"], atol=1e-6)
    labels = bundle.tasks["attack_type"].labels
    assert [r.tasks[1].verdict for r in results] == [labels[i] for i in s.label["attack_type"]]


def test_explanation_lists_only_schema_fields_with_positive_contributions(bundle, picked):
    threat, _ = picked
    names = set(bundle.tasks["threat"].schema.names)
    for explain in (1, 3, 20):
        for r in check_lines(bundle, threat, explain=explain):
            top = r.tasks[0].top_fields
            assert 1 <= len(top) <= min(explain, len(names))
            assert {f for f, _ in top} <= names
            assert len({f for f, _ in top}) == len(top)
            contrib = [c for _, c in top]
            assert all(c > 0 for c in contrib) and contrib == sorted(contrib, reverse=True)
            assert r.tasks[1].top_fields == []  # not for a class task


def test_explain_0_gives_no_fields(bundle, picked):
    threat, _ = picked
    assert all(t.top_fields == [] for r in check_lines(bundle, threat, explain=0) for t in r.tasks)


def test_explicit_tasks(bundle, picked):
    threat, _ = picked
    (r,) = check_lines(bundle, threat[:1], tasks=["threat"])
    assert [t.task for t in r.tasks] == ["threat"]
    with pytest.raises(ConfigError, match="nope not in bundle"):
        check_lines(bundle, threat[:1], tasks=["nope"])


def test_exit_code_on_plain_results():
    ok = EventResult(1, True, [TaskVerdict("threat", 0.1, 0.5, "normal", False)])
    hit = EventResult(2, True, [TaskVerdict("threat", 0.9, 0.5, "threat", True)])
    bad = EventResult(3, False, reason="bad_json", message="x")
    assert exit_code([ok]) == 0 and exit_code([ok, hit]) == 1 and exit_code([bad, hit]) == 1
    assert exit_code([ok, bad]) == 2 and exit_code([bad]) == 2 and exit_code([]) == 2


# --- --json and text rendering -------------------------------------------------------------------


def test_to_json_shape(bundle, picked):
    threat, normal = picked
    results = check_lines(bundle, [threat[0], BAD_LINES[1], normal[0]])
    docs = [json.loads(json.dumps(r.to_json())) for r in results]
    t, b, n = docs
    assert set(t) == {"event", "ok", "threat", "tasks"} and t["event"] == 1 and t["ok"] and t["threat"] is True
    assert set(t["tasks"]) == {"threat", "attack_type"}
    assert set(t["tasks"]["threat"]) == {"score", "threshold", "verdict", "top_fields"}
    assert t["tasks"]["threat"]["verdict"] == "threat"
    assert t["tasks"]["attack_type"]["threshold"] is None
    top = t["tasks"]["threat"]["top_fields"]
    assert top and all(set(f) == {"field", "contribution"} and f["contribution"] > 0 for f in top)
    assert b == {"event": 2, "ok": False, "reason": "wrong_type", "field": "packet_size", "message": b["message"]}
    assert n["threat"] is False and n["tasks"]["threat"]["verdict"] == "normal"


def test_render_text(bundle, picked):
    threat, normal = picked
    text = render(check_lines(bundle, [threat[0], BAD_LINES[1], normal[0]]))
    lines = text.splitlines()
    assert lines[0] == "event 1: THREAT"
    assert lines[1].lstrip().startswith("threat") and ">=" in lines[1] and "top fields (log-odds):" in lines[1]
    assert lines[2].lstrip().startswith("attack_type") and "(p=" in lines[2]
    assert lines[3].startswith("event 2: REJECTED wrong_type (packet_size): ")
    assert lines[4] == "event 3: clean" and " < " in lines[5] and "top fields" not in lines[5]


# --- pick_tasks -----------------------------------------------------------------------------------


def test_pick_tasks_by_the_events_fields(bundle):
    assert pick_tasks(bundle, ["packet_size", "port"], None) == ["threat", "attack_type"]
    assert pick_tasks(bundle, [], ["attack_type"]) == ["attack_type"]
    other = FeatureSchema(
        (Feature("amount", "numeric"), Feature("merchant", "categorical", categories=(OOV_TOKEN, "fuel")))
    )
    fraud = msgspec.structs.replace(
        bundle.tasks["threat"],
        name="fraud",
        source="card",
        schema=other,
        schema_sha256=other.sha256,
        inputs=[
            TensorSpec(name="numeric", dtype="float32", shape=["batch", 1], features=["amount"]),
            TensorSpec(name="categorical", dtype="int64", shape=["batch", 1], features=["merchant"]),
        ],
    )
    two = Bundle(bundle.path, bundle.manifest, {**bundle.tasks, "fraud": fraud}, bundle.merged)
    assert pick_tasks(two, ["amount", "merchant", "src_ip"], None) == ["fraud"]
    assert pick_tasks(two, ["packet_size", "duration", "amount"], None) == ["threat", "attack_type"]


# --- the CLI (click's CliRunner: no subprocess needed) --------------------------------------------------


def cli(*args: str, stdin: bytes | None = None):
    return CliRunner().invoke(edge_cli, ["check", *args], input=stdin)


def test_cli_event_argument(network_bundle, picked):
    threat, normal = picked
    r = cli("--bundle", str(network_bundle[0]), threat[0].decode())
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith("event 1: THREAT")
    r = cli("--bundle", str(network_bundle[0]), normal[0].decode(), "--json", "--tasks", "threat")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["threat"] is False and list(doc["tasks"]) == ["threat"]


def test_cli_file_and_stdin(network_bundle, picked, tmp_path):
    threat, normal = picked
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join([normal[0], b"", BAD_LINES[0], threat[0]]) + b"\n")
    r = cli("--bundle", str(network_bundle[0]), "-f", str(f), "--json")
    assert r.exit_code == 1, r.output
    docs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(d["event"], d["ok"]) for d in docs] == [(1, True), (2, False), (3, True)]  # blank lines skipped
    r = cli("--bundle", str(network_bundle[0]), "-", stdin=b"\n".join(normal) + b"\n")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("clean") == len(normal)
    r = cli("--bundle", str(network_bundle[0]), "-", stdin=b"\n".join(BAD_LINES))
    assert r.exit_code == 2, r.output
    assert r.stdout.count("REJECTED") == len(BAD_LINES)


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        ([], None, "give exactly one of EVENT"),
        (["{}", "-f", "events.jsonl"], None, "give exactly one of EVENT"),
        (["-f", "/nonexistent/events.jsonl"], None, "error: /nonexistent/events.jsonl: cannot read: No such file"),
        (["-"], b"\n  \n", "no events in the input"),
    ],
)
def test_cli_usage_errors_exit_2(network_bundle, args, stdin, message):
    r = cli("--bundle", str(network_bundle[0]), *args, stdin=stdin)
    assert r.exit_code == 2
    assert message in r.stderr
    assert r.stdout == ""


def test_cli_needs_a_bundle_or_a_config_naming_one():
    r = cli("{}")
    assert r.exit_code == 2 and "give --bundle DIR (or --config FILE whose agent.bundle names one)" in r.stderr


def test_cli_bad_bundle_exit_2(tmp_path):
    r = cli("--bundle", str(tmp_path / "missing"), "{}")
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "bundle directory not found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


EVE = {
    "event_type": "flow",
    "src_ip": "203.0.113.5",
    "dest_ip": "10.0.0.2",
    "dest_port": 443,
    "proto": "TCP",
    "flow": {
        "age": 3,
        "bytes_toserver": 1200,
        "bytes_toclient": 50000,
        "pkts_toserver": 12,
        "start": "2026-11-30T10:00:00.000000+0000",  # the soc profile's windows run on it
    },
}


def test_check_with_an_agent_config_mapping_scores_eve_records(network_bundle):
    soc = str(REPO / "firmware_configs/suricata_flat_model.yaml")
    r = cli("--bundle", str(network_bundle[0]), json.dumps(EVE), "--json", "--config", soc)
    assert r.exit_code in (0, 1), r.output
    out = json.loads(r.stdout)
    assert out["ok"] and "threat" in out["tasks"]
    # without the mapping the same record has none of the schema's fields: refused, not imputed
    plain = cli("--bundle", str(network_bundle[0]), json.dumps(EVE), "--json")
    assert plain.exit_code == 2
    refused = json.loads(plain.stdout)
    assert refused["reason"] == "too_sparse" and refused["message"].startswith("0 of 7 features present")


def test_check_computes_the_configs_derived_fields_as_the_agent_does(network_bundle, tmp_path):
    """event.derive: an input the agent cannot read rejects the event in check as in the agent;
    a derived field named after a model feature is refused at load, one line, exit 2."""
    soc = yaml.safe_load((REPO / "firmware_configs/suricata_flat_model.yaml").read_text())
    soc["agent"]["bundle"] = str(network_bundle[0])
    cfg = tmp_path / "agent.yaml"
    odd = {**EVE, "flow": {**EVE["flow"], "pkts_toclient": "three"}}  # no feature reads it
    cfg.write_text(yaml.safe_dump(soc))
    assert json.loads(cli(json.dumps(odd), "--config", str(cfg), "--json").stdout)["ok"]
    per_pkt = {"kind": "ratio", "num": ["flow.bytes_toclient"], "den": ["flow.pkts_toclient"]}
    soc["event"]["derive"] = {"per_pkt": per_pkt}
    cfg.write_text(yaml.safe_dump(soc))
    r = cli(json.dumps(odd), "--config", str(cfg), "--json")
    out = json.loads(r.stdout)
    assert r.exit_code == 2 and out["reason"] == "wrong_type" and out["field"] == "flow.pkts_toclient", r.output
    del soc["event"]["mapping"]["port"]  # the feature `port`, read by its own name
    soc["event"]["derive"] = {"port": {"kind": "sum", "of": ["dest_port"]}}
    cfg.write_text(yaml.safe_dump(soc))
    r = cli(json.dumps(EVE), "--config", str(cfg))
    assert r.exit_code == 2 and "event.derive.port: is a feature the bundle's model reads" in r.output, r.output


def test_an_empty_event_is_refused_not_given_a_verdict(network_bundle):
    r = cli("--bundle", str(network_bundle[0]), "{}", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["reason"] == "too_sparse"


def test_check_takes_the_bundle_from_the_config(network_bundle, tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"agent: {{bundle: {network_bundle[0]}}}\nsources: [{{type: stdin}}]\n")
    r = cli(json.dumps(EVE), "--config", str(cfg), "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["reason"] == "too_sparse"  # no mapping in this config
    lenient = cfg.with_name("lenient.yaml")
    lenient.write_text(cfg.read_text() + "event: {min_present: 0}\n")
    r = cli(json.dumps(EVE), "--config", str(lenient), "--json")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["ok"]  # event.min_present comes from the config too


def test_the_soc_profile_scores_only_the_flow_records_of_real_eve_json(network_bundle, tmp_path):
    """Real Suricata output (tests/fixtures/suricata): netflow, dns and http records are
    filtered by the profile's event.where (counted, not scored, not an error)."""
    import gzip

    eve = tmp_path / "eve.json"
    with gzip.open(REPO / "tests/fixtures/suricata/benign_http-dns_wikipedia.eve.json.gz") as fh:
        eve.write_bytes(fh.read())
    soc = str(REPO / "firmware_configs/suricata_flat_model.yaml")
    r = cli("--bundle", str(network_bundle[0]), "-f", str(eve), "--json", "--config", soc)
    assert r.exit_code in (0, 1), r.output  # filtered records do not make it 2
    results = [json.loads(line) for line in r.stdout.splitlines()]
    types = [json.loads(line)["event_type"] for line in eve.read_text().splitlines()]
    assert len(results) == len(types) == 133
    scored = {t for t, res in zip(types, results) if res["ok"]}
    filtered = {t for t, res in zip(types, results) if not res["ok"] and res["reason"] == "filtered"}
    assert scored == {"flow"} and filtered == {"netflow", "dns", "http"}
    assert sum(res["ok"] for res in results) == types.count("flow") == 34


def test_the_soc_profile_reads_tcp_and_TCP_alike(network_bundle):
    soc = str(REPO / "firmware_configs/suricata_flat_model.yaml")
    outs = []
    for proto in ("TCP", "tcp", " Tcp"):
        r = cli("--bundle", str(network_bundle[0]), json.dumps({**EVE, "proto": proto}), "--json", "--config", soc)
        assert r.exit_code in (0, 1), r.output
        outs.append(json.loads(r.stdout)["tasks"])
    assert outs[0] == outs[1] == outs[2]
