"""Tests for jenga_edge/sinks/: real files, real sockets on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jenga_edge import native
from jenga_edge import sinks as sinks_mod
from jenga_edge.cli.alerts import parse_since
from jenga_edge.contract.errors import ConfigError, DataError
from jenga_edge.contract.typed import Invalid, convert
from jenga_edge.kinds import default_types
from jenga_edge.priorities import severity_of
from jenga_edge.sinks import QueuedSink, Sink, build_sinks, jsonl, sqlite, stdout, syslog
from jenga_edge.sinks import fsync as fsync_mod
from jenga_edge.sinks.jsonl import JsonlSink
from jenga_edge.sinks.sqlite import SqliteSink, query_alerts
from jenga_edge.sinks.stdout import StdoutSink, format_text
from jenga_edge.sinks.syslog import SyslogSink, syslog_message


def sinks_config(data: dict, source: str = "sinks") -> dict:
    """The agent config's `sinks:` mapping (name -> config; a name may stand for
    the type), checked as jenga_edge/config.py checks it."""
    return convert(dict[str, sinks_mod.KINDS.union()], default_types(data, sinks_mod.KINDS), source=source)


def make_alert(i: int = 0, **over) -> dict:
    alert = {
        "timestamp": "2026-11-25T17:00:00.123Z",
        "event_type": "alert",
        "agent": {"id": "gw-1", "hostname": "gw-host", "version": "0.1.0"},
        "rule": "ssh_block",
        "priority": "critical",
        "task": "threat",
        "score": 0.97,
        "threshold": 0.8,
        "model": {"bundle_id": "b1", "sha256": "ab" * 32},
        "source": "tcp:127.0.0.1:5514",
        "src_ip": "203.0.113.7",
        "dest_ip": "10.0.0.5",
        "dest_port": 22,
        "fields": {"n": i, "note": "héllo"},
        "actions": [{"type": "firewall", "status": "dry_run"}],
    }
    alert.update(over)
    return alert


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- JSONL


def read_lines(path) -> list[dict]:
    with open(path, "rb") as fh:
        return [json.loads(line) for line in fh.read().decode("utf-8").splitlines()]


def test_jsonl_round_trip_compact_and_empty_batch(tmp_path):
    path = tmp_path / "sub" / "alerts.jsonl"
    sink = JsonlSink(jsonl.Config(path=str(path)))
    alerts = [make_alert(i) for i in range(3)]
    sink.write_batch(alerts)
    sink.write_batch([])
    sink.close()
    raw = path.read_text(encoding="utf-8")
    assert raw.count("\n") == 3 and raw.endswith("\n")
    assert ", " not in raw.splitlines()[0] and '": ' not in raw.splitlines()[0]
    assert read_lines(path) == alerts


@pytest.fixture
def python_syncer(monkeypatch):
    """The pure-Python fsync thread, whose os.fsync calls a test can watch (the
    C one, native/_syncer.c, calls fsync(2) directly): make_syncer picks it when
    the extension is not built."""
    monkeypatch.setattr(fsync_mod, "_native", None)


def test_jsonl_fsync_once_per_batch(tmp_path, monkeypatch, python_syncer):
    sink = JsonlSink(jsonl.Config(path=str(tmp_path / "a.jsonl")))
    calls = []
    real = os.fsync
    monkeypatch.setattr(fsync_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    sink.write_batch([make_alert(i) for i in range(50)])
    sink.sync_wait()
    assert len(calls) == 1
    sink.write_batch([make_alert(1)])
    sink.sync_wait()
    assert len(calls) == 2
    sink.write_batch([])
    sink.sync_wait()
    assert len(calls) == 2


def test_jsonl_fsync_runs_off_the_scoring_thread_and_close_waits_for_it(tmp_path, monkeypatch, python_syncer):
    import threading

    started, release, threads = threading.Event(), threading.Event(), []
    real = os.fsync

    def slow_fsync(fd):
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(5)
        real(fd)

    sink = JsonlSink(jsonl.Config(path=str(tmp_path / "a.jsonl")))
    monkeypatch.setattr(fsync_mod.os, "fsync", slow_fsync)
    sink.write_batch([make_alert(1)])  # returns while the disk is still busy
    assert started.wait(5)
    sink.write_batch([make_alert(2)])  # queued behind the running fsync
    assert threads and threads[0].startswith("fsync:") and threads[0] != threading.current_thread().name
    closer = threading.Thread(target=sink.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() must wait for the pending fsync"
    release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert read_lines(tmp_path / "a.jsonl") == [make_alert(1), make_alert(2)]


def test_jsonl_fsync_failure_is_raised_by_the_next_write_before_it_writes(tmp_path, monkeypatch, python_syncer):
    sink = JsonlSink(jsonl.Config(path=str(tmp_path / "a.jsonl")))

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsync_mod.os, "fsync", broken)
    sink.write_batch([make_alert(1)])
    with pytest.raises(DataError, match="fsync failed"):
        sink.sync_wait()  # reported once ...
    sink.write_batch([make_alert(2)])  # ... so the next batch is written (and its fsync fails too)
    deadline = time.monotonic() + 5
    while sink._syncer._done < sink._syncer._requested and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(DataError, match="fsync failed"):
        sink.write_batch([make_alert(3)])  # raised before batch 3 is written: 3 is not delivered
    monkeypatch.undo()
    sink.close()
    assert read_lines(tmp_path / "a.jsonl") == [make_alert(1), make_alert(2)]


def test_jsonl_fsync_can_be_turned_off(tmp_path, monkeypatch, python_syncer):
    calls = []
    monkeypatch.setattr(fsync_mod.os, "fsync", lambda fd: calls.append(fd))
    sink = JsonlSink(jsonl.Config(path=str(tmp_path / "a.jsonl"), fsync=False))
    sink.write_batch([make_alert()])
    sink.close()
    assert calls == []


needs_native = pytest.mark.skipif(native.syncer is None, reason="jenga_edge.native._syncer is not built")


@needs_native
def test_native_syncer_is_used_and_batches_are_durable_after_sync_wait(tmp_path):
    sink = JsonlSink(jsonl.Config(path=str(tmp_path / "a.jsonl")))
    sink.write_batch([make_alert(i) for i in range(3)])
    assert isinstance(sink._syncer, fsync_mod._NativeSyncer)
    sink.sync_wait()
    sink.write_batch([make_alert(9)])
    sink.close()
    assert read_lines(tmp_path / "a.jsonl") == [make_alert(i) for i in range(3)] + [make_alert(9)]


@needs_native
def test_native_syncer_reports_a_failed_fsync_then_keeps_serving(tmp_path):
    syncer = fsync_mod._NativeSyncer()
    r, w = os.pipe()  # fsync on a pipe fails with EINVAL
    try:
        syncer.request(w)
        with pytest.raises(DataError, match="fsync failed"):
            syncer.wait()
        syncer.check()  # reported once
        with open(tmp_path / "f", "wb") as fh:
            syncer.request(fh.fileno())  # the error was reported once; a good fd syncs
            syncer.wait()
    finally:
        os.close(r)
        os.close(w)
        syncer.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        syncer._s.request(0)


@needs_native
def test_native_syncer_refuses_work_after_fork(tmp_path):
    syncer = fsync_mod._NativeSyncer()
    with open(tmp_path / "f", "wb") as fh:
        pid = os.fork()
        if pid == 0:  # the child has no syncer thread: it must say so, not hang
            try:
                syncer.request(fh.fileno())
                code = 1
            except RuntimeError as exc:
                code = 0 if "fork" in str(exc) else 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        syncer.request(fh.fileno())  # the parent's syncer still works
        syncer.wait()
    syncer.stop()
    syncer.stop()  # stopping twice joins once
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_jsonl_appends_on_reopen(tmp_path):
    path = tmp_path / "alerts.jsonl"
    a = JsonlSink(jsonl.Config(path=str(path)))
    a.write_batch([make_alert(0), make_alert(1)])
    a.close()
    b = JsonlSink(jsonl.Config(path=str(path)))
    b.write_batch([make_alert(2)])
    b.close()
    assert [r["fields"]["n"] for r in read_lines(path)] == [0, 1, 2]


def fixed_record(i: int) -> dict:
    return {"n": 1000 + i, "pad": "p" * 40}  # every line the same size


LINE = len(json.dumps(fixed_record(0), separators=(",", ":")).encode()) + 1


def read_rotated(path, backups: int) -> list[dict]:
    """All records, oldest file first."""
    order = [path.with_name(f"{path.name}.{i}") for i in range(backups, 0, -1)] + [path]
    return [r for p in order if p.exists() for r in read_lines(p)]


def test_jsonl_rotation_never_loses_a_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    cfg = jsonl.Config(path=str(path), max_bytes=LINE * 20, backups=20)
    sink = JsonlSink(cfg)
    n = 0
    for _ in range(30):  # 30 batches of 7: 210 lines, 20 a file
        sink.write_batch([fixed_record(n + k) for k in range(7)])
        n += 7
    sink.close()
    assert sink.rotations == 10
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"alerts.jsonl"} | {f"alerts.jsonl.{i}" for i in range(1, 11)}
    assert all(p.stat().st_size <= cfg.max_bytes for p in tmp_path.iterdir())
    assert [r["n"] - 1000 for r in read_rotated(path, 20)] == list(range(210))


def test_jsonl_rotation_keeps_only_backups_files(tmp_path):
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(jsonl.Config(path=str(path), max_bytes=LINE * 10, backups=3))
    for b in range(10):  # 100 lines: 10 full files, keep .3 .2 .1 + current
        sink.write_batch([fixed_record(b * 10 + k) for k in range(10)])
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "alerts.jsonl",
        "alerts.jsonl.1",
        "alerts.jsonl.2",
        "alerts.jsonl.3",
    ]
    assert [r["n"] - 1000 for r in read_rotated(path, 3)] == list(range(60, 100))


def test_jsonl_rotation_drops_only_the_oldest(tmp_path):
    path = tmp_path / "dead.jsonl"
    rec = {
        "timestamp": "2026-11-25T17:00:00Z",
        "source": "udp:0.0.0.0:514",
        "reason": "bad_json",
        "field": None,
        "line": "x" * 50,
    }
    size = len(json.dumps(rec, separators=(",", ":")).encode()) + 1
    sink = JsonlSink(jsonl.Config(path=str(path), max_bytes=size * 2, backups=2))
    for i in range(20):
        sink.write_batch([dict(rec, line=str(i))])
    sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dead.jsonl", "dead.jsonl.1", "dead.jsonl.2"]
    order = ("dead.jsonl.2", "dead.jsonl.1", "dead.jsonl")
    kept = [r["line"] for p in order for r in read_lines(tmp_path / p)]
    assert kept == [str(i) for i in range(14, 20)]
    assert all(set(r) == set(rec) for r in read_lines(path))


def test_jsonl_rotation_on_restart_counts_existing_size(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text("x" * 90 + "\n")  # 91 bytes; each line below is 8
    sink = JsonlSink(jsonl.Config(path=str(path), max_bytes=100))
    sink.write_batch([{"a": 1}, {"b": 2}, {"c": 3}])
    sink.close()
    assert (tmp_path / "alerts.jsonl.1").read_text() == "x" * 90 + "\n" + '{"a":1}\n'
    assert read_lines(path) == [{"b": 2}, {"c": 3}]


def test_jsonl_line_longer_than_max_bytes_is_kept(tmp_path):
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(jsonl.Config(path=str(path), max_bytes=50, backups=5))
    big = {"line": "y" * 200}
    sink.write_batch([{"a": 1}, big, {"b": 2}])
    sink.close()
    order = [tmp_path / "alerts.jsonl.2", tmp_path / "alerts.jsonl.1", path]
    assert [r for p in order for r in read_lines(p)] == [{"a": 1}, big, {"b": 2}]


def test_jsonl_directory_path_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        JsonlSink(jsonl.Config(path=str(tmp_path)))


# --------------------------------------------------------------------------- stdout


def test_stdout_json_lines():
    buf = io.StringIO()
    sink = StdoutSink(stdout.Config(format="json"), stream=buf)
    sink.write_batch([make_alert(0), make_alert(1)])
    sink.write_batch([])
    lines = buf.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == [make_alert(0), make_alert(1)]
    assert ", " not in lines[0]


def test_stdout_text_format():
    buf = io.StringIO()
    StdoutSink(stdout.Config(format="text"), stream=buf).write_batch([make_alert()])
    assert buf.getvalue() == (
        "2026-11-25T17:00:00Z CRITICAL ssh_block threat score=0.970>=0.800 "
        "src=203.0.113.7 dst=10.0.0.5:22 action=firewall:dry_run\n"
    )


def test_text_format_tolerates_missing_fields():
    line = format_text(
        {
            "priority": "warning",
            "score": 0.5,
            "dest_ip": "2001:db8::1",
            "dest_port": 443,
            "actions": ["log", {"name": "block", "result": "ok"}],
        }
    )
    assert line == "- WARNING - - score=0.500 dst=[2001:db8::1]:443 action=log,block:ok"
    # The outcome dicts jenga_edge.actions appends: type + result.
    outcomes = [
        {
            "type": "firewall",
            "target": "inet jenga blocklist",
            "dry_run": True,
            "argv": ["nft"],
            "result": "dry_run",
            "reason": "",
        },
        {
            "type": "webhook",
            "target": "https://x",
            "dry_run": False,
            "argv": None,
            "result": "spooled",
            "reason": "timeout",
        },
    ]
    assert format_text(make_alert(actions=outcomes)).endswith(" action=firewall:dry_run,webhook:spooled")


def test_stdout_default_stream_is_sys_stdout(capsys):
    StdoutSink().write_batch([{"rule": "r"}])
    assert json.loads(capsys.readouterr().out) == {"rule": "r"}


def test_stdout_broken_stream_counts_errors():
    buf = io.StringIO()
    buf.close()
    sink = StdoutSink(stream=buf)
    sink.write_batch([make_alert()])
    assert sink.errors == 1


# --------------------------------------------------------------------------- syslog

HEADER_RE = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>\[jenga@32473(?: [a-z_]+=\"(?:[^\"\\\]]|\\[\"\\\]])*\")*\]) (?P<msg>\{.*)$",
    re.S,
)


def parse_syslog(data: bytes) -> dict:
    m = HEADER_RE.match(data.decode("utf-8"))
    assert m, data
    out = m.groupdict()
    out["params"] = {
        k: re.sub(r"\\([\"\\\]])", r"\1", v) for k, v in re.findall(r'([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"', out["sd"])
    }
    return out


def test_pri_and_severity_mapping():
    assert severity_of("critical") == 2 and severity_of("CRIT") == 2 and severity_of("debug") == 7
    assert severity_of("bogus") is None and severity_of("bogus", 4) == 4
    assert syslog_message(make_alert(), 16).startswith("<130>1 ")  # local0 + critical
    assert syslog_message(make_alert(priority="emergency"), 4).startswith("<32>1 ")  # auth
    assert syslog_message(make_alert(priority="debug"), 23).startswith("<191>1 ")  # local7
    assert syslog_message(make_alert(priority="??"), 1, 5).startswith("<13>1 ")  # user + default


def test_syslog_over_udp(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    port = rx.getsockname()[1]
    try:
        sink = SyslogSink(syslog.Config(target=f"udp://127.0.0.1:{port}", facility="local0"))
        alerts = [make_alert(0), make_alert(1, priority="warning", rule="port scan!é" + "x" * 40)]
        sink.write_batch(alerts)
        sink.write_batch([])
        got = [parse_syslog(rx.recv(65535)) for _ in alerts]
        sink.close()
    finally:
        rx.close()
    assert sink.errors == 0 and sink.sent == 2
    first, second = got
    assert first["pri"] == "130" and second["pri"] == str(16 * 8 + 4)
    assert first["ts"] == "2026-11-25T17:00:00.123Z"
    assert first["host"] == "gw-host" and first["app"] == "jenga-edge"
    assert first["procid"] == str(os.getpid())
    assert first["msgid"] == "ssh_block"
    assert second["msgid"] == ("portscan!" + "x" * 40)[:32]  # no space, ASCII, <= 32
    assert first["params"] == {
        "task": "threat",
        "score": "0.97",
        "threshold": "0.8",
        "src_ip": "203.0.113.7",
        "dest_ip": "10.0.0.5",
        "dest_port": "22",
    }
    assert json.loads(first["msg"]) == alerts[0]
    assert json.loads(second["msg"]) == alerts[1]


def test_syslog_over_udp_counts_what_a_collector_that_is_down_refuses():
    """UDP confirms nothing, but a connected socket sees the ICMP "port unreachable" a
    closed port answers with: from the second alert on, refused sends are counted lost."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens
    sink = SyslogSink(syslog.Config(target=f"udp://127.0.0.1:{port}", facility="local0"))
    lost = 0
    for _ in range(10):
        lost += sink.write_batch([make_alert(0)])
        time.sleep(0.01)  # let the ICMP error reach the socket
    sink.close()
    assert lost >= 4 and sink.dropped == lost and "ConnectionRefusedError" in (sink.last_error or "")


