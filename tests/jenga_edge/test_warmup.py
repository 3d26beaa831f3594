"""Rules' warm-up after a cold start (rules[].warmup_s, jenga_edge/warmup.py): alerts held
while the windows fill, counted and logged, never raised; alerts from the end of the warm-up
on; none after a window snapshot was restored, nor restarted by a reload that keeps the
windows; the same in the pure-Python tier."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jenga_edge.agent import Agent
from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import convert
from jenga_edge.contract.windows import Count, Distinct, SincePrevious
from jenga_edge.decode import DecodedBatch
from jenga_edge.event_queue import Batch
from jenga_edge.rules import RuleConfig, RuleEngine
from jenga_edge.score import Scores
from trainer.synthetic import generate

from .test_rules import TASKS

REPO = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000.0


# --- the rule engine ----------------------------------------------------------------------------


def timed(times: list[float]) -> DecodedBatch:
    n = len(times)
    return DecodedBatch(
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1), np.int64),
        list(range(n)),
        {"src_ip": [f"10.0.0.{i}" for i in range(n)], "x": [1] * n},
        times=np.asarray(times, np.float64),
        clock=max(times),
    )


def high(n: int) -> Scores:
    return Scores({"threat": np.full(n, 0.99, np.float32), "attack_type": np.zeros(n, np.float32)}, {})


WINDOWS = {
    "flows_10s": Count(key=["src_ip"], window_s=10.0),
    "ports_60s": Distinct(key=["src_ip"], field="dest_port", window_s=60.0),
    "gap": SincePrevious(key=["src_ip"]),
    "rule_only_300s": Count(key=["src_ip"], window_s=300.0),  # the agent's, for rules: not a model input
}


def engine(**warm) -> RuleEngine:
    eng = RuleEngine(
        [
            RuleConfig(rule="threat", task="threat", **warm),
            RuleConfig(rule="counting", condition={"x": 1}),  # no warm-up configured: never held
        ],
        TASKS,
    )
    eng.resolve_warmup(WINDOWS, {"bytes", "port", "flows_10s", "ports_60s", "gap"}, has_clock=True)
    return eng


def test_a_rule_holds_its_alerts_until_event_time_has_run_its_warm_up():
    eng = engine(warmup_s=60)
    first = eng.evaluate(timed([T0, T0 + 30, T0 + 59.9]), high(3))
    assert [h.rule.cfg.rule for h in first] == ["counting"] * 3  # the counting rule is not held
    assert eng.take_warmup_held() == {"threat": 3}
    # the warm-up ends within a batch: rows from the first at T0 + 60 on alert, a late one too
    second = eng.evaluate(timed([T0 + 50, T0 + 60, T0 + 45, T0 + 61]), high(4))
    assert [h.row for h in second if h.rule.cfg.rule == "threat"] == [1, 2, 3]
    assert eng.take_warmup_held() == {"threat": 1}
    assert not eng.warming
    third = eng.evaluate(timed([T0 + 1]), high(1))
    assert [h.rule.cfg.rule for h in third] == ["threat", "counting"] and eng.take_warmup_held() == {}


def test_a_time_far_ahead_of_the_window_clock_does_not_end_the_warm_up():
    eng = engine(warmup_s=60)
    wild = timed([T0, T0 + 1e6])
    wild.clock = T0  # the windows counted the wild time at their clock
    assert not [h for h in eng.evaluate(wild, high(2)) if h.rule.cfg.rule == "threat"]
    assert eng.take_warmup_held() == {"threat": 2} and eng.warming


def test_held_alerts_start_no_cooldown():
    eng = RuleEngine([RuleConfig(rule="t", task="threat", warmup_s=10, key="src_ip", cooldown_s=300)], TASKS)
    eng.resolve_warmup(WINDOWS, {"flows_10s"}, has_clock=True)
    assert not eng.evaluate(timed([T0]), high(1))
    assert [h.row for h in eng.evaluate(timed([T0 + 10]), high(1))] == [0]  # the same src_ip 10.0.0.0


def test_auto_is_the_longest_window_the_rule_reads():
    eng = engine(warmup_s="auto")
    assert eng.rules[0].warmup_span == 60.0  # the model's inputs: flows_10s, ports_60s (gap has no window_s)
    counting = RuleEngine([RuleConfig(rule="c", condition={"flows_10s": {"gte": 3}}, warmup_s="auto")], {})
    counting.resolve_warmup(WINDOWS, set(), has_clock=True)
    assert counting.rules[0].warmup_span == 10.0  # the windows its condition reads


def test_without_warm_state_nothing_is_held():
    eng = engine(warmup_s=60)
    eng.warmup.warm = True  # a snapshot was restored
    assert len(eng.evaluate(timed([T0, T0 + 1]), high(2))) == 4
    assert eng.take_warmup_held() == {}


@pytest.mark.parametrize(
    "warm, features, has_clock, text",
    [
        (30, {"flows_10s"}, False, r"rules\[0\]\.warmup_s: the warm-up runs on the windows' event time"),
        (
            "auto",
            {"gap"},
            True,
            r"rules\[0\]\.warmup_s: auto: the window features of the model task 'threat' "
            r"reads have no window_s \(gap\)",
        ),
        ("auto", set(), True, r"rules\[0\]\.warmup_s: auto: .* \(none\)"),
    ],
)
def test_a_warm_up_the_pipeline_cannot_run_is_refused_naming_the_key(warm, features, has_clock, text):
    eng = RuleEngine([RuleConfig(rule="t", task="threat", warmup_s=warm)], TASKS)
    with pytest.raises(ConfigError, match=text):
        eng.resolve_warmup(WINDOWS, features, has_clock)


@pytest.mark.parametrize(
    "value, text",
    [(-1, r"rules\[0\]\.warmup_s: .*>= 0"), ("soon", r"rules\[0\]\.warmup_s"), (1e9, r"rules\[0\]\.warmup_s")],
)
def test_warmup_s_is_checked_at_load(value, text):
    raw = {"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}]}
    raw["rules"] = [{"rule": "r", "task": "threat", "warmup_s": value}]
    with pytest.raises(ConfigError, match=text):
        agent_config_from_dict(raw, "agent.yaml")
    assert convert(RuleConfig, {"rule": "r", "task": "t", "warmup_s": "auto"}).warmup_s == "auto"


# --- the agent ----------------------------------------------------------------------------------


def stream(n: int = 48, step: float = 2.5, start: float = T0) -> list[bytes]:
    """Flat network events (the network bundle's inputs) from 5 hosts, `step` s of event time apart."""
    out = []
    for i, r in enumerate(generate("network", n, seed=11)):
        d = dict(r)
        d.update(dest_port=d.pop("port"), dest_ip=d.pop("dst_ip"), src_ip=f"10.0.0.{i % 5}", t=start + i * step)
        out.append(json.dumps(d).encode())
    return out


def config(bundle: Path, tmp: Path, snapshot: str = "", **event) -> dict:
    return {
        "agent": {"id": "warm", "bundle": str(bundle), "tasks": ["threat"]},
        "sources": [{"type": "stdin"}],
        "event": {
            "keys": ["src_ip", "dest_ip", "dest_port"],
            "mapping": {"port": "dest_port"},
            "time": "t",
            "snapshot": snapshot,
            "windows": {
                "flows_10s": {"kind": "count", "key": ["src_ip"], "window_s": 10},
                "ports_60s": {"kind": "distinct", "key": ["src_ip"], "field": "dest_port", "window_s": 60},
                **event,
            },
        },
        "rules": [
            # every flow is a candidate (threshold 0): what is held is the warm-up's doing alone
            {"rule": "model", "task": "threat", "threshold": 0.0, "warmup_s": 60},
            {"rule": "counting", "condition": {"flows_10s": {"gte": 1}}},
            {"rule": "counting_warm", "condition": {"flows_10s": {"gte": 1}}, "warmup_s": "auto"},
        ],
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "dead_letter": {"path": str(tmp / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
    }


def run(agent: Agent, lines: list[bytes], size: int = 7) -> list[dict]:
    alerts = []
    for i in range(0, len(lines), size):
        part = lines[i : i + size]
        alerts += agent.process(Batch(part, None, [("test", len(part))]))
    return alerts


def by_rule(alerts: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in alerts:
        out[a["rule"]] = out.get(a["rule"], 0) + 1
    return out


def test_the_agent_holds_counts_and_logs_the_warm_up_then_alerts(network_bundle, tmp_path):
    logs: list[str] = []
    agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), log=logs.append)
    late = stream(1, start=T0 + 5)  # after the warm-up ended: alerts, though its time is early
    alerts = run(agent, stream() + late)  # 48 events at T0 + 0, 2.5 ... 117.5 s, then the late one
    # model: the 24 events before T0 + 60 held; counting_warm (auto: flows_10s, 10 s): the 4 before T0 + 10
    assert by_rule(alerts) == {"model": 25, "counting": 49, "counting_warm": 45}
    held = {"model": 24, "counting_warm": 4}
    assert agent.metrics.alerts_warmup_held.labelled() == held
    assert agent.summary()["warmup_held"] == held
    assert "warmup_held=28 (counting_warm=4 model=24)" in agent.metrics.stats_line()
    starts = [line for line in logs if line.startswith("warm-up: no window state restored")]
    assert len(starts) == 1 and "model (60 s), counting_warm (10 s)" in starts[0]
    ends = [line for line in logs if line.startswith("warm-up over")]
    assert len(ends) == 2 and "counting_warm 4" in ends[0] and "model 24" in ends[1], ends
    agent._shutdown()
    assert not [line for line in logs if "warm-up not over" in line]


def test_a_stream_shorter_than_the_warm_up_is_said_at_stop(network_bundle, tmp_path):
    logs: list[str] = []
    agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), log=logs.append)
    assert by_rule(run(agent, stream(8))) == {"counting": 8, "counting_warm": 4}  # 17.5 s of event time
    agent._shutdown()
    stop = [line for line in logs if "warm-up not over" in line]
    assert len(stop) == 1 and "ran 17.5 s" in stop[0] and "model 8 (of 60 s)" in stop[0], stop


