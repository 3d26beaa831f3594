"""Tests for jenga_edge/sources/ (every kind, the registry) and jenga_edge/framing.py,
with the queue's blocking behaviour: over real loopback sockets and real files.
Every wait is bounded."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time

import numpy as np
import pytest

from jenga_edge import event_queue, framing
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import Config, Invalid, convert
from jenga_edge.event_queue import Batch, Chunk, EventQueue, Line
from jenga_edge.framing import DEFAULT_MAX_LINE_BYTES, LineSplitter, check_max_line_bytes
from jenga_edge.sources import KINDS, SourceConfig, SourceContext, build_source, file, stdin, tcp, udp, unix
from jenga_edge.sources.file import FileSource
from jenga_edge.sources.stdin import StdinSource
from jenga_edge.sources.tcp import TcpSource
from jenga_edge.sources.udp import UdpSource
from jenga_edge.sources.unix import UnixSource

CONFIGS = {m.Config.__struct_config__.tag: m.Config for m in KINDS}  # the registry, by kind name

MAX = 64  # the smallest allowed max_line_bytes keeps oversize lines short
POLL = 0.02  # file poll interval in tests


def collect(queue: EventQueue, n: int, timeout: float = 5.0) -> list[Line]:
    """Take lines from `queue` until `n` arrived or `timeout` passed."""
    out: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += lines_of(queue.take(n - len(out), 0.05))
    return out


def lines_of(batch: Batch) -> list[Line]:
    """A batch's lines as `Line`s, in order."""
    return [batch[i] for i in range(len(batch))]


def wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


@pytest.fixture
def stopper():
    """Stops (and joins) every source a test started, even when it fails."""
    started = []
    yield started.append
    for src in started:
        src.stop()
        src.abandon()  # no drain: nobody consumes once a test is over
        src.join(2)


def datas(lines: list[Line]) -> list[bytes]:
    return [line.data for line in lines]


# --- framing ---------------------------------------------------------------------------


def pairs(framed) -> list[tuple[bytes, bool]]:
    """What `LineSplitter.feed`/`flush` returned (a `Chunk`, or lines and flags)
    as (line, oversize) pairs."""
    if isinstance(framed, Chunk):
        spans = np.empty((framed.count, 2), dtype=np.int64)
        end = event_queue._spans(framed.buf, 0, framed.count, spans)
        assert framed.buf[end:].strip(b"\r\n") == b""  # the chunk holds complete lines only
        return [(framed.buf[a:b], False) for a, b in spans.tolist()]
    data, oversize = framed
    assert oversize is None or (len(oversize) == len(data) and any(oversize))
    return list(zip(data, oversize or [False] * len(data)))


def test_splitter_strips_newlines_skips_empty_and_buffers_partials():
    sp = LineSplitter(MAX)
    assert pairs(sp.feed(b'{"a":1}\r\n\n\r\n{"b"')) == [(b'{"a":1}', False)]
    assert sp.pending == 4
    assert pairs(sp.feed(b":2}")) == []
    assert pairs(sp.feed(b"\n")) == [(b'{"b":2}', False)]
    assert pairs(sp.feed(b"tail")) == []
    assert sp.flush() == ([b"tail"], None)
    assert sp.flush() == ([], None)


def test_splitter_feed_leaves_lines_within_the_limit_in_one_chunk():
    sp = LineSplitter(MAX)
    framed = sp.feed(b'{"a":1}\r\n\n{"b":2}\n{"c"')
    if framing._frame is None:  # no C extension: lines, no flags
        assert framed == ([b'{"a":1}', b'{"b":2}'], None)
    else:
        assert framed == Chunk(b'{"a":1}\r\n\n{"b":2}\n', 2)
    assert sp.pending == 4
    # An oversize line always comes back as lines with flags.
    assert sp.feed(b":3}\n" + b"o" * (MAX + 1) + b"\n") == ([b'{"c":3}', b"o" * MAX], [False, True])


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_splitter_oversize_is_one_line_and_next_line_is_intact(chunk):
    exact = b"e" * MAX
    exact_crlf = b"c" * MAX
    stream = exact + b"\n" + b"x" * (MAX * 5) + b"\n" + exact_crlf + b"\r\n" + b"y" * (MAX + 1) + b"\nok\n"
    sp = LineSplitter(MAX)
    out = []
    for i in range(0, len(stream), chunk):
        out += pairs(sp.feed(stream[i : i + chunk]))
    out += pairs(sp.flush())
    assert out == [(exact, False), (b"x" * MAX, True), (exact_crlf, False), (b"y" * MAX, True), (b"ok", False)]


