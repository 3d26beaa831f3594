"""What every source is: a thread that frames its input into lines for one queue.

A source reads in its own thread and hands each read's lines to the bounded
`EventQueue` (event_queue.py), framed by `LineSplitter` (framing.py); the
agent pulls micro-batches with `EventQueue.take`. Back-pressure sources
(stdin, file, TCP, unix) block on a full queue, so a slow consumer stops them
reading (TCP flow control pushes back on senders); UDP cannot push back, so a
full queue drops the datagram's lines and counts them in `dropped`.

Counters (read them any time; they only grow): ``lines`` handed off
(enqueued or dropped), ``oversize`` (of those, how many were oversize) and
``dropped`` (of those, how many were not enqueued), split by reason in
``drops``: ``queue_full`` (UDP on a full queue) and ``stop`` (read before the
drain deadline but not queued by then). So ``lines == enqueued + dropped`` for
every source. UDP adds ``drops["kernel"]``: datagrams the kernel dropped
before the source could read them (never read, so not in ``lines``).

Stop drains (`stop`): a source stops reading new input, then hands over what
it already holds (a listener: every open connection's partial line and its
kernel receive buffer, as it stood when the connection saw the stop) while the
agent keeps scoring, for at most `drain_s` seconds (`batching.drain_s`). At
that deadline (`abandon`) nothing blocks any more: what does not fit in the
queue is counted in ``drops["stop"]``, never lost silently.

Listeners bind to loopback unless another address is configured explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass
from typing import IO, Annotated

from ..contract.typed import Invalid, doc
from ..event_queue import OVERSIZE, Chunk, EventQueue
from ..framing import Framed, LineSplitter, check_max_line_bytes
from ..kinds import TaggedConfig

log = logging.getLogger("jenga_edge.sources")

READ_CHUNK = 64 * 1024
POLL_S = 0.2  # how often blocked loops look at their stop flag
DRAIN_S = 5.0  # at stop, how long a source keeps handing over what it holds (batching.drain_s)


class SourceConfig(TaggedConfig, kw_only=True):
    """Base of every source kind's Config."""


class AddressConfig(SourceConfig, kw_only=True):
    """What the network sources (tcp, udp) share: where they listen."""

    host: Annotated[str, doc("the IP address to listen on; loopback unless you mean to expose it")] = "127.0.0.1"
    port: Annotated[int, doc("the port (0: any free port)", ge=0, le=65535)]

    def __post_init__(self) -> None:
        try:
            check_host(self.host)
        except ValueError as exc:
            raise Invalid("host", str(exc)) from None


@dataclass
class SourceContext:
    """What `build` gets besides the config."""

    queue: EventQueue
    max_line_bytes: int
    stdin: IO[bytes] | None = None  # replaces sys.stdin.buffer (tests, embedding)
    drain_s: float = DRAIN_S
    reuse_port: bool = False  # one of several workers: TCP/UDP listeners share the port (SO_REUSEPORT)