def test_syslog_sd_escaping_and_hostname_override():
    alert = make_alert(task='a"b\\c]d', src_ip=None)
    msg = syslog_message(alert, 16, hostname="my host")
    parsed = parse_syslog(msg.encode())
    assert 'task="a\\"b\\\\c\\]d"' in parsed["sd"]
    assert parsed["params"]["task"] == 'a"b\\c]d'
    assert "src_ip" not in parsed["params"]
    assert parsed["host"] == "myhost"
    assert json.loads(parsed["msg"])["task"] == 'a"b\\c]d'


def test_syslog_timestamp_fallbacks():
    long_frac = make_alert(timestamp="2026-11-25T17:00:00.123456789Z")
    ts = parse_syslog(syslog_message(long_frac, 1).encode())["ts"]
    assert ts == "2026-11-25T17:00:00.123456Z"
    ts = parse_syslog(syslog_message(make_alert(timestamp="2026-11-25 17:00:00"), 1).encode())["ts"]
    assert ts == "2026-11-25T17:00:00.000Z"
    ts = parse_syslog(syslog_message(make_alert(timestamp="yesterday"), 1).encode())["ts"]
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", ts)
    host = parse_syslog(syslog_message({"rule": "r"}, 1).encode())["host"]
    assert host != "-" and " " not in host


