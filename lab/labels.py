"""Label Suricata records from the ground truth: which step's addresses, at what time.

A step's ground truth names its addresses (the host's, plus any it forged), the
destination ports of its behaviour and the wall-clock span it ran. A record
belongs to the step one of whose addresses is its src_ip or dest_ip and whose
span holds the record's start (`flow.start` for flow records, `timestamp` for
the others), widened by SLACK_BEFORE / SLACK_AFTER seconds: packets of a step
arrive just after its process started, and the last ones (a reply, a RST) just
after it ended. Attackers and benign hosts never share an address, and one
attacker runs one tool at a time (the scenario checks both), so at most one
attack step can match; a benign host's overlapping behaviours are told apart by
port. A record no step explains is labelled `unknown` and counted. A record of a flow
that has a flow record (http, dns, ftp, ssh, anomaly) takes that flow's label.

Each record gains a `lab` object:

    "lab": {"label": "attack", "attack": 1, "tool": "nmap", "step": "syn-scan", "attacker": "10.77.0.66"}

(`attack` is 0 for benign, null for unknown; `attacker` is the matching address of an attack step).
A benign record must also match its behaviour's ports; when two behaviours of one host
share the port (a machine's and a person's DNS lookups), `tool` and `step` name both,
"dns|machine". Two attack steps never match one record (the scenario keeps one host's
attacks SLACK_BEFORE + SLACK_AFTER apart); if they did, the record would be unknown.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jenga_edge.contract.values import parse_time

SLACK_BEFORE = 1.0
SLACK_AFTER = 5.0
FLOW_TYPES = ("flow", "netflow")


@dataclass(frozen=True)
class TruthStep:
    name: str
    tool: str
    role: str  # attack | benign
    addresses: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]  # destination port ranges of a benign behaviour; () = any
    start: float
    end: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TruthStep:
        ports = tuple((int(a), int(b)) for a, b in d["ports"])
        return cls(d["name"], d["tool"], d["role"], tuple(d["addresses"]), ports, float(d["start"]), float(d["end"]))

    def holds(self, t: float) -> bool:
        return self.start - SLACK_BEFORE <= t <= self.end + SLACK_AFTER

    def serves(self, port: int | None) -> bool:
        return not self.ports or (port is not None and any(a <= port <= b for a, b in self.ports))


def record_time(rec: dict[str, Any]) -> float | None:
    text = rec.get("flow", {}).get("start") if rec.get("event_type") in FLOW_TYPES else None
    text = text or rec.get("timestamp")
    return parse_time(text) if isinstance(text, str) else None


def match(rec: dict[str, Any], truth: list[TruthStep]) -> tuple[list[TruthStep], str] | None:
    """The steps that can have made `rec` (one, or several benign behaviours of one host on
    one port), with the address of theirs the record shows; None when no step, or more
    than one attack step, explains it."""
    t = record_time(rec)
    if t is None:
        return None
    src, dst = rec.get("src_ip"), rec.get("dest_ip")
    found = [s for s in truth if (src in s.addresses or dst in s.addresses) and s.holds(t)]
    attacks = [s for s in found if s.role == "attack"]
    if attacks:
        if len(attacks) > 1:
            return None  # two attacks at once on one address: not certain, so not labelled
        s = attacks[0]
        return [s], str(src if src in s.addresses else dst)
    if not found:
        return None
    addr = src if src in found[0].addresses else dst
    port = rec.get("dest_port") if addr == src else rec.get("src_port")
    served = [s for s in found if s.serves(port if isinstance(port, int) else None)]
    return (served, str(addr)) if served else None


def lab_field(rec: dict[str, Any], truth: list[TruthStep]) -> dict[str, Any]:
    m = match(rec, truth)
    if m is None:
        return {"label": "unknown", "attack": None, "tool": None, "step": None, "attacker": None}
    steps, addr = m
    attack = steps[0].role == "attack"
    # Benign behaviours of one host sharing a port (a machine's lookups, a person's lookups):
    # the label is certain, the behaviour is one of them, named "a|b".
    return {"label": steps[0].role, "attack": int(attack), "tool": "|".join(sorted({s.tool for s in steps})),
            "step": "|".join(sorted(s.name for s in steps)), "attacker": addr if attack else None}  # fmt: skip


def label_records(records: Iterable[dict[str, Any]], truth: list[TruthStep]) -> Iterator[dict[str, Any]]:
    """Flow records by address and time; every other record of a flow (http, dns, ssh...)
    takes its flow record's label through `flow_id`: an app-layer record is written when
    its transaction completes, which for a held connection (slowloris) can be long after
    the step ended. Records without a flow record fall back to their own timestamp."""
    recs = list(records)
    by_flow: dict[Any, dict[str, Any]] = {}
    for rec in recs:
        if rec.get("event_type") == "flow":
            rec["lab"] = lab_field(rec, truth)
            if rec.get("flow_id") is not None:
                by_flow[rec["flow_id"]] = rec["lab"]
    for rec in recs:
        if rec.get("event_type") != "flow":
            known = by_flow.get(rec.get("flow_id"))
            rec["lab"] = dict(known) if known is not None else lab_field(rec, truth)
        yield rec


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_truth(path: Path) -> list[TruthStep]:
    return [TruthStep.from_json(s) for s in json.loads(path.read_text())["steps"]]


@contextlib.contextmanager
def gzip_writer(path: Path) -> Iterator[gzip.GzipFile]:
    """A gzip file whose bytes depend on its content alone (no name, no time in the header)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        yield gz


def label_file(eve: Path, truth: list[TruthStep], out: Path) -> dict[str, Any]:
    """Write `eve` labelled to `out` (gzip, deterministic bytes); return the counts."""
    counts: collections.Counter[str] = collections.Counter()
    flows: collections.Counter[str] = collections.Counter()
    by_type: collections.Counter[str] = collections.Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip_writer(out) as gz:
        for rec in label_records(read_jsonl(eve), truth):
            key = rec["lab"]["tool"] or "unknown"
            counts[f"{rec['lab']['label']}:{key}"] += 1
            by_type[rec.get("event_type", "?")] += 1
            if rec.get("event_type") == "flow":
                flows[f"{rec['lab']['label']}:{key}"] += 1
            gz.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())
    return {"records": dict(sorted(counts.items())), "flows": dict(sorted(flows.items())),
            "event_types": dict(sorted(by_type.items()))}  # fmt: skip