def test_a_restored_snapshot_means_no_warm_up(network_bundle, tmp_path):
    snap = str(tmp_path / "windows.snap")
    first = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=lambda s: None)
    run(first, stream(8))
    first._shutdown()  # writes the snapshot
    logs: list[str] = []
    second = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=logs.append)
    assert second.metrics.window_snapshots.labelled() == {"restored": 1}
    later = stream(8, start=T0 + 20)
    assert by_rule(run(second, later)) == {"model": 8, "counting": 8, "counting_warm": 8}
    assert second.summary()["warmup_held"] == {} and second.metrics.alerts_warmup_held.total() == 0
    assert any("warm-up: none, window state restored; rules model, counting_warm" in line for line in logs)
    second._shutdown()
    # the control: the same events with no snapshot to restore are held
    cold = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, str(tmp_path / "no.snap"))))
    assert by_rule(run(cold, later)) == {"counting": 8, "counting_warm": 4}


def test_a_restored_snapshot_whose_windows_are_empty_or_expired_still_warms_up(network_bundle, tmp_path):
    """Restored state is warm only if it still holds something: a snapshot saved before any
    event (empty windows), or one whose newest event is a rule's span or more before the first
    event now (every window of that span empties at that event: a restart after an outage),
    leaves the rule as cold as no snapshot at all, and it warms up from the first event."""
    snap = str(tmp_path / "windows.snap")
    empty = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=lambda s: None)
    empty._shutdown()  # no event: the snapshot holds empty windows
    second = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=lambda s: None)
    assert second.metrics.window_snapshots.labelled() == {"restored": 1}
    assert by_rule(run(second, stream(8))) == {"counting": 8, "counting_warm": 4}  # as cold
    assert second.summary()["warmup_held"] == {"model": 8, "counting_warm": 4}
    second._shutdown()  # now the windows' newest event is T0 + 17.5
    # after an outage: the first event 1,000 s later; every window (10 s, 60 s) empties at it
    third = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=lambda s: None)
    assert by_rule(run(third, stream(8, start=T0 + 1000))) == {"counting": 8, "counting_warm": 4}
    third._shutdown()
    # 30 s after the snapshot's newest event: the 60 s windows still hold it (no warm-up for
    # model); the 10 s ones have emptied (counting_warm warms up)
    fourth = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path, snap)), log=lambda s: None)
    assert by_rule(run(fourth, stream(8, start=T0 + 1000 + 17.5 + 30))) == {
        "model": 8,
        "counting": 8,
        "counting_warm": 4,
    }
    assert fourth.summary()["warmup_held"] == {"counting_warm": 4}