def read_octet_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        n = int(length)
        frames.append(rest[:n])
        assert len(rest) >= n
        data = rest[n:]
    return frames


def recv_all(conn: socket.socket) -> bytes:
    conn.settimeout(2)
    chunks = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def tcp_listener() -> tuple[socket.socket, int]:
    """A listening TCP socket on a free loopback port (2 s accept timeout)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(2)
    return srv, srv.getsockname()[1]


def syslog_tcp_frames(batches: list[list[dict]], **cfg) -> tuple[SyslogSink, list[bytes]]:
    """A syslog sink to a TCP collector on loopback: its octet-counted frames, once closed."""
    srv, port = tcp_listener()
    try:
        sink = SyslogSink(syslog.Config(target=f"tcp://127.0.0.1:{port}", **cfg))
        for b in batches:
            sink.write_batch(b)
        conn, _ = srv.accept()
        sink.close()
        frames = read_octet_frames(recv_all(conn))
        conn.close()
    finally:
        srv.close()
    return sink, frames


def test_syslog_over_tcp_octet_counting():
    sink, frames = syslog_tcp_frames(
        [[make_alert(0), make_alert(1, priority="informational")], [make_alert(2)]], facility="security"
    )
    assert sink.errors == 0
    parsed = [parse_syslog(f) for f in frames]
    assert [p["pri"] for p in parsed] == [str(4 * 8 + 2), str(4 * 8 + 6), str(4 * 8 + 2)]
    assert [json.loads(p["msg"])["fields"]["n"] for p in parsed] == [0, 1, 2]


def test_syslog_tcp_reconnects_after_collector_closes():
    srv, port = tcp_listener()
    try:
        sink = SyslogSink(syslog.Config(target=f"tcp://127.0.0.1:{port}"))
        sink.write_batch([make_alert(0)])
        conn1, _ = srv.accept()
        conn1.settimeout(2)
        first = conn1.recv(65536)
        conn1.close()  # the collector restarts
        time.sleep(0.05)
        sink.write_batch([make_alert(1)])
        conn2, _ = srv.accept()
        sink.close()
        second = recv_all(conn2)
        conn2.close()
    finally:
        srv.close()
    assert [json.loads(parse_syslog(f)["msg"])["fields"]["n"] for f in read_octet_frames(first)] == [0]
    assert [json.loads(parse_syslog(f)["msg"])["fields"]["n"] for f in read_octet_frames(second)] == [1]
    assert sink.errors == 0 and sink.sent == 2


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_syslog_tcp_refused_counts_errors_then_recovers():
    port = free_port()
    sink = SyslogSink(syslog.Config(target=f"tcp://127.0.0.1:{port}", timeout_s=1.0))
    sink.write_batch([make_alert(0), make_alert(1)])
    sink.write_batch([make_alert(2)])
    assert sink.errors == 2 and sink.dropped == 3 and sink.sent == 0
    assert "Refused" in sink.last_error
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind(("127.0.0.1", port))
    except OSError:
        srv.close()
        pytest.skip("port taken meanwhile")
    srv.listen(1)
    srv.settimeout(2)
    try:
        sink.write_batch([make_alert(3)])
        conn, _ = srv.accept()
        sink.close()
        frames = read_octet_frames(recv_all(conn))
        conn.close()
    finally:
        srv.close()
    assert sink.errors == 2 and sink.sent == 1
    assert json.loads(parse_syslog(frames[0])["msg"])["fields"]["n"] == 3


def unix_receiver(tmp_path: Path) -> tuple[socket.socket, Path]:
    """A bound unix datagram socket (a local syslog's /dev/log) and its path."""
    path = tmp_path / "log.sock"
    if len(str(path)) > 100:
        pytest.skip("tmp path too long for a unix socket")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(path))
    rx.settimeout(2)
    return rx, path