def test_splitter_unfinished_oversize_line_is_emitted_once():
    sp = LineSplitter(MAX)
    assert sp.feed(b"z" * (MAX * 3)) == ([b"z" * MAX], [True])
    assert sp.pending == 0  # the rest is skipped, not buffered
    assert pairs(sp.feed(b"z" * MAX)) == []
    assert pairs(sp.feed(b"zz\nnext\n")) == [(b"next", False)]
    assert sp.flush() == ([], None)


def test_splitter_skip_line_discards_up_to_the_next_newline():
    sp = LineSplitter(MAX)
    assert pairs(sp.feed(b"partial")) == []
    sp.skip_line()
    assert sp.pending == 0
    assert pairs(sp.feed(b"rest of it")) == []
    assert pairs(sp.feed(b"...\nkept\nnext")) == [(b"kept", False)]
    assert sp.flush() == ([b"next"], None)
    sp.skip_line()
    assert sp.flush() == ([], None)  # a skipped line is not emitted at the end either


def test_max_line_bytes_bounds():
    assert check_max_line_bytes(64) == 64
    assert check_max_line_bytes(16 * 1024 * 1024) == 16 * 1024 * 1024
    for bad in (63, 16 * 1024 * 1024 + 1, True, "1024", None):
        with pytest.raises(ConfigError, match="max_line_bytes"):
            check_max_line_bytes(bad)
    with pytest.raises(ConfigError, match="max_line_bytes"):
        build_source(stdin.Config(), SourceContext(EventQueue(4), 10))
    with pytest.raises(ConfigError, match="max_line_bytes"):
        LineSplitter(10)


# --- the queue, one line at a time --------------------------------------------------------


def put(q: EventQueue, i, **kw) -> bool:
    """Enqueue line `i` on its own (the queue's per-line use: `put_lines` of one line)."""
    return q.put_lines([str(i).encode()], "test", **kw) == 1


def test_take_returns_max_items_immediately():
    q = EventQueue(100)
    for i in range(10):
        assert put(q, i)
    t0 = time.monotonic()
    batch = q.take(4, timeout_s=5.0)
    assert time.monotonic() - t0 < 1.0
    assert batch.data == [b"0", b"1", b"2", b"3"]
    assert lines_of(batch) == [Line(b"%d" % i, "test", False) for i in range(4)]
    assert q.depth() == 6


def test_take_returns_partial_batch_after_timeout_and_takes_late_arrivals():
    q = EventQueue(100)
    put(q, 0)

    def late():
        time.sleep(0.1)
        put(q, 1)

    t = threading.Thread(target=late)
    t.start()
    t0 = time.monotonic()
    batch = q.take(10, timeout_s=0.4)
    elapsed = time.monotonic() - t0
    t.join()
    assert batch.data == [b"0", b"1"]
    assert 0.2 < elapsed < 2.0


def test_take_returns_empty_on_timeout():
    q = EventQueue(4)
    t0 = time.monotonic()
    batch = q.take(5, timeout_s=0.2)
    assert len(batch) == 0 and not batch and batch.data == []
    assert 0.15 < time.monotonic() - t0 < 2.0


def test_take_waits_for_a_first_item():
    q = EventQueue(4)
    timer = threading.Timer(0.1, put, args=(q, 7))
    timer.start()
    t0 = time.monotonic()
    batch = q.take(1, timeout_s=5.0)
    timer.join(2)
    assert batch.data == [b"7"]
    assert time.monotonic() - t0 < 2.0


def test_put_blocks_while_full_and_stop_or_close_release_it():
    q = EventQueue(2)
    assert put(q, 0) and put(q, 1)
    assert q.put_lines([b"2"], "test", block=False) == 0  # full: not blocking, not enqueued
    t0 = time.monotonic()
    assert q.put_lines([b"2"], "test", timeout=0.05) == 0
    assert 0.04 < time.monotonic() - t0 < 1.0
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ok", put(q, 2, stop=stop)))
    t.start()
    time.sleep(0.1)
    assert t.is_alive() and q.depth() == 2  # blocked, nothing lost
    stop.set()
    q.interrupt()
    t.join(2)
    assert not t.is_alive() and result["ok"] is False

    # Room made by a consumer lets a blocked put through.
    t = threading.Thread(target=lambda: result.__setitem__("ok", put(q, 3)))
    t.start()
    time.sleep(0.05)
    assert q.take(1, 1.0).data == [b"0"]
    t.join(2)
    assert result["ok"] is True and q.take(5, 0.05).data == [b"1", b"3"]

    # close() wakes blocked putters and getters.
    q2 = EventQueue(1)
    put(q2, 0)
    t = threading.Thread(target=lambda: result.__setitem__("closed", put(q2, 1)))
    t.start()
    time.sleep(0.05)
    q2.close()
    t.join(2)
    assert not t.is_alive() and result["closed"] is False
    assert q2.take(5, 5.0).data == [b"0"]  # queued lines can still be taken
    t0 = time.monotonic()
    assert len(q2.take(5, 5.0)) == 0
    assert time.monotonic() - t0 < 1.0


