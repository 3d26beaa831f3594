"""The committed eve.json fixtures are real Suricata output of the shared captures
(tests/fixtures/suricata/README.md): every line a JSON record with an event_type,
the flow counts the captures' labels.csv states, and the record shapes the agent
has to handle (upper-case proto, reply-direction netflow records)."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "suricata"
LABELS = REPO.parent / "shared" / "datasets" / "pcaps" / "labels.csv"
STEMS = sorted(p.name.removesuffix(".eve.json.gz") for p in FIXTURES.glob("*.eve.json.gz"))


def records(stem: str) -> list[dict]:
    with gzip.open(FIXTURES / f"{stem}.eve.json.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_there_is_one_fixture_per_capture():
    assert len(STEMS) == 7


@pytest.mark.parametrize("stem", STEMS)
def test_every_line_is_a_sensor_record(stem):
    recs = records(stem)
    assert recs and all(isinstance(r, dict) and r.get("event_type") for r in recs)
    types = Counter(r["event_type"] for r in recs)
    assert types["flow"] > 0 and types["netflow"] >= types["flow"]
    assert {r["proto"] for r in recs if r["event_type"] == "flow"} <= {"TCP", "UDP", "ICMP", "IPv6-ICMP"}
    for r in recs:
        if r["event_type"] == "flow":
            assert r["flow"]["start"] <= r["flow"]["end"]


@pytest.mark.skipif(not LABELS.exists(), reason="../shared/datasets/pcaps/labels.csv is not here")
def test_flow_counts_are_those_suricata_gave_for_the_whole_captures():
    with open(LABELS, newline="") as fh:
        expected = {row["file"].removesuffix(".pcap"): int(row["suricata_flow_events"]) for row in csv.DictReader(fh)}
    for stem in STEMS:
        flows = sum(r["event_type"] == "flow" for r in records(stem))
        if "synflood" in stem:
            assert 0 < flows < expected[stem]  # cut to its first 0.4 s (see the README)
        else:
            assert flows == expected[stem], stem


def test_a_scan_names_the_scanner_in_flows_but_the_victims_in_reply_netflow_records():
    recs = records("attack_scan_nmap-subnet-80-443")
    scanner = "192.168.1.71"
    assert {r["src_ip"] for r in recs if r["event_type"] == "flow"} == {scanner}
    replies = [r for r in recs if r["event_type"] == "netflow" and r["dest_ip"] == scanner]
    assert len(replies) == 10 and all(r["src_ip"].startswith("192.168.1.") for r in replies)