def test_syslog_unix_datagram(tmp_path):
    rx, path = unix_receiver(tmp_path)
    try:
        sink = SyslogSink(syslog.Config(target=f"unix://{path}", facility="authpriv"))
        sink.write_batch([make_alert(0, priority="alert")])
        got = parse_syslog(rx.recv(65535))
        sink.close()
    finally:
        rx.close()
    assert got["pri"] == str(10 * 8 + 1)
    assert json.loads(got["msg"])["priority"] == "alert"


def test_syslog_unix_missing_socket_counts_errors(tmp_path):
    sink = SyslogSink(syslog.Config(target=f"unix://{tmp_path}/nope.sock"))
    sink.write_batch([make_alert(0), make_alert(1)])
    assert sink.errors == 2 and sink.dropped == 2
    sink.close()


def udp_receiver() -> tuple[socket.socket, int]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    return rx, rx.getsockname()[1]


def test_syslog_sd_values_carry_no_raw_control_characters():
    """RFC 5424 6.3.3: '"', '\\' and ']' escaped with a backslash; LF, CR, NUL, ESC and
    the like written as visible escapes, so no framing or terminal sees them raw."""
    rx, port = udp_receiver()
    hostile = 'a\nb\rc\x00d]e"f\\g\x1b[2J\u2028'
    try:
        sink = SyslogSink(syslog.Config(target=f"udp://127.0.0.1:{port}"))
        sink.write_batch([make_alert(0, task=hostile, src_ip="6.6.6.6\n<13>1 forged", rule="r\nx")])
        data = rx.recv(65535)
        sink.close()
    finally:
        rx.close()
    assert all(b >= 0x20 and b != 0x7F for b in data), data
    parsed = parse_syslog(data)
    # a collector decodes the visible escapes; a backslash of the value stays one backslash
    assert parsed["params"]["task"] == 'a\\nb\\rc\\x00d]e"f\\g\\x1b[2J\\u2028'
    assert 'task="a\\\\nb\\\\rc\\\\x00d\\]e\\"f\\\\g\\\\x1b[2J\\\\u2028"' in parsed["sd"]  # on the wire
    assert parsed["params"]["src_ip"] == "6.6.6.6\\n<13>1 forged"
    assert parsed["msgid"] == "rx"
    assert json.loads(parsed["msg"])["task"] == hostile


