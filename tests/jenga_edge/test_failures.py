"""Nothing fails silently: a sink that cannot deliver, an action that fails and a
source waiting for its file are each counted in metrics, logged (rate-limited)
and shown in the stats line. Real sockets on loopback, real files."""

from __future__ import annotations

import json

from jenga_edge.actions import close_actions
from jenga_edge.agent import Agent
from jenga_edge.config import load_agent_config
from jenga_edge.failures import FailureLog, terminal_safe

from .test_agent import AgentProc, batch, events, free_port, write_config


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_repeated_failure_is_logged_once_a_minute_with_how_many_more():
    logged, clock = [], Clock()
    log = FailureLog(logged.append, every_s=60.0, clock=clock)
    for _ in range(5):
        log.warn("sink:siem", "sink siem: 1 alert(s) not delivered")
    log.warn("sink:other", "sink other: down")  # another key is not held back
    clock.t += 61
    log.warn("sink:siem", "sink siem: 2 alert(s) not delivered")
    assert logged == [
        "sink siem: 1 alert(s) not delivered",
        "sink other: down",
        "sink siem: 2 alert(s) not delivered (and 4 more since the last report)",
    ]


def test_a_lasting_condition_is_not_counted_as_repeats_and_its_end_is_logged():
    logged, clock = [], Clock()
    log = FailureLog(logged.append, clock=clock)
    for _ in range(50):  # polled in a loop
        log.warn("source:f", "f: missing", count=False)
    clock.t += 60
    log.warn("source:f", "f: missing (for 60 s)", count=False)
    log.resolved("source:f", "f: readable again")
    log.resolved("source:g", "never failed: not logged")
    assert logged == ["f: missing", "f: missing (for 60 s)", "f: readable again"]


def test_log_text_from_a_peer_cannot_drive_the_terminal():
    evil = "refused\n2026-01-01 fake line\x1b[2J\x1b]0;title\x07\r\x9b31m"
    safe = terminal_safe(evil)
    assert "\n" not in safe and "\x1b" not in safe and "\r" not in safe and "\x9b" not in safe
    assert safe == "refused\\n2026-01-01 fake line\\x1b[2J\\x1b]0;title\\x07\\r\\x9b31m"
    assert len(terminal_safe("x" * 2000)) == 500
    logged = []
    FailureLog(logged.append).warn("k", evil)
    assert logged == [safe]


def test_a_syslog_collector_that_is_down_loses_alerts_counted_and_logged(network_bundle, tmp_path):
    dead_port = free_port()  # nothing listens there: every connect is refused
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        sinks={
            "jsonl": {"path": str(tmp_path / "alerts.jsonl")},
            "siem": {"type": "syslog", "target": f"tcp://127.0.0.1:{dead_port}"},
        },
    )
    logged: list[str] = []
    agent = Agent(load_agent_config(cfg), log=logged.append)
    alerts = agent.process(batch(events(300, seed=31))) + agent.process(batch(events(300, seed=32)))
    agent._shutdown()  # syslog runs behind its output queue: its losses are all known once it drained
    assert len(alerts) > 2
    assert agent.metrics.sink_lost.labelled() == {"siem": len(alerts)}  # the jsonl sink lost none
    assert len(logged) == 1 and logged[0].startswith("sink siem: ") and "ConnectionRefusedError" in logged[0]
    assert f"sink_lost={len(alerts)} (siem={len(alerts)})" in agent.metrics.stats_line()
    assert f'jenga_sink_alerts_lost_total{{sink="siem"}} {len(alerts)}' in agent.metrics.registry.render()


def test_a_webhook_that_cannot_deliver_nor_spool_counts_as_a_failed_action(network_bundle, tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{"rule": "notify", "task": "threat", "actions": ["alert", "soc"]}],
        actions={
            "soc": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{free_port()}/hook",
                "max_retries": 0,
                "timeout_s": 1,
                "spool_dir": str(tmp_path / "not-a-dir" / "spool"),  # cannot be created
            }
        },
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    logged: list[str] = []
    agent = Agent(load_agent_config(cfg), log=logged.append)
    alerts = agent.process(batch(events(300, seed=31)))
    assert alerts and all(a["actions"][0]["result"] == "queued" for a in alerts)  # the scoring thread's view
    close_actions(agent.pipe.actions)  # waits for the worker's final results
    agent._record_outcomes()  # which the scoring thread records (and counts)
    assert agent.metrics.action_failures.labelled() == {"soc": len(alerts)}
    assert logged and logged[0].startswith("action soc failed: ")


def test_a_followed_file_that_is_missing_is_reported_until_it_appears(network_bundle, tmp_path):
    eve = tmp_path / "eve.json"
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "file", "path": str(eve), "poll_interval_s": 0.05}],
        metrics={"stats_interval_s": 1},
    )
    agent = AgentProc(cfg)
    try:
        agent.wait_for(f"file:{eve}: does not exist; waiting for it to appear (for ", timeout=30)
        agent.wait_for("sources_waiting=1", timeout=30)  # in the stats line too
        eve.write_bytes(b"\n".join(events(50)) + b"\n")
        agent.wait_for(f"file:{eve}: readable again", timeout=30)
    finally:
        summary = agent.stop()
    assert summary["received"] == 50


def test_the_stats_line_stays_short_while_nothing_fails(network_bundle, tmp_path):
    cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}])
    agent = Agent(load_agent_config(cfg), log=lambda s: None)
    agent.process(batch(events(100)))
    line = agent.metrics.stats_line()
    assert "sink_lost" not in line and "action_failed" not in line and "sources_waiting" not in line
    assert json.loads(json.dumps(agent.summary()))["metrics"]["sink_lost"] == 0
