"""`type: tcp`: newline-delimited events over TCP (syslog-style), loopback by default."""

from __future__ import annotations

import socket
from typing import Annotated

from ..contract.errors import ConfigError
from ..contract.typed import doc
from ..event_queue import EventQueue
from .base import AddressConfig, SourceContext, family, hostport
from .stream import IDLE_TIMEOUT_DOC, MAX_CONNECTIONS_DOC, StreamListener

MAX_PER_PEER_DOC = (
    "open connections at most from one IP address (0: no cap); beyond it a new one replaces that "
    "address's connection idle longest (no complete line for 1 s or more) or is closed at once. "
    "Every local client is 127.0.0.1: raise it if more local clients hold connections"
)


class Config(AddressConfig, tag="tcp", kw_only=True):
    """A TCP listener; each connection sends newline-delimited JSON."""

    max_connections: Annotated[int, doc(MAX_CONNECTIONS_DOC, ge=1, le=65536)] = 64
    idle_timeout_s: Annotated[float, doc(IDLE_TIMEOUT_DOC, ge=0.0, le=86400.0)] = 300.0
    # 16: a quarter of the default 64 slots, so one address needs company to fill the
    # listener, and still room for several shippers behind one NAT or on one host.
    max_connections_per_peer: Annotated[int, doc(MAX_PER_PEER_DOC, ge=0, le=65536)] = 16


class TcpSource(StreamListener):
    """`port: 0` picks a free port; `address` holds the bound (host, port)."""

    config: Config

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int, reuse_port: bool = False):
        self.reuse_port = reuse_port
        super().__init__(
            config,
            queue,
            max_line_bytes,
            config.max_connections,
            config.idle_timeout_s,
            config.max_connections_per_peer,
        )
        self.address: tuple[str, int] | None = None

    @property
    def origin(self) -> str:
        host, port = self.address or (self.config.host, self.config.port)
        return f"tcp:{hostport(host, port)}"

    def _peer_key(self, peer: object) -> str | None:
        return str(peer[0]) if isinstance(peer, tuple) and peer else None

    def _open(self) -> None:
        sock = socket.socket(family(self.config.host), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:  # the kernel spreads connections over the workers
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.config.host, self.config.port))
            self._listen(sock)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"tcp source: cannot listen on {hostport(self.config.host, self.config.port)}: {exc.strerror or exc}"
            ) from None
        host, port = sock.getsockname()[:2]
        self.address = (host, port)


def build(config: Config, context: SourceContext) -> TcpSource:
    return TcpSource(config, context.queue, context.max_line_bytes, context.reuse_port)
