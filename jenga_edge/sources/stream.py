"""A listening stream socket, one thread per connection: what TCP and unix sources share.

What a peer cannot do to a listener:

* hold every slot: at most `max_connections` are open. When all are, a new
  connection takes the place of the one idle longest, if that one has sent
  nothing for `EVICT_IDLE_S` (it is closed: ``evicted``); otherwise the
  newcomer is accepted and closed at once (``rejected``), so it learns right
  away instead of waiting in the backlog. A connection that sends nothing for
  `idle_timeout_s` is closed (``idle_closed``). The agent counts all three in
  `jenga_connections_total` and logs them, rate-limited.
* lose acknowledged data at stop: the listener stops accepting (connections
  the kernel had already completed are still taken from the backlog), and
  each connection hands over its partial line and what its kernel receive
  buffer held when it saw the stop, within the drain deadline (base.py).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import POLL_S, READ_CHUNK, Source, SourceConfig, log

EVICT_IDLE_S = 1.0  # a full listener closes a connection idle this long to admit a new one
MAX_CONNECTIONS_DOC = (
    "open connections at most; when all are open, a new one replaces the connection idle longest "
    "(if idle for 1 s or more) or is closed at once"
)
IDLE_TIMEOUT_DOC = "close a connection that sends nothing for this long, in seconds (0: never)"


class _Conn:
    """One accepted connection: its socket, its thread, and when it last sent data."""

    __slots__ = ("busy", "evict", "last", "sock", "thread")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.last = time.monotonic()  # when it last sent data (or was accepted)
        self.busy = False  # handing a read over to the queue: not idle, whatever `last` says
        self.evict = False  # closed to make room for a new connection


class StreamListener(Source):
    """Accepts up to `max_connections` at a time, frames each connection's
    lines, and pushes back through blocking puts (TCP flow control stalls the
    sender while the queue is full). A kind binds the socket in `_open` and
    hands it to `_listen`."""

    def __init__(
        self,
        config: SourceConfig,
        queue: EventQueue,
        max_line_bytes: int,
        max_connections: int,
        idle_timeout_s: float = 0.0,
    ):
        super().__init__(config, queue, max_line_bytes)
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.connections = 0  # accepted in total
        self.rejected = 0  # closed at once: max_connections were open, none idle enough to evict
        self.evicted = 0  # closed to admit a new connection (idle >= EVICT_IDLE_S)
        self.idle_closed = 0  # closed after idle_timeout_s without data
        self._sock: socket.socket | None = None
        self._conns: dict[socket.socket, _Conn] = {}
        self._conns_lock = threading.Lock()

    @property
    def running(self) -> bool:
        with self._conns_lock:
            serving = bool(self._conns)
        return super().running or serving

    @property
    def open_connections(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def connection_counts(self) -> dict[str, int]:
        return {
            "accepted": self.connections,
            "rejected": self.rejected,
            "evicted": self.evicted,
            "idle_closed": self.idle_closed,
        }

    def stats(self) -> dict[str, object]:
        return {**super().stats(), **self.connection_counts()}

    def _listen(self, sock: socket.socket) -> None:
        sock.listen(min(128, max(8, self.max_connections)))
        sock.settimeout(POLL_S)
        self._sock = sock

    def _join_threads(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        done = super()._join_threads(timeout)
        with self._conns_lock:
            threads = [c.thread for c in self._conns.values() if c.thread is not None]
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            done = done and not t.is_alive()
        return done

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while not self._stop.is_set():
                try:
                    conn, _peer = sock.accept()
                except (TimeoutError, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.warning("%s: accept failed (%s)", self.origin, exc)
                    self._stop.wait(POLL_S)
                    continue
                self._admit(conn)
            self._accept_backlog(sock)
        finally:
            sock.close()
            self._closed_listener()

    def _accept_backlog(self, sock: socket.socket) -> None:
        """At stop: connections the kernel completed before it may have sent data
        that TCP already acknowledged; take them (they drain at once)."""
        sock.setblocking(False)
        for _ in range(self.max_connections):
            try:
                conn, _peer = sock.accept()
            except OSError:
                return
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        with self._conns_lock:
            if sum(not c.evict for c in self._conns.values()) >= self.max_connections:
                victim = self._idlest()
                if victim is None:
                    self.rejected += 1
                    conn.close()
                    return
                victim.evict = True  # its thread drains and closes it within POLL_S
                self.evicted += 1
            self.connections += 1
            c = _Conn(conn)
            c.thread = threading.Thread(target=self._serve, args=(c,), daemon=True, name=f"jenga-conn-{self.origin}")
            self._conns[conn] = c
        c.thread.start()

    def _idlest(self) -> _Conn | None:
        """The connection idle longest, if it has been idle EVICT_IDLE_S (lock held)."""
        now = time.monotonic()
        idle = [c for c in self._conns.values() if not c.evict and not c.busy and now - c.last >= EVICT_IDLE_S]
        return min(idle, key=lambda c: c.last) if idle else None

    def _closed_listener(self) -> None:
        pass

    def _serve(self, c: _Conn) -> None:
        conn = c.sock
        splitter = LineSplitter(self.max_line_bytes)
        try:
            conn.settimeout(POLL_S)
            while not (self._stop.is_set() or c.evict):
                try:
                    data = conn.recv(READ_CHUNK)
                except TimeoutError:
                    if self.idle_timeout_s and time.monotonic() - c.last >= self.idle_timeout_s:
                        with self._counter_lock:
                            self.idle_closed += 1
                        break
                    continue
                except OSError:
                    break
                if not data:
                    break
                # Blocks while the queue is full: we stop reading, the kernel
                # buffers fill and TCP flow control stalls the sender.
                c.busy = True
                self._feed(splitter, data)
                c.last, c.busy = time.monotonic(), False
            else:
                self._drain(conn, splitter)
            self._finish(splitter)
        except Exception:  # noqa: BLE001
            log.exception("%s: connection handler failed", self.origin)
        finally:
            self._unreserve(splitter)  # after a failure too: the budget is shared
            conn.close()
            with self._conns_lock:
                self._conns.pop(conn, None)

    def _drain(self, conn: socket.socket, splitter: LineSplitter) -> None:
        """Stopped (or evicted): read what the kernel holds for this connection
        now, without waiting for more. Hand-overs block until the drain deadline;
        after it what does not fit is counted (drops["stop"])."""
        held = _held_bytes(conn)
        conn.setblocking(False)
        while held > 0:
            try:
                data = conn.recv(min(READ_CHUNK, held))
            except OSError:  # BlockingIOError: nothing more; or the peer reset it
                return
            if not data:
                return
            held -= len(data)
            self._feed(splitter, data)


def _held_bytes(conn: socket.socket) -> int:
    """Bytes waiting in the socket's receive queue (FIONREAD); where that cannot
    be asked, the receive buffer's size, which bounds them."""
    try:
        import fcntl
        import termios

        return int(struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0])
    except (ImportError, AttributeError, OSError):
        try:
            return conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:
            return 0