class Source:
    """Common lifecycle and counters. A kind implements `_run` (the thread) and
    may implement `_open` (runs in `start`, may raise ConfigError), `_wake`
    (unblock `_run` promptly on stop) and `origin` (where its lines come from)."""

    def __init__(self, config: SourceConfig, queue: EventQueue, max_line_bytes: int):
        self.config = config
        self.queue = queue
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self.lines = 0
        self.oversize = 0
        self.cut = 0  # partial lines cut (as oversize): past their stream's share of the byte budget
        self.drops = {"queue_full": 0, "stop": 0}  # lines not enqueued, by reason (UDP adds "kernel")
        self.drain_s = DRAIN_S  # build_source sets batching.drain_s
        self.eof = False  # an input that ends (stdin) sets it after its last line is queued
        # Why the source cannot read its input now (a followed file is missing), or None.
        # The agent polls it: counted in jenga_sources_waiting and logged, never silent.
        self.waiting: str | None = None
        self._stop = threading.Event()
        self._abandon = threading.Event()  # the drain deadline passed: give up blocked hand-overs
        self._abandon_timer: threading.Timer | None = None
        self._counter_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Lines read but not enqueued (``lines == enqueued + dropped``)."""
        return self.drops["queue_full"] + self.drops["stop"]

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def origin(self) -> str:
        """Names this source in alerts and dead letters, e.g. tcp:127.0.0.1:5514."""
        return self.kind

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "lines": self.lines,
            "oversize": self.oversize,
            "dropped": self.dropped,
            "drops": dict(self.drops),
            "eof": self.eof,
        }

    def connection_counts(self) -> dict[str, int]:
        """A listener's connection events so far (accepted, rejected, evicted, idle_closed)."""
        return {}

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.origin}: already started")
        if self._stop.is_set():
            raise RuntimeError(f"{self.origin}: stopped sources cannot be restarted")
        self._open()
        self._thread = threading.Thread(target=self._guarded_run, name=f"jenga-src-{self.origin}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading new input and accepting connections promptly, then drain
        what is held for at most `drain_s` (then `abandon`); idempotent."""
        if self._stop.is_set():
            return
        self._begin_drain()
        self._wake()
        self.queue.interrupt()

    def _begin_drain(self) -> None:
        """Mark the source stopped and arm the drain deadline: `abandon` after drain_s
        (at once when it is 0)."""
        self._stop.set()
        if self.drain_s > 0:
            self._abandon_timer = threading.Timer(self.drain_s, self.abandon)
            self._abandon_timer.daemon = True
            self._abandon_timer.start()
        else:
            self._abandon.set()

    def abandon(self) -> None:
        """The drain deadline: hand-overs stop waiting for room in the queue;
        what does not fit is counted in ``drops["stop"]``."""
        self._abandon.set()
        self.queue.interrupt()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the source's threads; True if they all finished."""
        done = self._join_threads(timeout)
        if done and self._abandon_timer is not None:
            self._abandon_timer.cancel()  # drained before the deadline
        return done

    def _join_threads(self, timeout: float | None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- for kinds

    def _open(self) -> None:
        pass

    def _wake(self) -> None:
        pass

    def _run(self) -> None:
        raise NotImplementedError

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("%s: source thread failed", self.origin)

    def _feed(self, splitter: LineSplitter, data: bytes) -> int:
        """Frame `data` and hand its lines over (blocking); returns how many
        complete lines within the limit it held (a listener's measure of
        activity: bytes that complete no line are not). The partial line the
        splitter keeps counts against the queue's byte budget (queue_bytes, see
        EventQueue.reserve): while queued lines fill it, this waits (the source
        stops reading); a line past its stream's share of it is cut: handed over
        as an oversize line (rejected, reason oversize) and its remainder
        skipped, so peers holding lines open cannot hold memory."""
        framed = splitter.feed(data)
        complete = _complete(framed)
        grow = splitter.pending - splitter.reserved
        if grow > 0 and not self.queue.reserve(grow, splitter.reserved, self._abandon):
            self._emit(framed)
            framed = splitter.cut()
            with self._counter_lock:
                self.cut += 1
            grow = -splitter.reserved
        if grow < 0:
            self.queue.release(-grow, splitter.pending)
        splitter.reserved += grow
        self._emit(framed)
        return complete

    def _finish(self, splitter: LineSplitter, cut_off: bool = False) -> None:
        """End a stream: its partial line, if any, is handed over as a line
        (flagged PARTIAL if `cut_off`: its newline never came, and it is no
        event unless it decodes whole; a listener's connections)."""
        self._unreserve(splitter)
        self._emit(splitter.flush(cut_off))

    def _unreserve(self, splitter: LineSplitter) -> None:
        self.queue.release(splitter.reserved, 0)
        splitter.reserved = 0

    def _emit(self, framed: Chunk | Framed, block: bool = True) -> None:
        """Hand a read's lines to the queue as one block (blocking while it is
        full, until the drain deadline once stopped; unless `block` is False:
        then what does not fit is dropped, reason queue_full)."""
        reason = "stop" if block else "queue_full"
        if isinstance(framed, Chunk):
            if not framed.count:
                return
            ok = self.queue.put_chunk(framed, self.origin, block=block, stop=self._abandon)
            with self._counter_lock:
                self.lines += framed.count
                self.drops[reason] += framed.count - ok
            return
        data, oversize = framed
        if not data:
            return
        ok = self.queue.put_lines(data, self.origin, oversize, block=block, stop=self._abandon)
        with self._counter_lock:
            self.lines += len(data)
            self.oversize += oversize.count(OVERSIZE) if oversize is not None else 0
            self.drops[reason] += len(data) - ok


def _complete(framed: Chunk | Framed) -> int:
    """Lines in `framed` that ended with a newline within the limit (not cut, not oversize)."""
    if isinstance(framed, Chunk):
        return framed.count
    data, oversize = framed
    return len(data) - (sum(map(bool, oversize)) if oversize is not None else 0)


def check_host(host: str) -> str:
    """`host` must be an IP address (no names: a listener binds where it is told)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address such as 127.0.0.1 or ::1, got {host!r}") from None
    return host


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
