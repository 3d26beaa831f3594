"""The asynchronous output stage at stop, on reload and on failure: every item gets
exactly one outcome, counted, and nothing starts after the owner treated the stage as
closed (jenga_edge/output_stage.py, actions/background.py, sinks/queued.py, agent.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jenga_edge.actions.background import BackgroundAction
from jenga_edge.output_stage import OutputStage, QueueConfig
from jenga_edge.sinks.lines import LineWriteError
from jenga_edge.sinks.queued import QueuedSink

from .test_agent import batch, events, read_jsonl, wait_until
from .test_durability import _agent

# --- the stage and its owners, without an agent ------------------------------------------------


def test_an_item_still_running_at_stop_gets_its_own_outcome_once():
    gate, ran = threading.Event(), []
    got: dict[int, list[str]] = {}

    def report(i, result):
        got.setdefault(i, []).append(result)

    def work(i):
        gate.wait(10)
        ran.append(i)

    stage = OutputStage("t", work, 10, "drop_oldest", on_dropped=lambda i, w: report(i, "dropped"))
    stage._on_in_flight = lambda i, w: report(i, "in_flight")
    for i in range(3):
        stage.put(i)
    assert wait_until(lambda: stage.busy, 5)
    assert stage.close(0.0) == 2
    # before: item 0 had no outcome and no count (counts had no in_flight at all)
    assert got == {0: ["in_flight"], 1: ["dropped"], 2: ["dropped"]}
    gate.set()
    assert wait_until(lambda: stage.late == 1, 5)  # it finished afterwards: counted late, not done
    assert stage.counts == {"queued": 3, "done": 0, "failed": 0, "dropped": 2, "spooled": 0, "in_flight": 1}
    assert ran == [0]


def test_the_worker_starts_nothing_once_close_gave_up():
    """The race: the join times out, the worker finishes its item and takes the next one
    before close takes the lock. That next item must not run after close returned."""
    gate, ran = threading.Event(), []
    stage = OutputStage("t", lambda i: (gate.wait(10), ran.append(i)), 10, "drop_oldest")
    for i in range(3):
        stage.put(i)
    assert wait_until(lambda: stage.busy, 5)
    join = stage._thread.join

    def late_join(timeout=None):
        join(timeout)
        gate.set()  # item 0 finishes now, between the join's timeout and close's lock
        wait_until(lambda: not stage.busy or len(ran) > 1, 2)
        time.sleep(0.05)  # room for the worker to take item 1 (it must not)

    stage._thread.join = late_join
    stage.close(0.0)
    time.sleep(0.1)
    assert ran == [0]  # before: [0, 1], item 1 ran after close returned
    assert stage.counts["done"] + stage.counts["in_flight"] == 1 and stage.counts["dropped"] == 2


def test_a_put_blocked_on_a_full_queue_is_dropped_when_the_stage_closes():
    gate, got = threading.Event(), []
    stage = OutputStage("t", lambda i: gate.wait(10), 1, "block", on_dropped=lambda i, w: got.append((i, w)))
    stage.put(0)
    assert wait_until(lambda: stage.busy, 5)
    stage.put(1)  # waits in the queue
    blocked: list[str] = []
    putter = threading.Thread(target=lambda: blocked.append(stage.put(2)), daemon=True)
    putter.start()
    assert not wait_until(lambda: blocked, 0.2)  # the queue is full: put waits for room
    stage.close(0.0)
    putter.join(5)
    gate.set()
    assert blocked == ["dropped"] and (2, "stage closed") in got  # before: "queued", left in no one's hands
    assert stage.depth() == 0


class _Hook:
    """A webhook-like action whose delivery waits on a gate and whose spool is full."""

    type, target = "webhook", "http://x"

    def __init__(self):
        self.gate = threading.Event()

    def addresses(self, alert):
        return []

    def run(self, alert):
        self.gate.wait(10)
        return {"type": "webhook", "result": "ok"}

    def spool(self, body):
        return False, "disk full"

    def spooled(self):
        return 0

    def retry_spool(self):
        pass


def test_a_queued_action_whose_spool_fails_gets_one_outcome():
    hook, results = _Hook(), []
    action = BackgroundAction(
        "hook", hook, QueueConfig(size=1, when_full="spool"), lambda n, a, o: results.append((a["alert_id"], o))
    )
    action.run({"alert_id": 0})
    assert wait_until(lambda: action.stage.busy, 5)  # 0 runs
    action.run({"alert_id": 1})  # 1 waits
    action.run({"alert_id": 2})  # 2 finds the queue full, and the spool full too
    hook.gate.set()
    action.close(5.0)
    ids = [i for i, _ in results]
    assert sorted(ids) == [0, 1, 2]  # before: 2 got `failed` and then `dropped`
    (spilled,) = [o for i, o in results if i == 2]
    assert spilled["result"] == "dropped" and "disk full" in spilled["reason"]
    assert action.stage.counts["dropped"] == 1 and action.stage.counts["done"] == 2


def test_a_live_action_running_at_stop_is_recorded_in_flight_then_late():
    hook, results = _Hook(), []
    action = BackgroundAction("hook", hook, QueueConfig(drain_s=0.0), lambda n, a, o: results.append(o))
    action.run({"alert_id": 1})
    assert wait_until(lambda: action.stage.busy, 5)
    action.close()
    assert [o["result"] for o in results] == ["in_flight_at_stop"]  # before: nothing until it ended
    hook.gate.set()
    assert wait_until(lambda: len(results) == 2, 5)
    assert results[1]["result"] == "ok" and results[1]["late"] is True


class _Boom:
    last_error = None

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate

    def write_batch(self, alerts):
        if self.gate is not None:
            self.gate.wait(10)
            return 0
        raise RuntimeError("boom")

    def close(self):
        pass


def test_a_queued_sink_counts_a_batch_its_inner_sink_raised_on_as_lost():
    sink = QueuedSink("s", _Boom(), QueueConfig())
    sink.write_batch([{"a": 1}, {"a": 2}])
    assert wait_until(lambda: sink.stage.counts["failed"] == 1, 5)
    assert sink.take_lost() == 2  # before: 0, the stage's `failed` only
    assert "RuntimeError: boom" in str(sink.last_error)
    sink.close()


def test_a_queued_sink_counts_a_batch_still_sending_at_stop_as_lost_once():
    gate = threading.Event()
    sink = QueuedSink("s", _Boom(gate), QueueConfig(drain_s=0.0))
    sink.write_batch([{"a": 1}, {"a": 2}, {"a": 3}])
    assert wait_until(lambda: sink.stage.busy, 5)
    sink.close()
    assert sink.take_lost() == 3 and sink.stage.counts["in_flight"] == 1  # unconfirmed: lost
    gate.set()
    assert wait_until(lambda: sink.stage.late == 1, 5)
    assert sink.take_lost() == 0


def test_a_queued_sink_sends_the_batch_as_it_was_handed_over():
    """The caller's list may change while the batch waits (a test once extended the list
    Agent.process returned, and the syslog sink counted the second batch's alerts twice)."""
    got: list[int] = []
    gate = threading.Event()

    class _Held:
        last_error = None

        def write_batch(self, alerts):
            gate.wait(10)
            got.append(len(alerts))
            return 0

        def close(self):
            pass

    sink = QueuedSink("s", _Held(), QueueConfig())
    sink.write_batch([{"a": 0}])  # holds the worker: the next batch waits in the queue
    batch = [{"a": 1}, {"a": 2}]
    sink.write_batch(batch)
    batch += [{"a": 3}]  # the caller reuses its list
    gate.set()
    assert wait_until(lambda: sink.stage.counts["done"] == 2, 5)
    assert got == [1, 2]
    sink.close()