def test_syslog_names_are_rfc5424_sd_names():
    for name in [syslog.SD_ID, *syslog._SD_PARAMS]:  # the fixed names the sink writes
        assert 1 <= len(name) <= 32 and name.isascii() and name.isprintable()
        assert not set(name) & set('= ]"')
    assert len(syslog.APP_NAME) <= 48


def test_syslog_oversize_udp_alert_arrives_truncated_and_counted():
    """An alert over the datagram limit was lost (EMSGSIZE); now it is cut to
    max_message_bytes (2048 over udp by default), header and structured data kept."""
    rx, port = udp_receiver()
    big = make_alert(1, fields={"n": 1, "blob": "x" * 70_000})
    try:
        sink = SyslogSink(syslog.Config(target=f"udp://127.0.0.1:{port}"))
        lost = sink.write_batch([make_alert(0), big, make_alert(2)])
        got = [rx.recv(65535) for _ in range(3)]
        sink.close()
    finally:
        rx.close()
    assert lost == 0 and sink.dropped == 0 and sink.sent == 3 and sink.truncated == 1
    assert sink.last_truncated is not None and "cut to 2048 (max_message_bytes 2048)" in sink.last_truncated
    first, cut, third = (parse_syslog(d) for d in got)
    assert json.loads(first["msg"]) == make_alert(0) and json.loads(third["msg"]) == make_alert(2)
    assert len(got[1]) == 2048
    assert cut["params"] == first["params"] and cut["msgid"] == "ssh_block"
    full = json.dumps(big, separators=(",", ":"))
    kept, marker = cut["msg"].split("...[truncated ")
    assert full.startswith(kept) and marker == f"{len(full) - len(kept)} bytes]"


