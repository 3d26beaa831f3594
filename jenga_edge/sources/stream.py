"""A listening stream socket, one thread per connection: what TCP and unix sources share.

What a peer cannot do to a listener:

* hold every slot: at most `max_connections` are open. A connection is idle
  while it completes no line: bytes that end no line (a drip of spaces) are
  not activity, so a peer cannot keep a slot by trickling them. When all
  slots are open, a new connection takes the place of the one whose last
  complete line (or accept) is oldest, if that is `EVICT_IDLE_S` ago (it is
  closed: ``evicted``): a client that sends events wins over one that does
  not. Otherwise the newcomer is accepted and closed at once (``rejected``),
  so it learns right away instead of waiting in the backlog. A connection
  idle for `idle_timeout_s` is closed (``idle_closed``).
* hold every slot from one address (TCP): a peer IP holds at most
  `max_connections_per_peer`; its newcomer beyond that replaces its own
  connection idle longest (``evicted``) or is closed at once
  (``peer_limit``). The agent counts all four in `jenga_connections_total`
  and logs them, rate-limited.
* lose acknowledged data at stop: the listener stops accepting (connections
  the kernel had already completed are still taken from the backlog), and
  each connection hands over its partial line and what its kernel receive
  buffer held when it saw the stop, within the drain deadline (base.py).
  A connection the listener ends (stop, eviction, idle timeout) hands over
  what it held the same way. However a connection ends, its last bytes
  without a newline are flagged PARTIAL: the decoder rejects them as
  ``partial_line``, not ``bad_json``, unless they are a whole event.
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
    "(no complete line for 1 s or more) or is closed at once"
)
IDLE_TIMEOUT_DOC = (
    "close a connection that completes no line for this long, in seconds (0: never); "
    "bytes that end no line do not count"
)


class _Conn:
    """One accepted connection: its socket, its thread, its peer, and when it last completed a line."""

    __slots__ = ("busy", "evict", "last", "peer", "sock", "thread")

    def __init__(self, sock: socket.socket, peer: str | None):
        self.sock = sock
        self.peer = peer  # what max_connections_per_peer counts by (None: not counted)
        self.thread: threading.Thread | None = None
        self.last = time.monotonic()  # when it last completed a line (or was accepted)
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
        max_per_peer: int = 0,
    ):
        super().__init__(config, queue, max_line_bytes)
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.max_per_peer = max_per_peer  # 0: no cap
        self.connections = 0  # accepted in total
        self.rejected = 0  # closed at once: max_connections were open, none idle enough to evict
        self.evicted = 0  # closed to admit a new connection (idle >= EVICT_IDLE_S)
        self.idle_closed = 0  # closed after idle_timeout_s without a complete line
        self.peer_limited = 0  # closed at once: its peer held max_per_peer, none idle enough to evict
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
            "peer_limit": self.peer_limited,
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
                    conn, peer = sock.accept()
                except (TimeoutError, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.warning("%s: accept failed (%s)", self.origin, exc)
                    self._stop.wait(POLL_S)
                    continue
                self._admit(conn, self._peer_key(peer))
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
                conn, peer = sock.accept()
            except OSError:
                return
            self._admit(conn, self._peer_key(peer))

    def _peer_key(self, peer: object) -> str | None:
        """What max_per_peer counts connections by (TCP: the peer's IP); None: no cap."""
        return None

    def _admit(self, conn: socket.socket, peer: str | None) -> None:
        with self._conns_lock:
            live = [c for c in self._conns.values() if not c.evict]
            if self.max_per_peer and peer is not None:
                own = [c for c in live if c.peer == peer]
                if len(own) >= self.max_per_peer and not self._evict_idlest(own, live):
                    self.peer_limited += 1
                    conn.close()
                    return
            if len(live) >= self.max_connections and not self._evict_idlest(live, live):
                self.rejected += 1
                conn.close()
                return
            self.connections += 1
            c = _Conn(conn, peer)
            c.thread = threading.Thread(target=self._serve, args=(c,), daemon=True, name=f"jenga-conn-{self.origin}")
            self._conns[conn] = c
        c.thread.start()

    def _evict_idlest(self, among: list[_Conn], live: list[_Conn]) -> bool:
        """Mark for closing the one of `among` whose last complete line is oldest, if
        that is EVICT_IDLE_S ago, and drop it from `live`; False if none is (lock held)."""
        now = time.monotonic()
        idle = [c for c in among if not c.busy and now - c.last >= EVICT_IDLE_S]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last)
        victim.evict = True  # its thread drains and closes it within POLL_S
        live.remove(victim)
        self.evicted += 1
        return True

    def _closed_listener(self) -> None:
        pass

    def _serve(self, c: _Conn) -> None:
        conn = c.sock
        splitter = LineSplitter(self.max_line_bytes)
        try:
            conn.settimeout(POLL_S)
            if self._read(c, splitter):
                self._drain(conn, splitter)
            # A tail without its newline: cut off by us, or the peer stopped mid-line.
            self._finish(splitter, cut_off=True)
        except Exception:  # noqa: BLE001
            log.exception("%s: connection handler failed", self.origin)
        finally:
            self._unreserve(splitter)  # after a failure too: the budget is shared
            conn.close()
            with self._conns_lock:
                self._conns.pop(conn, None)

    def _read(self, c: _Conn, splitter: LineSplitter) -> bool:
        """Read until the peer ends the connection (False) or the listener does:
        stop, eviction, idle timeout (True: what the kernel holds is still drained)."""
        conn = c.sock
        while not (self._stop.is_set() or c.evict):
            try:
                data: bytes | None = conn.recv(READ_CHUNK)
            except TimeoutError:
                data = None
            except OSError:
                return False
            if data == b"":
                return False
            if data:
                # Blocks while the queue is full: we stop reading, the kernel
                # buffers fill and TCP flow control stalls the sender.
                c.busy = True
                if self._feed(splitter, data):
                    c.last = time.monotonic()
                c.busy = False
            # Checked after data too: a peer trickling bytes that complete no
            # line is as idle as a silent one (it would never time out otherwise).
            if self.idle_timeout_s and time.monotonic() - c.last >= self.idle_timeout_s:
                with self._counter_lock:
                    self.idle_closed += 1
                return True
        return True

    def _drain(self, conn: socket.socket, splitter: LineSplitter) -> None:
        """Stopped, evicted or timed out: read what the kernel holds for this connection
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
