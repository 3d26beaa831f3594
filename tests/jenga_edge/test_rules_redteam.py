"""Red-team tests of counting rules, compound conditions, the agent config's event
additions (where/windows/snapshot) and the sinks that read task-less alerts (a review
of e31cfd2 and what followed). Tests named test_bug_* reproduce a defect and fail
until it is fixed; the others pin behaviour worth keeping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.conditions import _test, condition_mask
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.schema import Feature, FeatureSchema
from jenga_edge.decode import DecodedBatch, EventDecoder
from jenga_edge.rules import RuleConfig, RuleEngine, render_output
from jenga_edge.score import Scores

NO_SCORES = Scores({}, {})
X = Feature("x", "numeric")
BASE = {"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}]}


def rule(**kw: Any) -> RuleConfig:
    return RuleConfig(**{"rule": "r", **kw})


def batch(**cols: list[Any]) -> DecodedBatch:
    n = len(next(iter(cols.values())))
    return DecodedBatch(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64), list(range(n)), cols)


def enc(records: list[Any]) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def reference(spec: Any, values: list[Any]) -> list[bool]:
    """The per-value semantics condition_mask replaced (and documents)."""
    ops = spec if isinstance(spec, dict) else ({"in": spec} if isinstance(spec, list) else {"eq": spec})
    return [all(_test(op, v, a) for op, a in ops.items()) for v in values]


# ============================================================ condition_mask's per-distinct-value table


@pytest.mark.parametrize(
    "spec, values",
    [
        (True, [1, True]),  # the set {1, True} keeps 1 only: True is looked up as 1
        ("true", [1.0, True]),
        (1, [1, True]),
        ({"ne": 1}, [1, True]),
        ({"not_in": [True]}, [0, 1, True]),
        (False, [0, False]),
    ],
)
def test_bug_a_number_before_a_boolean_in_one_batch_gives_the_boolean_the_numbers_verdict(spec, values):
    # conditions.py condition_mask: `set(values)` merges 1 and True (equal as dict keys),
    # so the "any bool in the set" guard misses True when 1 came first.
    assert condition_mask("f", spec, values).tolist() == reference(spec, values)


def test_bug_the_where_filter_depends_on_the_order_of_events_in_a_batch():
    d = EventDecoder(FeatureSchema((X,)), where={"alerted": True})
    one_first = d.decode(enc([{"x": 1, "alerted": 1}, {"x": 2, "alerted": True}]))
    true_first = d.decode(enc([{"x": 2, "alerted": True}, {"x": 1, "alerted": 1}]))
    assert true_first.index == [0]  # the fallback path: right
    assert one_first.index == [1]  # the table path: the `true` record is filtered too


def test_bug_a_counting_rule_on_a_boolean_misses_when_a_number_came_first():
    eng = RuleEngine([rule(condition={"alerted": True})], {})
    assert [h.row for h in eng.evaluate(batch(alerted=[1, True, None]), NO_SCORES)] == [1]


ODD = [None, True, False, 0, 1, 1.0, 0.0, -0.0, "1", "true", " 1", "", "None", 22, 22.0, "22", float("nan"),
       2**70, float(2**70), [1], {"a": 1}, "x"]  # fmt: skip
SPECS = [1, "22", [22, "x"], None, {"ne": 22}, {"not_in": [22, "x"]}, {"ne": None}, {"in": [None, ""]},
         {"gte": 1}, {"lt": 0}, {"ne": 1, "not_in": ["x"]}]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_condition_mask_matches_the_per_value_semantics_without_bool_number_collisions(spec):
    # pairs of every odd value (bools apart from equal numbers): table path == reference
    for a in ODD:
        for b in ODD:
            if {type(a), type(b)} & {bool} and a == b and type(a) is not type(b):
                continue  # the collision the bug tests above cover
            vals = [a, b, a]
            assert condition_mask("f", spec, vals).tolist() == reference(spec, vals), (spec, vals)


def test_a_missing_value_passes_only_ne_and_not_in():
    vals = [None, None]
    assert condition_mask("f", {"ne": 22}, vals).all()
    assert condition_mask("f", {"not_in": [22]}, vals).all()
    for spec in (22, [22], {"eq": 22}, {"in": [22]}, {"gte": 0}, {"lt": 1e9}):
        assert not condition_mask("f", spec, vals).any()


# ============================================================ config: reserved keys outside rules


@pytest.mark.parametrize(
    "event",
    [
        {"where": {"any": [{"event_type": "flow"}, {"event_type": "netflow"}]}},
        {"where": {"macro": "flows"}},
        {
            "time": "ts",
            "windows": {
                "w": {"kind": "rate", "key": ["src_ip"], "window_s": 60, "condition": {"any": [{"p": 0}, {"q": 0}]}}
            },
        },
    ],
)
def test_bug_any_or_macro_in_where_or_a_window_condition_is_accepted_and_never_holds(event):
    # docs/rules.md: any/all/not/macro are reserved; event.where and a rate window's condition
    # are documented "as in rules", but they take `any` and `macro` as field names: the
    # config loads and every record is filtered (or the rate is always 0).
    raw = {**BASE, "event": event, "macros": {"flows": {"event_type": "flow"}}}
    with pytest.raises(ConfigError):
        agent_config_from_dict(raw, "agent.yaml")


def test_any_in_a_filter_is_refused_at_load_not_a_filter_that_drops_everything():
    """What the config of the test above would have done at run time: refused when it loads."""
    with pytest.raises(ConfigError, match=r"event\.where\.any: any/all/not/macro are for rules"):
        agent_config_from_dict({**BASE, "event": {"where": {"any": [{"event_type": "flow"}]}}}, "agent.yaml")


# ============================================================ output templates with paths


def test_bug_an_output_placeholder_with_a_dotted_path_breaks_the_decoder():
    # rules.py Rule.fields / render_output: `%([A-Za-z_][A-Za-z0-9_]*)` stops at the dot, so
    # `%flow.pkts_toserver` asks the decoder for the whole `flow` object. With another path
    # under flow (the soc profile maps flow.age, flow.bytes_toserver ...) the pipeline cannot
    # be built ("event paths read 'flow' both as a value and as an object").
    eng = RuleEngine([rule(condition={"x": {"gte": 0}}, output="pkts %flow.pkts_toserver")], {})
    d = EventDecoder(FeatureSchema((X,)), mapping={"x": "flow.bytes"}, key_fields=sorted(eng.fields))
    b = d.decode(enc([{"flow": {"bytes": 5, "pkts_toserver": 3}}]))
    assert render_output(eng.rules[0].cfg.output, {k: v[0] for k, v in b.keys.items()}) == "pkts 3"


def test_a_rule_field_that_is_an_object_in_some_events_rejects_them_pinned():
    """A rule, key or output field is read as a scalar: an event holding an object there is
    rejected (wrong_type), so adding a rule changes which events the model scores."""
    d = EventDecoder(FeatureSchema((X,)), key_fields=["meta"])
    b = d.decode(enc([{"x": 1, "meta": {"a": 1}}, {"x": 3, "meta": "s"}]))
    assert b.index == [1] and [r.reason for r in b.rejects] == ["wrong_type"]


# ============================================================ task-less alerts in the sinks


def counting_alert(**over: Any) -> dict[str, Any]:
    return {
        "timestamp": "2026-12-01T00:00:00.000Z",
        "event_type": "alert",
        "agent": {"id": "a", "hostname": "h", "version": "0"},
        "rule": "port_scan",
        "priority": "error",
        "task": None,
        "score": None,
        "threshold": None,
        "model": None,
        "source": "stdin",
        "src_ip": "192.0.2.1",
        "dest_ip": "192.0.2.2",
        "dest_port": 22,
        "fields": {"hosts_60s": 7.0},
        "output": "scan",
        "actions": [],
        **over,
    }


def test_every_sink_takes_a_counting_rules_alert(tmp_path):
    from jenga_edge.sinks.base import dumps
    from jenga_edge.sinks.sqlite import Config as SqlConfig
    from jenga_edge.sinks.sqlite import SqliteSink, query_alerts
    from jenga_edge.sinks.stdout import format_text
    from jenga_edge.sinks.syslog import syslog_message

    a = counting_alert()
    assert json.loads(dumps(a))["task"] is None
    assert "score=" not in format_text(a) and " - " in format_text(a)
    msg = syslog_message(a, 20)
    assert 'task="' not in msg and "port_scan" in msg
    db = str(tmp_path / "a.db")
    sink = SqliteSink(SqlConfig(path=db))
    assert sink.write_batch([a]) == 0
    sink.close()
    (row,) = query_alerts(db, since_seconds=10**10)
    assert row["task"] is None and row["score"] is None


def test_bug_the_sqlite_sink_raises_on_an_integer_beyond_64_bits_and_the_batch_is_dead_lettered(tmp_path):
    # sinks/sqlite.py _write: _opt(dest_port, int) keeps a Python int beyond SQLite's INTEGER;
    # executemany raises OverflowError, FileSink.write_batch lets it out, and the agent's
    # process_safely dead-letters the whole batch (every event, alerts already sent to the
    # other sinks) because one event carried "dest_port": 123456789012345678901234567890.
    from jenga_edge.sinks.sqlite import Config as SqlConfig
    from jenga_edge.sinks.sqlite import SqliteSink

    sink = SqliteSink(SqlConfig(path=str(tmp_path / "a.db")))
    assert sink.write_batch([counting_alert(dest_port=123456789012345678901234567890)]) == 0
    sink.close()


# ============================================================ the agent: snapshots and metrics


def _agent_config(tmp: Path, bundle: Path, snapshot: Path) -> Path:
    cfg = {
        "agent": {"id": "t", "bundle": str(bundle), "tasks": ["threat"]},
        "sources": [{"type": "stdin"}],
        "event": {
            "keys": ["src_ip"],
            "mapping": {"port": "dest_port"},
            "time": "ts",
            "lag_s": 0.0,
            "windows": {"n": {"kind": "count", "key": ["src_ip"], "window_s": 60}},
            "snapshot": str(snapshot),
        },
        "rules": [{"rule": "many", "condition": {"n": {"gte": 1000}}}],
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "dead_letter": {"path": str(tmp / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(times: list[float]) -> list[bytes]:
    from trainer.synthetic import generate

    out = []
    for t, r in zip(times, generate("network", len(times), seed=7)):
        r = dict(r)
        r["dest_port"], r["dest_ip"], r["ts"] = r.pop("port"), r.pop("dst_ip"), t
        out.append(json.dumps(r).encode())
    return out


def test_bug_a_restored_snapshot_counts_the_previous_runs_late_events_again(network_bundle, tmp_path):
    # agent.py Agent.__init__: the snapshot restores the engine's late/ahead/resets/evicted
    # totals, but _window_seen starts at 0, so the first batch adds the previous run's totals
    # to jenga_window_late_total (a spurious spike after every restart).
    from jenga_edge import window_snapshots
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from jenga_edge.event_queue import Batch

    snap = tmp_path / "w.snapshot"
    cfg = _agent_config(tmp_path, network_bundle[0], snap)
    first = Agent(load_agent_config(cfg), str(cfg), log=lambda s: None)
    lines = _events([1000.0 - 10 * i for i in range(20)])  # every event after the first is late
    first.process(Batch(lines, None, [("t", len(lines))]))
    late = first.metrics.window_late.total()
    assert late > 0
    assert "saved" in window_snapshots.save(first.pipe.decoder.windows, str(snap))[1]
    logs: list[str] = []
    second = Agent(load_agent_config(cfg), str(cfg), log=logs.append)
    assert any("restored" in line for line in logs)
    lines = _events([2000.0 + i for i in range(5)])  # in order: nothing late
    second.process(Batch(lines, None, [("t", len(lines))]))
    assert second.metrics.window_late.total() == 0


def test_a_counting_rule_alert_through_the_agent_is_json_with_null_task(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from jenga_edge.event_queue import Batch

    cfg = _agent_config(tmp_path, network_bundle[0], tmp_path / "none.snapshot")
    raw = yaml.safe_load(cfg.read_text())
    raw["event"]["snapshot"] = ""
    raw["rules"] = [{"rule": "seen", "condition": {"n": {"gte": 1}}, "output": "%src_ip seen %n times"}]
    cfg.write_text(yaml.safe_dump(raw))
    agent = Agent(load_agent_config(cfg), str(cfg), log=lambda s: None)
    lines = _events([100.0 + i for i in range(4)])
    alerts = agent.process(Batch(lines, None, [("t", len(lines))]))
    assert len(alerts) == 4
    a = json.loads(json.dumps(alerts[0]))
    assert a["task"] is None and a["score"] is None and a["threshold"] is None and a["model"] is None
    assert agent.metrics.alerts.value(task="-", priority="warning") == 4
    assert agent.counts["received"] == agent.counts["scored"] + agent.counts["filtered"] + agent.counts["rejected"]


def test_bug_event_where_on_a_window_field_loads_then_every_decode_raises_keyerror():
    # config.py EventConfig / events.py EventModel check `where` against derived fields only;
    # a window name passes, the decoder builds, and decode.py _filter reads keys[name] before
    # the windows have run: KeyError on every batch (the agent dead-letters every event as
    # processing_error; `jenga-edge check` dies with a traceback, exit status 1 = "threat").
    windows = {"n": {"kind": "count", "key": ["k"], "window_s": 60}}
    event = {"time": "ts", "windows": windows, "where": {"n": {"gte": 2}}}
    try:
        e = agent_config_from_dict({**BASE, "event": event}).event
    except ConfigError:
        return  # refused at load: fixed
    with pytest.raises(ConfigError):
        d = EventDecoder(FeatureSchema((X,)), e.mapping, [], 1, e.where, e.normalize, e.time, e.windows, e.limits)
        d.decode(enc([{"x": 1, "k": "a", "ts": 1}]))
