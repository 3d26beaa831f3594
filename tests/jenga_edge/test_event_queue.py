"""Tests for jenga_edge/event_queue.py: blocks in, parallel-list batches out.

(The queue's blocking, back-pressure and shutdown behaviour one line at a
time, and through the sources, is covered in test_sources.py.)
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from jenga_edge import event_queue
from jenga_edge.event_queue import Batch, Chunk, EventQueue, Line, Lines


def lines(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def test_take_spans_blocks_keeps_order_and_origin_runs():
    q = EventQueue(100)
    assert q.put_lines(lines("a", 3), "tcp:1") == 3
    assert q.put_lines(lines("b", 4), "tcp:1") == 4
    assert q.put_lines(lines("c", 2), "udp:2") == 2
    b = q.take(5, 0.0)
    assert b.data == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert b.origins == [("tcp:1", 5)] and b.oversize is None
    b = q.take(10, 0.0)
    assert b.data == [b"b2", b"b3", b"c0", b"c1"]
    assert b.origins == [("tcp:1", 2), ("udp:2", 2)]
    assert [b.origin_of(i) for i in range(4)] == ["tcp:1", "tcp:1", "udp:2", "udp:2"]
    assert q.depth() == 0 and not q.take(4, 0.0)


def test_oversize_flags_line_up_across_blocks():
    q = EventQueue(100)
    q.put_lines(lines("a", 2), "s")
    q.put_lines(lines("b", 3), "s", [False, True, False])
    q.put_lines(lines("c", 2), "s", [False, False])  # no flag set: stored as None
    b = q.take(100, 0.0)
    assert b.oversize == [False, False, False, True, False, False, False]
    assert b[3] == Line(b"b1", "s", True) and b[0] == Line(b"a0", "s", False)
    assert [b[i] for i in range(len(b))] == [Line(d, "s", i == 3) for i, d in enumerate(b.data)]


def test_partial_take_of_a_flagged_block():
    q = EventQueue(100)
    q.put_lines(lines("x", 4), "s", [True, False, False, True])
    first, second = q.take(3, 0.0), q.take(3, 0.0)
    assert first.oversize == [True, False, False] and second.oversize == [True]
    assert list(first.data) + list(second.data) == lines("x", 4)


def test_count_and_byte_bounds_split_a_block():
    q = EventQueue(5)
    assert q.put_lines(lines("a", 8), "s", block=False) == 5  # no room for the rest: not blocking
    assert q.depth() == 5
    q2 = EventQueue(100, max_bytes=10)
    assert q2.put_lines([b"12345", b"67890", b"abc"], "s", block=False) == 2
    assert q2.put_lines([b"x" * 50], "s", block=False) == 0  # full by bytes
    q2.take(10, 0.0)
    assert q2.put_lines([b"x" * 50], "s", block=False) == 1  # one big line still enters an empty queue


def test_blocked_producer_resumes_when_the_agent_takes():
    q = EventQueue(4)
    done = []
    t = threading.Thread(target=lambda: done.append(q.put_lines(lines("a", 10), "s")))
    t.start()
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 10 and time.monotonic() < deadline:
        got += q.take(3, 0.05).data
    t.join(5)
    assert done == [10] and got == lines("a", 10)


def test_stop_event_ends_a_blocked_producer_with_the_count_enqueued():
    q, stop = EventQueue(3), threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.append(q.put_lines(lines("a", 10), "s", stop=stop)))
    t.start()
    time.sleep(0.1)
    stop.set()
    q.interrupt()
    t.join(5)
    assert result == [3] and q.depth() == 3


def test_take_waits_for_batch_mates_at_most_max_wait():
    q = EventQueue(100)
    q.put_lines([b"first"], "s")
    t0 = time.monotonic()
    b = q.take(10, 0.15)
    assert b.data == [b"first"] and 0.1 <= time.monotonic() - t0 < 1.0


def test_take_on_a_closed_empty_queue_returns_at_once():
    q = EventQueue(10)
    q.close()
    t0 = time.monotonic()
    assert len(q.take(10, 5.0)) == 0 and time.monotonic() - t0 < 1.0
    assert q.put_lines([b"x"], "s") == 0


def test_batch_of_lines_round_trips():
    src = [Line(b"a", "tcp:1"), Line(b"b", "tcp:1", True), Line(b"c", "udp:2")]
    q = EventQueue(10)
    for ln in src:  # one line at a time, as the sources' put did
        assert q.put_lines([ln.data], ln.origin, [ln.oversize]) == 1
    b = q.take(10, 0.0)
    assert b.data == [b"a", b"b", b"c"] and b.oversize == [False, True, False]
    assert b.origins == [("tcp:1", 2), ("udp:2", 1)] and [b[i] for i in range(len(b))] == src
    with pytest.raises(IndexError):
        b.origin_of(3)
    with pytest.raises(IndexError):
        b[3]
    # The same batch built directly (how the agent's tests and callers make one).
    direct = Batch([b"a", b"b", b"c"], [False, True, False], [("tcp:1", 2), ("udp:2", 1)])
    assert [direct[i] for i in range(len(direct))] == src and direct.oversize == [False, True, False]
    plain = Batch([b"x", b"y"], [False, False])
    assert plain.oversize is None and plain.oversize_flags() == []  # no flag set: stored as None
    assert plain.origins == [("unknown", 2)] and plain[1] == Line(b"y", "unknown", False)
    assert not Batch([]) and len(Batch([])) == 0


def test_take_rejects_a_zero_batch():
    with pytest.raises(ValueError):
        EventQueue(1).take(0, 0.0)


# --- chunks: a read's lines left in one buffer -------------------------------------------------

needs_c = pytest.mark.skipif(event_queue._spans is None, reason="jenga_edge.native._fastjson is not built")


def chunk_of(lines_: list[bytes], ending: bytes = b"\n") -> Chunk:
    return Chunk(b"".join(ln + ending for ln in lines_), len(lines_))


@needs_c
def test_chunks_and_line_blocks_mix_in_one_batch():
    q = EventQueue(100)
    q.put_lines([b"l0", b"l1"], "udp:1", [False, True])
    assert q.put_chunk(Chunk(b"c0\r\n\nc1\n\r\nc2\n", 3), "tcp:2") == 3
    q.put_lines([b"l2"], "udp:1")
    b = q.take(100, 0.0)
    assert list(b.data) == [b"l0", b"l1", b"c0", b"c1", b"c2", b"l2"]
    assert b.oversize == [False, True, False, False, False, False]
    assert b.origins == [("udp:1", 2), ("tcp:2", 3), ("udp:1", 1)]
    assert b[3] == Line(b"c1", "tcp:2", False)
    assert q.depth() == 0 and q._bytes == 0


@needs_c
def test_a_chunk_is_taken_in_parts_at_line_boundaries():
    q = EventQueue(100)
    src = [b"x%d" % i * (i + 1) for i in range(10)]
    q.put_chunk(chunk_of(src), "s")
    parts = [q.take(3, 0.0) for _ in range(4)]
    assert [len(p) for p in parts] == [3, 3, 3, 1]
    assert [line for p in parts for line in p.data] == src
    assert q._bytes == 0


@needs_c
def test_a_chunk_is_cut_to_the_count_and_byte_bounds():
    q = EventQueue(4)
    assert q.put_chunk(chunk_of(lines("a", 10)), "s", block=False) == 4
    assert q.depth() == 4 and q.put_chunk(chunk_of([b"z"]), "s", block=False) == 0
    assert list(q.take(10, 0.0).data) == lines("a", 4)
    q2 = EventQueue(100, max_bytes=10)
    assert q2.put_chunk(chunk_of([b"1234", b"5678", b"9abc"]), "s", block=False) == 2  # 5 + 5 bytes
    assert q2.put_chunk(chunk_of([b"x" * 50]), "s", block=False) == 0
    assert list(q2.take(10, 0.0).data) == [b"1234", b"5678"]
    assert q2.put_chunk(chunk_of([b"x" * 50]), "s", block=False) == 1  # one big line into an empty queue


@needs_c
def test_a_blocked_chunk_producer_resumes_without_loss():
    q = EventQueue(5)
    src = lines("a", 40)
    done = []
    t = threading.Thread(target=lambda: done.append(q.put_chunk(chunk_of(src), "s")))
    t.start()
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(got) < 40 and time.monotonic() < deadline:
        got += list(q.take(3, 0.05).data)
    t.join(5)
    assert done == [40] and got == src


def test_lines_index_iterate_and_compare():
    buf = b"aa\nbbb\nc\n"
    spans = np.array([[0, 2], [3, 6], [7, 8]], dtype=np.int64)
    ln = Lines([[b"x"], (buf, spans), [], [b"y", b"z"]])
    assert len(ln) == 6 and list(ln) == [b"x", b"aa", b"bbb", b"c", b"y", b"z"]
    assert ln[2] == b"bbb" and ln[-1] == b"z" and ln[1:3] == [b"aa", b"bbb"]
    assert ln == [b"x", b"aa", b"bbb", b"c", b"y", b"z"]
    with pytest.raises(IndexError):
        ln[6]


@pytest.mark.parametrize("bound", ["bytes", "count"])
def test_a_queue_filled_by_a_non_blocking_producer_wakes_the_consumer_at_once(bound):
    # UDP offers without blocking: when the queue fills before the consumer's
    # batch does, the consumer must drain it now, not at its max_wait deadline,
    # or every datagram offered meanwhile is dropped.
    q = EventQueue(8192, 64 * 1024) if bound == "bytes" else EventQueue(10)
    line = b"x" * (6000 if bound == "bytes" else 10)  # the queue holds ~11 (or 10) of them
    received, stop = [0], threading.Event()

    def consume():
        while not stop.is_set() or q.depth():
            received[0] += len(q.take(256, 2.0))

    consumer = threading.Thread(target=consume)
    consumer.start()
    dropped = 0
    for _ in range(300):
        dropped += 1 - q.put_lines([line], "udp", block=False)
        time.sleep(0.0005)
    stop.set()
    consumer.join(10)
    assert received[0] + dropped == 300
    assert dropped < 30, f"{dropped} of 300 dropped while the consumer slept with a full queue"


def test_python_spans_match_the_c_ones():
    buf = b"a\r\n\nbb\n\r\n ccc \n\r\r\nz"
    want = np.empty((4, 2), dtype=np.int64)
    end = event_queue._spans_py(buf, 0, 4, want)
    assert [buf[a:b] for a, b in want.tolist()] == [b"a", b"bb", b" ccc ", b"\r"] and end == len(buf) - 1
    if event_queue._native is not None:
        got = np.empty((4, 2), dtype=np.int64)
        assert event_queue._native.spans(buf, 0, 4, got) == end and got.tolist() == want.tolist()
    with pytest.raises(ValueError):
        event_queue._spans_py(buf, 0, 5, np.empty((5, 2), dtype=np.int64))
