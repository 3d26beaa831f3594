"""A rule's min_matches (rules[].min_matches: corroboration): a key alerts only once it has
matched `count` times within `within_s` s of event time; the matches it holds are counted
(jenga_alerts_uncorroborated_total, the summary, the stats line), never raised; before
cooldowns, after the warm-up; bounded per key; the same whatever the batches; kept over a
reload that keeps the rule's setting."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from jenga_edge import rules as rules_mod
from jenga_edge.agent import Agent, _carry_state, build_pipeline
from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import convert
from jenga_edge.decode import DecodedBatch
from jenga_edge.rules import RuleConfig, RuleEngine
from jenga_edge.workers import combine

from .test_rules import TASKS
from .test_warmup import WINDOWS, config, high, run, stream

T0 = 1_764_000_000.0


def at(times: list[float], hosts: list[str]) -> DecodedBatch:
    n = len(times)
    return DecodedBatch(
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1), np.int64),
        list(range(n)),
        {"src_ip": hosts},
        times=np.asarray(times, np.float64),
        clock=max(times),
    )


def engine(**rule) -> RuleEngine:
    cfg = {"rule": "t", "task": "threat", "min_matches": {"count": 2, "within_s": 60}, "key": "src_ip", **rule}
    return RuleEngine([convert(RuleConfig, cfg)], TASKS)


def alerted(eng: RuleEngine, times: list[float], hosts: list[str]) -> list[int]:
    return [h.row for h in eng.evaluate(at(times, hosts), high(len(times)))]


def test_a_key_alerts_from_its_second_match_within_the_span():
    eng = engine()
    # a's second match 59.9 s after its first alerts; b's first is held; c's two are 60 s apart
    rows = alerted(eng, [T0, T0 + 1, T0 + 59.9, T0 + 100], ["a", "b", "a", "c"])
    assert rows == [2]
    assert eng.take_uncorroborated() == {"t": 3}
    assert alerted(eng, [T0 + 160], ["c"]) == []  # 60 s after c's first: not within it
    assert alerted(eng, [T0 + 161], ["c"]) == [0]  # 1 s after c's second
    assert alerted(eng, [T0 + 500], ["b"]) == [] and eng.take_uncorroborated() == {"t": 2}


def test_three_matches_are_counted_across_batches():
    eng = engine(min_matches={"count": 3, "within_s": 10})
    assert alerted(eng, [T0], ["a"]) == []
    assert alerted(eng, [T0 + 4], ["a"]) == []
    assert alerted(eng, [T0 + 9, T0 + 15], ["a", "a"]) == [0]  # T0 .. T0 + 9; then T0 + 4 .. T0 + 15: 11 s
    assert alerted(eng, [T0 + 16], ["a"]) == [0]  # T0 + 9 .. T0 + 16


def test_a_late_record_counts_where_its_time_fell():
    eng = engine()
    assert alerted(eng, [T0 + 50, T0], ["a", "a"]) == [1]  # written late, 50 s before: within 60 s
    # a record 70 s late does not push out the newer match: T0 + 100 and T0 + 101 are 1 s apart
    assert alerted(eng, [T0 + 100, T0 + 30, T0 + 101], ["b", "b", "b"]) == [2]
    three = engine(min_matches={"count": 3, "within_s": 10})
    assert alerted(three, [T0 + 100, T0 + 101, T0 + 50, T0 + 102], ["c"] * 4) == [3]
    assert alerted(three, [T0 + 100.5], ["c"]) == [0]  # falls among 100 .. 102


def test_keys_compare_as_cooldowns_do_and_a_missing_key_never_corroborates():
    eng = engine()
    assert alerted(eng, [T0, T0 + 1], [" a", "a "]) == [1]
    assert alerted(eng, [T0 + 2, T0 + 3], [22, "22"]) == [1]
    assert alerted(eng, [T0 + 4, T0 + 5], [None, None]) == []
    assert eng.take_uncorroborated() == {"t": 4}


def test_keys_a_span_old_are_forgotten_first():
    eng = engine()
    assert alerted(eng, [T0, T0 + 1], ["a", "b"]) == []
    assert list(eng.rules[0]._matches) == ["a", "b"]
    assert alerted(eng, [T0 + 60.5], ["c"]) == []  # a's match is 60.5 s old: it can pair with nothing more
    assert list(eng.rules[0]._matches) == ["b", "c"]


def test_matches_in_a_cooldown_count_and_are_not_counted_as_held():
    eng = engine(cooldown_s=300)
    assert alerted(eng, [T0, T0 + 1, T0 + 2], ["a", "a", "a"]) == [1]  # the third: cooldown
    assert eng.take_uncorroborated() == {"t": 1} and eng.suppressed == 1


def test_the_warm_up_holds_before_matches_are_counted():
    eng = engine(warmup_s=60)
    eng.resolve_warmup(WINDOWS, {"flows_10s", "ports_60s"}, has_clock=True)
    assert alerted(eng, [T0, T0 + 59], ["a", "a"]) == []  # both held by the warm-up: no match counted
    assert eng.take_uncorroborated() == {} and eng.take_warmup_held() == {"t": 2}
    assert alerted(eng, [T0 + 60], ["a"]) == [] and eng.take_uncorroborated() == {"t": 1}
    assert alerted(eng, [T0 + 61], ["a"]) == [0]


def test_without_windows_the_agents_clock_times_the_matches():
    now = [100.0]
    eng = RuleEngine(
        [
            convert(
                RuleConfig, {"rule": "t", "task": "threat", "key": "src_ip", "min_matches": {"count": 2, "within_s": 5}}
            )
        ],
        TASKS,
        clock=lambda: now[0],
    )
    untimed = DecodedBatch(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.int64), [0], {"src_ip": ["a"]})
    assert not eng.evaluate(untimed, high(1))
    now[0] = 106.0
    assert not eng.evaluate(untimed, high(1))  # 6 s later
    now[0] = 110.0
    assert [h.row for h in eng.evaluate(untimed, high(1))] == [0]


def test_the_keys_held_are_bounded(monkeypatch):
    monkeypatch.setattr(rules_mod, "COOLDOWN_KEYS_MAX", 100)
    eng = engine()
    hosts = [f"10.0.{i // 256}.{i % 256}" for i in range(1000)]
    assert alerted(eng, [T0] * 1000, hosts) == []
    assert len(eng.rules[0]._matches) == 100
    assert eng.take_evicted() == {"t": 900} and eng.take_evicted() == {}
    assert alerted(eng, [T0 + 1, T0 + 1], [hosts[0], hosts[-1]]) == [1]  # the oldest key was forgotten


@pytest.mark.parametrize(
    "rule, text",
    [
        ({"min_matches": {"count": 2, "within_s": 60}}, r"rules\[0\]\.min_matches: needs key"),
        ({"key": "src_ip", "min_matches": {"count": 1, "within_s": 60}}, r"rules\[0\]\.min_matches\.count"),
        ({"key": "src_ip", "min_matches": {"count": 2, "within_s": 0}}, r"rules\[0\]\.min_matches\.within_s"),
        ({"key": "src_ip", "min_matches": {"count": 2}}, r"rules\[0\]\.min_matches.*within_s"),
        ({"key": "src_ip", "min_matches": 2}, r"rules\[0\]\.min_matches"),
    ],
)
def test_min_matches_is_checked_at_load_naming_the_key(rule, text):
    raw = {"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], "rules": [{"rule": "r", "task": "threat", **rule}]}
    with pytest.raises(ConfigError, match=text):
        agent_config_from_dict(raw, "agent.yaml")


# --- the agent ----------------------------------------------------------------------------------


def corroborated_config(bundle, tmp, within: float = 30.0) -> dict:
    cfg = config(bundle, tmp)
    cfg["event"]["fields"] = ["t"]  # carried by the alerts
    cfg["rules"] = [
        {"rule": "model", "task": "threat", "threshold": 0.0, "key": "src_ip",
         "min_matches": {"count": 3, "within_s": within}},
        {"rule": "model_each", "task": "threat", "threshold": 0.0},
    ]  # fmt: skip
    return cfg


def expected(lines: list[bytes], count: int, within: float) -> list[int]:
    """The events that alert, counted by hand: an event whose host has `count` matches, this one
    among them, less than `within` s apart in event time, whatever order they came in."""
    seen: dict[str, list[float]] = {}
    out = []
    for i, line in enumerate(lines):
        d = json.loads(line)
        times = seen.setdefault(d["src_ip"], [])
        times.append(d["t"])
        t = d["t"]
        near = sorted(x for x in times if abs(x - t) < within)
        if any(near[j + count - 1] - near[j] < within and near[j] <= t <= near[j + count - 1]
               for j in range(len(near) - count + 1)):  # fmt: skip
            out.append(i)
    return out


def test_the_agent_counts_holds_and_says_them(network_bundle, tmp_path):
    agent = Agent(agent_config_from_dict(corroborated_config(network_bundle[0], tmp_path)), log=lambda s: None)
    lines = stream(40, step=2.5)  # 5 hosts, each every 12.5 s: the third match 25 s after the first
    alerts = run(agent, lines)
    model = [a for a in alerts if a["rule"] == "model"]
    assert len(model) == len(expected(lines, 3, 30.0)) == 40 - 10
    assert sum(a["rule"] == "model_each" for a in alerts) == 40
    assert agent.metrics.alerts_uncorroborated.labelled() == {"model": 10}
    assert agent.summary()["uncorroborated"] == {"model": 10}
    assert "uncorroborated=10 (model=10)" in agent.metrics.stats_line()
    assert combine([agent.summary(), agent.summary()])["uncorroborated"] == {"model": 20}


@pytest.mark.parametrize("seed", [0, 5])
def test_what_alerts_does_not_depend_on_how_the_stream_is_cut(network_bundle, tmp_path, seed):
    rng = random.Random(seed)
    lines = []
    for line in stream(150, step=1.0):
        d = json.loads(line)
        d["src_ip"] = f"10.0.0.{rng.randrange(12)}"
        d["t"] = T0 + rng.uniform(0, 200)
        lines.append(json.dumps(d).encode())
    lines.sort(key=lambda x: json.loads(x)["t"])
    for i in range(0, len(lines) - 1, 3):  # out of order by up to 4 s: within what the windows place as is
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    assert any(json.loads(a)["t"] > json.loads(b)["t"] + 0.5 for a, b in itertools.pairwise(lines))
    want = expected(lines, 3, 20.0)
    assert 0 < len(want) < 150
    for size in (1, 7, 64):
        cfg = corroborated_config(network_bundle[0], tmp_path, within=20.0)
        agent = Agent(agent_config_from_dict(cfg), log=lambda s: None)
        got = [a["fields"]["t"] for a in run(agent, lines, size) if a["rule"] == "model"]
        assert got == [json.loads(lines[i])["t"] for i in want]


def test_a_reload_keeps_the_matches_only_when_the_setting_is_unchanged(network_bundle, tmp_path):
    cfg = corroborated_config(network_bundle[0], tmp_path)
    old = build_pipeline(agent_config_from_dict(cfg))
    old.rules.rules[0]._matches["10.0.0.1"] = [T0]
    same = build_pipeline(agent_config_from_dict(cfg))
    _carry_state(old, same)
    assert list(same.rules.rules[0]._matches) == ["10.0.0.1"]
    other = build_pipeline(agent_config_from_dict(corroborated_config(network_bundle[0], tmp_path, within=5)))
    _carry_state(old, other)
    assert not other.rules.rules[0]._matches
    by_dest = corroborated_config(network_bundle[0], tmp_path)
    by_dest["rules"][0]["key"] = "dest_ip"
    moved = build_pipeline(agent_config_from_dict(by_dest))
    _carry_state(old, moved)
    assert not moved.rules.rules[0]._matches


def test_with_workers_a_rules_min_matches_key_is_a_shard_key():
    """A host's matches must all reach one worker, or they never add up."""
    from jenga_edge.sharding import keyed_state

    rule = convert(
        RuleConfig, {"rule": "t", "task": "threat", "key": "src_ip", "min_matches": {"count": 2, "within_s": 9}}
    )
    assert [s.where for s in keyed_state({}, [rule])] == ["rules[0].key"]


def test_the_agent_counts_and_says_the_keys_a_rule_forgets(network_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(rules_mod, "COOLDOWN_KEYS_MAX", 3)
    logs: list[str] = []
    cfg = corroborated_config(network_bundle[0], tmp_path)
    cfg["rules"][1].update(key="src_ip", cooldown_s=600)  # cooldowns are bounded alike
    agent = Agent(agent_config_from_dict(cfg), log=logs.append)
    run(agent, stream(20))  # 5 hosts, 3 kept
    evicted = agent.metrics.rule_keys_evicted.labelled()
    assert evicted["model"] > 0 and evicted["model_each"] > 0
    said = [line for line in logs if "key(s), least recently seen first" in line]
    assert {line.split(":")[0] for line in said} == {"rule model", "rule model_each"}  # once a minute each
    assert len(said) == 2
    agent._shutdown()  # what the once-a-minute line has not said yet is said at stop
    said = [line for line in logs if "key(s), least recently seen first" in line]
    for rule in ("model", "model_each"):
        total = sum(int(line.split("forgot ")[1].split()[0]) for line in said if line.startswith(f"rule {rule}:"))
        assert total == evicted[rule]
