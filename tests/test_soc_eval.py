"""bench/soc_eval.py's helpers on tiny data: the agent's cooldowns and alert budgets applied
in event time (a replay of a 20-minute run takes seconds of the agent's own clock), the
false alerts and the first alert naming each attacker, and the --dev split of the training
run."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import yaml

_PATH = Path(__file__).resolve().parents[1] / "bench" / "soc_eval.py"
_spec = importlib.util.spec_from_file_location("soc_eval", _PATH)
assert _spec and _spec.loader
se = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("soc_eval", se)
_spec.loader.exec_module(se)


def flow(fid: int, t: float, src: str, label: str = "benign", tool: str = "web", attacker: str = "") -> dict:
    stamp = f"2026-12-01T20:{int(t) // 60:02d}:{t % 60:06.3f}+0000"
    return {
        "event_type": "flow", "flow_id": fid, "timestamp": stamp, "src_ip": src,
        "flow": {"start": stamp}, "lab": {"label": label, "tool": tool, "attacker": attacker},
    }  # fmt: skip


def alert(rule: str, fid: int, src: str) -> dict:
    return {"rule": rule, "src_ip": src, "fields": {"flow_id": fid}, "target": {"field": "src_ip", "value": src}}


def profile(tmp_path: Path, monkeypatch, rules: list[dict]) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}))
    monkeypatch.setattr(se, "PROFILE", path)


def test_cooldowns_run_in_event_time_per_rule_and_key(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, [{"rule": "r", "task": "threat", "key": "src_ip", "cooldown_s": 120},
                                    {"rule": "q", "key": "src_ip", "cooldown_s": 300}])  # fmt: skip
    recs = [flow(1, 0, "a"), flow(2, 60, "a"), flow(3, 130, "a"), flow(4, 61, "b"), flow(5, 62, "a")]
    by_flow = {r["flow_id"]: r for r in recs}
    alerts = [alert("r", 1, "a"), alert("r", 2, "a"), alert("r", 4, "b"), alert("q", 5, "a"), alert("r", 3, "a")]
    kept = se.event_time_limits(alerts, by_flow)
    # a at 60 s is within r's 120 s; b is another key; q is another rule; a at 130 s is past it
    assert [(a["rule"], a["fields"]["flow_id"]) for a in kept] == [("r", 1), ("r", 4), ("q", 5), ("r", 3)]


def test_the_alert_budget_runs_in_event_time(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, [{"rule": "r", "key": "src_ip", "cooldown_s": 0, "max_alerts_per_min": 2}])
    recs = [flow(i, t, f"10.0.0.{i}") for i, t in enumerate([0, 1, 2, 59, 61, 62, 63])]
    alerts = [alert("r", r["flow_id"], r["src_ip"]) for r in recs]
    kept = se.event_time_limits(alerts, {r["flow_id"]: r for r in recs})
    # two in the first minute; at 61 s and 62 s the kept ones at 0 s and 1 s are a minute old;
    # at 63 s, 61 s and 62 s spent the budget
    assert [a["fields"]["flow_id"] for a in kept] == [0, 1, 4, 5]


def test_false_alerts_and_the_first_alert_naming_each_attacker():
    recs = [
        flow(1, 0, "10.0.0.9", "attack", "hydra", "10.0.0.9"),
        flow(2, 5, "10.0.0.9", "attack", "hydra", "10.0.0.9"),
        flow(3, 30, "10.0.0.9", "attack", "hydra", "10.0.0.9"),
        flow(4, 10, "10.0.0.2"),
        flow(5, 100, "10.0.0.3"),
    ]
    by_flow = {r["flow_id"]: r for r in recs}
    alerts = [alert("flow_threat", 3, "10.0.0.9"), alert("brute_force", 2, "10.0.0.9"),
              alert("flow_threat", 4, "10.0.0.2"), alert("flow_threat", 5, "10.0.0.3")]  # fmt: skip
    m = se._alert_metrics(alerts, recs, by_flow, None)
    assert m["false_alerts"] == 2 and m["false_by_rule"] == {"flow_threat": 2}
    assert m["false_first_60s"] == 1  # the one at 10 s; the one at 100 s is past the first minute
    assert m["detected"]["hydra"]["10.0.0.9"] == {"delay_s": 5.0, "rule": "brute_force"}
    counted = se._alert_metrics(alerts, recs, by_flow, lambda r: r["flow_id"] == 5)
    assert counted["false_alerts"] == 1


def test_a_flood_alert_naming_the_victim_of_an_attack_flow_is_a_detection_not_a_false_alert():
    """The flood rule's target is dest_ip, the victim: raised by a flood's own flow, it names
    the attack's victim; raised by a benign flow, or naming a host no attack went to, it is false."""
    recs = [
        flow(1, 0, "203.0.113.7", "attack", "hping3", "10.0.0.68"),
        flow(2, 4, "203.0.113.8", "attack", "hping3", "10.0.0.68"),
        flow(3, 5, "10.0.0.2"),
    ]
    for r in recs:
        r["dest_ip"] = "10.0.0.10"
    by_flow = {r["flow_id"]: r for r in recs}

    def victim_alert(fid: int, victim: str = "10.0.0.10") -> dict:
        return {"rule": "flood", "src_ip": by_flow[fid]["src_ip"], "fields": {"flow_id": fid},
                "target": {"field": "dest_ip", "value": victim}}  # fmt: skip

    m = se._alert_metrics([victim_alert(2), victim_alert(3), victim_alert(1, "10.0.0.11")], recs, by_flow, None)
    assert m["false_alerts"] == 2 and m["false_by_rule"] == {"flood": 2}
    assert m["victims_named"] == {"hping3": {"10.0.0.10": {"delay_s": 4.0, "rule": "flood", "alerts": 1}}}
    assert m["detected"]["hping3"]["10.0.0.68"]["delay_s"] is None  # the attacker itself is not named


def test_the_dev_split_holds_out_every_third_block_of_benign_flows(tmp_path):
    recs = [flow(i, t, "10.0.0.2") for i, t in enumerate([0, 130, 250, 370, 500])]
    recs.append(flow(9, 130, "10.0.0.9", "attack", "nmap", "10.0.0.9"))
    dev = {r["flow_id"] for r in recs if se.in_dev(r, 120)}
    # 20:00:00 UTC is a multiple of 360 s: blocks 0, 1, 2, 0, 1 from 0 s by 120 s
    assert dev == {1, 4}
    assert 9 not in dev  # attack flows are never part of the benign slice
    out = se.dev_training_file([json.dumps(r).encode() for r in recs], 120, tmp_path / "t.jsonl.gz")
    with gzip.open(out) as fh:
        tools = {json.loads(x)["flow_id"]: json.loads(x)["lab"]["tool"] for x in fh}
    assert {f for f, t in tools.items() if t == se.DEV_TOOL} == dev and dev


def test_flows_are_flagged_by_the_tasks_and_thresholds_the_profiles_rules_use(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, [
        {"rule": "a", "task": "threat", "threshold": 0.9},
        {"rule": "b", "task": "threat", "threshold": 0.95},
        {"rule": "c", "task": "novelty", "enabled": False},
        {"rule": "d", "task": "other"},
        {"rule": "e", "key": "src_ip"},
    ])  # fmt: skip
    assert se.alerting_tasks() == {"threat": 0.9, "other": None}
