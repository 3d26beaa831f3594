"""Lines between workers: the mesh of AF_UNIX socket pairs that carries an event from the
worker that read it to the worker that owns its key (sharding.py, workers.py).

One stream socket pair per pair of workers, created by the supervisor before it
forks. A message is a header (payload bytes, line count, origin bytes, flags), the
origin of the lines (the source that read them), and the lines, each ending with a
newline; flags PARTIAL: the lines are a connection's last bytes without their
newline (the decoder rejects them as partial_line unless they decode whole).

Sending (`Link.send`, on the worker's scoring thread) never blocks for long: the
socket is non-blocking, and while it is full the sender serves its own inbox
(`on_wait`: scoring lines other workers sent, which are never sent on), so two
workers sending to each other cannot wait on each other for ever; a send that
still makes no progress for SEND_TIMEOUT_S gives up: its lines are dropped and
counted (``drops["exchange"]``), and the link to that worker is closed (the
peer's reader counts a message it got only part of as dropped too).

Receiving (`Link`, a Source): a thread reads the peer's messages into the worker's
inbox queue (blocking while it is full: back-pressure to the sender). A worker
that will send nothing more (its own sources are done and its queue is empty)
shuts its sending side: the peer reads the end and its inbox source ends (`eof`),
so at a stop each worker scores everything its peers forwarded before it exits.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from .event_queue import PARTIAL, Batch, Chunk, EventQueue
from .sources.base import POLL_S, READ_CHUNK, Source, SourceConfig

HEADER = struct.Struct("<IIHB")  # payload bytes, lines, origin bytes, flags
FLAG_PARTIAL = 1
SEND_TIMEOUT_S = 10.0  # a peer that takes nothing for this long is gone or stuck
WAIT_S = 0.01  # while a send waits for room: how often the inbox is served
ORIGIN = "exchange"


class LinkConfig(SourceConfig, tag="exchange", kw_only=True):
    """The inbox from one peer worker (not a config file kind: workers.py builds it)."""


def message(lines: Sequence[bytes], origin: str, partial: bool = False) -> bytes:
    """One message: header, origin, lines each followed by a newline."""
    payload = b"\n".join(lines) + b"\n"
    name = origin.encode("utf-8", "replace")[:65535]
    return HEADER.pack(len(payload), len(lines), len(name), FLAG_PARTIAL if partial else 0) + name + payload


class Link(Source):
    """The exchange with one peer worker: its inbox (a source thread) and the sending side."""

    def __init__(self, peer: int, sock: socket.socket, inbox: EventQueue, max_line_bytes: int):
        super().__init__(LinkConfig(), inbox, max_line_bytes)
        self.peer, self.sock = peer, sock
        self.drops["exchange"] = 0  # forwarded lines that never reached a queue (either side counts its own)
        self.sent_lines = 0
        self.received_lines = 0
        self._out_open = True
        self._buf = bytearray()

    @property
    def origin(self) -> str:
        return f"{ORIGIN}:w{self.peer}"

    # ------------------------------------------------------------ sending
    def send(self, data: bytes, lines: int, on_wait: Callable[[], None]) -> bool:
        """Send one message (`lines` lines); while the socket is full, call `on_wait`. False
        (the lines counted as dropped) when the link is closed or stays full SEND_TIMEOUT_S."""
        if not self._out_open:
            self._dropped(lines)
            return False
        view, sent, last = memoryview(data), 0, time.monotonic()
        while sent < len(data):
            try:
                sent += self.sock.send(view[sent:], socket.MSG_DONTWAIT)
                last = time.monotonic()
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the peer is gone (EPIPE, ECONNRESET)
                break
            if time.monotonic() - last >= SEND_TIMEOUT_S:
                break
            on_wait()  # score what peers sent us, so that they can take what we send
            _writable(self.sock, WAIT_S)
        if sent == len(data):
            self.sent_lines += lines
            return True
        self.close_sending()
        if sent < HEADER.size:  # the peer saw no header: the lines are ours to count
            self._dropped(lines)
        return False  # else the peer counts the message it got only part of

    def _dropped(self, n: int) -> None:
        with self._counter_lock:
            self.lines += n
            self.drops["exchange"] += n

    def close_sending(self) -> None:
        """Nothing more will be sent: the peer's inbox source reads the end."""
        if self._out_open:
            self._out_open = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    # ------------------------------------------------------------ receiving
    def stop(self) -> None:
        """A stop does not end the inbox: the peer's end does (it sends all it forwards
        first), or the drain deadline (`abandon`)."""
        if not self._stop.is_set():
            self._begin_drain()

    def _run(self) -> None:
        # The receiving side only: the peer's end says nothing about what this worker
        # still has to send it (the scoring thread closes the sending side).
        self.sock.settimeout(POLL_S)
        while not self._abandon.is_set():
            try:
                data = self.sock.recv(READ_CHUNK * 4)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                self._end()
                self.eof = True
                return
            self._buf += data
            self._deliver()
        self._give_up()

    def _deliver(self) -> None:
        buf, at = self._buf, 0
        while len(buf) - at >= HEADER.size:
            size, count, olen, flags = HEADER.unpack_from(buf, at)
            end = at + HEADER.size + olen + size
            if len(buf) < end:
                break
            origin = bytes(buf[at + HEADER.size : at + HEADER.size + olen]).decode("utf-8", "replace")
            payload = bytes(buf[at + HEADER.size + olen : end])
            self._put(payload, count, f"{ORIGIN}:w{self.peer}:{origin}", flags)
            at = end
        del buf[:at]

    def _put(self, payload: bytes, count: int, origin: str, flags: int) -> None:
        if flags & FLAG_PARTIAL:
            data = payload.split(b"\n")[:-1]
            ok = self.queue.put_lines(data, origin, [PARTIAL] * len(data), stop=self._abandon)
        else:
            ok = self.queue.put_chunk(Chunk(payload, count), origin, stop=self._abandon)
        with self._counter_lock:
            self.lines += count
            self.received_lines += count
            self.drops["exchange"] += count - ok

    def _end(self) -> None:
        """The peer's end: a message it sent only part of is counted as dropped."""
        if len(self._buf) >= HEADER.size:
            self._dropped(HEADER.unpack_from(self._buf, 0)[1])
        self._buf.clear()

    def _give_up(self) -> None:
        """The drain deadline passed before the peer's end: what the socket holds now is
        read and counted as dropped (its messages' line counts), never lost silently."""
        self.sock.setblocking(False)
        for _ in range(1024):  # bounded: a peer that keeps sending cannot hold the stop up
            try:
                data = self.sock.recv(READ_CHUNK * 4)
            except OSError:
                break
            if not data:
                break
            self._buf += data
        buf, at = self._buf, 0
        while len(buf) - at >= HEADER.size:
            size, count, olen, _ = HEADER.unpack_from(buf, at)
            self._dropped(count)
            at += HEADER.size + olen + size
        self._buf.clear()