def test_syslog_oversize_over_tcp_is_cut_to_its_own_default():
    sink, frames = syslog_tcp_frames([[make_alert(0, fields={"blob": "y" * 20_000}), make_alert(1)]])
    assert len(frames[0]) == 8192 and sink.truncated == 1 and sink.sent == 2
    assert parse_syslog(frames[0])["msg"].endswith(" bytes]")
    assert json.loads(parse_syslog(frames[1])["msg"])["fields"]["n"] == 1


def test_fit_message_cuts_at_a_character_and_drops_sd_params_last():
    header = "<130>1 2026-11-25T17:00:00Z h jenga-edge 1 r"
    data, cut = syslog.fit_message(header, ['task="t"'], "é" * 1000, 600)
    assert cut and len(data) <= 600
    msg = data.decode("utf-8").split("] ", 1)[1]  # raises if a character was split
    kept, rest = msg.split("...[truncated ")
    assert set(kept) == {"é"} and rest == f"{2000 - 2 * len(kept)} bytes]"
    params = ['task="t"', 'src_ip="' + "z" * 1000 + '"', 'dest_ip="1"']
    data, cut = syslog.fit_message(header, params, "{}", 600)
    assert (
        cut
        and data.decode()
        == f'{header} [jenga@32473 task="t"] ...[truncated 2 bytes; SD params dropped: src_ip,dest_ip]'
    )
    assert syslog.fit_message(header, params[:1], "{}", 600) == (
        f'{header} [jenga@32473 task="t"] {{}}'.encode(),
        False,
    )


def test_syslog_over_the_limit_of_its_socket_is_counted_lost(tmp_path):
    rx, path = unix_receiver(tmp_path)
    try:
        sink = SyslogSink(syslog.Config(target=f"unix://{path}", max_message_bytes=1 << 20))
        lost = sink.write_batch([make_alert(0, fields={"blob": "x" * 900_000})])
        sink.close()
    finally:
        rx.close()
    assert lost == 1 and sink.dropped == 1 and "Message too long" in (sink.last_error or "")


def test_syslog_max_message_bytes_config():
    assert syslog.Config(target="udp://h:514").max_bytes() == 2048
    assert syslog.Config(target="tcp://h:514").max_bytes() == 8192
    assert syslog.Config(target="unix:///dev/log").max_bytes() == 8192
    assert syslog.Config(target="udp://h:514", max_message_bytes=9000).max_bytes() == 9000
    with pytest.raises(ConfigError) as err:
        sinks_config({"syslog": {"target": "udp://h:514", "max_message_bytes": 70_000}})
    assert str(err.value) == (
        "sinks: syslog.max_message_bytes: 70000 is more than a UDP datagram holds, expected at most 65507"
    )
    with pytest.raises(ConfigError, match=r"^sinks: syslog\.max_message_bytes: .*>= 480"):
        sinks_config({"syslog": {"target": "tcp://h:514", "max_message_bytes": 100}})


EXPECTED_TARGET = "expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"


@pytest.mark.parametrize(
    "target, problem",
    [
        ("127.0.0.1:514", EXPECTED_TARGET),
        ("http://x:1", f"unknown scheme 'http'; {EXPECTED_TARGET}"),
        ("udp://:514", f"no host; {EXPECTED_TARGET}"),
        ("udp://h:99999", "port must be 1-65535"),
        ("unix://", f"no socket path; {EXPECTED_TARGET}"),
        ("tcp://h:1/path", f"unexpected path '/path'; {EXPECTED_TARGET}"),
    ],
)
def test_syslog_bad_targets_are_config_errors(target, problem):
    message = f"{target!r}: {problem}"
    with pytest.raises(Invalid) as info:
        syslog.Config(target=target)
    assert info.value.key == "target" and info.value.message == message
    with pytest.raises(ConfigError) as err:
        convert(syslog.Config, {"target": target}, source="cfg")
    assert str(err.value) == f"cfg: target: {message}"


