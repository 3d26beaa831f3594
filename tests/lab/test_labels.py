"""Labelling records from the ground truth: by address and time, benign behaviours by port."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from lab import labels
from lab.cli import main as lab_cli
from lab.labels import TruthStep

T0 = 1_790_000_000.0
VICTIM, OFFICE, BAD = "10.77.0.10", "10.77.0.21", "10.77.0.66"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def flow(src: str, dst: str, t: float, dport: int = 80, sport: int = 40000, event_type: str = "flow") -> dict:
    rec = {"timestamp": iso(t + 30), "event_type": event_type, "src_ip": src, "dest_ip": dst,
           "src_port": sport, "dest_port": dport, "proto": "TCP"}  # fmt: skip
    if event_type == "flow":
        rec["flow"] = {"start": iso(t), "end": iso(t + 1)}
    else:
        rec["timestamp"] = iso(t)
    return rec


TRUTH = [
    TruthStep("browse", "web", "benign", (OFFICE,), ((80, 80),), T0, T0 + 100),
    TruthStep("lookups", "dns", "benign", (OFFICE,), ((53, 53),), T0, T0 + 100),
    TruthStep("updates", "machine", "benign", (OFFICE,), ((80, 80), (53, 53)), T0 + 200, T0 + 300),
    TruthStep("ftp", "ftp", "benign", (OFFICE,), ((21, 21), (40000, 40199)), T0 + 10, T0 + 100),
    TruthStep("scan", "nmap", "attack", (BAD,), (), T0 + 10, T0 + 20),
    TruthStep("flood", "hping3", "attack", (BAD, "203.0.113.7"), (), T0 + 30, T0 + 40),
]


def lab_of(rec: dict) -> dict:
    return labels.lab_field(rec, TRUTH)


def test_an_attack_flow_is_labelled_with_its_tool_step_and_attacker():
    assert lab_of(flow(BAD, VICTIM, T0 + 12, dport=22)) == {
        "label": "attack", "attack": 1, "tool": "nmap", "step": "scan", "attacker": BAD,
    }  # fmt: skip


def test_time_tells_one_attackers_tools_apart():
    assert lab_of(flow(BAD, VICTIM, T0 + 35))["tool"] == "hping3"
    assert lab_of(flow(BAD, VICTIM, T0 + 26))["label"] == "unknown"  # between the two steps (slack 1 s / 5 s)


@pytest.mark.parametrize(
    ("offset", "tool"), [(10 - 0.9, "nmap"), (10 - 1.1, None), (20 + 4.9, "nmap"), (20 + 5.1, None)]
)
def test_the_span_is_widened_by_the_slack_on_each_side(offset, tool):
    assert lab_of(flow(BAD, VICTIM, T0 + offset))["tool"] == tool


def test_a_flow_the_victim_opened_to_the_attacker_is_the_attackers():
    assert lab_of(flow(VICTIM, BAD, T0 + 12, dport=40000, sport=22))["attacker"] == BAD


def test_a_spoofed_source_names_the_forged_address_as_the_attacker():
    got = lab_of(flow("203.0.113.7", VICTIM, T0 + 31))
    assert got["tool"] == "hping3" and got["attacker"] == "203.0.113.7"


@pytest.mark.parametrize(("dport", "tool"), [(80, "web"), (53, "dns"), (21, "ftp"), (40123, "ftp")])
def test_a_benign_hosts_overlapping_behaviours_are_told_apart_by_port(dport, tool):
    got = lab_of(flow(OFFICE, VICTIM, T0 + 50, dport=dport))
    assert got == {"label": "benign", "attack": 0, "tool": tool, "step": {"web": "browse", "dns": "lookups",
                   "ftp": "ftp"}[tool], "attacker": None}  # fmt: skip


def test_behaviours_sharing_a_port_are_both_named_and_the_label_stays_certain():
    got = lab_of(flow(OFFICE, VICTIM, T0 + 250, dport=53))
    assert got["label"] == "benign" and got["tool"] == "machine" and got["step"] == "updates"
    both = [*TRUTH, TruthStep("lookups2", "dns", "benign", (OFFICE,), ((53, 53),), T0 + 200, T0 + 300)]
    got = labels.lab_field(flow(OFFICE, VICTIM, T0 + 250, dport=53), both)
    assert got == {"label": "benign", "attack": 0, "tool": "dns|machine", "step": "lookups2|updates", "attacker": None}


def test_a_benign_flow_to_a_port_no_behaviour_uses_is_unknown():
    assert lab_of(flow(OFFICE, VICTIM, T0 + 50, dport=9999))["label"] == "unknown"


def test_two_attack_steps_that_both_match_leave_the_record_unknown():
    both = [*TRUTH, TruthStep("scan2", "masscan", "attack", (BAD,), (), T0 + 18, T0 + 28)]
    assert labels.lab_field(flow(BAD, VICTIM, T0 + 19), both)["label"] == "unknown"
    assert labels.lab_field(flow(BAD, VICTIM, T0 + 27), both)["tool"] == "masscan"


def test_app_layer_records_are_timed_by_their_timestamp():
    rec = flow(BAD, VICTIM, T0 + 15, event_type="http")
    assert "flow" not in rec and lab_of(rec)["tool"] == "nmap"


@pytest.mark.parametrize(
    "rec",
    [
        flow("10.77.0.99", VICTIM, T0 + 12),
        {"event_type": "stats"},
        {**flow(BAD, VICTIM, T0 + 12), "flow": {"start": "x"}},
    ],
)
def test_what_no_step_explains_is_unknown_not_guessed(rec):
    if rec.get("flow", {}).get("start") == "x":
        rec["timestamp"] = "not a time"
    assert lab_of(rec) == {"label": "unknown", "attack": None, "tool": None, "step": None, "attacker": None}


def truth_file(tmp_path):
    steps = [{"name": s.name, "tool": s.tool, "role": s.role, "addresses": list(s.addresses),
              "ports": [list(p) for p in s.ports], "start": s.start, "end": s.end} for s in TRUTH]  # fmt: skip
    path = tmp_path / "truth.json"
    path.write_text(json.dumps({"scenario": "t", "steps": steps}))
    return path


def test_label_file_counts_and_writes_identical_bytes_each_time(tmp_path):
    eve = tmp_path / "eve.json"
    recs = [flow(BAD, VICTIM, T0 + 12), flow(OFFICE, VICTIM, T0 + 50), flow("10.77.0.99", VICTIM, T0),
            flow(OFFICE, VICTIM, T0 + 50, dport=53, event_type="dns")]  # fmt: skip
    eve.write_text("".join(json.dumps(r) + "\n" for r in recs))
    truth = labels.load_truth(truth_file(tmp_path))
    counts = labels.label_file(eve, truth, tmp_path / "a.jsonl.gz")
    labels.label_file(eve, truth, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert counts["flows"] == {"attack:nmap": 1, "benign:web": 1, "unknown:unknown": 1}
    assert counts["records"]["benign:dns"] == 1 and counts["event_types"] == {"dns": 1, "flow": 3}
    with gzip.open(tmp_path / "a.jsonl.gz", "rt") as fh:
        out = [json.loads(line) for line in fh]
    assert [r["lab"]["label"] for r in out] == ["attack", "benign", "unknown", "benign"]
    assert {k: v for k, v in out[0].items() if k != "lab"} == recs[0]  # the record itself is untouched


def test_app_layer_records_take_their_flow_records_label_by_flow_id(tmp_path):
    """An http record written long after the step ended (a held connection) is its flow's."""
    fl = {**flow(BAD, VICTIM, T0 + 12), "flow_id": 42}
    late = {**flow(BAD, VICTIM, T0 + 500, event_type="http"), "flow_id": 42}
    orphan = {**flow(BAD, VICTIM, T0 + 500, event_type="http"), "flow_id": 43}
    out = list(labels.label_records([late, fl, orphan], TRUTH))
    assert out[0]["lab"] == out[1]["lab"] and out[0]["lab"]["tool"] == "nmap"
    assert out[2]["lab"]["label"] == "unknown"


def test_the_label_command_prints_the_flow_counts(tmp_path):
    eve = tmp_path / "eve.json"
    eve.write_text(json.dumps(flow(BAD, VICTIM, T0 + 12)) + "\n")
    res = CliRunner().invoke(lab_cli, ["label", str(eve), str(truth_file(tmp_path)), "-o", str(tmp_path / "o.gz")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"attack:nmap": 1}