def test_close_wakes_a_waiting_take():
    q = EventQueue(4)
    timer = threading.Timer(0.1, q.close)
    timer.start()
    t0 = time.monotonic()
    assert len(q.take(5, 10.0)) == 0
    assert time.monotonic() - t0 < 2.0
    timer.join(2)


def test_queue_maxsize_must_be_positive():
    with pytest.raises(ConfigError):
        EventQueue(0)


# --- configuration ---------------------------------------------------------------------

SOURCE = KINDS.union()  # a source entry: the `type` key picks the kind's Config


class _Sources(Config, kw_only=True):
    """The `sources:` list of an agent config."""

    sources: list[SOURCE]


def config_error(data, tp=SOURCE) -> str:
    with pytest.raises(ConfigError) as err:
        convert(tp, data, source="agent.yaml")
    return str(err.value)


def test_config_defaults_to_loopback_and_validates():
    cfg = convert(SOURCE, {"type": "tcp", "port": 5514}, source="agent.yaml")
    assert type(cfg) is tcp.Config and cfg.kind == "tcp"
    assert cfg.host == "127.0.0.1" and cfg.port == 5514 and cfg.max_connections == 64
    assert convert(SOURCE, {"type": "udp", "port": 0, "host": "::1"}, source="agent.yaml").host == "::1"
    assert udp.Config(port=0, host="::1").host == "::1"
    assert tcp.Config(port=5514, host="0.0.0.0").host == "0.0.0.0"  # explicit is fine

    assert (
        config_error({"sources": [{"type": "tcp", "port": 70000}]}, _Sources)
        == "agent.yaml: sources[0].port: expected a value <= 65535, got 70000"
    )
    assert (
        config_error({"type": "upd", "port": 1})
        == "agent.yaml: type: expected one of 'stdin', 'file', 'tcp', 'udp', 'unix', got str 'upd' "
        "(did you mean 'udp'?)"
    )
    bad = [
        (dict(type="tcp", port=-1), "port: expected a value >= 0, got -1"),
        (dict(type="tcp"), "port: missing required key, expected an integer"),
        (
            dict(type="udp", port=1, host="localhost"),
            "host: expected an IP address such as 127.0.0.1 or ::1, got 'localhost'",
        ),
        (
            dict(type="tcp", port=1, host="10.0.0.300"),
            "host: expected an IP address such as 127.0.0.1 or ::1, got '10.0.0.300'",
        ),
        (dict(type="tcp", port=True), "port: expected an integer, got bool True"),
        (dict(type="tcp", port=1, max_connections=0), "max_connections: expected a value >= 1, got 0"),
        (dict(type="udp", port=1, recv_buffer_bytes=1024), "recv_buffer_bytes: expected a value >= 4096, got 1024"),
        (dict(type="file"), "path: missing required key, expected a string"),
        (dict(type="file", path=""), "path: expected a file path, got ''"),
        (
            dict(type="file", path="x", start_at="middle"),
            "start_at: expected one of 'end', 'beginning', got str 'middle'",
        ),
        (dict(type="file", path="x", poll_interval_s=0), "poll_interval_s: expected a value >= 0.01, got 0"),
        (dict(type="file", path="x", rotate_wait_s=601), "rotate_wait_s: expected a value <= 600.0, got 601"),
        (
            dict(type="unix", path="/tmp/" + "s" * 200),
            "path: a unix socket path is at most 107 bytes, got 205: /tmp/" + "s" * 200,
        ),
        (dict(type="unix", path="/x", mode=0o1000), "mode: expected a value <= 511, got 512"),
        (dict(type="pipe"), "type: expected one of 'stdin', 'file', 'tcp', 'udp', 'unix', got str 'pipe'"),
        (dict(port=1), "type: missing required key, expected one of 'stdin', 'file', 'tcp', 'udp', 'unix'"),
        # A key another kind reads is not one of this kind's keys.
        (
            dict(type="tcp", port=1, path="/x"),
            "path: unknown key; expected one of: host, port, max_connections, idle_timeout_s, max_connections_per_peer",
        ),
        (
            dict(type="file", path="x", port=1),
            "port: unknown key; expected one of: path, start_at, poll_interval_s, rotate_wait_s",
        ),
        (
            dict(type="udp", port=1, max_connections=4),
            "max_connections: unknown key; expected one of: host, port, recv_buffer_bytes",
        ),
    ]
    for data, message in bad:
        assert config_error(data) == f"agent.yaml: {message}", data
        if data.get("type") in KINDS:  # the kind's own Config says the same
            kind = {k: v for k, v in data.items() if k != "type"}
            assert config_error(kind, CONFIGS[data["type"]]) == f"agent.yaml: {message}", data
    # stdin reads no options at all.
    assert config_error({"type": "stdin", "host": "0.0.0.0"}).startswith("agent.yaml: host: unknown key")


