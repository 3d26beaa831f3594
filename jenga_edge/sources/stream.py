"""A listening stream socket, one thread per connection: what TCP and unix sources share."""

from __future__ import annotations

import socket
import threading
import time

from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import POLL_S, READ_CHUNK, Source, SourceConfig, log


class StreamListener(Source):
    """Accepts up to `config.max_connections` at a time, frames each connection's
    lines, and pushes back through blocking puts (TCP flow control stalls the
    sender while the queue is full). A kind binds the socket in `_open` and
    hands it to `_listen`."""

    def __init__(self, config: SourceConfig, queue: EventQueue, max_line_bytes: int, max_connections: int):
        super().__init__(config, queue, max_line_bytes)
        self.max_connections = max_connections
        self.connections = 0  # accepted in total
        self.rejected = 0  # refused because max_connections were open
        self._sock: socket.socket | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()

    def _listen(self, sock: socket.socket) -> None:
        sock.listen(min(128, max(8, self.max_connections)))
        sock.settimeout(POLL_S)
        self._sock = sock

    def _wake(self) -> None:
        socks = [self._sock] if self._sock is not None else []
        with self._conns_lock:
            socks += list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes accept()/recv() blocked in other threads
            except OSError:
                pass

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        done = super().join(timeout)
        with self._conns_lock:
            threads = list(self._conns.values())
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
                with self._conns_lock:
                    if len(self._conns) >= self.max_connections or self._stop.is_set():
                        self.rejected += 1
                        conn.close()
                        continue
                    self.connections += 1
                    t = threading.Thread(
                        target=self._serve, args=(conn,), daemon=True, name=f"jenga-conn-{self.origin}"
                    )
                    self._conns[conn] = t
                t.start()
        finally:
            sock.close()
            self._closed_listener()

    def _closed_listener(self) -> None:
        pass

    def _serve(self, conn: socket.socket) -> None:
        splitter = LineSplitter(self.max_line_bytes)
        try:
            conn.settimeout(POLL_S)
            while not self._stop.is_set():
                try:
                    data = conn.recv(READ_CHUNK)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                # Blocks while the queue is full: we stop reading, the kernel
                # buffers fill and TCP flow control stalls the sender.
                self._emit(splitter.feed(data))
            self._emit(splitter.flush())
        except Exception:  # noqa: BLE001
            log.exception("%s: connection handler failed", self.origin)
        finally:
            conn.close()
            with self._conns_lock:
                self._conns.pop(conn, None)