@pytest.mark.parametrize("size", [3, 5, 100])
def test_what_the_warm_up_holds_does_not_depend_on_how_the_stream_is_cut(network_bundle, tmp_path, size):
    """Events far ahead of the window clock count at the clock until 8 in a row move it (a real
    gap): the warm-up runs on the same placed times, whatever the batches (held: the 4 rows at
    the start, and the 7 ahead of the clock before it jumps)."""
    agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), log=lambda s: None)
    lines = stream(4) + stream(8, step=0.5, start=T0 + 10_000) + stream(4, start=T0 + 10_010)
    alerts = run(agent, lines, size)
    assert agent.summary()["warmup_held"]["model"] == 4 + 7
    assert by_rule(alerts)["model"] == 16 - 11


@pytest.mark.parametrize("size", [3, 7, 100])
def test_windows_emptied_by_a_clock_that_comes_back_warm_up_again(network_bundle, tmp_path, size):
    """A wild first timestamp (far in the future) sets the window clock; 8 events behind it
    bring it back and empty the windows (their state lay in that future). The warm-up starts
    again there: it must not run from the wild time (held until that future comes), and the
    rows placed before the reset are held with it."""
    agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), log=lambda s: None)
    lines = stream(1, start=T0 + 1e6) + stream()  # the 8th normal event (T0 + 17.5) resets the windows
    alerts = run(agent, lines, size)
    assert agent.pipe.decoder.windows.resets == 1
    # held: the wild event and the 7 before the reset, then T0 + 17.5 .. T0 + 75 (24 events)
    assert agent.summary()["warmup_held"]["model"] == 8 + 24
    assert by_rule(alerts)["model"] == 49 - 32