def test_config_cross_field_checks_run_on_direct_construction():
    # Types and bounds are checked by convert only; the checks in __post_init__ run either way.
    cases = [
        (
            lambda: udp.Config(port=1, host="localhost"),
            "host",
            "expected an IP address such as 127.0.0.1 or ::1, got 'localhost'",
        ),
        (
            lambda: tcp.Config(port=1, host="10.0.0.300"),
            "host",
            "expected an IP address such as 127.0.0.1 or ::1, got '10.0.0.300'",
        ),
        (lambda: file.Config(path=""), "path", "expected a file path, got ''"),
        (lambda: unix.Config(path=""), "path", "expected a socket path, got ''"),
        (
            lambda: unix.Config(path="/tmp/" + "s" * 200),
            "path",
            "a unix socket path is at most 107 bytes, got 205: /tmp/" + "s" * 200,
        ),
    ]
    for make, key, message in cases:
        with pytest.raises(Invalid) as err:
            make()
        assert (err.value.key, err.value.message) == (key, message)
    with pytest.raises(TypeError):
        tcp.Config(5514)  # keywords only


def test_sources_registry_names_the_five_kinds():
    assert KINDS.names == ("stdin", "file", "tcp", "udp", "unix")
    for name, module in zip(KINDS.names, (stdin, file, tcp, udp, unix)):
        assert name in KINDS and CONFIGS[name] is module.Config
        assert module.Config.__struct_config__.tag == name
    assert "pipe" not in KINDS


class _PipeConfig(SourceConfig, tag="pipe", kw_only=True):
    """A kind nobody registered."""


def test_build_source_refuses_an_unregistered_kind():
    with pytest.raises(TypeError, match="no source kind registered for _PipeConfig"):
        build_source(_PipeConfig(), SourceContext(EventQueue(4), MAX))


def test_build_source_makes_each_type(tmp_path):
    q = EventQueue(4)
    reader = io.BytesIO(b"")
    cases = {
        "stdin": (stdin.Config(), StdinSource, "stdin"),
        "file": (file.Config(path="/var/log/eve.json"), FileSource, "file:/var/log/eve.json"),
        "tcp": (tcp.Config(port=5514), TcpSource, "tcp:127.0.0.1:5514"),
        "udp": (udp.Config(port=5514), UdpSource, "udp:127.0.0.1:5514"),
        "unix": (unix.Config(path="/run/jenga.sock"), UnixSource, "unix:/run/jenga.sock"),
    }
    assert sorted(cases) == sorted(KINDS.names)
    for kind, (cfg, cls, origin) in cases.items():
        src = build_source(cfg, SourceContext(q, 4096, reader))
        assert type(src) is cls and src.config is cfg and src.queue is q
        assert src.kind == kind and cfg.kind == kind
        assert src.origin == origin and src.max_line_bytes == 4096
        assert (src.lines, src.oversize, src.dropped, src.eof) == (0, 0, 0, False)
        assert KINDS.build(cfg, SourceContext(q, 4096)).origin == origin
    # A source's config as loaded builds the same.
    loaded = convert(SOURCE, {"type": "udp", "port": 0, "host": "::1"}, source="agent.yaml")
    src = build_source(loaded, SourceContext(q, MAX))
    assert type(src) is UdpSource and src.origin == "udp:[::1]:0" and src.max_line_bytes == MAX


# --- stdin -----------------------------------------------------------------------------


def test_stdin_reads_to_eof_with_oversize_and_final_partial_line(stopper):
    q = EventQueue(100)
    data = b'{"a":1}\n\n' + b"o" * 500 + b'\n{"b":2}\r\n{"c":3}'
    src = build_source(stdin.Config(), SourceContext(q, MAX, io.BytesIO(data)))
    stopper(src)
    src.start()
    assert src.join(2)
    assert src.eof
    got = collect(q, 4)
    assert got == [
        Line(b'{"a":1}', "stdin", False),
        Line(b"o" * MAX, "stdin", True),
        Line(b'{"b":2}', "stdin", False),
        Line(b'{"c":3}', "stdin", False),
    ]
    assert (src.lines, src.oversize, src.dropped) == (4, 1, 0)