# --- the agent ---------------------------------------------------------------------------------


@pytest.fixture
def gate(tmp_path: Path):
    """The file a gated command waits for: touched at teardown too, so a failing test
    leaves no command running (a test's agent may never reach its shutdown)."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def _gated_agent(tmp_path: Path, bundle: Path, gate: Path, drain_s: float, queue: dict | None = None, **extra):
    return _agent(
        tmp_path,
        bundle,
        acts=["alert", "mark"],
        actions={
            "mark": {
                "type": "exec",
                "argv": ["/bin/sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"],
                "timeout_s": 20,
                "dry_run": False,
                "queue": {"drain_s": drain_s, **(queue or {})},
            }
        },
        rate_limit={"max_actions": 100000, "per_seconds": 1},
        **extra,
    )


def _results(path: Path) -> list[dict]:
    return [r for r in read_jsonl(path) if r["event_type"] == "action_result"]


def test_a_command_running_at_stop_has_an_action_result(network_bundle, tmp_path, gate):
    agent = _gated_agent(tmp_path, network_bundle[0], gate, 0.2)
    agent.process_safely(batch(events(3)))
    assert agent.counts["alerts"] == 3
    stage = agent.pipe.actions["mark"].stage
    assert wait_until(lambda: stage.busy, 10)
    agent._shutdown()
    results = _results(tmp_path / "alerts.jsonl")
    got = sorted(r["action"]["result"] for r in results if not r["action"].get("late"))
    assert got == ["dropped", "dropped", "in_flight_at_stop"]  # before: the running one had no record
    assert len({r["alert_id"] for r in results}) == 3
    assert agent.metrics.output_items.value(stage="action:mark", state="in_flight") == 1
    # the command does not outlive the agent (before: left running, its parent init): ended by
    # its PID, said, and its end recorded late or logged, never silently lost
    ended = [x for x in agent.logged if "still running at the drain deadline" in x]
    assert len(ended) == 1
    pid = int(ended[0].rsplit("pid ", 1)[1].rstrip(")"))
    assert not Path(f"/proc/{pid}").exists()
    late = [r for r in results if r["action"].get("late")]
    assert ([r["action"]["result"] for r in late] == ["failed"] and "ended" in late[0]["action"]["reason"]) or any(
        "finished after its record was closed" in x for x in agent.logged
    )


def test_a_reload_drains_the_old_actions_off_the_scoring_thread(network_bundle, tmp_path, gate):
    agent = _gated_agent(tmp_path, network_bundle[0], gate, 10.0)
    ev = events(6)
    agent.process_safely(batch(ev[:3]))
    old = agent.pipe.actions["mark"].stage
    assert wait_until(lambda: old.busy, 10)
    agent._reload()
    # before: the scoring thread drained the old queue itself (up to drain_s), then dropped it
    assert agent.reloads["ok"] == 1 and old.depth() == 2 and old.counts["dropped"] == 0
    gate.touch()
    agent.process_safely(batch(ev[3:]))  # the new pipeline's stage, same name
    new = agent.pipe.actions["mark"].stage
    assert new is not old
    assert wait_until(lambda: new.counts["done"] == 3, 10)
    agent._shutdown()
    assert sorted(r["action"]["result"] for r in _results(tmp_path / "alerts.jsonl")) == ["ok"] * 6
    m = agent.metrics.output_items
    assert m.value(stage="action:mark", state="queued") == 6  # before: the new stage's first 3 not counted
    assert m.value(stage="action:mark", state="done") == 6  # before: the old stage's last counts lost


@pytest.mark.parametrize("policy", ["spool", "stop"])
def test_a_failed_fsync_before_a_live_action_is_spooled_or_counted(network_bundle, tmp_path, gate, policy):
    from jenga_edge.contract.errors import DataError

    spool = tmp_path / "spool" / "failed.jsonl"
    fail = {"policy": "spool", "spool_path": str(spool)} if policy == "spool" else {"policy": "stop"}
    gate.touch()
    agent = _gated_agent(tmp_path, network_bundle[0], gate, 5.0, on_sink_failure=fail)

    def fsync_failed():
        raise DataError("fsync failed: [Errno 5] Input/output error")

    agent.sinks["jsonl"].sync_wait = fsync_failed
    agent.process_safely(batch(events(4)))
    agent._shutdown()
    if policy == "spool":
        spooled = read_jsonl(spool)
        assert len(spooled) == 4 and {r["sink"] for r in spooled} == {"jsonl"}  # before: 0 spooled
        assert agent.metrics.sink_spooled.value(sink="jsonl") == 4 and agent.fatal is None
        assert sorted(r["action"]["result"] for r in _results(tmp_path / "alerts.jsonl")) == ["ok"] * 4
    else:
        assert agent.metrics.sink_lost.value(sink="jsonl") == 4  # before: 0, the alerts maybe not on disk
        assert agent.fatal is not None and "fsync failed" in agent.fatal
        assert _results(tmp_path / "alerts.jsonl") == []  # no action for them


@pytest.mark.parametrize("policy", ["spool", "stop"])
def test_a_failed_action_result_write_spools_only_the_unwritten_rest(network_bundle, tmp_path, policy):
    spool = tmp_path / "spool" / "failed.jsonl"
    fail = {"policy": "spool", "spool_path": str(spool)} if policy == "spool" else {"policy": "stop"}
    agent = _agent(tmp_path, network_bundle[0], on_sink_failure=fail)

    def one_line_then_full(records):
        raise LineWriteError("alerts.jsonl: write failed: No space left on device", 1, len(records) - 1, 0)

    agent.sinks["jsonl"].write_outcomes = one_line_then_full
    for i in range(3):
        agent._action_result("mark", {"alert_id": f"r-{i}"}, {"type": "exec", "result": "ok"})
    agent._record_outcomes()
    if policy == "spool":
        assert [r["record"]["alert_id"] for r in read_jsonl(spool)] == ["r-1", "r-2"]  # before: r-0 too
    else:
        assert agent.metrics.action_results_lost.value(sink="jsonl") == 2
        assert agent.metrics.sink_lost.total() == 0  # before: 3 "alerts" lost
    agent._shutdown()


def test_a_queue_spool_path_resolves_and_may_not_be_another_file(tmp_path):
    from jenga_edge.config import agent_config_from_dict
    from jenga_edge.contract.errors import ConfigError

    def raw(spool: str) -> dict:
        siem = {"type": "syslog", "target": "udp://127.0.0.1:9", "queue": {"when_full": "spool", "spool_path": spool}}
        return {
            "agent": {"bundle": "/x"},
            "sources": [{"type": "stdin"}],
            "sinks": {"jsonl": {"path": "alerts.jsonl"}, "siem": siem},
        }

    cfg = agent_config_from_dict(raw("spool/siem.jsonl"), base=tmp_path)
    assert cfg.sinks["siem"].queue.spool_path == str(tmp_path / "spool" / "siem.jsonl")  # before: relative to cwd
    for other, by in (("alerts.jsonl", "sinks.jsonl.path"), ("dead_letter.jsonl", "dead_letter.path")):
        with pytest.raises(ConfigError) as err:
            agent_config_from_dict(raw(other), base=tmp_path)
        assert f"sinks.siem.queue.spool_path: {tmp_path / other} is also written by {by}" in str(err.value)


def test_actions_a_full_queue_drops_are_logged_not_only_counted(network_bundle, tmp_path, gate):
    """drop_oldest is a policy, not a silence: the drops are said on stderr (rate-limited) as
    well as counted (before: only in jenga_output_items_total and the outcome records)."""
    agent = _gated_agent(tmp_path, network_bundle[0], gate, 0.2, queue={"size": 1, "when_full": "drop_oldest"})
    agent.process_safely(batch(events(5)))
    assert agent.counts["alerts"] == 5
    agent._sync_outputs()
    dropped = agent.metrics.output_items.value(stage="action:mark", state="dropped")
    assert dropped >= 3  # one running, one waiting, the rest dropped
    said = [x for x in agent.logged if "dropped by its output queue" in x]
    assert said and said[0].startswith(f"action:mark: {int(dropped)} item(s) dropped")
    gate.touch()
    agent._shutdown()
