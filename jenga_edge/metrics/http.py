"""The HTTP side of the metrics endpoint: request handler and threading server.

Kept out of server.py so that importing the agent does not load `http.server`
(and, through it, `http.client` and the `email` package: several MB of
resident memory on a gateway). `MetricsServer.start()` imports this module;
an agent with `metrics.enabled: false` never does.
"""

from __future__ import annotations

import http.server
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

from .registry import CONTENT_TYPE, Registry


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "jenga-edge"
    sys_version = ""
    timeout = 10  # a stalled client cannot hold a handler thread forever
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no per-request lines on the agent's stderr

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, head: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/metrics":
            try:
                status, body, ctype = 200, self.server.registry.render(), CONTENT_TYPE
            except Exception:  # noqa: BLE001 - report, keep serving
                status, body, ctype = 500, "metrics rendering failed\n", "text/plain; charset=utf-8"
        elif path == "/healthz":
            try:
                ok = bool(self.server.healthy())
            except Exception:  # noqa: BLE001 - a failing health check means unhealthy
                ok = False
            status, body, ctype = (
                (200, "ok\n", "text/plain; charset=utf-8") if ok else (503, "unhealthy\n", "text/plain; charset=utf-8")
            )
        else:
            status, body, ctype = 404, "not found\n", "text/plain; charset=utf-8"
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)


class HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    registry: Registry
    healthy: Callable[[], bool]


class HTTPServer6(HTTPServer):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, registry: Registry, healthy: Callable[[], bool]) -> HTTPServer:
    """Bind (host, port) and return a server ready for `serve_forever`; raises OSError."""
    cls = HTTPServer6 if ":" in host else HTTPServer
    httpd = cls((host, port), _Handler)
    httpd.registry = registry
    httpd.healthy = healthy
    return httpd


__all__ = ["HTTPServer", "make_server"]