def test_stdin_pipe_stop_is_prompt_without_eof(stopper):
    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb", buffering=0) as writer:
        q = EventQueue(10)
        src = StdinSource(stdin.Config(), q, MAX, reader)
        stopper(src)
        src.start()
        writer.write(b"one\ntw")
        assert datas(collect(q, 1)) == [b"one"]
        writer.write(b"o\n")
        assert datas(collect(q, 1)) == [b"two"]
        t0 = time.monotonic()
        src.stop()
        assert src.join(2) and time.monotonic() - t0 < 1.0
        assert src.eof is False  # stopped, not exhausted
        src.stop()  # idempotent


# --- TCP -------------------------------------------------------------------------------


def connect(addr) -> socket.socket:
    s = socket.create_connection(addr, timeout=5)
    return s


def test_tcp_multiple_clients_split_sends_exact_counts(stopper):
    q = EventQueue(1000)
    src = TcpSource(tcp.Config(port=0), q, MAX)
    stopper(src)
    src.start()
    host, port = src.address
    assert host == "127.0.0.1" and port > 0
    clients = [connect(src.address) for _ in range(3)]
    for rnd in range(20):
        for c, s in enumerate(clients):
            payload = f'{{"c":{c},"n":{rnd}}}\n'.encode()
            s.sendall(payload[:5])  # one event over several send() calls
            s.sendall(payload[5:])
    clients[0].sendall(b'{"c":0,"n":"last"}')  # no trailing newline: flushed on close
    for s in clients:
        s.close()
    got = collect(q, 61)
    assert len(got) == 61
    assert wait_for(lambda: src.lines == 61) and src.dropped == 0 and src.oversize == 0
    assert all(line.origin == f"tcp:127.0.0.1:{port}" and not line.oversize for line in got)
    for c in range(3):
        mine = [line.data for line in got if line.data.startswith(f'{{"c":{c},'.encode())]
        expect = [f'{{"c":{c},"n":{n}}}'.encode() for n in range(20)]
        assert mine == expect + ([b'{"c":0,"n":"last"}'] if c == 0 else [])
    assert src.connections == 3
    assert collect(q, 1, timeout=0.2) == []


def test_tcp_oversize_line_then_intact_line(stopper):
    q = EventQueue(100)
    src = TcpSource(tcp.Config(port=0), q, MAX)
    stopper(src)
    src.start()
    with connect(src.address) as s:
        big = b'{"blob":"' + b"A" * 5000 + b'"}\n'
        for i in range(0, len(big), 700):
            s.sendall(big[i : i + 700])
        s.sendall(b'{"ok":1}\n')
    got = collect(q, 2)
    assert got[0].oversize and got[0].data == big[:MAX]
    assert got[1] == Line(b'{"ok":1}', src.origin, False)
    assert wait_for(lambda: src.lines == 2) and src.oversize == 1


def test_tcp_back_pressure_blocks_without_loss_and_keeps_order(stopper):
    q = EventQueue(4)
    src = TcpSource(tcp.Config(port=0), q, 1024)
    stopper(src)
    src.start()
    per_client = 3000
    done = []

    def client(cid: int) -> None:
        with connect(src.address) as s:
            s.settimeout(10)
            s.sendall(b"".join(b'{"c":%d,"n":%d,"pad":"%s"}\n' % (cid, n, b"p" * 40) for n in range(per_client)))
        done.append(cid)

    senders = [threading.Thread(target=client, args=(cid,), daemon=True) for cid in range(2)]
    for t in senders:
        t.start()
    assert wait_for(lambda: q.depth() == 4)
    time.sleep(0.3)  # no consumer: the source must just wait
    assert q.depth() == 4
    # `lines` is counted per read (after put_lines/put_chunk returns), so only drops are checked here.
    assert src.dropped == 0

    got = collect(q, 2 * per_client, timeout=10)
    for t in senders:
        t.join(5)
    assert sorted(done) == [0, 1]
    assert len(got) == 2 * per_client and src.dropped == 0
    for cid in range(2):
        ns = [
            int(line.data.split(b'"n":')[1].split(b",")[0]) for line in got if line.data.startswith(b'{"c":%d,' % cid)
        ]
        assert ns == list(range(per_client))  # each line once, in order
    assert wait_for(lambda: src.lines == 2 * per_client)


