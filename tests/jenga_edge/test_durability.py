"""Disk errors and blocking outputs (issue 11, items 7 and 8): a sink failure is not an event
rejection, actions run only for recorded alerts, a failed write leaves no torn line, a full
dead-letter disk stops the agent (or spools), and a dead receiver or a hung command never
stalls scoring."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jenga_edge.output_stage import OutputStage
from jenga_edge.sinks import build_sinks
from jenga_edge.sinks.jsonl import Config as JsonlConfig
from jenga_edge.sinks.jsonl import JsonlSink
from jenga_edge.sinks.lines import LineWriteError

from .test_agent import MALFORMED, REPO, batch, events, read_jsonl, write_config


def _alerts(n: int, pad: int = 0) -> list[dict]:
    return [{"rule": "r", "priority": "error", "src_ip": "203.0.113.7", "n": i, "note": "x" * pad} for i in range(n)]


def _whole_lines(path: Path) -> list[dict]:
    """Every line parses, and the file ends with a newline: no torn record."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    return [json.loads(x) for x in data.splitlines()]


# --- partial writes -------------------------------------------------------------------------


def test_a_short_then_failing_write_is_cut_back_to_the_last_whole_line(tmp_path, monkeypatch):
    sink = JsonlSink(JsonlConfig(path=str(tmp_path / "a.jsonl"), fsync=False))
    sink.write_batch(_alerts(3))
    fd, real_write, calls = sink._fh.fileno(), os.write, []

    def disk_fills(target, data):  # the kernel takes 100 bytes, then the disk is full
        if target != fd:
            return real_write(target, data)
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(target, bytes(data[:100]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(LineWriteError) as err:
        sink.write_batch(_alerts(5, pad=10))
    monkeypatch.undo()
    assert "No space left on device" in str(err.value) and "truncated back" in str(err.value)
    line = len(json.dumps(_alerts(1, pad=10)[0], separators=(",", ":"))) + 1
    assert (err.value.kept, err.value.lost) == (100 // line, 5 - 100 // line)
    assert len(_whole_lines(tmp_path / "a.jsonl")) == 3 + err.value.kept
    sink.write_batch(_alerts(1))  # the file goes on from its last whole line
    sink.close()
    assert len(_whole_lines(tmp_path / "a.jsonl")) == 4 + err.value.kept


@pytest.fixture
def tiny_tmpfs():
    """A 64 KiB tmpfs (root and mount needed), unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root and mount for a tmpfs")
    d = Path(tempfile.mkdtemp(prefix="jenga-tmpfs-"))
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True, timeout=10)
    if res.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.decode(errors='replace').strip()}")
    try:
        yield d
    finally:  # lazily: a file a failed test left open must not keep the mount
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=10)
        d.rmdir()


def test_a_full_disk_leaves_only_whole_lines(tiny_tmpfs):
    sink = JsonlSink(JsonlConfig(path=str(tiny_tmpfs / "alerts.jsonl"), fsync=False))
    written = lost = 0
    try:
        for _ in range(40):  # 40 batches of ~3.5 KB: the 64 KiB disk fills part-way through one
            try:
                sink.write_batch(_alerts(7, pad=400))
                written += 7
            except LineWriteError as exc:
                written, lost = written + exc.kept, lost + exc.lost
    finally:
        sink.close()
    assert lost > 0  # the disk did fill
    assert len(_whole_lines(tiny_tmpfs / "alerts.jsonl")) == written


# --- the output stage -----------------------------------------------------------------------


def test_the_output_stage_counts_every_item_by_policy():
    gate, done = threading.Event(), []
    stage = OutputStage("t", lambda item: (gate.wait(10), done.append(item)), 2, "drop_oldest")
    dropped = []
    stage._on_dropped = lambda item, why: dropped.append(item)
    for i in range(6):
        assert stage.put(i) == "queued"  # never waits: the oldest waiting item gives way
    gate.set()
    stage.close(10.0)
    assert stage.counts["queued"] == 6
    assert sorted(done + dropped) == list(range(6)) and stage.counts["done"] == len(done)
    assert stage.counts["dropped"] == len(dropped) >= 3


def test_a_syslog_collector_that_never_reads_does_not_stall_the_writer():
    """The sink-level half of the stall test: a collector accepts and never reads; every
    write_batch returns at once and the loss is counted, not waited for."""
    rx = socket.socket()
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(("127.0.0.1", 0))
    rx.listen(1)
    cfg = {"siem": {"type": "syslog", "target": f"tcp://127.0.0.1:{rx.getsockname()[1]}", "timeout_s": 60}}
    from jenga_edge.config import agent_config_from_dict

    raw = {"agent": {"bundle": "/x"}, "sources": [{"type": "stdin"}], "sinks": cfg}
    sinks = build_sinks(agent_config_from_dict(raw).sinks)
    finished = threading.Event()

    def write_all():
        for _ in range(60):  # 60 x 64 KB: far past what the kernel buffers hold
            sinks["siem"].write_batch(_alerts(1, pad=64_000))
        finished.set()

    threading.Thread(target=write_all, daemon=True).start()
    try:
        # generous: each blocked send would hold the writer for the full 60 s timeout
        assert finished.wait(20), "write_batch blocked on a collector that never reads"
        stage = sinks["siem"].stage
        assert stage.counts["queued"] == 60
    finally:
        rx.close()  # the worker's send fails now; nothing is left blocked
        sinks["siem"].stage.close(5.0)


# --- the agent ------------------------------------------------------------------------------


def _agent(tmp, bundle, **extra):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    cfg = write_config(
        tmp,
        bundle,
        [{"type": "stdin"}],
        rules=[{"rule": "all", "task": "threat", "threshold": 0.0, "actions": extra.pop("acts", ["alert"])}],
        **extra,
    )
    logged: list[str] = []
    agent = Agent(load_agent_config(cfg), log=logged.append)
    agent.logged = logged
    return agent


def test_a_full_sqlite_store_is_a_sink_failure_not_rejected_events(network_bundle, tmp_path):
    agent = _agent(
        tmp_path,
        network_bundle[0],
        sinks={
            "jsonl": {"path": str(tmp_path / "alerts.jsonl")},
            "store": {"type": "sqlite", "path": str(tmp_path / "a.db")},
        },
        metrics={"enabled": True, "host": "127.0.0.1", "port": 0, "stats_interval_s": 0},
    )
    healthz = agent.server.start().url + "/healthz"
    assert urllib.request.urlopen(healthz, timeout=5).status == 200
    db = agent.sinks["store"]._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    ev = events(200)
    for i in range(0, 200, 50):
        agent.process_safely(batch(ev[i : i + 50]))
    try:
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(healthz, timeout=5)
        assert unhealthy.value.code == 503  # from the first failure on, while the agent drains
    finally:
        agent.server.stop()
    s = agent.summary()
    agent.dead_letter.close()
    for sink in agent.sinks.values():
        sink.close()
    assert (s["received"], s["scored"], s["rejected"]) == (200, 200, 0)  # before: 200 processing_error rejects
    assert read_jsonl(tmp_path / "dead.jsonl") == []
    alerts = read_jsonl(tmp_path / "alerts.jsonl")
    assert len(alerts) == s["alerts"] > 0
    assert agent.metrics.sink_lost.value(sink="store") == s["alerts"]
    assert s["fatal"].startswith("sink store cannot be written") and "full" in s["fatal"]
    assert not agent.healthy()  # /healthz says so from the first failure


def test_actions_run_only_for_alerts_a_record_holds(network_bundle, tmp_path):
    runs = tmp_path / "runs.txt"
    agent = _agent(
        tmp_path,
        network_bundle[0],
        acts=["alert", "mark"],
        actions={"mark": {"type": "exec", "argv": ["/bin/sh", "-c", f"echo x >> {runs}"], "dry_run": False}},
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    sink, batches = agent.sinks["jsonl"], []
    real_write = sink._write

    def disk_full_after_two_batches(alerts):
        batches.append(len(alerts))
        if len(batches) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(alerts)

    sink._write = disk_full_after_two_batches
    ev = events(200)
    for i in range(0, 200, 40):
        agent.process_safely(batch(ev[i : i + 40]))
    agent._shutdown()
    kept = [r for r in read_jsonl(tmp_path / "alerts.jsonl") if r["event_type"] == "alert"]
    ran = len(runs.read_text().splitlines()) if runs.exists() else 0
    assert ran == len(kept)  # before: every alert's command ran (200), 80 alerts kept
    assert agent.counts["alerts"] == 200 > len(kept) > 0  # threshold 0: every event alerts; the disk filled
    assert agent.counts["rejected"] == 0


def _run(cfg: Path, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a disk that is always full)")
def test_a_full_dead_letter_disk_stops_the_agent_or_spools(network_bundle, tmp_path):
    stdin = b"\n".join([*events(300), *MALFORMED * 20]) + b"\n"
    cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}], dead_letter={"path": "/dev/full"})
    proc = _run(cfg, stdin)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2, err[-5:]  # before: 0, and no record of the rejected events
    assert err[-1].startswith("error: dead_letter cannot be written") and "No space left on device" in err[-1]
    summary = json.loads(err[-2])
    assert summary["rejected"] > 0 and summary["dead_letters_lost"] == summary["rejected"]
    assert summary["received"] == summary["scored"] + summary["filtered"] + summary["rejected"]

    spool = tmp_path / "spool" / "failed.jsonl"
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        dead_letter={"path": "/dev/full"},
        on_sink_failure={"policy": "spool", "spool_path": str(spool)},
    )
    proc = _run(cfg, stdin)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    summary = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    spooled = _whole_lines(spool)
    assert summary["rejected"] == len(MALFORMED) * 20 == len(spooled) == summary["sink_spooled"]
    assert {r["sink"] for r in spooled} == {"dead_letter"} and summary["dead_letters_lost"] == 0


def test_a_hung_command_and_a_deaf_collector_never_stall_scoring(network_bundle, tmp_path):
    rx = socket.socket()
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(("127.0.0.1", 0))
    rx.listen(1)  # accepts (the kernel does) and never reads
    agent = _agent(
        tmp_path,
        network_bundle[0],
        acts=["alert", "hang"],
        actions={"hang": {"type": "exec", "argv": ["/bin/sleep", "30"], "timeout_s": 5, "dry_run": False}},
        rate_limit={"max_actions": 100000, "per_seconds": 1},
        sinks={
            "jsonl": {"path": str(tmp_path / "alerts.jsonl")},
            "siem": {"type": "syslog", "target": f"tcp://127.0.0.1:{rx.getsockname()[1]}", "timeout_s": 60},
        },
    )
    ev, finished = events(1000), threading.Event()

    def score_all():
        for i in range(0, len(ev), 100):
            agent.process_safely(batch(ev[i : i + 100]))
        finished.set()

    threading.Thread(target=score_all, daemon=True).start()
    try:
        # generous: one hung command alone would hold scoring for its 5 s timeout per alert
        assert finished.wait(30), f"scoring stalled at {agent.counts}"
        hang = agent.pipe.actions["hang"].stage
        assert agent.counts["scored"] == 1000 and agent.counts["alerts"] > 0
        assert hang.busy  # the first command still hangs while every event has been scored
        assert hang.counts["queued"] == agent.counts["alerts"]
    finally:
        rx.close()
        for stage in (agent.pipe.actions["hang"].stage, agent.sinks["siem"].stage):
            stage.close(0.0)  # the hung command is killed by its own timeout
    agent._record_outcomes()
    dropped = hang.counts["dropped"]  # what waited behind the hung command at stop: counted, never silent
    assert hang.counts["in_flight"] == 1  # the hung command: its own outcome, counted
    assert hang.counts["queued"] == dropped + hang.counts["done"] + hang.counts["failed"] + 1
    results = [r for r in read_jsonl(tmp_path / "alerts.jsonl") if r["event_type"] == "action_result"]
    assert sum(r["action"]["result"] == "dropped" for r in results) == dropped
    assert sum(r["action"]["result"] == "in_flight_at_stop" for r in results) == 1


def test_failure_policies_are_checked_when_the_config_loads():
    from jenga_edge.config import agent_config_from_dict
    from jenga_edge.contract.errors import ConfigError

    base = {"agent": {"bundle": "/x"}, "sources": [{"type": "stdin"}]}
    assert agent_config_from_dict(base).on_sink_failure.policy == "stop"  # the default: never silent
    bad = [
        ({"on_sink_failure": {"policy": "spool"}}, "on_sink_failure.spool_path: policy spool needs a spool file"),
        ({"on_sink_failure": {"policy": "ignore"}}, "on_sink_failure.policy: expected one of 'stop', 'spool'"),
        ({"dead_letter": {"path": "d.jsonl", "queue": {}}}, "dead_letter.queue: the dead-letter file is written"),
        ({"sinks": {"a": {"type": "jsonl", "path": "a.jsonl", "queue": {}}}}, "sinks.a.queue: a jsonl sink is the"),
        ({"actions": {"x": {"type": "exec", "argv": ["/bin/x"], "queue": {"when_full": "later"}}}}, "when_full"),
    ]
    for extra, expected in bad:
        with pytest.raises(ConfigError) as err:
            agent_config_from_dict({**base, **extra})
        assert expected in str(err.value), str(err.value)


def test_the_alert_store_shows_an_actions_final_outcome(tmp_path):
    from jenga_edge.sinks.sqlite import Config as SqliteConfig
    from jenga_edge.sinks.sqlite import SqliteSink, query_alerts

    store = SqliteSink(SqliteConfig(path=str(tmp_path / "a.db")))
    queued = {"type": "exec", "name": "q", "result": "queued"}
    store.write_batch([{"alert_id": "r-1", "rule": "r", "actions": [queued]}, {"alert_id": "r-2", "actions": []}])
    final = {"type": "exec", "name": "q", "result": "ok", "reason": "q succeeded", "exit_status": 0}
    store.write_outcomes([{"event_type": "action_result", "alert_id": "r-1", "action": final}])
    store.close()
    got = {a["alert_id"]: a["actions"] for a in query_alerts(tmp_path / "a.db")}
    assert got == {"r-1": [final], "r-2": []}