class MergedQueue:
    """What a worker's scoring loop takes from: its inbox (lines peers routed to it) first,
    then its sources' queue. A batch comes from one of the two, never both: an inbox
    batch is scored as it is, a sources' batch is routed first (workers.py)."""

    def __init__(self, sources: EventQueue, inbox: EventQueue, on_take: Callable[[], None]):
        self.sources, self.inbox, self.on_take = sources, inbox, on_take

    def take(self, max_items: int, timeout_s: float) -> Batch:
        self.on_take()
        if self.inbox.depth():
            return self.inbox.take(max_items, 0.0)
        return self.sources.take(max_items, min(timeout_s, POLL_S))

    def depth(self) -> int:
        return self.sources.depth() + self.inbox.depth()

    def wait_nonempty(self, timeout_s: float) -> bool:
        # The inbox has no wake-up of its own into the sources' queue: look at it every
        # WAIT_S while idle (cheap; a busy loop never waits here).
        deadline = time.monotonic() + timeout_s
        while True:
            if self.inbox.depth():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.sources.wait_nonempty(min(left, WAIT_S)):
                return True

    def __getattr__(self, name: str) -> Any:  # the rest (close, interrupt, ...) is the sources' queue's
        return getattr(self.sources, name)


def is_inbox_batch(batch: Batch) -> bool:
    return batch.origins[0][0].startswith(ORIGIN + ":")


def _writable(sock: socket.socket, timeout: float) -> None:
    try:
        p = select.poll()
        p.register(sock, select.POLLOUT)
        p.poll(timeout * 1000.0)
    except (OSError, ValueError):
        time.sleep(timeout)
