"""Tests for jenga_edge/sources.py: framing, the bounded queue and every source,
over real loopback sockets and real files. Every wait is bounded."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time

import pytest

from jenga_edge.contract.errors import ConfigError
from jenga_edge.sources import (
    EventQueue,
    FileSource,
    Line,
    LineSplitter,
    SourceConfig,
    StdinSource,
    TcpSource,
    UdpSource,
    UnixSource,
    build_source,
    check_max_line_bytes,
)
from jenga_edge.contract.typed import build

MAX = 64          # the smallest allowed max_line_bytes keeps oversize lines short
POLL = 0.02       # file poll interval in tests


def collect(queue: EventQueue, n: int, timeout: float = 5.0) -> list[Line]:
    """Take lines from `queue` until `n` arrived or `timeout` passed."""
    out: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += queue.get_batch(n - len(out), 0.05)
    return out


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
        src.join(2)


def datas(lines: list[Line]) -> list[bytes]:
    return [line.data for line in lines]


# --- framing ---------------------------------------------------------------------------

def test_splitter_strips_newlines_skips_empty_and_buffers_partials():
    sp = LineSplitter(MAX)
    assert sp.feed(b'{"a":1}\r\n\n\r\n{"b"') == [(b'{"a":1}', False)]
    assert sp.pending == 4
    assert sp.feed(b":2}") == []
    assert sp.feed(b"\n") == [(b'{"b":2}', False)]
    assert sp.feed(b"tail") == []
    assert sp.flush() == [(b"tail", False)]
    assert sp.flush() == []


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_splitter_oversize_is_one_line_and_next_line_is_intact(chunk):
    exact = b"e" * MAX
    exact_crlf = b"c" * MAX
    stream = exact + b"\n" + b"x" * (MAX * 5) + b"\n" + exact_crlf + b"\r\n" + b"y" * (MAX + 1) + b"\nok\n"
    sp = LineSplitter(MAX)
    out = []
    for i in range(0, len(stream), chunk):
        out += sp.feed(stream[i:i + chunk])
    out += sp.flush()
    assert out == [(exact, False), (b"x" * MAX, True), (exact_crlf, False),
                   (b"y" * MAX, True), (b"ok", False)]


def test_splitter_unfinished_oversize_line_is_emitted_once():
    sp = LineSplitter(MAX)
    assert sp.feed(b"z" * (MAX * 3)) == [(b"z" * MAX, True)]
    assert sp.pending == 0                  # the rest is skipped, not buffered
    assert sp.feed(b"z" * MAX) == []
    assert sp.feed(b"zz\nnext\n") == [(b"next", False)]
    assert sp.flush() == []


def test_max_line_bytes_bounds():
    assert check_max_line_bytes(64) == 64
    assert check_max_line_bytes(16 * 1024 * 1024) == 16 * 1024 * 1024
    for bad in (63, 16 * 1024 * 1024 + 1, True, "1024", None):
        with pytest.raises(ConfigError, match="max_line_bytes"):
            check_max_line_bytes(bad)
    with pytest.raises(ConfigError, match="max_line_bytes"):
        build_source(SourceConfig(type="stdin"), EventQueue(4), 10)


# --- the queue -------------------------------------------------------------------------

def line(i) -> Line:
    return Line(str(i).encode(), "test", False)


def test_get_batch_returns_max_items_immediately():
    q = EventQueue(100)
    for i in range(10):
        assert q.put(line(i))
    t0 = time.monotonic()
    batch = q.get_batch(4, timeout_s=5.0)
    assert time.monotonic() - t0 < 1.0
    assert datas(batch) == [b"0", b"1", b"2", b"3"]
    assert q.depth() == 6


def test_get_batch_returns_partial_batch_after_timeout_and_takes_late_arrivals():
    q = EventQueue(100)
    q.put(line(0))

    def late():
        time.sleep(0.1)
        q.put(line(1))

    t = threading.Thread(target=late)
    t.start()
    t0 = time.monotonic()
    batch = q.get_batch(10, timeout_s=0.4)
    elapsed = time.monotonic() - t0
    t.join()
    assert datas(batch) == [b"0", b"1"]
    assert 0.2 < elapsed < 2.0


def test_get_batch_returns_empty_on_timeout():
    q = EventQueue(4)
    t0 = time.monotonic()
    assert q.get_batch(5, timeout_s=0.2) == []
    assert 0.15 < time.monotonic() - t0 < 2.0


def test_get_batch_waits_for_a_first_item():
    q = EventQueue(4)
    threading.Timer(0.1, q.put, args=(line(7),)).start()
    t0 = time.monotonic()
    batch = q.get_batch(1, timeout_s=5.0)
    assert datas(batch) == [b"7"]
    assert time.monotonic() - t0 < 2.0


def test_put_blocks_while_full_and_stop_or_close_release_it():
    q = EventQueue(2)
    assert q.put(line(0)) and q.put(line(1))
    assert q.offer(line(2)) is False
    assert q.put(line(2), timeout=0.05) is False
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ok", q.put(line(2), stop=stop)))
    t.start()
    time.sleep(0.1)
    assert t.is_alive() and q.depth() == 2          # blocked, nothing lost
    stop.set()
    q.interrupt()
    t.join(2)
    assert not t.is_alive() and result["ok"] is False

    # Room made by a consumer lets a blocked put through.
    t = threading.Thread(target=lambda: result.__setitem__("ok", q.put(line(3))))
    t.start()
    time.sleep(0.05)
    assert datas(q.get_batch(1, 1.0)) == [b"0"]
    t.join(2)
    assert result["ok"] is True and datas(q.get_batch(5, 0.05)) == [b"1", b"3"]

    # close() wakes blocked putters and getters.
    q2 = EventQueue(1)
    q2.put(line(0))
    t = threading.Thread(target=lambda: result.__setitem__("closed", q2.put(line(1))))
    t.start()
    time.sleep(0.05)
    q2.close()
    t.join(2)
    assert result["closed"] is False
    assert datas(q2.get_batch(5, 5.0)) == [b"0"]     # queued lines can still be taken
    t0 = time.monotonic()
    assert q2.get_batch(5, 5.0) == []
    assert time.monotonic() - t0 < 1.0


def test_close_wakes_a_waiting_get_batch():
    q = EventQueue(4)
    threading.Timer(0.1, q.close).start()
    t0 = time.monotonic()
    assert q.get_batch(5, 10.0) == []
    assert time.monotonic() - t0 < 2.0


def test_queue_maxsize_must_be_positive():
    with pytest.raises(ConfigError):
        EventQueue(0)


# --- configuration ---------------------------------------------------------------------

def test_config_defaults_to_loopback_and_validates():
    cfg = build(SourceConfig, {"type": "tcp", "port": 5514}, source="agent.yaml")
    assert cfg.host == "127.0.0.1" and cfg.max_connections == 64
    assert SourceConfig(type="udp", port=0, host="::1").host == "::1"
    assert SourceConfig(type="tcp", port=5514, host="0.0.0.0").host == "0.0.0.0"  # explicit is fine

    with pytest.raises(ConfigError, match=r"agent.yaml: sources\[0\].port: expected a value <= 65535"):
        build(SourceConfig, {"type": "tcp", "port": 70000}, path="sources[0]", source="agent.yaml")
    with pytest.raises(ConfigError, match="did you mean 'udp'"):
        build(SourceConfig, {"type": "upd", "port": 1}, source="agent.yaml")
    bad = [
        (dict(type="tcp", port=-1), "port"),
        (dict(type="tcp"), "port: required"),
        (dict(type="udp", port=1, host="localhost"), "host: expected an IP address"),
        (dict(type="tcp", port=1, host="10.0.0.300"), "host"),
        (dict(type="tcp", port=True), "port: expected an integer"),
        (dict(type="file"), "path: required"),
        (dict(type="file", path="x", start_at="middle"), "start_at"),
        (dict(type="file", path="x", poll_interval_s=0), "poll_interval_s"),
        (dict(type="unix", path="/tmp/" + "s" * 200), "at most 107 bytes"),
        (dict(type="tcp", port=1, path="/x"), "path: not used by type 'tcp'"),
        (dict(type="file", path="x", port=1), "port: not used by type 'file'"),
        (dict(type="stdin", host="0.0.0.0"), "host: not used"),
        (dict(type="pipe"), "type: expected one of"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ConfigError, match=message):
            SourceConfig(**kwargs)


def test_build_source_makes_each_type(tmp_path):
    q = EventQueue(4)
    cases = {
        "stdin": (SourceConfig(type="stdin"), StdinSource, "stdin"),
        "file": (SourceConfig(type="file", path="/var/log/eve.json"), FileSource, "file:/var/log/eve.json"),
        "tcp": (SourceConfig(type="tcp", port=5514), TcpSource, "tcp:127.0.0.1:5514"),
        "udp": (SourceConfig(type="udp", port=5514), UdpSource, "udp:127.0.0.1:5514"),
        "unix": (SourceConfig(type="unix", path="/run/jenga.sock"), UnixSource, "unix:/run/jenga.sock"),
    }
    for cfg, cls, origin in cases.values():
        src = build_source(cfg, q, 4096)
        assert type(src) is cls and src.config is cfg
        assert src.origin == origin and src.max_line_bytes == 4096
        assert (src.lines, src.oversize, src.dropped, src.eof) == (0, 0, 0, False)


# --- stdin -----------------------------------------------------------------------------

def test_stdin_reads_to_eof_with_oversize_and_final_partial_line(stopper):
    q = EventQueue(100)
    data = b'{"a":1}\n\n' + b"o" * 500 + b'\n{"b":2}\r\n{"c":3}'
    src = build_source(SourceConfig(type="stdin"), q, MAX, stdin=io.BytesIO(data))
    stopper(src)
    src.start()
    assert src.join(2)
    assert src.eof
    got = collect(q, 4)
    assert got == [Line(b'{"a":1}', "stdin", False), Line(b"o" * MAX, "stdin", True),
                   Line(b'{"b":2}', "stdin", False), Line(b'{"c":3}', "stdin", False)]
    assert (src.lines, src.oversize, src.dropped) == (4, 1, 0)


def test_stdin_pipe_stop_is_prompt_without_eof(stopper):
    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb", buffering=0) as writer:
        q = EventQueue(10)
        src = StdinSource(q, reader, max_line_bytes=MAX)
        stopper(src)
        src.start()
        writer.write(b"one\ntw")
        assert datas(collect(q, 1)) == [b"one"]
        writer.write(b"o\n")
        assert datas(collect(q, 1)) == [b"two"]
        t0 = time.monotonic()
        src.stop()
        assert src.join(2) and time.monotonic() - t0 < 1.0
        assert src.eof is False                      # stopped, not exhausted
        src.stop()                                   # idempotent


# --- TCP -------------------------------------------------------------------------------

def connect(addr) -> socket.socket:
    s = socket.create_connection(addr, timeout=5)
    return s


def test_tcp_multiple_clients_split_sends_exact_counts(stopper):
    q = EventQueue(1000)
    src = TcpSource(q, port=0, max_line_bytes=MAX)
    stopper(src)
    src.start()
    host, port = src.address
    assert host == "127.0.0.1" and port > 0
    clients = [connect(src.address) for _ in range(3)]
    for rnd in range(20):
        for c, s in enumerate(clients):
            payload = f'{{"c":{c},"n":{rnd}}}\n'.encode()
            s.sendall(payload[:5])                   # one event over several send() calls
            s.sendall(payload[5:])
    clients[0].sendall(b'{"c":0,"n":"last"}')        # no trailing newline: flushed on close
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
    src = TcpSource(q, port=0, max_line_bytes=MAX)
    stopper(src)
    src.start()
    with connect(src.address) as s:
        big = b'{"blob":"' + b"A" * 5000 + b'"}\n'
        for i in range(0, len(big), 700):
            s.sendall(big[i:i + 700])
        s.sendall(b'{"ok":1}\n')
    got = collect(q, 2)
    assert got[0].oversize and got[0].data == big[:MAX]
    assert got[1] == Line(b'{"ok":1}', src.origin, False)
    assert wait_for(lambda: src.lines == 2) and src.oversize == 1


def test_tcp_back_pressure_blocks_without_loss_and_keeps_order(stopper):
    q = EventQueue(4)
    src = TcpSource(q, port=0, max_line_bytes=1024)
    stopper(src)
    src.start()
    per_client = 3000
    done = []

    def client(cid: int) -> None:
        with connect(src.address) as s:
            s.settimeout(10)
            s.sendall(b"".join(b'{"c":%d,"n":%d,"pad":"%s"}\n' % (cid, n, b"p" * 40)
                               for n in range(per_client)))
        done.append(cid)

    senders = [threading.Thread(target=client, args=(cid,), daemon=True) for cid in range(2)]
    for t in senders:
        t.start()
    assert wait_for(lambda: q.depth() == 4)
    time.sleep(0.3)                                  # no consumer: the source must just wait
    assert q.depth() == 4
    # `lines` is counted per framed chunk (after put_many), so only drops are checked here.
    assert src.dropped == 0

    got = collect(q, 2 * per_client, timeout=10)
    for t in senders:
        t.join(5)
    assert sorted(done) == [0, 1]
    assert len(got) == 2 * per_client and src.dropped == 0
    for cid in range(2):
        ns = [int(line.data.split(b'"n":')[1].split(b",")[0]) for line in got
              if line.data.startswith(b'{"c":%d,' % cid)]
        assert ns == list(range(per_client))         # each line once, in order
    assert wait_for(lambda: src.lines == 2 * per_client)


def test_tcp_max_connections_refuses_extra_clients(stopper):
    q = EventQueue(10)
    src = TcpSource(q, port=0, max_connections=1, max_line_bytes=MAX)
    stopper(src)
    src.start()
    with connect(src.address) as first:
        first.sendall(b"a\n")
        assert datas(collect(q, 1)) == [b"a"]
        with connect(src.address) as second:
            second.settimeout(2)
            try:
                assert second.recv(1) == b""         # closed by the listener
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
        with pytest.raises(ConfigError, match="cannot listen"):
            TcpSource(q, port=taken.getsockname()[1]).start()


# --- UDP -------------------------------------------------------------------------------

def test_udp_datagrams_with_several_lines(stopper):
    q = EventQueue(100)
    src = UdpSource(q, port=0, max_line_bytes=MAX)
    stopper(src)
    src.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b'{"a":1}\n{"a":2}\n', src.address)
        s.sendto(b'{"a":3}\r\n\n{"a":4}', src.address)       # last line needs no newline
        s.sendto(b"B" * 200 + b'\n{"a":5}\n', src.address)
    got = collect(q, 6)
    port = src.address[1]
    assert [(line.data, line.oversize) for line in got] == [
        (b'{"a":1}', False), (b'{"a":2}', False), (b'{"a":3}', False), (b'{"a":4}', False),
        (b"B" * MAX, True), (b'{"a":5}', False)]
    assert all(line.origin == f"udp:127.0.0.1:{port}" for line in got)
    assert wait_for(lambda: src.lines == 6)
    assert src.datagrams == 3 and src.oversize == 1 and src.dropped == 0


def test_udp_overflow_counts_drops(stopper):
    q = EventQueue(5)
    src = UdpSource(q, port=0, max_line_bytes=MAX)
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
    stale.close()                                    # leaves a dead socket file behind
    q = EventQueue(100)
    src = build_source(SourceConfig(type="unix", path=path), q, MAX)
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
    assert sorted(pairs) == sorted([
        (b'{"u":0}', False), (b'{"u":10}', False), (b"Q" * MAX, True), (b"after", False),
        (b'{"u":1}', False), (b'{"u":11}', False), (b"Q" * MAX, True), (b"after", False)])
    for a, b in ((b'{"u":0}', b'{"u":10}'), (b'{"u":1}', b'{"u":11}')):
        assert pairs.index((a, False)) < pairs.index((b, False))
    assert all(line.origin == f"unix:{path}" for line in got)

    # A second listener on a live socket must not steal it.
    with pytest.raises(ConfigError, match="another process is listening"):
        UnixSource(EventQueue(4), path).start()
    t0 = time.monotonic()
    src.stop()
    assert src.join(2) and time.monotonic() - t0 < 1.0
    assert not os.path.exists(path)


def test_unix_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    with pytest.raises(ConfigError, match="not a socket"):
        UnixSource(EventQueue(4), str(path)).start()
    assert path.read_text() == "keep me"


# --- file follow -----------------------------------------------------------------------

def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def follow(path, q, stopper, **kw) -> FileSource:
    src = FileSource(q, str(path), poll_interval_s=POLL, max_line_bytes=MAX, **kw)
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
    assert collect(q, 1, timeout=0.2) == []            # partial line is held back
    append(path, b':2}\n')
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
        (b'{"a":1}', False), (b"x" * MAX, True), (b'{"a":2}', False)]
    append(path, b"y" * 100)                            # oversize, still unfinished
    append(path, b"y" * 100 + b'\n{"a":3}\n')
    got = collect(q, 2)
    assert [(line.data, line.oversize) for line in got] == [(b"y" * MAX, True), (b'{"a":3}', False)]
    assert wait_for(lambda: src.oversize == 2)


def test_file_rotation_by_rename_and_new_file(tmp_path, stopper):
    path = tmp_path / "eve.json"
    path.write_bytes(b"")
    q = EventQueue(100)
    src = follow(path, q, stopper, rotate_wait_s=0.5)
    append(path, b'{"gen":1,"n":1}\n')
    assert datas(collect(q, 1)) == [b'{"gen":1,"n":1}']
    rotated = tmp_path / "eve.json.1"
    os.rename(path, rotated)
    append(rotated, b'{"gen":1,"n":2}\n')               # the writer has not reopened yet
    path.write_bytes(b'{"gen":2,"n":1}\n')              # new file: read from its beginning
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
    with open(path, "wb") as fh:                        # truncate in place (copytruncate)
        fh.write(b"")
    assert wait_for(lambda: src.truncations == 1)
    append(path, b'{"after":1}\n')
    assert datas(collect(q, 1)) == [b'{"after":1}']
    assert collect(q, 1, timeout=0.2) == []


def test_file_created_after_start(tmp_path, stopper):
    path = tmp_path / "later.json"
    q = EventQueue(100)
    src = follow(path, q, stopper)                      # start_at="end" does not apply to a new file
    time.sleep(0.1)
    path.write_bytes(b'{"first":1}\n{"first":2}\n')
    assert datas(collect(q, 2)) == [b'{"first":1}', b'{"first":2}']
    assert src.running


# --- lifecycle -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["stdin", "file", "tcp", "udp", "unix"])
def test_stop_is_prompt_and_idempotent(kind, tmp_path, stopper):
    q = EventQueue(2)
    cfgs = {"stdin": SourceConfig(type="stdin"),
            "file": SourceConfig(type="file", path=str(tmp_path / "f.json"), poll_interval_s=5.0),
            "tcp": SourceConfig(type="tcp", port=0),
            "udp": SourceConfig(type="udp", port=0),
            "unix": SourceConfig(type="unix", path=str(tmp_path / "s.sock"))}
    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb") as _writer:
        src = build_source(cfgs[kind], q, MAX, stdin=reader)
        stopper(src)
        src.start()
        conn = None
        if kind == "tcp":                   # an open, idle connection must not hold stop up
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


def test_stop_releases_a_source_blocked_on_a_full_queue(stopper):
    q = EventQueue(1)
    src = StdinSource(q, io.BytesIO(b"a\nb\nc\n"), max_line_bytes=MAX)
    stopper(src)
    src.start()
    assert wait_for(lambda: q.depth() == 1)
    time.sleep(0.05)
    assert src.running                                # blocked in put: back-pressure
    t0 = time.monotonic()
    src.stop()
    assert src.join(2) and time.monotonic() - t0 < 1.0
    assert src.lines == 3 and src.dropped == 2        # every line read is accounted for
    assert src.eof is False


def test_queue_bounds_bytes_as_well_as_events():
    q = EventQueue(1000, max_bytes=100)
    line = Line(b"x" * 40, "t")
    assert q.put(line, block=False) and q.put(line, block=False) and q.put(line, block=False)
    assert not q.put(line, block=False)          # 120 bytes queued >= 100: full by bytes
    assert q.depth() == 3
    assert len(q.get_batch(2, 0.0)) == 2
    assert q.put(line, block=False)              # room again
    assert q.put_many([line] * 5, stop=_set_event()) == 1   # 80 bytes queued: one more fits, then full
    big = EventQueue(1000, max_bytes=10)
    assert big.put(Line(b"y" * 50, "t"), block=False)       # an empty queue takes one oversized line


def _set_event():
    import threading
    e = threading.Event()
    e.set()
    return e


# --- feed_chunk: the buffer fast path frames exactly like feed_lines --------------------------

def _materialize(framed) -> list[tuple[bytes, bool]]:
    from jenga_edge.event_queue import Chunk
    if isinstance(framed, Chunk):
        import numpy as np

        from jenga_edge.event_queue import _spans
        spans = np.empty((framed.count, 2), dtype=np.int64)
        _spans(framed.buf, 0, framed.count, spans)
        return [(framed.buf[a:b], False) for a, b in spans.tolist()]
    data, oversize = framed
    return list(zip(data, oversize or [False] * len(data)))


@pytest.mark.parametrize("seed", range(6))
def test_feed_chunk_frames_like_feed_lines(seed):
    import random

    from jenga_edge import sources as sources_mod
    from jenga_edge.event_queue import Chunk
    if sources_mod._frame is None:
        pytest.skip("jenga_edge.native._fastjson is not built")
    rng = random.Random(seed)
    pieces = []
    for _ in range(300):
        n = rng.choice([MAX + 1, 3 * MAX]) if rng.random() < 0.02 else rng.choice([0, 1, 5, 40, MAX - 1, MAX])
        body = bytes(rng.choice(b"ab{}\":,\r") for _ in range(n))
        pieces.append(body + rng.choice([b"\n", b"\r\n", b"\n\n", b"\r\r\n"]))
    stream = b"".join(pieces) + b"tail-without-newline"
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    ref, fast = LineSplitter(MAX), LineSplitter(MAX)
    want, got, used_chunks = [], [], 0
    for c in chunks:
        want += ref.feed(c)
        framed = fast.feed_chunk(c)
        used_chunks += isinstance(framed, Chunk)
        got += _materialize(framed)
    want += ref.flush()
    got += fast.flush()
    assert got == want
    assert used_chunks > 0, "the buffer path was never taken"
