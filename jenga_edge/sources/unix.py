"""`type: unix`: newline-delimited events over a unix stream socket."""

from __future__ import annotations

import os
import socket
import stat
from typing import Annotated

from ..contract.errors import ConfigError
from ..contract.typed import Invalid, doc
from ..event_queue import EventQueue
from .base import SourceConfig, SourceContext
from .stream import IDLE_TIMEOUT_DOC, MAX_CONNECTIONS_DOC, StreamListener

_UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


class Config(SourceConfig, tag="unix", kw_only=True):
    """A unix stream socket listener (a local flow exporter)."""

    path: Annotated[str, doc("the socket file; a stale one is replaced, anything else is refused")]
    mode: Annotated[
        int, doc("permissions of the socket file, in octal with a leading 0 as YAML 1.1 reads it: 0660", ge=0, le=0o777)
    ] = 0o660
    max_connections: Annotated[int, doc(MAX_CONNECTIONS_DOC, ge=1, le=65536)] = 64
    idle_timeout_s: Annotated[float, doc(IDLE_TIMEOUT_DOC, ge=0.0, le=86400.0)] = 300.0

    def __post_init__(self) -> None:
        size = len(os.fsencode(self.path))
        if not self.path:
            raise Invalid("path", "expected a socket path, got ''")
        if size > _UNIX_PATH_MAX:
            raise Invalid("path", f"a unix socket path is at most {_UNIX_PATH_MAX} bytes, got {size}: {self.path}")


class UnixSource(StreamListener):
    """The socket file is created with `mode` before anyone can connect, and
    removed on stop (only if it is still the one this source created)."""

    config: Config

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int):
        super().__init__(config, queue, max_line_bytes, config.max_connections, config.idle_timeout_s)
        self.path = config.path
        self._ident: tuple[int, int] | None = None

    @property
    def origin(self) -> str:
        return f"unix:{self.path}"

    def _open(self) -> None:
        if not hasattr(socket, "AF_UNIX"):
            raise ConfigError("unix source: unix sockets are not available on this platform")
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            st = os.stat(self.path)
            self._ident = (st.st_dev, st.st_ino)
            os.chmod(self.path, self.config.mode)  # before listen(): nobody can connect yet
            self._listen(sock)
        except OSError as exc:
            sock.close()
            self._unlink_own()
            raise ConfigError(f"unix source: cannot listen on {self.path}: {exc.strerror or exc}") from None

    def _remove_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigError(f"unix source: {self.path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # stale: nobody listens on it
        except OSError as exc:
            raise ConfigError(f"unix source: cannot check existing socket {self.path}: {exc.strerror or exc}") from None
        else:
            raise ConfigError(f"unix source: another process is listening on {self.path}")
        finally:
            probe.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _unlink_own(self) -> None:
        """Remove the socket file if it is still the one we created."""
        if self._ident is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._ident:
                os.unlink(self.path)
        except OSError:
            pass
        self._ident = None

    def _wake(self) -> None:
        self._unlink_own()  # new clients fail right away
        super()._wake()

    def _closed_listener(self) -> None:
        self._unlink_own()


def build(config: Config, context: SourceContext) -> UnixSource:
    return UnixSource(config, context.queue, context.max_line_bytes)
