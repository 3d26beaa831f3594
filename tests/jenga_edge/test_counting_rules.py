"""Rules on window fields, rules without a task (counting rules), any/all/not and
macros; and the soc profile's counting rules on real Suricata output: a scan's
alerts name the scanner, never the hosts it scanned."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.errors import ConfigError
from jenga_edge.decode import DecodedBatch
from jenga_edge.rules import RuleConfig, RuleEngine
from jenga_edge.score import Scores

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "suricata"


def rule(**kw) -> RuleConfig:
    return RuleConfig(**{"rule": "r", **kw})


def batch(**cols) -> DecodedBatch:
    n = len(next(iter(cols.values())))
    return DecodedBatch(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64), list(range(n)), cols)


NO_SCORES = Scores({}, {})


# --- conditions ------------------------------------------------------------------------------


def test_a_counting_rule_alerts_on_its_condition_alone():
    eng = RuleEngine([rule(condition={"hosts_60s": {"gte": 6}}, priority="error")], {})
    hits = eng.evaluate(batch(hosts_60s=[1.0, 6.0, None, 9.0]), NO_SCORES)
    assert [(h.row, h.score, h.priority) for h in hits] == [(1, None, "error"), (3, None, "error")]


def test_any_all_not_and_macros():
    macros = {"admin": {"dest_port": [22, 3389]}, "loud": {"any": [{"tries": {"gte": 8}}, {"macro": "admin"}]}}
    cond = {"macro": "loud", "not": {"src_ip": {"in": ["10.0.0.1"]}}}
    eng = RuleEngine([rule(condition=cond)], {}, macros=macros)
    b = batch(dest_port=[22, 80, 80, 3389], tries=[0, 9, 1, 0], src_ip=["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.1"])
    assert [h.row for h in eng.evaluate(b, NO_SCORES)] == [0, 1]
    assert eng.fields >= {"dest_port", "tries", "src_ip"}  # the decoder reads what macros use


@pytest.mark.parametrize(
    "raw, text",
    [
        (
            {"rules": [{"rule": "r", "condition": {"macro": "nope"}}]},
            r"rules\[0\]\.condition\.macro: unknown macro 'nope'",
        ),
        ({"macros": {"a": {"macro": "b"}, "b": {"macro": "a"}}}, r"macro 'a' uses itself \(a -> b -> a\)"),
        (
            {"rules": [{"rule": "r", "condition": {"any": []}}]},
            r"rules\[0\]\.condition\.any: expected a non-empty list",
        ),
        ({"rules": [{"rule": "r", "condition": {"x": {"like": 1}}}]}, r"rules\[0\]\.condition\.x: unknown operator"),
        ({"rules": [{"rule": "r"}]}, r"rules\[0\]\.condition: a rule without a task alerts on its condition alone"),
        (
            {"rules": [{"rule": "r", "condition": {"x": 1}, "threshold": 0.5}]},
            r"rules\[0\]\.threshold: is about a task",
        ),
    ],
)
def test_malformed_conditions_name_the_key(raw, text):
    with pytest.raises(ConfigError, match=text):
        agent_config_from_dict({"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], **raw}, "agent.yaml")


# --- the soc profile on real Suricata output ----------------------------------------------------


def run_profile(bundle: Path, tmp: Path, eve: bytes, **event) -> tuple[list[dict], dict, list[str]]:
    soc = yaml.safe_load((REPO / "firmware_configs/suricata_flat_model.yaml").read_text())
    cfg = {
        "agent": {"id": "soc", "bundle": str(bundle), "tasks": ["threat"]},
        "sources": [{"type": "stdin"}],
        "event": {**soc["event"], "snapshot": "", **event},
        "macros": soc["macros"],
        "rules": [r for r in soc["rules"] if r.get("task") is None],
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "dead_letter": {"path": str(tmp / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(path)],
        input=eve,
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 0, err[-5:]
    alerts_file = tmp / "alerts.jsonl"
    alerts = [json.loads(x) for x in alerts_file.read_text().splitlines()] if alerts_file.exists() else []
    return alerts, json.loads(err[-1]), err


def eve(name: str) -> bytes:
    with gzip.open(FIXTURES / f"{name}.eve.json.gz") as fh:
        return fh.read()


def test_the_scan_rule_names_the_scanner_never_the_scanned(network_bundle, tmp_path):
    alerts, summary, _ = run_profile(network_bundle[0], tmp_path, eve("attack_scan_nmap-subnet-80-443"))
    scans = [a for a in alerts if a["rule"] == "port_scan"]
    assert scans and {a["src_ip"] for a in scans} == {"192.168.1.71"}
    assert {a["target"]["value"] for a in scans} == {"192.168.1.71"}
    assert scans[0]["task"] is None and scans[0]["score"] is None
    assert "hosts" in scans[0]["output"]
    # the reply-direction netflow records (src = a scanned host) were filtered, never alerted on
    assert summary["filtered"] > 0 and summary["received"] == summary["scored"] + summary["filtered"]


@pytest.mark.parametrize("name", ["attack_bruteforce_ssh", "attack_bruteforce_ftp"])
def test_the_brute_force_rule_names_the_attacker(network_bundle, tmp_path, name):
    alerts, _, _ = run_profile(network_bundle[0], tmp_path, eve(name))
    brute = [a for a in alerts if a["rule"] == "brute_force"]
    assert len(brute) == 1 and brute[0]["src_ip"] == "192.168.56.1"  # cooldown: one alert per attacker


@pytest.mark.parametrize("name", ["benign_http-dns_wikipedia", "benign_http_bro-org", "benign_quic_firefox-google"])
def test_no_counting_alert_on_benign_captures(network_bundle, tmp_path, name):
    alerts, _, _ = run_profile(network_bundle[0], tmp_path, eve(name))
    assert not [a for a in alerts if a["rule"] in ("port_scan", "brute_force")]


def test_window_state_survives_a_restart_through_the_snapshot(network_bundle, tmp_path):
    flows = [line for line in eve("attack_scan_nmap-subnet-80-443").splitlines() if b'"event_type":"flow"' in line]
    snapshot = str(tmp_path / "windows.snapshot")
    hosts = [json.loads(line)["dest_ip"] for line in flows]
    cut = next(k for k in range(len(flows)) if len(set(hosts[k:])) < 5)  # the rest alone: too few hosts for a scan
    first, second = b"\n".join(flows[:cut]) + b"\n", b"\n".join(flows[cut:]) + b"\n"
    (tmp_path / "a").mkdir()
    alone, _, _ = run_profile(network_bundle[0], tmp_path / "a", second)
    (tmp_path / "b").mkdir()
    _, _, log1 = run_profile(network_bundle[0], tmp_path / "b", first, snapshot=snapshot)
    assert any("window snapshot saved" in line for line in log1)
    resumed, _, log2 = run_profile(network_bundle[0], tmp_path / "b", second, snapshot=snapshot)
    assert any("window snapshot" in line and "restored" in line for line in log2)
    # the last flows alone reach too few hosts; after the restart the windows still hold the first ones
    assert {a["src_ip"] for a in resumed if a["rule"] == "port_scan"} == {"192.168.1.71"}, [
        a["output"] for a in resumed
    ]
    assert not [a for a in alone if a["rule"] == "port_scan"]


def test_check_runs_the_profiles_windows_over_a_file(network_bundle, tmp_path):
    from click.testing import CliRunner

    from jenga_edge.cli import main as edge_cli

    soc = str(REPO / "firmware_configs/suricata_flat_model.yaml")
    flow = next(line for line in eve("attack_scan_nmap-subnet-80-443").splitlines() if b'"event_type":"flow"' in line)
    one = CliRunner().invoke(
        edge_cli, ["check", "--bundle", str(network_bundle[0]), "--config", soc, "--json", flow.decode()]
    )
    assert one.exit_code in (0, 1), one.output
    assert "note" not in json.loads(one.stdout)  # the profile's own windows feed rules, never these scores
    path = tmp_path / "eve.json"
    path.write_bytes(eve("attack_scan_nmap-subnet-80-443"))
    many = CliRunner().invoke(
        edge_cli, ["check", "--bundle", str(network_bundle[0]), "--config", soc, "--json", "-f", str(path)]
    )
    assert many.exit_code in (0, 1), many.output
    assert all("note" not in json.loads(line) for line in many.stdout.splitlines())


def test_a_reload_keeps_window_state_only_when_the_windows_are_unchanged(network_bundle, tmp_path):
    from jenga_edge.agent import _carry_state, build_pipeline

    soc = yaml.safe_load((REPO / "firmware_configs/suricata_flat_model.yaml").read_text())
    raw = {
        "agent": {"bundle": str(network_bundle[0]), "tasks": ["threat"]},
        "sources": [{"type": "stdin"}],
        "event": {**soc["event"], "snapshot": ""},
        "dead_letter": {"path": str(tmp_path / "dead.jsonl")},
    }
    flows = [line for line in eve("attack_scan_nmap-subnet-80-443").splitlines() if b'"event_type":"flow"' in line]
    old = build_pipeline(agent_config_from_dict(raw))
    old.decoder.decode(flows)
    assert old.decoder.windows is not None and old.decoder.windows.live_keys > 0
    same = build_pipeline(agent_config_from_dict(raw))
    _carry_state(old, same)
    assert same.decoder.windows is not None and same.decoder.windows.live_keys == old.decoder.windows.live_keys
    changed = {
        **raw,
        "event": {
            **raw["event"],
            "windows": {**raw["event"]["windows"], "extra": {"kind": "since_previous", "key": ["dest_ip"]}},
        },
    }
    other = build_pipeline(agent_config_from_dict(changed))
    _carry_state(old, other)
    assert other.decoder.windows is not None and other.decoder.windows.live_keys == 0


def test_the_agent_bounds_its_own_windows_but_not_the_bundles():
    from jenga_edge.contract.events import EventModel
    from jenga_edge.contract.schema import Feature, FeatureSchema
    from jenga_edge.contract.typed import convert
    from jenga_edge.contract.windows import Count
    from jenga_edge.decode import EventDecoder

    mine = {"c": Count(key=["src_ip"], window_s=60.0)}
    flat = FeatureSchema((Feature("x", "numeric"),))
    dec = EventDecoder(flat, time="t", windows=mine, limits={"max_keys": 32, "lag_s": 2.0})
    assert dec.windows is not None and dec.model.max_keys == 32 and dec.model.lag_s == 2.0
    model = convert(EventModel, {"time": "t", "windows": {"w": {"kind": "count", "key": ["src_ip"], "window_s": 5}}})
    with_windows = FeatureSchema((Feature("x", "numeric"), Feature("w", "numeric")), events=model)
    with pytest.raises(ConfigError, match=r"event\.max_keys: the bundle's windows run with max_keys 100000"):
        EventDecoder(with_windows, windows=mine, limits={"max_keys": 32})
    assert EventDecoder(with_windows, windows=mine, limits={"max_keys": 100_000}).model.max_keys == 100_000


def test_snapshot_outcomes_are_counted_as_well_as_logged(network_bundle, tmp_path):
    from jenga_edge.agent import Agent

    soc = yaml.safe_load((REPO / "firmware_configs/suricata_flat_model.yaml").read_text())
    snap = tmp_path / "w.snap"
    snap.write_bytes(b"not a snapshot")
    raw = {
        "agent": {"bundle": str(network_bundle[0]), "tasks": ["threat"]},
        "sources": [{"type": "stdin"}],
        "event": {**soc["event"], "snapshot": str(snap)},
        "dead_letter": {"path": str(tmp_path / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
    }
    logs: list[str] = []
    agent = Agent(agent_config_from_dict(raw), log=logs.append)
    assert agent.metrics.window_snapshots.labelled() == {"refused": 1}
    assert any("window snapshot refused" in line for line in logs)
    agent._shutdown()
    assert agent.metrics.window_snapshots.labelled() == {"refused": 1, "saved": 1}
    assert any("window snapshot saved" in line for line in logs)


def test_an_alert_the_budget_left_out_starts_no_cooldown():
    """A storm fills the budget: the keys it left out were never alerted, so they must not sit
    in a cooldown afterwards (they were, for cooldown_s, counted as suppressed)."""
    clock = [100.0]
    eng = RuleEngine(
        [rule(condition={"x": 1}, key="src", cooldown_s=300, max_alerts_per_min=2)], {}, clock=lambda: clock[0]
    )
    storm = batch(x=[1] * 5, src=["a", "b", "c", "d", "a"])
    assert [h.row for h in eng.evaluate(storm, NO_SCORES)] == [0, 1]  # a, b alert; c, d over budget
    assert eng.take_over_budget() == {"r": 2} and eng.suppressed == 1  # the second "a": its cooldown
    clock[0] = 161.0  # the budget's minute has passed; a's and b's cooldowns have not
    again = batch(x=[1] * 4, src=["c", "a", "d", "e"])
    assert [h.row for h in eng.evaluate(again, NO_SCORES)] == [0, 2]  # c and d alert now
    assert eng.take_over_budget() == {"r": 1} and eng.suppressed == 2  # e over budget; a cooled


def test_a_rules_alert_budget_keeps_the_first_alerts_of_each_minute():
    import numpy as np

    from jenga_edge.rules import Rule, RuleConfig

    cfg = RuleConfig(rule="r", condition={"x": 1}, max_alerts_per_min=3)
    rule = Rule(cfg, None, "rules[0]")
    rows = np.arange(5, dtype=np.intp)
    assert rule.within_budget(rows, 100.0).tolist() == [0, 1, 2]
    assert rule.within_budget(rows, 130.0).tolist() == []  # still within the minute
    assert rule.within_budget(rows, 160.0).tolist() == [0, 1, 2]  # the first three have aged out
    unlimited = Rule(RuleConfig(rule="u", condition={"x": 1}), None, "rules[1]")
    assert unlimited.within_budget(rows, 0.0).tolist() == [0, 1, 2, 3, 4]
    from jenga_edge.contract.typed import convert

    with pytest.raises(ConfigError, match=r"agent\.yaml: max_alerts_per_min: expected a value >= 1, got 0"):
        convert(RuleConfig, {"rule": "bad", "condition": {"x": 1}, "max_alerts_per_min": 0}, "agent.yaml")