def test_tcp_max_connections_refuses_extra_clients(stopper):
    q = EventQueue(10)
    src = TcpSource(tcp.Config(port=0, max_connections=1), q, MAX)
    stopper(src)
    src.start()
    with connect(src.address) as first:
        first.sendall(b"a\n")
        assert datas(collect(q, 1)) == [b"a"]
        with connect(src.address) as second:
            second.settimeout(2)
            try:
                assert second.recv(1) == b""  # closed by the listener
            except ConnectionResetError:
                pass
        assert wait_for(lambda: src.rejected == 1)
        first.sendall(b"b\n")
        assert datas(collect(q, 1)) == [b"b"]


def test_tcp_bind_failure_is_a_config_error():
    q = EventQueue(4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        src = TcpSource(tcp.Config(port=port), q, DEFAULT_MAX_LINE_BYTES)
        with pytest.raises(ConfigError, match=rf"^tcp source: cannot listen on 127\.0\.0\.1:{port}: "):
            src.start()
        assert not src.running


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_tcp_and_udp_listen_on_ipv6_loopback(stopper):
    q = EventQueue(100)
    t = build_source(tcp.Config(port=0, host="::1"), SourceContext(q, MAX))
    u = build_source(udp.Config(port=0, host="::1"), SourceContext(q, MAX))
    for src in (t, u):
        stopper(src)
        src.start()
    assert t.address[0] == "::1" and t.origin == f"tcp:[::1]:{t.address[1]}"
    assert u.address[0] == "::1" and u.origin == f"udp:[::1]:{u.address[1]}"
    with socket.create_connection(t.address[:2], timeout=5) as s:
        s.sendall(b'{"v":6}\n{"tcp":1}')
    assert collect(q, 2) == [Line(b'{"v":6}', t.origin), Line(b'{"tcp":1}', t.origin)]
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendto(b'{"udp":1}\n{"udp":2}', u.address[:2])
    assert collect(q, 2) == [Line(b'{"udp":1}', u.origin), Line(b'{"udp":2}', u.origin)]


# --- UDP -------------------------------------------------------------------------------


def test_udp_datagrams_with_several_lines(stopper):
    q = EventQueue(100)
    src = UdpSource(udp.Config(port=0), q, MAX)
    stopper(src)
    src.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b'{"a":1}\n{"a":2}\n', src.address)
        s.sendto(b'{"a":3}\r\n\n{"a":4}', src.address)  # last line needs no newline
        s.sendto(b"B" * 200 + b'\n{"a":5}\n', src.address)
    got = collect(q, 6)
    port = src.address[1]
    assert [(line.data, line.oversize) for line in got] == [
        (b'{"a":1}', False),
        (b'{"a":2}', False),
        (b'{"a":3}', False),
        (b'{"a":4}', False),
        (b"B" * MAX, True),
        (b'{"a":5}', False),
    ]
    assert all(line.origin == f"udp:127.0.0.1:{port}" for line in got)
    assert wait_for(lambda: src.lines == 6)
    assert src.datagrams == 3 and src.oversize == 1 and src.dropped == 0


def test_udp_overflow_counts_drops(stopper):
    q = EventQueue(5)
    src = UdpSource(udp.Config(port=0), q, MAX)
    stopper(src)
    src.start()
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(40):
            s.sendto(b'{"i":%d}\n{"j":%d}\n' % (i, i), src.address)
            sent += 2
    assert wait_for(lambda: src.lines == sent)
    assert q.depth() == 5
    assert src.dropped == sent - 5
    assert q.depth() + src.dropped == sent
    assert datas(collect(q, 5)) == [b'{"i":0}', b'{"j":0}', b'{"i":1}', b'{"j":1}', b'{"i":2}']


# --- unix socket -----------------------------------------------------------------------


