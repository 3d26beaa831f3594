"""`GET /metrics` and `GET /healthz` from a daemon thread, and the `metrics:` config section.

The HTTP machinery is in http.py and imported on `start()`, so an agent
without the endpoint never loads `http.server` (nor the `email` package it
pulls in).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from ..contract.errors import ConfigError
from ..contract.typed import Config, doc
from .registry import Registry

if TYPE_CHECKING:  # http.server (and the email package it pulls in) only when serving
    from .http import HTTPServer


class MetricsServer:
    """Serve `GET /metrics` and `GET /healthz` from a daemon thread.

    `healthy()` decides /healthz: 200 "ok" while it returns true, else 503.
    Binds to loopback by default; `port=0` picks a free port (see `.port`).
        server = MetricsServer(registry, healthy=agent.is_healthy).start()
        ...
        server.stop()
    """

    def __init__(
        self,
        registry: Registry,
        host: str = "127.0.0.1",
        port: int = 9108,
        *,
        healthy: Callable[[], bool] | None = None,
        poll_interval: float = 0.05,
    ):
        self.registry = registry
        self.host = host
        self._port = port
        self.healthy = healthy if healthy is not None else (lambda: True)
        self._poll = poll_interval
        self._lock = threading.Lock()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one when asked for port 0)."""
        httpd = self._httpd
        return httpd.server_address[1] if httpd is not None else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> MetricsServer:
        with self._lock:
            if self._httpd is not None:
                return self
            from .http import make_server  # imports http.server: only when serving

            try:
                httpd = make_server(self.host, self._port, self.registry, self.healthy)
            except OSError as exc:
                raise ConfigError(
                    f"metrics: cannot listen on {self.host}:{self._port}: {exc.strerror or exc}"
                ) from None
            thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": self._poll}, name="jenga-metrics", daemon=True
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
            return self

    def stop(self) -> None:
        """Stop serving and close the socket; returns within ~poll_interval. Idempotent."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        self._port = httpd.server_address[1]
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MetricsConfig(Config, kw_only=True):
    """The Prometheus endpoint and the stats line."""

    enabled: Annotated[bool, doc("serve GET /metrics and GET /healthz")] = False
    host: Annotated[str, doc("bind address; loopback unless you mean to expose it", min_length=1)] = "127.0.0.1"
    port: Annotated[int, doc("TCP port (0 picks a free one)", ge=0, le=65535)] = 9108
    stats_interval_s: Annotated[float, doc("seconds between stats lines on stderr (0: none)", ge=0.0)] = 60.0
