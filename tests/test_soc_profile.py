"""firmware_configs/soc_sensor_suricata.yaml with the bundle it is written for (the SOC model,
trained on the lab corpus), on the shared real captures' Suricata output, through the agent
as run from a shell: every record accounted for, the attackers named, the counting rules
quiet on benign traffic. What the model itself catches is measured in bench/soc_eval.py."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from jenga_edge.cli import main as edge_cli
from jenga_edge.contract.values import parse_time

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "firmware_configs" / "soc_sensor_suricata.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "suricata"
ATTACKERS = {
    "attack_scan_nmap-subnet-80-443": "192.168.1.71",
    "attack_bruteforce_ssh": "192.168.56.1",
    "attack_bruteforce_ftp": "192.168.56.1",
}


def eve(name: str) -> bytes:
    with gzip.open(FIXTURES / f"{name}.eve.json.gz") as fh:
        return fh.read()


def run_profile(
    bundle: Path,
    tmp: Path,
    raw: bytes,
    log: list[str] | None = None,
    warmup: bool = True,
    min_matches: bool = True,
) -> tuple[list[dict], dict]:
    soc = yaml.safe_load(PROFILE.read_text())
    if not warmup:  # as after a restart that restored the window snapshot
        soc["rules"] = [{k: v for k, v in r.items() if k != "warmup_s"} for r in soc["rules"]]
    if not min_matches:  # every flow a rule passes alerts: the alert budget alone holds a flood
        soc["rules"] = [{k: v for k, v in r.items() if k != "min_matches"} for r in soc["rules"]]
    cfg = {
        **soc,
        "agent": {**soc["agent"], "bundle": str(bundle)},
        "sources": [{"type": "stdin"}],
        "event": {**soc["event"], "snapshot": ""},
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "dead_letter": {"path": str(tmp / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(path)], input=raw,
                          capture_output=True, cwd=REPO, timeout=120)  # fmt: skip
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 0, err[-5:]
    if log is not None:
        log.extend(err)
    alerts_file = tmp / "alerts.jsonl"
    alerts = [json.loads(x) for x in alerts_file.read_text().splitlines()] if alerts_file.exists() else []
    return alerts, json.loads(err[-1])


def test_the_profile_validates_against_its_bundle(soc_bundle):
    res = CliRunner().invoke(edge_cli, ["validate", "--config", str(PROFILE), "--bundle", str(soc_bundle)])
    assert res.exit_code == 0, res.output
    assert "verified" in res.stdout and "scored: event_type: flow" in res.stdout
    assert "bytes_toserver <- flow.bytes_toserver" in res.stdout  # the bundle's own paths: nothing mapped here


@pytest.mark.parametrize("name", sorted(ATTACKERS))
def test_the_attacker_of_each_real_capture_is_named(soc_bundle, tmp_path, name):
    raw = eve(name)
    alerts, summary = run_profile(soc_bundle, tmp_path, raw)
    records = [json.loads(line) for line in raw.splitlines()]
    flows = sum(r["event_type"] == "flow" for r in records)
    assert summary["received"] == len(records) and summary["filtered"] == len(records) - flows
    assert summary["scored"] + summary["rejected"] == flows and summary["dropped"] == 0
    named = {a["target"]["value"] for a in alerts if a.get("target")}
    assert ATTACKERS[name] in named, [a["output"] for a in alerts]
    counting = [a for a in alerts if a["rule"] in ("port_scan", "brute_force")]
    assert counting and {a["src_ip"] for a in counting} == {ATTACKERS[name]}


@pytest.mark.parametrize("name", ["benign_http-dns_wikipedia", "benign_http_bro-org", "benign_quic_firefox-google"])
def test_the_counting_rules_stay_quiet_on_benign_captures(soc_bundle, tmp_path, name):
    alerts, summary = run_profile(soc_bundle, tmp_path, eve(name))
    assert summary["rejected"] == 0
    assert not [a for a in alerts if a["rule"] in ("port_scan", "brute_force", "flood")]
    assert not alerts  # from a cold start: the model's rules are in their warm-up, the counting rules quiet


def test_a_spoofed_flood_is_named_by_its_victim_from_a_cold_start_and_blocks_nothing(soc_bundle, tmp_path):
    """13,853 SYNs from random forged sources to 10.10.10.10:25565, every record at one
    timestamp: within the model rules' warm-up, so only the flood rule (no model, not held)
    can see it. One alert, naming the victim; no block action (the sources are forged)."""
    alerts, summary = run_profile(soc_bundle, tmp_path, eve("attack_dos_tcp-synflood-spoofed"))
    assert summary["dropped"] == 0 and summary["rejected"] == 0
    floods = [a for a in alerts if a["rule"] == "flood"]
    assert len(floods) == 1, [a["output"] for a in alerts]  # the victim's cooldown holds the rest
    (flood,) = floods
    assert flood["target"] == {"field": "dest_ip", "value": "10.10.10.10"} and flood["dest_ip"] == "10.10.10.10"
    assert flood["task"] is None and flood["priority"] == "error"
    assert flood["actions"] == []  # alert only: nothing blocked, dry run or not
    assert flood["output"].startswith("flood on 10.10.10.10:25565 (tcp): ")
    assert not [a for a in alerts if a["task"] is not None]  # the model's rules: still warming up


def test_the_flood_rule_never_runs_an_action():
    """Its target is the victim: a block action there would cut the victim off."""
    (flood,) = [r for r in yaml.safe_load(PROFILE.read_text())["rules"] if r["rule"] == "flood"]
    assert flood["actions"] == ["alert"] and flood["key"] == flood["target"] == "dest_ip"
    assert "task" not in flood and "warmup_s" not in flood


def test_a_flood_from_forged_sources_stays_within_the_rules_alert_budget(soc_bundle, tmp_path):
    """13,853 flows from random forged sources: a new key each, so cooldowns cannot help;
    max_alerts_per_min caps the model's rules, and what it leaves out is said. (Without the
    warm-up, as with warm windows: the capture is shorter than it, below; and without
    min_matches, which holds a source's single flow: the budget alone, for a flood whose
    forged sources repeat.)"""
    log: list[str] = []
    raw = eve("attack_dos_tcp-synflood-spoofed")
    alerts, summary = run_profile(soc_bundle, tmp_path, raw, log, warmup=False, min_matches=False)
    assert summary["dropped"] == 0
    by_rule = {r: sum(a["rule"] == r for a in alerts) for r in ("flow_threat", "flow_novelty")}
    assert 0 < by_rule["flow_threat"] <= 60 and by_rule["flow_novelty"] <= 60, by_rule
    over = [line for line in log if "over its max_alerts_per_min, counted, not raised" in line]
    assert any(line.startswith("rule flow_threat: ") for line in over), log[-5:]
    left_out = sum(int(line.split(": ")[1].split()[0]) for line in over if line.startswith("rule flow_threat: "))
    assert by_rule["flow_threat"] + left_out > 10_000  # every flagged flow is either raised or counted


def test_a_flood_from_forged_sources_is_named_by_its_victim_not_by_each_source(soc_bundle, tmp_path):
    """The shipped rules on the same flood with warm windows: a forged source sends one flow
    (13,840 sources for 13,853 flows), so min_matches holds nearly every flow the model flags,
    each counted (`uncorroborated`); the flood rule names the victim."""
    alerts, summary = run_profile(soc_bundle, tmp_path, eve("attack_dos_tcp-synflood-spoofed"), warmup=False)
    model = [a for a in alerts if a["task"] is not None]
    assert len(model) <= 30, len(model)
    held = summary["uncorroborated"]
    assert held["flow_threat"] > 10_000  # every flagged flow: raised or counted
    assert [a["target"]["value"] for a in alerts if a["rule"] == "flood"] == ["10.10.10.10"]


@pytest.mark.parametrize("name", ["attack_dos_tcp-synflood-spoofed", "benign_http-dns_wikipedia"])
def test_a_capture_shorter_than_the_warm_up_gets_no_model_alert_and_says_so(soc_bundle, tmp_path, name):
    """The profile's model rules wait for a minute of event time after a start with empty
    windows: every record of these captures carries one timestamp (Suricata wrote them at the
    end of the pcap), so nothing the model flags is raised; each is counted and the stop says so.
    The spoofed flood is still detected from a cold start: by the flood rule (no model, never
    held), naming its victim (above)."""
    log: list[str] = []
    alerts, summary = run_profile(soc_bundle, tmp_path, eve(name), log)
    assert not [a for a in alerts if a["task"] is not None]
    held = summary["warmup_held"]
    assert set(held) <= {"flow_threat", "flow_novelty", "flow_novelty_far"}
    if name.startswith("attack"):
        assert held["flow_threat"] > 10_000  # every flagged flow of the flood: counted, not raised
        assert [a["rule"] for a in alerts] == ["flood"]
    else:
        assert not alerts
    assert any(line.startswith("warm-up: no window state restored; rules flow_threat (60 s)") for line in log)
    assert any("warm-up not over, event time ran 0.0 s past the first event" in line for line in log), log[-4:]


def test_the_soc_demos_agent_names_the_scanner_and_would_block_it(soc_bundle, tmp_path):
    """examples/agent_soc_demo.yaml (make soc-demo) on the nmap capture's committed eve.json."""
    sets = [f"agent.bundle={soc_bundle}", f"sinks.jsonl.path={tmp_path / 'a.jsonl'}",
            f"sinks.sqlite.path={tmp_path / 'a.db'}", f"dead_letter.path={tmp_path / 'dead.jsonl'}"]  # fmt: skip
    argv = [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(REPO / "examples" / "agent_soc_demo.yaml")]
    for s in sets:
        argv += ["--set", s]
    proc = subprocess.run(argv, input=eve("attack_scan_nmap-subnet-80-443"), capture_output=True, cwd=REPO,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    alerts = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    scans = [a for a in alerts if a["rule"] == "port_scan"]
    assert scans and scans[0]["target"]["value"] == "192.168.1.71"
    block = scans[0]["actions"][0]
    assert block["dry_run"] and block["argv"][:6] == ["nft", "add", "element", "inet", "jenga", "blocklist"]
    assert "192.168.1.71" in block["argv"][6]


def hydra_first_burst() -> list[dict]:
    """Hydra's first 5 SSH connections on the lab corpus's training run (real Suricata 7
    records), begun within 0.3 s, as a sensor whose flow manager wrote them 6 s apart."""
    path = REPO / "lab" / "corpus" / "corpus-s7" / "labelled.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        recs = [json.loads(line) for line in fh]
    hydra = [r for r in recs if r["event_type"] == "flow" and r["lab"].get("step") == "hydra-ssh"]
    first = sorted(hydra, key=lambda r: r["flow"]["start"])[:5]
    span = parse_time(first[-1]["flow"]["start"]) - parse_time(first[0]["flow"]["start"])
    assert 0 < span < 0.5
    base = "2026-12-01T20:00:{:02d}.000000+0000"
    return [{**r, "timestamp": base.format(30 + 6 * i)} for i, r in enumerate(first)]


def test_a_brute_force_burst_is_counted_where_its_connections_began(soc_bundle, tmp_path):
    """Written 6 s apart, no 10 s of the records' timestamps holds more than 2 of them, and
    5 in 60 s is under the 60 s count's 8: only where they began (flow.start) are they the
    burst of 5 that the brute_force rule fires on."""
    burst = hydra_first_burst()
    raw = b"".join(json.dumps(r).encode() + b"\n" for r in burst)
    alerts, summary = run_profile(soc_bundle, tmp_path, raw)
    assert summary["scored"] == 5
    brute = [a for a in alerts if a["rule"] == "brute_force"]
    assert len(brute) == 1 and brute[0]["target"]["value"] == burst[0]["src_ip"]
    assert "(5 tries in 10 s, 5 in 60 s)" in brute[0]["output"]


def corpus_dns_flows() -> tuple[list[dict], list[dict]]:
    """The lab corpus's training run (real Suricata 7): iodine's flows, and every benign DNS flow."""
    with gzip.open(REPO / "lab" / "corpus" / "corpus-s7" / "labelled.jsonl.gz", "rt") as fh:
        recs = [json.loads(line) for line in fh]
    dns = [r for r in recs if r["event_type"] == "flow" and r.get("dest_port") == 53]
    tunnel = [r for r in dns if r["lab"].get("tool") == "iodine"]
    benign = [r for r in dns if r["lab"]["label"] == "benign"]
    assert len(tunnel) == 8 and len(benign) > 1000
    return tunnel, benign


def as_eve(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in sorted(records, key=lambda r: r["timestamp"]))


def test_a_dns_tunnel_is_named_at_its_first_flow_and_lookups_are_not(soc_bundle, tmp_path):
    """iodine's 28 s sessions, each one flow of hundreds of queries, among the office's
    lookups: the dns_tunnel rule (no model, no warm-up) names the tunnel's client at its first
    flow, once per cooldown; no lookup passes it."""
    tunnel, benign = corpus_dns_flows()
    alerts, summary = run_profile(soc_bundle, tmp_path, as_eve(tunnel + benign))
    assert summary["scored"] == len(tunnel) + len(benign) and summary["rejected"] == 0
    hits = [a for a in alerts if a["rule"] == "dns_tunnel"]
    first = min(tunnel, key=lambda r: r["timestamp"])
    assert len(hits) == 1 and hits[0]["target"] == {"field": "src_ip", "value": "10.77.0.69"}
    assert hits[0]["fields"]["flow_id"] == first["flow_id"]
    queries = first["flow"]["pkts_toserver"]
    assert hits[0]["output"].startswith(f"DNS tunnel from 10.77.0.69 via 10.77.0.10: {queries} queries on one flow")
    (tmp_path / "benign").mkdir()
    alone, _ = run_profile(soc_bundle, tmp_path / "benign", as_eve(benign))
    assert not [a for a in alone if a["rule"] == "dns_tunnel"]


@pytest.mark.parametrize(
    "n, query, answer, alerts",
    [
        (800, 80, 120, 0),  # a forwarder asking from one fixed port: many queries, a lookup's sizes
        (800, 115, 120, 1),  # names carrying data
        (800, 80, 600, 1),  # records carrying data
        (49, 150, 1000, 0),  # a few large lookups on one port (retries, DNSSEC answers): not a tunnel
        (50, 150, 1000, 1),
    ],
)
def test_the_dns_tunnel_rule_reads_the_count_and_the_sizes(soc_bundle, tmp_path, n, query, answer, alerts):
    tunnel, _ = corpus_dns_flows()
    rec = json.loads(json.dumps(tunnel[0]))
    rec["flow"].update(pkts_toserver=n, bytes_toserver=n * query, pkts_toclient=n, bytes_toclient=n * answer)
    got, _ = run_profile(soc_bundle, tmp_path, as_eve([rec]))
    assert sum(a["rule"] == "dns_tunnel" for a in got) == alerts
