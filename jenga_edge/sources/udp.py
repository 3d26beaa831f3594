"""`type: udp`: newline-delimited events over UDP, loopback by default."""

from __future__ import annotations

import socket
from typing import Annotated

from ..contract.errors import ConfigError
from ..contract.typed import doc
from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import POLL_S, AddressConfig, Source, SourceContext, family, hostport, log

_UDP_MAX_DATAGRAM = 65535


class Config(AddressConfig, tag="udp", kw_only=True):
    """A UDP socket; a datagram holds one or more lines (its last needs no newline).
    UDP cannot push back: lines that find the queue full are dropped and counted."""

    recv_buffer_bytes: Annotated[
        int, doc("SO_RCVBUF asked of the kernel (Linux caps it at net.core.rmem_max)", ge=4096, le=1024**3)
    ] = 4 * 1024 * 1024


class UdpSource(Source):
    config: Config

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int):
        super().__init__(config, queue, max_line_bytes)
        self.address: tuple[str, int] | None = None
        self.datagrams = 0
        self.recv_buffer_bytes = 0  # what the kernel granted
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
            sock.bind((self.config.host, self.config.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"udp source: cannot bind {hostport(self.config.host, self.config.port)}: {exc.strerror or exc}"
            ) from None
        sock.settimeout(POLL_S)
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

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        splitter = LineSplitter(self.max_line_bytes)
        try:
            while not self._stop.is_set():
                try:
                    data, _peer = sock.recvfrom(_UDP_MAX_DATAGRAM)
                except (TimeoutError, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.warning("%s: receive failed (%s)", self.origin, exc)
                    self._stop.wait(POLL_S)
                    continue
                self.datagrams += 1
                # Each datagram stands alone: its lines, then its unterminated last line.
                self._emit(splitter.feed(data), block=False)
                self._emit(splitter.flush(), block=False)
        finally:
            sock.close()


def build(config: Config, context: SourceContext) -> UdpSource:
    return UdpSource(config, context.queue, context.max_line_bytes)