def test_unix_socket_replaces_stale_file_and_removes_it_on_stop(tmp_path, stopper):
    path = str(tmp_path / "jenga.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # leaves a dead socket file behind
    q = EventQueue(100)
    src = build_source(unix.Config(path=path), SourceContext(q, MAX))
    stopper(src)
    src.start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    for n in range(2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b'{"u":%d}\n{"u"' % n)
            s.sendall(b":%d}\n" % (n + 10) + b"Q" * 300 + b"\nafter\n")
    got = collect(q, 8)
    pairs = [(line.data, line.oversize) for line in got]
    # Each connection has its own reader thread: order holds within a connection only.
    assert sorted(pairs) == sorted(
        [
            (b'{"u":0}', False),
            (b'{"u":10}', False),
            (b"Q" * MAX, True),
            (b"after", False),
            (b'{"u":1}', False),
            (b'{"u":11}', False),
            (b"Q" * MAX, True),
            (b"after", False),
        ]
    )
    for a, b in ((b'{"u":0}', b'{"u":10}'), (b'{"u":1}', b'{"u":11}')):
        assert pairs.index((a, False)) < pairs.index((b, False))
    assert all(line.origin == f"unix:{path}" for line in got)

    # A second listener on a live socket must not steal it.
    with pytest.raises(ConfigError, match="another process is listening"):
        UnixSource(unix.Config(path=path), EventQueue(4), MAX).start()
    t0 = time.monotonic()
    src.stop()
    assert src.join(2) and time.monotonic() - t0 < 1.0
    assert not os.path.exists(path)


def test_unix_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    with pytest.raises(ConfigError, match="not a socket"):
        UnixSource(unix.Config(path=str(path)), EventQueue(4), MAX).start()
    assert path.read_text() == "keep me"


# --- file follow -----------------------------------------------------------------------


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def follow(path, q, stopper, **kw) -> FileSource:
    src = FileSource(file.Config(path=str(path), poll_interval_s=POLL, **kw), q, MAX)
    stopper(src)
    src.start()
    return src


def test_file_start_at_end_then_append_with_partial_line(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b'{"old":1}\n{"old":2}\n{"writing"')
    q = EventQueue(100)
    src = follow(path, q, stopper)
    append(path, b':1}\n{"new":1}\n{"new"')
    assert datas(collect(q, 2)) == [b'{"writing":1}', b'{"new":1}']
    assert collect(q, 1, timeout=0.2) == []  # partial line is held back
    append(path, b":2}\n")
    got = collect(q, 1)
    assert got == [Line(b'{"new":2}', f"file:{path}", False)]
    assert wait_for(lambda: src.lines == 3)


def test_file_start_at_beginning_and_oversize(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b'{"a":1}\n' + b"x" * 1000 + b'\n{"a":2}\n')
    q = EventQueue(100)
    src = follow(path, q, stopper, start_at="beginning")
    got = collect(q, 3)
    assert [(line.data, line.oversize) for line in got] == [
        (b'{"a":1}', False),
        (b"x" * MAX, True),
        (b'{"a":2}', False),
    ]
    append(path, b"y" * 100)  # oversize, still unfinished
    append(path, b"y" * 100 + b'\n{"a":3}\n')
    got = collect(q, 2)
    assert [(line.data, line.oversize) for line in got] == [(b"y" * MAX, True), (b'{"a":3}', False)]
    assert wait_for(lambda: src.oversize == 2)


def test_file_start_at_end_skips_an_unfinished_oversize_line(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b'{"old":1}\n' + b"z" * (MAX * 5))  # the writer is inside a long line
    q = EventQueue(100)
    src = follow(path, q, stopper)
    append(path, b'zzz"}\n{"new":1}\n')
    assert collect(q, 1) == [Line(b'{"new":1}', f"file:{path}", False)]
    assert collect(q, 1, timeout=0.2) == []  # no fragment of the long line
    assert wait_for(lambda: src.lines == 1) and src.oversize == 0


def test_file_rotation_by_rename_and_new_file(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b"")
    q = EventQueue(100)
    src = follow(path, q, stopper, rotate_wait_s=0.5)
    append(path, b'{"gen":1,"n":1}\n')
    assert datas(collect(q, 1)) == [b'{"gen":1,"n":1}']
    rotated = tmp_path / "eve.json.1"
    os.rename(path, rotated)
    append(rotated, b'{"gen":1,"n":2}\n')  # the writer has not reopened yet
    path.write_bytes(b'{"gen":2,"n":1}\n')  # new file: read from its beginning
    append(path, b'{"gen":2,"n":2}\n')
    got = datas(collect(q, 3))
    assert sorted(got) == [b'{"gen":1,"n":2}', b'{"gen":2,"n":1}', b'{"gen":2,"n":2}']
    assert got.index(b'{"gen":2,"n":1}') < got.index(b'{"gen":2,"n":2}')
    assert src.rotations == 1
    assert collect(q, 1, timeout=0.2) == []


def test_file_truncation_reads_from_start(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b"")
    q = EventQueue(100)
    src = follow(path, q, stopper)
    append(path, b'{"before":1}\n{"before":2}\n')
    assert len(collect(q, 2)) == 2
    with open(path, "wb") as fh:  # truncate in place (copytruncate)
        fh.write(b"")
    assert wait_for(lambda: src.truncations == 1)
    append(path, b'{"after":1}\n')
    assert datas(collect(q, 1)) == [b'{"after":1}']
    assert collect(q, 1, timeout=0.2) == []


def test_file_created_after_start(tmp_path, stopper):
    path = tmp_path / "later.json"
    q = EventQueue(100)
    src = follow(path, q, stopper)  # start_at="end" does not apply to a new file
    time.sleep(0.1)
    path.write_bytes(b'{"first":1}\n{"first":2}\n')
    assert datas(collect(q, 2)) == [b'{"first":1}', b'{"first":2}']
    assert src.running


# --- lifecycle -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["stdin", "file", "tcp", "udp", "unix"])
def test_stop_is_prompt_and_idempotent(kind, tmp_path, stopper):
    q = EventQueue(2)
    cfgs = {
        "stdin": stdin.Config(),
        "file": file.Config(path=str(tmp_path / "f.json"), poll_interval_s=5.0),
        "tcp": tcp.Config(port=0),
        "udp": udp.Config(port=0),
        "unix": unix.Config(path=str(tmp_path / "s.sock")),
    }
    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb") as _writer:
        src = build_source(cfgs[kind], SourceContext(q, MAX, reader))
        stopper(src)
        src.start()
        conn = None
        if kind == "tcp":  # an open, idle connection must not hold stop up
            conn = connect(src.address)
        time.sleep(0.1)
        t0 = time.monotonic()
        src.stop()
        assert src.join(2)
        assert time.monotonic() - t0 < 1.0
        assert not src.running
        src.stop()
        assert src.join(0.1)
        if conn is not None:
            conn.close()
        with pytest.raises(RuntimeError):
            src.start()


def test_stop_releases_a_source_blocked_on_a_full_queue_at_the_drain_deadline(stopper):
    q = EventQueue(1)
    src = StdinSource(stdin.Config(), q, MAX, io.BytesIO(b"a\nb\nc\n"))
    src.drain_s = 0.0  # no drain: nobody consumes here
    stopper(src)
    src.start()
    assert wait_for(lambda: q.depth() == 1)
    time.sleep(0.05)
    assert src.running  # blocked in put: back-pressure
    t0 = time.monotonic()
    src.stop()
    assert src.join(2) and time.monotonic() - t0 < 1.0
    assert src.lines == 3 and src.dropped == 2  # every line read is accounted for
    assert src.drops == {"queue_full": 0, "stop": 2}
    assert src.eof is False


def test_queue_bounds_bytes_as_well_as_events():
    q = EventQueue(1000, max_bytes=100)
    line = b"x" * 40
    for _ in range(3):
        assert q.put_lines([line], "t", block=False) == 1
    assert q.put_lines([line], "t", block=False) == 0  # 120 bytes queued >= 100: full by bytes
    assert q.depth() == 3
    assert len(q.take(2, 0.0)) == 2
    assert q.put_lines([line], "t", block=False) == 1  # room again
    assert q.put_lines([line] * 5, "t", stop=_set_event()) == 1  # 80 bytes queued: one more fits, then full
    assert q.depth() == 3
    big = EventQueue(1000, max_bytes=10)
    assert big.put_lines([b"y" * 50], "t", block=False) == 1  # an empty queue takes one oversized line


def _set_event():
    e = threading.Event()
    e.set()
    return e


# --- feed: the buffer fast path frames exactly like the per-line fallback ---------------------


@pytest.mark.parametrize("seed", range(6))
def test_feed_chunk_path_frames_like_the_line_fallback(seed):
    import random

    if framing._frame is None:
        pytest.skip("the C framing is off (jenga_edge.native._fastjson not built, or JENGA_EDGE_PURE=1)")
    rng = random.Random(seed)
    pieces = []
    for _ in range(300):
        n = rng.choice([MAX + 1, 3 * MAX]) if rng.random() < 0.02 else rng.choice([0, 1, 5, 40, MAX - 1, MAX])
        body = bytes(rng.choice(b'ab{}":,\r') for _ in range(n))
        pieces.append(body + rng.choice([b"\n", b"\r\n", b"\n\n", b"\r\r\n"]))
    stream = b"".join(pieces) + b"tail-without-newline"
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    ref, fast = LineSplitter(MAX), LineSplitter(MAX)
    want, got, used_chunks = [], [], 0
    for c in chunks:
        want += pairs(ref._feed_lines(c))  # the per-line fallback, never a Chunk
        framed = fast.feed(c)
        used_chunks += isinstance(framed, Chunk)
        got += pairs(framed)
    want += pairs(ref.flush())
    got += pairs(fast.flush())
    assert got == want
    assert used_chunks > 0, "the buffer path was never taken"