def test_syslog_config_via_typed_loader():
    cfg = sinks_config({"syslog": {"target": "udp://127.0.0.1:5514", "facility": "local3"}})
    assert list(cfg) == ["syslog"] and isinstance(cfg["syslog"], syslog.Config)
    assert cfg["syslog"].kind == "syslog" and cfg["syslog"].facility == "local3"
    with pytest.raises(ConfigError, match=r"^sinks: syslog\.facility: .*got str 'locl0' \(did you mean 'local0'\?\)$"):
        sinks_config({"syslog": {"facility": "locl0"}})
    with pytest.raises(ConfigError) as err:
        sinks_config({"syslog": {"target": "ftp://x"}})
    assert str(err.value) == f"sinks: syslog.target: 'ftp://x': unknown scheme 'ftp'; {EXPECTED_TARGET}"


# --------------------------------------------------------------------------- SQLite


def test_sqlite_write_and_query_filters(tmp_path):
    db = tmp_path / "alerts.db"
    now = time.time()
    sink = SqliteSink(sqlite.Config(path=str(db)))
    sink.write_batch(
        [
            make_alert(0, timestamp=iso(now - 3 * 3600), priority="critical", task="threat"),
            make_alert(1, timestamp=iso(now - 1800), priority="warning", task="threat"),
            make_alert(2, timestamp=iso(now - 60), priority="error", task="fraud"),
        ]
    )
    sink.write_batch([])
    sink.write_batch([make_alert(3, timestamp=iso(now - 5), priority="debug", task="fraud")])
    ns = lambda rows: [r["fields"]["n"] for r in rows]  # noqa: E731
    assert ns(query_alerts(db)) == [3, 2, 1, 0]  # newest first
    assert ns(query_alerts(db, since_seconds=parse_since("1h"))) == [3, 2, 1]
    assert ns(query_alerts(db, since_seconds=parse_since("2m"))) == [3, 2]
    assert ns(query_alerts(db, task="threat")) == [1, 0]
    assert ns(query_alerts(db, priority="error")) == [2, 0]  # error or worse
    assert ns(query_alerts(db, priority="crit")) == [0]
    assert ns(query_alerts(db, until=now - 1000)) == [1, 0]
    assert ns(query_alerts(db, until=iso(now - 1000), since_seconds=7200)) == [1]
    assert ns(query_alerts(db, limit=2)) == [3, 2]
    assert query_alerts(db)[0] == make_alert(3, timestamp=iso(now - 5), priority="debug", task="fraud")
    sink.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = con.execute(
        "SELECT ts, timestamp, rule, priority, task, score, src_ip, dest_ip, dest_port FROM alerts ORDER BY id LIMIT 1"
    ).fetchone()
    assert row[0] == pytest.approx(now - 3 * 3600, abs=0.01)
    assert row[2:] == ("ssh_block", "critical", "threat", 0.97, "203.0.113.7", "10.0.0.5", 22)
    assert "alerts_ts" in [r[1] for r in con.execute("PRAGMA index_list(alerts)")]
    con.close()


def test_sqlite_retention_keeps_newest_rows(tmp_path):
    db = tmp_path / "alerts.db"
    base = time.time() - 1000
    sink = SqliteSink(sqlite.Config(path=str(db), max_rows=3))
    sink.write_batch([make_alert(i, timestamp=iso(base + i)) for i in range(2)])
    sink.write_batch([make_alert(i, timestamp=iso(base + i)) for i in range(2, 5)])
    sink.close()
    assert [r["fields"]["n"] for r in query_alerts(db)] == [4, 3, 2]
    again = SqliteSink(sqlite.Config(path=str(db), max_rows=3))  # restart: count from the file
    again.write_batch([make_alert(5, timestamp=iso(base + 5))])
    again.close()
    assert [r["fields"]["n"] for r in query_alerts(db)] == [5, 4, 3]


def test_sqlite_tolerates_odd_alerts(tmp_path):
    db = tmp_path / "a.db"
    sink = SqliteSink(sqlite.Config(path=str(db), max_rows=None))
    before = time.time()
    sink.write_batch([{"rule": "r", "score": "n/a", "dest_port": "ssh"}])
    sink.close()
    (row,) = query_alerts(db, since_seconds=60)
    assert row == {"rule": "r", "score": "n/a", "dest_port": "ssh"}
    con = sqlite3.connect(db)
    ts, score, port = con.execute("SELECT ts, score, dest_port FROM alerts").fetchone()
    con.close()
    assert ts >= before - 1 and score is None and port is None


