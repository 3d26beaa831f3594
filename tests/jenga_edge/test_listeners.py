"""Hostile or careless peers on the stream listeners (issue 11, item 8): byte-at-a-time
lines, partial lines held against the queue's byte budget, idle connections and the
connection limit. Real loopback sockets; every wait is bounded."""

from __future__ import annotations

import pytest

from jenga_edge.event_queue import Chunk
from jenga_edge.framing import LineSplitter


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
