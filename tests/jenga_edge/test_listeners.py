"""Hostile or careless peers on the stream listeners (issue 11, item 8): byte-at-a-time
lines, partial lines held against the queue's byte budget, idle connections and the
connection limit. Real loopback sockets; every wait is bounded."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from jenga_edge.event_queue import Chunk, EventQueue
from jenga_edge.framing import LineSplitter
from jenga_edge.sources import stream, tcp
from jenga_edge.sources.tcp import TcpSource

from .test_sources import wait_for


def _lines(framed) -> list[bytes]:
    if isinstance(framed, Chunk):
        return [x.rstrip(b"\r") for x in framed.buf.split(b"\n") if x.rstrip(b"\r")]
    return framed[0]


@pytest.mark.parametrize("step", [1, 3])
def test_a_line_sent_a_byte_at_a_time_is_framed_in_linear_work(step):
    # A 65 KB line fed in 1- or 3-byte reads: each byte is searched and copied a
    # bounded number of times (the old framer copied the whole pending line on every read).
    line = b'{"x":"' + b"a" * 65_000 + b'"}'
    stream = line + b"\r\n" + b'{"y":1}\n'
    sp = LineSplitter(1024 * 1024)
    got: list[bytes] = []
    for i in range(0, len(stream), step):
        got += _lines(sp.feed(stream[i : i + step]))
    assert got == [line, b'{"y":1}']
    assert sp.work <= 4 * len(stream)


def test_a_partial_oversize_line_fed_in_small_reads_is_cut_once():
    sp = LineSplitter(64)
    out = []
    for _ in range(100):
        framed = sp.feed(b"z" * 7)
        assert not isinstance(framed, Chunk)
        out += list(zip(framed[0], framed[1] or [False] * len(framed[0])))
    assert out == [(b"z" * 64, True)] and sp.pending == 0
    assert _lines(sp.feed(b"zz\nok\n")) == [b"ok"]
    assert sp.work <= 4 * 702


# --- connection limit and idle timeout -------------------------------------------------


@pytest.fixture
def listener():
    """A started TCP source with a queue; stopped and joined after the test."""
    started: list[TcpSource] = []

    def make(**cfg) -> tuple[TcpSource, EventQueue]:
        q = EventQueue(10_000)
        src = TcpSource(tcp.Config(port=0, **cfg), q, 4096)
        src.start()
        started.append(src)
        return src, q

    yield make
    for src in started:
        src.stop()
        src.abandon()
        src.join(2)


def test_idle_connections_no_longer_lock_legitimate_clients_out(listener, monkeypatch):
    # The issue: 64 idle connections (the default max_connections) locked every
    # legitimate client out, with nothing logged. Now a new client takes the slot
    # of the connection idle longest; that one is closed and counted.
    monkeypatch.setattr(stream, "EVICT_IDLE_S", 0.2)
    src, q = listener(max_connections_per_peer=0)  # every peer here is 127.0.0.1
    idle = [socket.create_connection(src.address, timeout=5) for _ in range(64)]
    try:
        assert wait_for(lambda: src.open_connections == 64)
        time.sleep(0.3)
        for i in range(3):  # each stays open: each needs a slot
            idle.append(socket.create_connection(src.address, timeout=5))
            idle[-1].sendall(b'{"legit":%d}\n' % i)
            assert wait_for(lambda i=i: q.depth() == i + 1)
        assert [line for line in q.take(10, 0.0).data] == [b'{"legit":0}', b'{"legit":1}', b'{"legit":2}']
        assert src.evicted == 3 and src.rejected == 0
        assert wait_for(lambda: src.open_connections <= 64)
    finally:
        for c in idle:
            c.close()


def test_a_full_listener_refuses_when_no_connection_is_idle_enough(listener, monkeypatch):
    monkeypatch.setattr(stream, "EVICT_IDLE_S", 60.0)  # however slow this machine is
    src, _q = listener(max_connections=2)
    with socket.create_connection(src.address, timeout=5), socket.create_connection(src.address, timeout=5):
        assert wait_for(lambda: src.open_connections == 2)
        with socket.create_connection(src.address, timeout=5) as third:
            try:
                assert third.recv(1) == b""  # accepted and closed at once: the peer knows right away
            except ConnectionResetError:
                pass
        assert src.rejected == 1 and src.evicted == 0


def test_an_idle_connection_is_closed_after_idle_timeout_and_its_partial_line_kept(listener):
    src, q = listener(idle_timeout_s=0.3)
    with socket.create_connection(src.address, timeout=5) as c:
        c.sendall(b'{"a":1}\n{"cut')
        assert c.recv(1) == b""  # closed by the listener, within the bound of the socket timeout
    assert wait_for(lambda: src.idle_closed == 1 and src.open_connections == 0)
    assert list(q.take(10, 0.0).data) == [b'{"a":1}', b'{"cut']  # the partial line is not lost


class _Drip:
    """Sends a byte that completes no line on each of `conns` every `every` s (a red-team lock-out)."""

    def __init__(self, conns: list[socket.socket], every: float = 0.05):
        self.conns, self.every, self.halt = conns, every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.halt.wait(self.every):
            for c in self.conns:
                try:
                    c.send(b" ")
                except OSError:
                    pass

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(5)


def _closed_by_peer(c: socket.socket, timeout: float = 2.0) -> bool:
    c.settimeout(timeout)
    try:
        return c.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connections_dripping_bytes_without_a_line_do_not_lock_clients_out(listener, monkeypatch):
    # The red-team lock-out: 64 connections each sending b" " every 0.3 s were never idle
    # (a byte was activity), so a new client was refused for good, for ~200 B/s. Now idle
    # means no complete line: the drip-feeders are evictable, the client gets a slot.
    monkeypatch.setattr(stream, "EVICT_IDLE_S", 0.2)
    src, q = listener(max_connections_per_peer=0)
    drip_conns = [socket.create_connection(src.address, timeout=5) for _ in range(64)]
    drip = _Drip(drip_conns)
    try:
        assert wait_for(lambda: src.open_connections == 64)
        time.sleep(0.4)
        with socket.create_connection(src.address, timeout=5) as legit:
            legit.sendall(b'{"legit":1}\n')
            # Its line, and the evicted drip-feeder's blanks: its partial line, handed over as ever.
            assert wait_for(lambda: q.depth() == 2)
            assert not _closed_by_peer(legit, 0.3)  # served, not reset
        assert src.evicted == 1 and src.rejected == 0
        assert sorted(line.strip() for line in q.take(10, 0.0).data) == [b"", b'{"legit":1}']
    finally:
        drip.stop()
        for c in drip_conns:
            c.close()


def test_a_connection_dripping_bytes_without_a_line_is_closed_at_idle_timeout(listener):
    src, q = listener(idle_timeout_s=0.4)
    with socket.create_connection(src.address, timeout=5) as c:
        c.sendall(b'{"a":1}\n')
        drip = _Drip([c])
        try:
            assert _closed_by_peer(c, 5.0)  # the drip never completes a line: it was idle all along
        finally:
            drip.stop()
    assert wait_for(lambda: src.idle_closed == 1 and src.open_connections == 0)
    got = list(q.take(10, 0.0).data)
    assert got[0] == b'{"a":1}' and len(got) == 2 and not got[1].strip()  # the blanks: its partial line


def test_a_full_listener_evicts_the_drip_feeder_not_the_client_that_sends_events(listener, monkeypatch):
    monkeypatch.setattr(stream, "EVICT_IDLE_S", 0.2)
    src, q = listener(max_connections=2, max_connections_per_peer=0)
    with socket.create_connection(src.address, timeout=5) as dripper:
        drip = _Drip([dripper])
        try:
            assert wait_for(lambda: src.open_connections == 1)
            with socket.create_connection(src.address, timeout=5) as sender:
                sender.sendall(b'{"event":1}\n')  # after the drip-feeder connected: a newer line
                assert wait_for(lambda: q.depth() == 1)
                time.sleep(0.4)  # both are past the grace; the sender's last line is the newer
                with socket.create_connection(src.address, timeout=5) as newcomer:
                    newcomer.sendall(b'{"event":2}\n')
                    assert _closed_by_peer(dripper)
                    assert not _closed_by_peer(sender, 0.3)
                    sender.sendall(b'{"event":3}\n')
                    assert wait_for(lambda: q.depth() == 4)
        finally:
            drip.stop()
    got = [line for line in q.take(10, 0.0).data if line.strip()]  # and the drip-feeder's blanks
    assert sorted(got) == [b'{"event":1}', b'{"event":2}', b'{"event":3}']
    assert src.evicted == 1 and src.rejected == 0


def test_one_peer_address_holds_at_most_max_connections_per_peer(listener, monkeypatch):
    monkeypatch.setattr(stream, "EVICT_IDLE_S", 60.0)  # none idle enough to make room
    src, _q = listener(max_connections_per_peer=2)
    with socket.create_connection(src.address, timeout=5), socket.create_connection(src.address, timeout=5):
        assert wait_for(lambda: src.open_connections == 2)
        with socket.create_connection(src.address, timeout=5) as third:
            assert _closed_by_peer(third)  # refused at once, though 62 slots are free
        assert src.peer_limited == 1 and src.rejected == 0 and src.evicted == 0
        assert src.connection_counts()["peer_limit"] == 1
        # Within its share a peer's newcomer replaces its own connection idle longest.
        monkeypatch.setattr(stream, "EVICT_IDLE_S", 0.0)
        with socket.create_connection(src.address, timeout=5) as fourth:
            fourth.sendall(b'{"x":1}\n')
            assert not _closed_by_peer(fourth, 0.3)
        assert src.evicted == 1 and src.peer_limited == 1


def test_max_connections_per_peer_is_checked_and_defaults_to_16():
    assert tcp.Config(port=0).max_connections_per_peer == 16
    with pytest.raises(Exception, match="max_connections_per_peer"):
        msgspec_convert({"type": "tcp", "port": 0, "max_connections_per_peer": -1})


def msgspec_convert(raw: dict):
    import msgspec

    return msgspec.convert(raw, tcp.Config)


def test_a_tail_cut_off_at_stop_is_rejected_as_partial_line_not_bad_json(listener):
    # The red-team: at SIGTERM each connection's tail (the peer had not sent the rest)
    # was dead-lettered as bad_json. It is flagged PARTIAL, as is the tail of a peer that
    # ends its own stream mid-line; a tail that is a whole event without its newline
    # still decodes.
    from jenga_edge.decode import EventDecoder

    from .test_decode import GOOD, SCHEMA

    src, q = listener()
    with (
        socket.create_connection(src.address, timeout=5) as cut,
        socket.create_connection(src.address, timeout=5) as whole,
        socket.create_connection(src.address, timeout=5) as ended,
    ):
        cut.sendall(GOOD + b'\n{"request_count": 5, "po')
        whole.sendall(GOOD)
        ended.sendall(b'{"request_count": 7')
        ended.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: q.depth() == 2)  # cut's first line, and ended's own tail
        src.stop()
        assert src.join(5)
    batch = q.take(10, 0.0)
    decoded = EventDecoder(SCHEMA).decode(batch.data, batch.oversize_flags())
    by_line = {batch.data[r.index]: r.reason for r in decoded.rejects}
    assert by_line == {b'{"request_count": 5, "po': "partial_line", b'{"request_count": 7': "partial_line"}
    assert len(decoded.index) == 2 and len(batch) == 4  # GOOD twice: complete, and whole at stop


def test_the_agent_counts_and_logs_what_peers_do_to_its_listeners(network_bundle, tmp_path, monkeypatch):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    from .test_agent import free_port, write_config

    monkeypatch.setattr(stream, "EVICT_IDLE_S", 60.0)  # the second connection is refused, not let in
    port = free_port()
    src_cfg = {"type": "tcp", "host": "127.0.0.1", "port": port, "max_connections": 2, "idle_timeout_s": 0.3}
    src_cfg["max_connections_per_peer"] = 1  # the second is refused for its address: 127.0.0.1
    logs: list[str] = []
    agent = Agent(load_agent_config(write_config(tmp_path, network_bundle[0], [src_cfg])), log=logs.append)
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(agent.run()), daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: agent.sources[0].running)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
            first.sendall(b'{"request_count": 5, "po')  # cut off when it is closed for idling
            with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
                try:
                    assert second.recv(1) == b""  # refused: the first is not idle long enough to make room
                except ConnectionResetError:
                    pass
            assert first.recv(1) == b""  # then closed for idling
        assert wait_for(lambda: sum("idle_timeout_s" in line for line in logs) == 1)
    finally:
        agent.stop()
        runner.join(15)
    events = out["metrics"]["connections_by_event"]
    assert events == {"accepted": 1, "peer_limit": 1, "idle_closed": 1}
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [(d["reason"], d["line"]) for d in dead] == [("partial_line", '{"request_count": 5, "po')]
    assert sum("refused a connection: its address holds max_connections_per_peer" in line for line in logs) == 1


# --- partial lines count against queue_bytes ---------------------------------------------


def test_partial_line_budget_rules():
    q = EventQueue(1000, max_bytes=1000)
    assert q.reserve(600, 0) and q.reserve(300, 0)  # streams A and B, within the budget
    assert not q.reserve(300, 300)  # B would hold 600 > its share (1000 / 2): refused, its owner cuts it
    assert q.reserve(100, 600)  # A: the budget is exactly full
    assert not q.reserve(100, 700)  # A past its share
    assert q.reserve(100, 0)  # C: over the budget, but within its share (1000 / 3): the big ones pay
    assert q.partial_bytes == 1100
    q.release(700, 0)  # A's line completed
    assert q.partial_bytes == 400
    # Queued lines fill the budget: D waits for the consumer (back-pressure), not refused.
    assert q.put_lines([b"x" * 700], "t") == 1
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(q.reserve(200, 0)), daemon=True)
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()  # waiting for the consumer
    q.take(10, 0.0)
    waiter.join(2)
    assert got == [True] and q.partial_bytes == 600
    assert q.put_lines([b"x" * 700], "t") == 1
    assert q.reserve(100, 200, stop=_set())  # stopping: no wait, and no line cut for it
    alone = EventQueue(1000, max_bytes=1000)
    assert alone.reserve(5000, 0)  # a stream alone holds one line up to its own cap


def _set() -> threading.Event:
    e = threading.Event()
    e.set()
    return e


def test_connections_holding_partial_lines_cannot_hold_memory_past_the_budget():
    # The issue: with max_line_bytes at 16 MiB, 16 connections holding partial
    # lines took the agent from 69.5 MB to 1.13 GB. Scaled down: 16 connections
    # each hold a 200 KiB line open against a 64 KiB budget (3.2 MB held before).
    q = EventQueue(10_000, max_bytes=64 * 1024)
    src = TcpSource(tcp.Config(port=0), q, 1024 * 1024)
    src.start()
    clients = [socket.create_connection(src.address, timeout=5) for _ in range(16)]
    try:
        for c in clients:
            c.sendall(b'{"big":"' + b"b" * 200 * 1024)
        for i, c in enumerate(clients):
            c.sendall(b'"}\n{"end":%d}\n' % i)
        got = []
        deadline = time.monotonic() + 10
        while sum(line.startswith(b'{"end"') for line in got) < 16 and time.monotonic() < deadline:
            got += list(q.take(100, 0.05).data)
    finally:
        for c in clients:
            c.close()
        src.stop()
        src.abandon()
        src.join(2)
    # The fair shares of 64 KiB plus one whole line; lines past their share are cut (how
    # many depends on how the reads interleave), others waited for the budget.
    assert q.partial_peak <= 512 * 1024
    assert len(got) == 32 and src.oversize == src.cut  # every line accounted: cut ones as oversize
    big = [line for line in got if line.startswith(b'{"big"')]
    assert sum(len(line) == 4096 for line in big) == src.cut  # a cut line keeps what its dead letter shows
    assert all(line.endswith(b'"}') for line in big if len(line) != 4096)