def wild_stream(seed: int) -> list[bytes]:
    """200 events with late ones, times far ahead, and bursts far ahead that move the window
    clock and then, the stream going on behind them, bring it back (a reset)."""
    rng = random.Random(seed)
    t, out = T0, []
    for line in stream(200):
        d = json.loads(line)
        r = rng.random()
        t += rng.choice([0.1, 0.5, 1, 2, 5])
        at = t + 1e6 if r < 0.05 else t - rng.uniform(0, 30) if r < 0.1 else t + 5000 if r < 0.12 else t
        if rng.random() < 0.02:
            out += [json.dumps({**d, "t": t + 2e6}).encode()] * rng.randrange(6, 10)
        out.append(json.dumps({**d, "t": at}).encode())
    return out


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_random_streams_with_wild_times_hold_the_same_whatever_the_batches(network_bundle, tmp_path, seed):
    lines, seen = wild_stream(seed), []
    for size in (1, 4, 13, 1000):
        agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), log=lambda s: None)
        alerts = run(agent, lines, size)
        seen.append((sorted((a["rule"], a["src_ip"], a["score"]) for a in alerts), agent.summary()["warmup_held"]))
        assert agent.pipe.decoder.windows.resets >= 1
    assert all(s == seen[0] for s in seen), [(len(a), held) for a, held in seen]


