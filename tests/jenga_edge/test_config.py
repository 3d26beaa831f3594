"""Tests for jenga_edge/config.py: the agent's config file, path resolution, key-path errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jenga_edge.config import AgentConfig, agent_config_from_dict, config_type, load_agent_config
from jenga_edge.contract.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO / "firmware_configs").glob("*.yaml"))
DEMO = REPO / "examples" / "agent_demo.yaml"

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


def from_dict_error(**sections) -> str:
    """The message agent_config_from_dict gives for MINIMAL + sections, read as `cfg`."""
    with pytest.raises(ConfigError) as exc:
        agent_config_from_dict({**MINIMAL, **sections}, "cfg")
    return str(exc.value)


# --- the shipped appliance profiles ------------------------------------------------------------------


def test_there_are_six_profiles():
    assert [p.name for p in PROFILES] == [
        "arm_gateway_1core.yaml",
        "inline_low_latency.yaml",
        "soc_sensor_dns.yaml",
        "soc_sensor_suricata.yaml",
        "suricata_flat_model.yaml",
        "x86_branch_firewall.yaml",
    ]


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_each_profile_loads(path):
    cfg = load_agent_config(path)
    assert isinstance(cfg, AgentConfig) and isinstance(cfg, config_type())
    assert Path(cfg.agent.bundle).is_absolute()  # appliance profiles use absolute paths
    assert cfg.sources and cfg.rules and cfg.description and cfg.sinks
    assert cfg.runtime.intra_op_threads == 1
    for r in cfg.rules:  # every rule action is configured
        for a in r.actions:
            assert a == "alert" or a in cfg.actions
    for name, sink in cfg.sinks.items():  # the profiles name each sink after its kind
        assert sink.kind == name
    for name, action in cfg.actions.items():
        assert action.kind == name
    assert Path(cfg.dead_letter.path).is_absolute()
    for entry in [*cfg.sources, *cfg.sinks.values(), *cfg.actions.values()]:
        for key in type(entry).paths:  # and absolute paths everywhere
            assert Path(getattr(entry, key)).is_absolute(), (entry.kind, key)


def test_profile_details():
    arm = load_agent_config(REPO / "firmware_configs/arm_gateway_1core.yaml")
    assert arm.agent.id == "arm-gw-01" and arm.batching.max_batch == 32
    assert [s.kind for s in arm.sources] == ["unix", "udp"]
    assert arm.event.mapping == {"port": "dest_port"} and arm.allowlist == ["192.168.1.1", "10.0.0.0/8"]
    assert arm.rules[0].severity[0].min_score == 0.98 and arm.actions["firewall"].kind == "firewall"
    assert list(arm.actions) == ["firewall"] and list(arm.sinks) == ["jsonl", "syslog"]
    assert arm.rate_limit.max_actions == 10 and arm.rate_limit.per_seconds == 60.0

    soc = load_agent_config(REPO / "firmware_configs/suricata_flat_model.yaml")
    assert soc.agent.tasks == ["threat", "attack_type"]
    assert soc.event.mapping["bytes_sent"] == "flow.bytes_toserver"
    by_name = {r.rule: r for r in soc.rules}
    assert (
        by_name["exfiltration_pattern"].labels == ["exfiltration"] and by_name["exfiltration_pattern"].threshold == 0.7
    )
    assert by_name["port_scan"].task is None and by_name["brute_force"].task is None  # counting rules
    assert soc.event.where == {"event_type": "flow"} and set(soc.event.windows) >= {"hosts_60s", "tries_60s"}
    assert soc.sources[0].path == "/var/log/suricata/eve.json"

    fw = load_agent_config(REPO / "firmware_configs/x86_branch_firewall.yaml")
    assert [r.rule for r in fw.rules] == ["admin_port_attack_block", "threat_alert", "scan_classified"]
    assert fw.rules[0].condition == {"dest_port": [22, 3389, 445]}
    assert fw.rules[1].condition == {"dest_port": {"not_in": [22, 3389, 445]}}
    assert fw.actions["webhook"].kind == "webhook" and fw.sinks["sqlite"].path == "/var/lib/jenga/alerts.db"
    assert list(fw.actions) == ["firewall", "webhook"] and list(fw.sinks) == ["jsonl", "sqlite"]
    assert fw.actions["webhook"].spool_dir == "/var/lib/jenga/webhook-spool"  # writable under the systemd unit
    assert fw.rate_limit.max_actions == 30 and fw.rate_limit.per_seconds == 60.0


def test_the_demo_config_loads():
    cfg = load_agent_config(DEMO)
    base = DEMO.resolve().parent
    assert cfg.agent.id == "demo-gw" and cfg.agent.bundle == str(base / "../build/demo/bundle")
    assert [s.kind for s in cfg.sources] == ["stdin"] and cfg.description
    assert list(cfg.actions) == ["firewall"] and cfg.actions["firewall"].dry_run is True
    assert cfg.rate_limit.max_actions == 100 and cfg.rate_limit.per_seconds == 60.0
    assert {n: s.kind for n, s in cfg.sinks.items()} == {"jsonl": "jsonl", "sqlite": "sqlite"}
    assert cfg.sinks["jsonl"].path == str(base / "../build/demo/alerts.jsonl")
    assert cfg.sinks["sqlite"].path == str(base / "../build/demo/alerts.db")
    assert cfg.dead_letter.path == str(base / "../build/demo/dead_letter.jsonl")
    assert [a for r in cfg.rules for a in r.actions] == ["alert", "firewall", "alert"]


def test_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.batching.max_batch == 256 and cfg.batching.max_wait_ms == 5.0
    assert cfg.event.keys == ["src_ip", "dest_ip", "dest_port"] and cfg.event.mapping == {}
    assert cfg.rules == [] and cfg.allowlist == [] and cfg.agent.tasks is None
    assert cfg.runtime.use_merged_graph is True and cfg.agent.id
    assert cfg.sinks == {} and cfg.actions == {}
    assert cfg.rate_limit.max_actions == 10 and cfg.rate_limit.per_seconds == 60.0


# --- relative paths ---------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_dir(tmp_path, monkeypatch):
    d = tmp_path / "profile"
    d.mkdir()
    data = {
        "agent": {"bundle": "b"},
        "sources": [
            {"type": "file", "path": "logs/events.jsonl"},
            {"type": "unix", "path": "run/ev.sock"},
            {"type": "stdin"},
        ],
        "sinks": {
            "jsonl": {"path": "alerts.jsonl"},
            "sqlite": {"path": "db/alerts.db"},
            "archive": {"type": "jsonl", "path": "archive/alerts.jsonl"},
            "siem": {"type": "syslog", "target": "unix:///dev/log"},
        },
        "actions": {
            "webhook": {"url": "https://soc.example/ingest", "spool_dir": "spool"},
            "backup_hook": {"type": "webhook", "url": "https://b.example/in", "spool_dir": "spool2"},
        },
    }
    path = write(d, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for p in (path, Path("..") / "profile" / "agent.yaml"):  # absolute and relative config paths
        cfg = load_agent_config(p)
        base = d.resolve()
        assert cfg.agent.bundle == str(base / "b")
        assert cfg.sources[0].path == str(base / "logs/events.jsonl")
        assert cfg.sources[1].path == "run/ev.sock"  # a socket path is not a file path
        assert cfg.sources[2].kind == "stdin"
        assert cfg.sinks["jsonl"].path == str(base / "alerts.jsonl")
        assert cfg.sinks["sqlite"].path == str(base / "db/alerts.db")
        assert cfg.sinks["archive"].path == str(base / "archive/alerts.jsonl")  # a named sink, too
        assert cfg.sinks["siem"].target == "unix:///dev/log"  # not a path field
        assert cfg.dead_letter.path == str(base / "dead_letter.jsonl")  # the default, too
        assert cfg.actions["webhook"].spool_dir == str(base / "spool")
        assert cfg.actions["backup_hook"].spool_dir == str(base / "spool2")


def test_without_a_base_dir_relative_paths_are_left_as_written():
    cfg = agent_config_from_dict(
        {
            "agent": {"bundle": "b"},
            "sources": [{"type": "file", "path": "ev.jsonl"}],
            "sinks": {"jsonl": {"path": "a.jsonl"}},
        },
        "cfg",
    )
    assert cfg.agent.bundle == "b" and cfg.sources[0].path == "ev.jsonl" and cfg.sinks["jsonl"].path == "a.jsonl"
    assert cfg.dead_letter.path == "dead_letter.jsonl"
    cfg = agent_config_from_dict(
        {
            "agent": {"bundle": "b"},
            "sources": [{"type": "file", "path": "ev.jsonl"}],
            "sinks": {"jsonl": {"path": "a.jsonl"}},
        },
        "cfg",
        Path("/etc/jenga"),
    )
    assert cfg.agent.bundle == "/etc/jenga/b" and cfg.sources[0].path == "/etc/jenga/ev.jsonl"
    assert cfg.sinks["jsonl"].path == "/etc/jenga/a.jsonl" and cfg.dead_letter.path == "/etc/jenga/dead_letter.jsonl"


def test_absolute_paths_are_kept(tmp_path):
    cfg = load(
        tmp_path,
        agent={"bundle": "/srv/bundle"},
        dead_letter={"path": "/var/log/dl.jsonl"},
        sources=[{"type": "file", "path": "/var/log/ev.jsonl"}, {"type": "unix", "path": "/run/ev.sock"}],
        sinks={"jsonl": {"path": "/var/log/a.jsonl"}, "sqlite": {"path": "/var/lib/a.db"}},
        actions={"webhook": {"url": "https://soc.example/ingest", "spool_dir": "/var/spool/x"}},
    )
    assert cfg.agent.bundle == "/srv/bundle" and cfg.dead_letter.path == "/var/log/dl.jsonl"
    assert [s.path for s in cfg.sources] == ["/var/log/ev.jsonl", "/run/ev.sock"]
    assert cfg.sinks["jsonl"].path == "/var/log/a.jsonl" and cfg.sinks["sqlite"].path == "/var/lib/a.db"
    assert cfg.actions["webhook"].spool_dir == "/var/spool/x"


# --- errors name the key path ------------------------------------------------------------------------


def test_unknown_key_with_a_suggestion(tmp_path):
    msg = error(tmp_path, batching={"max_bach": 64})
    assert re.search(
        r"agent\.yaml: batching\.max_bach: unknown key \(did you mean 'max_batch'\?\); "
        r"expected one of: max_batch, max_wait_ms, queue_size, queue_bytes, max_line_bytes",
        msg,
    ), msg
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
        tmp_path, rules=[{"rule": "r", "task": "threat", "cooldown_s": -5}]
    )


def test_missing_required_keys(tmp_path):
    p = write(tmp_path, {"sources": [{"type": "stdin"}]})
    with pytest.raises(ConfigError, match=r"agent: missing required key"):
        load_agent_config(p)
    msg = error(tmp_path, agent={"id": "x"})
    assert "agent.bundle: missing required key, expected a string" in msg
    msg = error(tmp_path, rules=[{"rule": "r"}])  # no task: a counting rule, which needs a condition
    assert "rules[0].condition: a rule without a task alerts on its condition alone: give one" in msg


def test_empty_sources_list(tmp_path):
    assert "sources: expected a non-empty value" in error(tmp_path, sources=[])


def test_rule_using_an_unconfigured_action(tmp_path):
    rules = [{"rule": "ok", "task": "threat"}, {"rule": "block", "task": "threat", "actions": ["alert", "firewall"]}]
    msg = error(tmp_path, rules=[rules[1]])
    assert re.search(
        r"rules\[0\]\.actions\[1\]: action 'firewall' is not configured; configured: alert "
        r"\(add actions\.firewall\)",
        msg,
    ), msg
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
    assert msg == (
        f"{tmp_path / 'agent.yaml'}: sources[0].host: expected an IP address such as 127.0.0.1 or ::1, got {host!r}"
    )


def test_source_errors_name_the_list_item(tmp_path):
    msg = error(tmp_path, sources=[{"type": "stdin"}, {"type": "tcp"}])
    assert msg.endswith("agent.yaml: sources[1].port: missing required key, expected an integer"), msg
    msg = error(tmp_path, sources=[{"type": "stdin"}, {"type": "tcp", "port": 70000}])
    assert "sources[1].port: expected a value <= 65535" in msg
    msg = error(tmp_path, sources=[{"type": "socket"}])
    assert msg.endswith(
        "agent.yaml: sources[0].type: expected one of 'stdin', 'file', 'tcp', 'udp', 'unix', got str 'socket'"
    ), msg


def test_rule_section_errors(tmp_path):
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "priority": "critcal"}])
    assert "rules[0].priority: expected one of" in msg and "did you mean 'critical'" in msg
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "threshold": "bundel"}])
    assert "rules[0].threshold" in msg
    msg = error(tmp_path, rules=[{"rule": "r", "task": "threat", "severity": [{"min_score": 1.5}]}])
    assert "rules[0].severity[0].min_score: expected a value <= 1" in msg


@pytest.mark.parametrize(
    "event, text",
    [
        ({"derive": {"q": {"kind": "ratio", "num": ["a"]}}}, "cfg: event.derive.q.den: missing required key"),
        ({"derive": {"q": {"kind": "mean", "of": ["a"]}}}, "cfg: event.derive.q.kind: expected one of 'duration',"),
        ({"mapping": {"q": "x"}, "derive": {"q": {"kind": "sum", "of": ["a"]}}}, "cfg: event.derive.q: is also in"),
        (
            {"derive": {"q": {"kind": "sum", "of": ["p"]}, "p": {"kind": "sum", "of": ["a"]}}},
            "cfg: event.derive.q: input 'p' is derived too",
        ),
    ],
)
def test_the_agents_derived_fields_are_checked_at_load(event, text):
    assert from_dict_error(event=event).startswith(text)


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_agent_config(write(tmp_path, "- a\n- b\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_agent_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
        load_agent_config(write(tmp_path, "agent: {bundle: b\nsources: [\n"))


# --- named sinks and actions --------------------------------------------------------------------------


def test_an_entry_named_after_its_kind_may_leave_out_the_type(tmp_path):
    cfg = load(
        tmp_path,
        sinks={"stdout": {}, "jsonl": {"path": "/var/log/a.jsonl"}},
        actions={"firewall": {"dry_run": True}, "webhook": {"url": "https://soc.example/in"}},
    )
    assert {n: s.kind for n, s in cfg.sinks.items()} == {"stdout": "stdout", "jsonl": "jsonl"}
    assert {n: a.kind for n, a in cfg.actions.items()} == {"firewall": "firewall", "webhook": "webhook"}
    assert cfg.sinks["stdout"].format == "json" and cfg.sinks["jsonl"].path == "/var/log/a.jsonl"


def test_several_sinks_and_actions_of_one_type_under_different_names(tmp_path):
    text = (
        "agent: {bundle: /b}\nsources: [{type: stdin}]\n"
        "sinks:\n"
        "  siem: {type: syslog, target: 'tcp://127.0.0.1:6514', facility: local4}\n"
        "  local: {type: syslog, target: 'unix:///dev/log'}\n"
        "  archive: {type: jsonl, path: /var/log/archive.jsonl}\n"
        "actions:\n"
        "  block: {type: firewall, table: edge}\n"
        "  block_lab: {type: firewall, table: lab}\n"
        "rules:\n"
        "  - {rule: r, task: threat, actions: [alert, block, block_lab]}\n"
    )
    cfg = load_agent_config(write(tmp_path, text))
    assert list(cfg.sinks) == ["siem", "local", "archive"]  # config order
    assert [s.kind for s in cfg.sinks.values()] == ["syslog", "syslog", "jsonl"]
    assert cfg.sinks["siem"].target == "tcp://127.0.0.1:6514" and cfg.sinks["siem"].facility == "local4"
    assert cfg.sinks["local"].target == "unix:///dev/log" and cfg.sinks["local"].facility == "local0"
    assert list(cfg.actions) == ["block", "block_lab"]
    assert [(a.kind, a.table) for a in cfg.actions.values()] == [("firewall", "edge"), ("firewall", "lab")]
    # rules name the action, not its type
    msg = error(
        tmp_path,
        actions={"block": {"type": "firewall"}},
        rules=[{"rule": "r", "task": "threat", "actions": ["firewall"]}],
    )
    assert (
        "rules[0].actions[0]: action 'firewall' is not configured; configured: alert, block "
        "(add actions.firewall)" in msg
    )


def test_rate_limit_is_a_top_level_section(tmp_path):
    cfg = load(tmp_path, rate_limit={"max_actions": 5, "per_seconds": 10})
    assert cfg.rate_limit.max_actions == 5 and cfg.rate_limit.per_seconds == 10.0
    assert cfg.actions == {}
    assert "rate_limit.max_actions: expected a value >= 1, got 0" in error(tmp_path, rate_limit={"max_actions": 0})
    assert load(tmp_path, overrides=["rate_limit.max_actions=7"]).rate_limit.max_actions == 7


@pytest.mark.parametrize(
    "actions",
    [
        {"rate_limit": {"max_actions": 5, "per_seconds": 10}},
        {"firewall": {"dry_run": True}, "rate_limit": {"max_actions": 5, "per_seconds": 10}},
    ],
)
def test_an_old_actions_rate_limit_gets_a_one_line_migration_error(tmp_path, actions):
    msg = error(tmp_path, actions=actions)
    assert msg == (
        f"{tmp_path / 'agent.yaml'}: actions.rate_limit: moved to the top level in jenga 0.2: "
        "write `rate_limit: {...}` beside `actions:` (every other key of `actions` names an action)"
    )
    assert "\n" not in msg
    # also when --set puts it there
    msg = error(tmp_path, overrides=["actions.rate_limit.max_actions=5"])
    assert msg.startswith(f"{tmp_path / 'agent.yaml'}: actions.rate_limit: moved to the top level in jenga 0.2")


def test_alert_is_a_reserved_action_name(tmp_path):
    msg = error(tmp_path, actions={"alert": {"type": "exec", "argv": ["/bin/true"]}})
    assert msg == (
        f"{tmp_path / 'agent.yaml'}: actions.alert: the name is reserved (a rule's `alert` raises "
        "the alert); give the action another name"
    )


@pytest.mark.parametrize("name", ["a", "Z", "0", "siem-01", "soc_hook", "A-b_9", "x" * 64])
def test_valid_sink_and_action_names(tmp_path, name):
    cfg = load(tmp_path, sinks={name: {"type": "stdout"}}, actions={name: {"type": "firewall"}})
    assert list(cfg.sinks) == [name] and list(cfg.actions) == [name]


@pytest.mark.parametrize("name", ["", "x" * 65, "bad name", "a.b", "a/b", "é", "a:b", "tab\t"])
@pytest.mark.parametrize("section, entry", [("sinks", {"type": "stdout"}), ("actions", {"type": "firewall"})])
def test_invalid_sink_and_action_names(tmp_path, name, section, entry):
    msg = error(tmp_path, **{section: {name: entry}})
    assert msg == (f"{tmp_path / 'agent.yaml'}: {section}: {name!r}: a name is 1-64 letters, digits, '_' or '-'")


# --- kind errors name the entry and the kind's keys ------------------------------------------------------


def test_an_unknown_source_type_with_a_suggestion():
    assert from_dict_error(sources=[{"type": "tcpp"}]) == (
        "cfg: sources[0].type: expected one of 'stdin', 'file', 'tcp', 'udp', 'unix', got str 'tcpp' "
        "(did you mean 'tcp'?)"
    )


def test_a_sink_named_after_no_kind_needs_a_type():
    assert from_dict_error(sinks={"siem": {"target": "udp://10.0.0.5:514"}}) == (
        "cfg: sinks.siem.type: missing required key, expected one of 'jsonl', 'stdout', 'syslog', 'sqlite'"
    )
    assert from_dict_error(actions={"pager": {"url": "https://soc.example/in"}}) == (
        "cfg: actions.pager.type: missing required key, expected one of 'firewall', 'exec', 'webhook'"
    )


def test_an_unknown_sink_or_action_type():
    assert from_dict_error(sinks={"siem": {"type": "sylog"}}) == (
        "cfg: sinks.siem.type: expected one of 'jsonl', 'stdout', 'syslog', 'sqlite', got str 'sylog' "
        "(did you mean 'syslog'?)"
    )
    assert from_dict_error(actions={"fw": {"type": "firewal"}}) == (
        "cfg: actions.fw.type: expected one of 'firewall', 'exec', 'webhook', got str 'firewal' "
        "(did you mean 'firewall'?)"
    )


def test_unknown_keys_list_the_kinds_own_keys():
    assert from_dict_error(sources=[{"type": "tcp", "port": 5514, "hots": "127.0.0.1"}]) == (
        "cfg: sources[0].hots: unknown key (did you mean 'host'?); "
        "expected one of: host, port, max_connections, idle_timeout_s, max_connections_per_peer"
    )
    assert from_dict_error(sources=[{"type": "file", "path": "/x", "port": 1}]) == (
        "cfg: sources[0].port: unknown key; expected one of: path, start_at, poll_interval_s, rotate_wait_s"
    )
    assert from_dict_error(sinks={"archive": {"type": "jsonl", "path": "/x", "max_byte": 1}}) == (
        "cfg: sinks.archive.max_byte: unknown key (did you mean 'max_bytes'?); "
        "expected one of: queue, path, max_bytes, backups, fsync, format"
    )
    assert from_dict_error(actions={"fw": {"type": "firewall", "tabel": "x"}}) == (
        "cfg: actions.fw.tabel: unknown key (did you mean 'table'?); expected one of: queue, backend, family, table, "
        "set, set6, ipset, ipset6, ip_field, timeout_s, dry_run, ensure, nft_path, ipset_path, command_timeout_s, "
        "allowlist"
    )


def test_kind_checks_name_the_entry():
    assert from_dict_error(sinks={"siem": {"type": "syslog", "target": "bogus"}}) == (
        "cfg: sinks.siem.target: 'bogus': expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
    )
    assert from_dict_error(actions={"fw": {"type": "firewall", "table": "bad table"}}) == (
        "cfg: actions.fw.table: expected a name of 1-32 letters, digits, '_' or '-', got 'bad table'"
    )


def test_sinks_and_actions_are_mappings(tmp_path):
    msg = error(tmp_path, sinks=[{"type": "stdout"}])
    assert (
        "sinks: expected a mapping of a string to a mapping with type: one of 'jsonl', 'stdout', "
        "'syslog', 'sqlite', got list" in msg
    )


# --- overrides (--set) ------------------------------------------------------------------------------


def test_overrides_apply_before_validation(tmp_path):
    cfg = load(
        tmp_path,
        rules=[{"rule": "r", "task": "threat", "key": "src_ip", "cooldown_s": 60}],
        overrides=[
            "batching.max_batch=64",
            "runtime.use_merged_graph=false",
            "rules[0].cooldown_s=5",
            "agent.tasks=[threat]",
            "allowlist=[10.0.0.0/8]",
            "event.mapping.port=dest_port",
        ],
    )
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


# --- a null entry is off (as in 0.1); `{}` is the kind with its defaults -------------------------------


def test_a_null_entry_is_off(tmp_path):
    cfg = load_agent_config(
        write(tmp_path, "agent: {bundle: /b}\nsources: [{type: stdin}]\nsinks:\n  stdout:\n  jsonl: {path: a.jsonl}\n")
    )
    assert list(cfg.sinks) == ["jsonl"]


def test_set_null_turns_a_profiles_sink_or_action_off():
    soc = REPO / "firmware_configs" / "suricata_flat_model.yaml"
    assert "syslog" in load_agent_config(soc).sinks
    assert list(load_agent_config(soc, ["sinks.syslog=null"]).sinks) == ["jsonl"]
    x86 = REPO / "firmware_configs" / "x86_branch_firewall.yaml"
    with pytest.raises(ConfigError, match=r"rules\[0\]\.actions\[1\]: action 'firewall' is not configured"):
        load_agent_config(x86, ["actions.firewall=null"])  # a rule still names it


def test_an_empty_mapping_is_the_kind_with_its_defaults(tmp_path):
    cfg = load(tmp_path, sinks={"stdout": {}}, actions={"firewall": {}})
    assert cfg.sinks["stdout"].kind == "stdout" and cfg.sinks["stdout"].format == "json"
    assert cfg.actions["firewall"].kind == "firewall" and cfg.actions["firewall"].dry_run is True


def test_an_entry_of_a_kind_with_required_keys_says_which(tmp_path):
    msg = error(tmp_path, sinks={"jsonl": {}})
    assert msg == f"{tmp_path / 'agent.yaml'}: sinks.jsonl.path: missing required key, expected a string"


# --- one writer per file --------------------------------------------------------------------------------


def test_two_webhooks_get_a_spool_each(tmp_path):
    hooks = {
        "soc": {"type": "webhook", "url": "http://127.0.0.1:9/a", "spool_dir": "spool"},
        "partner": {"type": "webhook", "url": "http://127.0.0.1:9/b", "spool_dir": "spool"},
    }
    cfg = load(tmp_path, actions=hooks)
    files = [cfg.actions[n].written_files(n)["spool_name"] for n in ("soc", "partner")]
    assert files == [str(tmp_path / "spool" / "soc.jsonl"), str(tmp_path / "spool" / "partner.jsonl")]


@pytest.mark.parametrize(
    "sections, message",
    [
        (
            {
                "actions": {
                    "a": {"type": "webhook", "url": "http://127.0.0.1:9/a", "spool_dir": "s", "spool_name": "x"},
                    "b": {"type": "webhook", "url": "http://127.0.0.1:9/b", "spool_dir": "s", "spool_name": "x"},
                }
            },
            "actions.b.spool_name: {d}/s/x.jsonl is also written by actions.a.spool_name",
        ),
        (
            {
                "sinks": {
                    "a": {"type": "jsonl", "path": "alerts.jsonl"},
                    "b": {"type": "sqlite", "path": "./alerts.jsonl"},
                }
            },
            "sinks.b.path: {d}/alerts.jsonl is also written by sinks.a.path",
        ),
        (
            {"sinks": {"jsonl": {"path": "dead.jsonl"}}, "dead_letter": {"path": "dead.jsonl"}},
            "sinks.jsonl.path: {d}/dead.jsonl is also written by dead_letter.path",
        ),
    ],
)
def test_two_entries_writing_one_file_are_refused(tmp_path, sections, message):
    msg = error(tmp_path, **sections)
    assert msg == f"{tmp_path / 'agent.yaml'}: " + message.format(d=tmp_path) + "; give each its own file"
