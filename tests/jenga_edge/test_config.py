"""Tests for jenga_edge/config.py: the agent's config file, path resolution, key-path errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jenga_edge.config import AgentConfig, load_agent_config
from jenga_edge.contract.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO / "firmware_configs").glob("*.yaml"))

MINIMAL = {"agent": {"bundle": "/opt/jenga/bundle"}, "sources": [{"type": "stdin"}]}


def write(tmp_path: Path, data: dict | str, name: str = "agent.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return p


def load(tmp_path: Path, extra: dict | None = None, overrides=(), **sections) -> AgentConfig:
    data = {**MINIMAL, **(extra or {}), **sections}
    return load_agent_config(write(tmp_path, data), overrides)


def error(tmp_path: Path, overrides=(), **sections) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, overrides=overrides, **sections)
    return str(exc.value)


# --- the shipped appliance profiles ------------------------------------------------------------------

def test_there_are_three_profiles():
    assert [p.name for p in PROFILES] == ["arm_gateway_1core.yaml", "soc_sensor_suricata.yaml",
                                          "x86_branch_firewall.yaml"]


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_each_profile_loads(path):
    cfg = load_agent_config(path)
    assert isinstance(cfg, AgentConfig)
    assert Path(cfg.agent.bundle).is_absolute()          # appliance profiles use absolute paths
    assert cfg.sources and cfg.rules and cfg.description
    assert cfg.runtime.intra_op_threads == 1
    for r in cfg.rules:                                   # every rule action is configured
        for a in r.actions:
            assert a == "alert" or getattr(cfg.actions, a) is not None
    assert Path(cfg.dead_letter.path).is_absolute()


def test_profile_details():
    arm = load_agent_config(REPO / "firmware_configs/arm_gateway_1core.yaml")
    assert arm.agent.id == "arm-gw-01" and arm.batching.max_batch == 32
    assert [s.type for s in arm.sources] == ["unix", "udp"]
    assert arm.event.mapping == {"port": "dest_port"} and arm.allowlist == ["192.168.1.1", "10.0.0.0/8"]
    assert arm.rules[0].severity[0].min_score == 0.98 and arm.actions.firewall is not None

    soc = load_agent_config(REPO / "firmware_configs/soc_sensor_suricata.yaml")
    assert soc.agent.tasks == ["threat", "attack_type"]
    assert soc.event.mapping["bytes_sent"] == "flow.bytes_toserver"
    assert soc.rules[1].labels == ["exfiltration"] and soc.rules[1].threshold == 0.7
    assert soc.sources[0].path == "/var/log/suricata/eve.json"

    fw = load_agent_config(REPO / "firmware_configs/x86_branch_firewall.yaml")
    assert [r.rule for r in fw.rules] == ["admin_port_attack_block", "threat_alert", "scan_classified"]
    assert fw.rules[0].condition == {"dest_port": [22, 3389, 445]}
    assert fw.rules[1].condition == {"dest_port": {"not_in": [22, 3389, 445]}}
    assert fw.actions.webhook is not None and fw.sinks.sqlite.path == "/var/lib/jenga/alerts.db"


def test_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.batching.max_batch == 256 and cfg.batching.max_wait_ms == 5.0
    assert cfg.event.keys == ["src_ip", "dest_ip", "dest_port"] and cfg.event.mapping == {}
    assert cfg.rules == [] and cfg.allowlist == [] and cfg.agent.tasks is None
    assert cfg.runtime.use_merged_graph is True and cfg.agent.id


# --- relative paths ---------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_dir(tmp_path, monkeypatch):
    d = tmp_path / "profile"
    d.mkdir()
    data = {"agent": {"bundle": "b"},
            "sources": [{"type": "file", "path": "logs/events.jsonl"}, {"type": "unix", "path": "run/ev.sock"},
                        {"type": "stdin"}],
            "sinks": {"jsonl": {"path": "alerts.jsonl"}, "sqlite": {"path": "db/alerts.db"}},
            "actions": {"webhook": {"url": "https://soc.example/ingest", "spool_dir": "spool"}}}
    path = write(d, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for p in (path, Path("..") / "profile" / "agent.yaml"):       # absolute and relative config paths
        cfg = load_agent_config(p)
        base = d.resolve()
        assert cfg.agent.bundle == str(base / "b")
        assert cfg.sources[0].path == str(base / "logs/events.jsonl")
        assert cfg.sources[1].path == "run/ev.sock"                # a socket path is not a file path
        assert cfg.sinks.jsonl.path == str(base / "alerts.jsonl")
        assert cfg.sinks.sqlite.path == str(base / "db/alerts.db")
        assert cfg.dead_letter.path == str(base / "dead_letter.jsonl")    # the default, too
        assert cfg.actions.webhook.spool_dir == str(base / "spool")


def test_absolute_paths_are_kept(tmp_path):
    cfg = load(tmp_path, agent={"bundle": "/srv/bundle"}, dead_letter={"path": "/var/log/dl.jsonl"})
    assert cfg.agent.bundle == "/srv/bundle" and cfg.dead_letter.path == "/var/log/dl.jsonl"


# --- errors name the key path ------------------------------------------------------------------------

def test_unknown_key_with_a_suggestion(tmp_path):
    msg = error(tmp_path, batching={"max_bach": 64})
    assert re.search(r"agent\.yaml: batching\.max_bach: unknown key \(did you mean 'max_batch'\?\); "
                     r"expected one of: max_batch, max_wait_ms, queue_size, queue_bytes, max_line_bytes", msg), msg
    msg = error(tmp_path, runtim={"intra_op_threads": 1})
    assert "runtim: unknown key (did you mean 'runtime'?)" in msg


def test_wrong_type(tmp_path):
    msg = error(tmp_path, batching={"max_batch": "big"})
    assert "batching.max_batch: expected an integer, got str 'big'" in msg
    msg = error(tmp_path, batching={"max_batch": True})
    assert "batching.max_batch: expected an integer, got bool True" in msg
    msg = error(tmp_path, allowlist="10.0.0.0/8")
    assert "allowlist: expected a list of a string" in msg
    msg = error(tmp_path, runtime={"graph_optimization": "ful"})
    assert "runtime.graph_optimization: expected one of 'disable', 'basic', 'extended', 'all'" in msg


def test_out_of_range(tmp_path):
    assert "batching.max_batch: expected a value >= 1, got 0" in error(tmp_path, batching={"max_batch": 0})
    assert "runtime.intra_op_threads: expected a value <= 256" in error(tmp_path, runtime={"intra_op_threads": 1000})
    assert "rules[0].cooldown_s: expected a value >= 0" in error(
        tmp_path, rules=[{"rule": "r", "task": "threat", "cooldown_s": -5}])


def test_missing_required_keys(tmp_path):
    p = write(tmp_path, {"sources": [{"type": "stdin"}]})
    with pytest.raises(ConfigError, match=r"agent: missing required key"):
        load_agent_config(p)
    msg = error(tmp_path, agent={"id": "x"})
    assert "agent.bundle: missing required key, expected a string" in msg
    msg = error(tmp_path, rules=[{"rule": "r"}])
    assert "rules[0].task: missing required key" in msg


def test_empty_sources_list(tmp_path):
    assert "sources: expected a non-empty value" in error(tmp_path, sources=[])


def test_rule_using_an_unconfigured_action(tmp_path):
    rules = [{"rule": "ok", "task": "threat"},
             {"rule": "block", "task": "threat", "actions": ["alert", "firewall"]}]
    msg = error(tmp_path, rules=[rules[1]])
    assert re.search(r"rules\[0\]\.actions\[1\]: action 'firewall' is not configured; configured: alert "
                     r"\(add actions\.firewall\)", msg), msg
    msg = error(tmp_path, rules=rules)
    assert "rules[1].actions[1]" in msg
    cfg = load(tmp_path, rules=rules, actions={"firewall": {"backend": "nftables", "dry_run": True}})
    assert cfg.rules[1].actions == ["alert", "firewall"]


def test_unknown_action_name(tmp_path):
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "actions": ["alert", "pager"]}])
    assert "rules[0].actions[1]: action 'pager' is not configured" in msg


def test_duplicate_rule_names(tmp_path):
    rules = [{"rule": "a", "task": "threat"}, {"rule": "b", "task": "threat"}, {"rule": "a", "task": "attack_type"}]
    msg = error(tmp_path, rules=rules)
    assert "rules[2].rule: rule name 'a' is used more than once" in msg


@pytest.mark.parametrize("host", ["localhost", "999.0.0.1", "10.0.0.0/8", ""])
def test_tcp_source_with_a_bad_host(tmp_path, host):
    msg = error(tmp_path, sources=[{"type": "tcp", "host": host, "port": 5514}])
    assert re.search(r"agent\.yaml: sources\[0\]: .*host: expected an IP address", msg), msg
    assert repr(host) in msg


def test_source_errors_name_the_list_item(tmp_path):
    msg = error(tmp_path, sources=[{"type": "stdin"}, {"type": "tcp"}])
    assert "sources[1]" in msg and "port: required" in msg
    msg = error(tmp_path, sources=[{"type": "stdin"}, {"type": "tcp", "port": 70000}])
    assert "sources[1].port: expected a value <= 65535" in msg
    msg = error(tmp_path, sources=[{"type": "socket"}])
    assert "sources[0].type" in msg


def test_rule_section_errors(tmp_path):
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "priority": "critcal"}])
    assert "rules[0].priority: expected one of" in msg and "did you mean 'critical'" in msg
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "threshold": "bundel"}])
    assert "rules[0].threshold" in msg
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "severity": [{"min_score": 1.5}]}])
    assert "rules[0].severity[0].min_score: expected a value <= 1" in msg


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_agent_config(write(tmp_path, "- a\n- b\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_agent_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
        load_agent_config(write(tmp_path, "agent: {bundle: b\nsources: [\n"))


# --- overrides (--set) ------------------------------------------------------------------------------

def test_overrides_apply_before_validation(tmp_path):
    cfg = load(tmp_path, rules=[{"rule": "r", "task": "threat", "cooldown_s": 60}],
               overrides=["batching.max_batch=64", "runtime.use_merged_graph=false", "rules[0].cooldown_s=5",
                          "agent.tasks=[threat]", "allowlist=[10.0.0.0/8]", "event.mapping.port=dest_port"])
    assert cfg.batching.max_batch == 64 and cfg.runtime.use_merged_graph is False
    assert cfg.rules[0].cooldown_s == 5.0 and cfg.agent.tasks == ["threat"]
    assert cfg.allowlist == ["10.0.0.0/8"] and cfg.event.mapping == {"port": "dest_port"}


def test_overrides_do_not_change_the_file(tmp_path):
    p = write(tmp_path, MINIMAL)
    before = p.read_text()
    assert load_agent_config(p, ["batching.max_batch=8"]).batching.max_batch == 8
    assert p.read_text() == before and load_agent_config(p).batching.max_batch == 256


def test_an_overridden_bundle_path_is_resolved_like_the_file(tmp_path):
    cfg = load(tmp_path, overrides=["agent.bundle=other"])
    assert cfg.agent.bundle == str(tmp_path.resolve() / "other")
    assert load(tmp_path, overrides=["agent.bundle=/abs/b"]).agent.bundle == "/abs/b"


def test_bad_overrides_name_the_key(tmp_path):
    msg = error(tmp_path, overrides=["batching.max_bach=64"])
    assert "batching.max_bach: unknown key (did you mean 'max_batch'?)" in msg
    msg = error(tmp_path, overrides=["batching.max_batch=lots"])
    assert "batching.max_batch: expected an integer, got str 'lots'" in msg
    msg = error(tmp_path, overrides=["rules[0].cooldown_s=5"])
    assert "--set rules[0].cooldown_s: no list item [0] here" in msg
    msg = error(tmp_path, overrides=["batching.max_batch"])
    assert "expected KEY=VALUE" in msg
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat"}], overrides=["rules[0].actions=[alert, exec]"])
    assert "rules[0].actions[1]: action 'exec' is not configured" in msg


# --- known bugs ------------------------------------------------------------------------------------

def test_a_config_without_sources_is_an_error(tmp_path):
    p = write(tmp_path, {"agent": {"bundle": "b"}})
    with pytest.raises(ConfigError, match="sources"):
        load_agent_config(p)