def test_query_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        query_alerts(tmp_path / "missing.db")
    db = tmp_path / "a.db"
    SqliteSink(sqlite.Config(path=str(db))).close()
    with pytest.raises(ValueError, match="priority 'loud'"):
        query_alerts(db, priority="loud")
    with pytest.raises(ValueError, match="until"):
        query_alerts(db, until="soon")
    assert query_alerts(db) == []


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1h", 3600),
        ("30m", 1800),
        ("2d", 172800),
        ("45s", 45),
        ("90", 90),
        (" 1H ", 3600),
        ("1.5h", 5400),
        ("1w", 604800),
        (120, 120),
    ],
)
def test_parse_since(text, seconds):
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-5m", "0", "1h30m", "abc", None])
def test_parse_since_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_since(text)


# --------------------------------------------------------------------------- build_sinks


def test_build_sinks_from_typed_config(tmp_path):
    cfg = sinks_config(
        {
            "jsonl": {"path": str(tmp_path / "alerts.jsonl"), "max_bytes": 1_000_000, "backups": 2},
            "stdout": {"format": "text"},
            "syslog": {"target": "udp://127.0.0.1:9", "facility": "local0"},
            "sqlite": {"path": str(tmp_path / "alerts.db"), "max_rows": 10},
        }
    )
    assert [c.kind for c in cfg.values()] == ["jsonl", "stdout", "syslog", "sqlite"]
    buf = io.StringIO()
    built = build_sinks(cfg, stdout=buf)
    assert list(built) == ["jsonl", "stdout", "syslog", "sqlite"]
    # syslog can block on the network: it runs behind an output queue (sinks/queued.py)
    assert [type(s) for s in built.values()] == [JsonlSink, StdoutSink, QueuedSink, SqliteSink]
    assert isinstance(built["syslog"].inner, SyslogSink)
    assert all(isinstance(s, Sink) for s in built.values())
    for s in built.values():
        s.write_batch([make_alert()])
        s.close()
    assert len(read_lines(tmp_path / "alerts.jsonl")) == 1
    assert buf.getvalue().startswith("2026-11-25T17:00:00Z CRITICAL")
    assert len(query_alerts(tmp_path / "alerts.db")) == 1
    assert build_sinks({}) == {}


def test_build_sinks_several_of_one_type_each_get_the_batch(tmp_path):
    rx_a, rx_b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    try:
        for rx in (rx_a, rx_b):
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(2)
        cfg = sinks_config(
            {
                "siem": {"type": "syslog", "target": f"udp://127.0.0.1:{rx_a.getsockname()[1]}", "facility": "local1"},
                "archive": {"type": "jsonl", "path": str(tmp_path / "b.jsonl")},
                "local": {"type": "syslog", "target": f"udp://127.0.0.1:{rx_b.getsockname()[1]}", "facility": "local2"},
                "jsonl": {"path": str(tmp_path / "a.jsonl")},  # the name stands for the type
            }
        )
        built = build_sinks(cfg)
        assert list(built) == ["siem", "archive", "local", "jsonl"]  # config order
        assert [type(s) for s in built.values()] == [QueuedSink, JsonlSink, QueuedSink, JsonlSink]
        alerts = [make_alert(0), make_alert(1)]
        for s in built.values():
            s.write_batch(alerts)
        got_a = [parse_syslog(rx_a.recv(65535)) for _ in alerts]
        got_b = [parse_syslog(rx_b.recv(65535)) for _ in alerts]
        for s in built.values():
            s.close()
    finally:
        rx_a.close()
        rx_b.close()
    assert [p["pri"] for p in got_a] == [str(17 * 8 + 2)] * 2  # local1
    assert [p["pri"] for p in got_b] == [str(18 * 8 + 2)] * 2  # local2
    assert [json.loads(p["msg"]) for p in got_a] == alerts
    assert [json.loads(p["msg"]) for p in got_b] == alerts
    assert built["siem"].inner.sent == 2 and built["local"].inner.sent == 2
    assert read_lines(tmp_path / "a.jsonl") == alerts
    assert read_lines(tmp_path / "b.jsonl") == alerts


def test_sink_config_bounds_and_keys():
    with pytest.raises(ConfigError, match=r"^sinks: jsonl\.backups: expected a value >= 1, got 0$"):
        sinks_config({"jsonl": {"path": "x", "backups": 0}})
    with pytest.raises(ConfigError, match=r"^sinks: sqlite\.max_row: unknown key \(did you mean 'max_rows'\?\)"):
        sinks_config({"sqlite": {"path": "x", "max_row": 5}})
    with pytest.raises(
        ConfigError,
        match=r"^sinks: stdout\.format: expected one of 'json', 'text', 'native', 'ecs', 'ocsf', got str 'xml'$",
    ):
        sinks_config({"stdout": {"format": "xml"}})


def test_build_sinks_closes_opened_ones_on_failure(tmp_path, monkeypatch):
    closed = []
    real_close = JsonlSink.close
    monkeypatch.setattr(JsonlSink, "close", lambda self: (closed.append(self.path), real_close(self)))
    cfg = {
        "alerts": jsonl.Config(path=str(tmp_path / "a.jsonl")),
        "store": sqlite.Config(path=str(tmp_path)),
    }  # a directory
    with pytest.raises(ConfigError, match="sqlite path"):
        build_sinks(cfg)
    assert closed == [tmp_path / "a.jsonl"]
