"""`type: udp`: newline-delimited events over UDP, loopback by default.

Kernel drops are counted: a datagram that finds the socket's receive buffer
full is dropped by the kernel before anyone can read it. Linux counts those
per socket (sk_drops); the source reads that count with getsockopt(SO_MEMINFO)
whenever its socket is idle, at least every DROPS_EVERY_S while it is busy,
and at stop, and adds what is new to ``drops["kernel"]``. So, for datagrams of
one line each, ``datagrams + drops["kernel"]`` is what senders handed to the
socket. (SO_RXQ_OVFL, the per-datagram ancillary count, was not used: it only
reports drops with the next datagram that arrives, so a burst's tail would go
unseen until more traffic came.)
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import Annotated

from ..contract.errors import ConfigError
from ..contract.typed import doc
from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import POLL_S, AddressConfig, Source, SourceContext, family, hostport, log

_UDP_MAX_DATAGRAM = 65535
_SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux >= 4.6; Python does not name it
_SK_MEMINFO_DROPS = 8  # index of sk_drops in SO_MEMINFO's u32 array (Linux >= 4.15)
BATCH = 64  # datagrams read per wake-up (one queue hand-over for all of them)
DROPS_EVERY_S = 0.25  # how often a busy socket's kernel drop count is read


class Config(AddressConfig, tag="udp", kw_only=True):
    """A UDP socket; a datagram holds one or more lines (its last needs no newline).
    UDP cannot push back: lines that find the queue full are dropped and counted, and so
    are datagrams the kernel dropped because the receive buffer was full (reason kernel)."""

    recv_buffer_bytes: Annotated[
        int, doc("SO_RCVBUF asked of the kernel (Linux caps it at net.core.rmem_max)", ge=4096, le=1024**3)
    ] = 4 * 1024 * 1024


class UdpSource(Source):
    config: Config

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int, reuse_port: bool = False):
        super().__init__(config, queue, max_line_bytes)
        self.reuse_port = reuse_port
        self.address: tuple[str, int] | None = None
        self.datagrams = 0
        self.recv_buffer_bytes = 0  # what the kernel granted
        self.drops["kernel"] = 0
        self._kernel_seen: int | None = None  # sk_drops at the last look; None: cannot be read
        self._sock: socket.socket | None = None

    @property
    def origin(self) -> str:
        host, port = self.address or (self.config.host, self.config.port)
        return f"udp:{hostport(host, port)}"

    def _open(self) -> None:
        sock = socket.socket(family(self.config.host), socket.SOCK_DGRAM)
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.recv_buffer_bytes)
            except OSError as exc:
                log.warning("udp source: cannot set SO_RCVBUF=%d (%s)", self.config.recv_buffer_bytes, exc)
            if self.reuse_port:  # the kernel spreads datagrams over the workers (by source address)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.config.host, self.config.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"udp source: cannot bind {hostport(self.config.host, self.config.port)}: {exc.strerror or exc}"
            ) from None
        sock.setblocking(False)  # waits are select()s of our own: a batch's later reads must never block
        self.recv_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if self.recv_buffer_bytes < self.config.recv_buffer_bytes:
            log.warning(
                "udp source: receive buffer is %d bytes, not the %d asked for (raise net.core.rmem_max)",
                self.recv_buffer_bytes,
                self.config.recv_buffer_bytes,
            )
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        self._sock = sock
        self._kernel_seen = _kernel_drops(sock)
        if self._kernel_seen is None:
            log.warning("%s: the kernel's drop count cannot be read here (SO_MEMINFO); kernel drops go uncounted",
                        self.origin)  # fmt: skip

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        splitter = LineSplitter(self.max_line_bytes)
        next_drops = time.monotonic() + DROPS_EVERY_S
        try:
            while not self._stop.is_set():
                got = self._read_batch(sock, BATCH)
                if got is None:  # error, logged
                    continue
                if not got:
                    self._sync_kernel_drops(sock)  # idle: a burst's drops are all in by now
                    _readable(sock, POLL_S)
                    continue
                self._hand_over(splitter, got, block=False)
                if time.monotonic() >= next_drops:
                    self._sync_kernel_drops(sock)
                    next_drops = time.monotonic() + DROPS_EVERY_S
            self._drain(sock, splitter)
        finally:
            self._sync_kernel_drops(sock)
            sock.close()

    def _read_batch(self, sock: socket.socket, n: int) -> list[bytes] | None:
        """Up to `n` datagrams waiting now (never blocks); None after an error."""
        got: list[bytes] = []
        try:
            for _ in range(n):
                got.append(sock.recv(_UDP_MAX_DATAGRAM))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            if not self._stop.is_set():
                log.warning("%s: receive failed (%s)", self.origin, exc)
                self._stop.wait(POLL_S)
            return got or None
        return got

    def _hand_over(self, splitter: LineSplitter, datagrams: list[bytes], block: bool) -> None:
        # Each datagram stands alone: a newline after each ends its unterminated
        # last line (an empty line more is skipped), and one feed frames them all.
        self.datagrams += len(datagrams)
        self._emit(splitter.feed(b"\n".join(datagrams) + b"\n"), block=block)

    def _drain(self, sock: socket.socket, splitter: LineSplitter) -> None:
        """At stop: what the receive buffer holds (no more than it can hold, so a
        sender that keeps sending cannot hold the stop up), handed over until the
        drain deadline (then dropped and counted)."""
        left = max(BATCH, self.recv_buffer_bytes // 256)  # a datagram costs the buffer >= 256 bytes
        while left > 0:
            got = self._read_batch(sock, min(BATCH, left))
            if not got:
                return
            left -= len(got)
            self._hand_over(splitter, got, block=True)

    def _sync_kernel_drops(self, sock: socket.socket) -> None:
        if self._kernel_seen is None:
            return
        now = _kernel_drops(sock)
        if now is not None and now != self._kernel_seen:
            with self._counter_lock:
                self.drops["kernel"] += (now - self._kernel_seen) & 0xFFFFFFFF  # a u32 that wraps
            self._kernel_seen = now


def _kernel_drops(sock: socket.socket) -> int | None:
    """The socket's sk_drops (datagrams the kernel dropped for it), or None where unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 4 * (_SK_MEMINFO_DROPS + 1))
    except OSError:
        return None
    if len(raw) < 4 * (_SK_MEMINFO_DROPS + 1):
        return None
    return int(struct.unpack_from("I", raw, 4 * _SK_MEMINFO_DROPS)[0])


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Wait up to `timeout` for a datagram (poll: no FD_SETSIZE limit, unlike select)."""
    try:
        if hasattr(select, "poll"):
            p = select.poll()
            p.register(sock, select.POLLIN)
            return bool(p.poll(timeout * 1000.0))
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):
        time.sleep(timeout)  # never spin
        return False


def build(config: Config, context: SourceContext) -> UdpSource:
    return UdpSource(config, context.queue, context.max_line_bytes, context.reuse_port)