def test_a_reload_keeps_the_warm_up_only_with_the_window_state(network_bundle, tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config(network_bundle[0], tmp_path)))
    logs: list[str] = []
    agent = Agent(agent_config_from_dict(config(network_bundle[0], tmp_path)), str(path), log=logs.append)
    events = stream()
    assert "model" not in by_rule(run(agent, events[:12]))  # T0 .. T0 + 27.5: warming up
    agent._reload()  # the same windows: kept, and the warm-up goes on from where it was
    assert any("window state kept" in line for line in logs)
    assert by_rule(run(agent, events[12:]))["model"] == 24  # from T0 + 60, not 60 s after the reload
    assert len([line for line in logs if line.startswith("warm-up: no window state")]) == 1
    # a reload that changes the windows empties them: a new warm-up from the next event
    path.write_text(
        yaml.safe_dump(config(network_bundle[0], tmp_path, gap={"kind": "since_previous", "key": ["src_ip"]}))
    )
    agent._reload()
    assert any("window state reset" in line for line in logs)
    after = stream(8, start=T0 + 200)
    assert "model" not in by_rule(run(agent, after))
    assert len([line for line in logs if line.startswith("warm-up: no window state")]) == 2
    assert agent.summary()["warmup_held"] == {"model": 24 + 8, "counting_warm": 4 + 4}


def test_a_reload_that_adds_a_warm_up_to_running_windows_starts_none(network_bundle, tmp_path):
    path = tmp_path / "agent.yaml"
    plain = config(network_bundle[0], tmp_path)
    plain["rules"] = [{k: v for k, v in r.items() if k != "warmup_s"} for r in plain["rules"]]
    path.write_text(yaml.safe_dump(plain))
    logs: list[str] = []
    agent = Agent(agent_config_from_dict(plain), str(path), log=logs.append)
    events = stream()
    assert by_rule(run(agent, events[:4]))["model"] == 4  # no warm-up configured
    path.write_text(yaml.safe_dump(config(network_bundle[0], tmp_path)))  # the same windows, and warm-ups
    agent._reload()
    assert any("window state kept" in line for line in logs)
    assert by_rule(run(agent, events[4:8])) == {"model": 4, "counting": 4, "counting_warm": 4}
    assert agent.summary()["warmup_held"] == {} and not [line for line in logs if line.startswith("warm-up")]


def test_auto_on_a_model_without_window_features_is_refused_at_load(network_bundle, tmp_path):
    raw = config(network_bundle[0], tmp_path)
    raw["rules"][0]["warmup_s"] = "auto"
    with pytest.raises(ConfigError, match=r"rules\[0\]\.warmup_s: auto: the window features of the model task"):
        Agent(agent_config_from_dict(raw))


def test_the_pure_python_tier_holds_the_same_alerts(network_bundle, tmp_path):
    """`jenga-edge run` as a user runs it, with and without the C tier: the same alerts, the
    same held counts."""
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config(network_bundle[0], tmp_path)))
    raw = b"\n".join(stream() + stream(1, start=T0 + 5)) + b"\n"
    seen = []
    for pure in ("0", "1"):
        (tmp_path / "alerts.jsonl").unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(path)],
            input=raw,
            capture_output=True,
            cwd=REPO,
            timeout=120,
            env={**os.environ, "JENGA_EDGE_PURE": pure},
        )
        err = proc.stderr.decode().strip().splitlines()
        assert proc.returncode == 0, err[-5:]
        alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        seen.append(([(a["rule"], a["src_ip"], a["dest_port"], a["score"]) for a in alerts], json.loads(err[-1])))
    (c_alerts, c_summary), (py_alerts, py_summary) = seen
    assert c_alerts == py_alerts and len(c_alerts) == 25 + 49 + 45
    assert c_summary["warmup_held"] == py_summary["warmup_held"] == {"model": 24, "counting_warm": 4}
