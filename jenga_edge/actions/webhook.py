"""`type: webhook`: POST each alert as JSON, retry, spool what cannot be sent.

Loading and checking a config imports only this module's light part: the
delivery code imports `urllib.request` and `http.client` (and through them the
`email` package), several MB of resident memory, when a webhook action is
built, so an agent without one never loads them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from ..contract.typed import Invalid, doc
from .base import ActionConfig, ActionContext, check_ident, outcome, short

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_RETRY_STATUS = {408, 425, 429}


def _check_url(url: str) -> None:
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Invalid("url", f"expected an http(s) URL without spaces, got {short(url)}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Invalid(
            "url", f"expected an http:// or https:// URL, got scheme {parts.scheme or '(none)'!r} in {short(url)}"
        )
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Invalid("url", f"bad port in {short(url)}") from None
    if not host:
        raise Invalid("url", f"expected a host in {short(url)}")


def _redact(url: str) -> str:
    """scheme://host[:port]/path: no credentials or query string in outcomes and logs."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if p.port:
        host += f":{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


class Config(ActionConfig, tag="webhook", kw_only=True):
    """POST each alert as JSON; spool it to disk when the receiver is unreachable.

    A delivery is tried ``1 + max_retries`` times, sleeping ``backoff_base_s``,
    then twice that, ... capped at ``backoff_max_s`` between tries; 408, 425,
    429, 5xx and connection errors are retried, other 4xx are not. Redirects are
    not followed. An alert still undelivered is appended to
    ``<spool_dir>/<spool_name>.jsonl`` (the action's name by default; one JSON document a line, fsynced) and
    sent again after the next successful delivery. Past ``max_spool_bytes`` new
    failures are dropped (outcome "failed", reason "spool full"). Deliveries run
    on a worker thread, never on the scoring thread.
    """

    paths = ("spool_dir",)

    url: Annotated[str, doc("the http:// or https:// receiver")]
    timeout_s: Annotated[float, doc("per try: connect and response", ge=0.1, le=120.0)] = 5.0
    max_retries: Annotated[int, doc("extra tries after the first", ge=0, le=10)] = 3
    backoff_base_s: Annotated[float, doc("sleep before the first retry", ge=0.0, le=60.0)] = 0.5
    backoff_max_s: Annotated[float, doc("cap on any one sleep", ge=0.0, le=600.0)] = 8.0
    headers: Annotated[dict[str, str], doc("extra headers, e.g. Authorization")] = {}
    spool_dir: Annotated[str, doc("created (mode 0700) when first needed")] = "/var/spool/jenga-edge"
    spool_name: Annotated[str | None, doc("file name stem inside spool_dir (default: the action's name)")] = None
    max_spool_bytes: Annotated[int, doc("spool size bound", ge=1024)] = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_url(self.url)
        if self.spool_name is not None:
            check_ident("spool_name", self.spool_name)
        if not self.spool_dir or "\0" in self.spool_dir:
            raise Invalid("spool_dir", f"expected a directory path, got {short(self.spool_dir)}")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise Invalid("headers", f"invalid header name {short(name)}")
            if any(ch in value for ch in "\r\n\0"):
                raise Invalid(f"headers.{name}", "value must be a single-line string")

    def spool_file(self, name: str) -> str:
        """The spool of the action called `name`: <spool_dir>/<spool_name or name>.jsonl."""
        return os.path.join(self.spool_dir, f"{self.spool_name or name}.jsonl")

    def written_files(self, name: str) -> dict[str, str]:
        return {"spool_name": self.spool_file(name)}


def _no_redirect_handler() -> Any:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            return None  # a 3xx then surfaces as an HTTPError, i.e. a failed try

    return NoRedirect()


def _json_default(obj: Any) -> Any:
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(obj)


class WebhookAction:
    """POST the alert JSON with retries; spool what cannot be delivered."""

    type = "webhook"
    slow = True

    def __init__(self, config: Config, *, name: str = "webhook", sleep: Callable[[float], None] = time.sleep):
        import urllib.request  # with http.client and email: several MB, only for an agent that posts

        self.config = config
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_no_redirect_handler())
        self._spool_lock = threading.Lock()  # appends and rewrites of the spool file
        self._retry_lock = threading.Lock()  # one retry_spool pass at a time
        self.target = _redact(config.url)
        self.spool_path = Path(config.spool_file(name))
        self.dropped = 0  # failures lost because the spool was full

    # one HTTP try -------------------------------------------------------------------------
    def _send_once(self, body: bytes) -> tuple[bool, bool, str, int | None]:
        """POST body once; return (delivered, worth retrying, reason, HTTP status)."""
        import http.client
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json", "User-Agent": "jenga-edge"}
        headers.update(self.config.headers)
        req = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.config.timeout_s) as resp:
                status = resp.status
                resp.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            retry = status in _RETRY_STATUS or status >= 500
            return False, retry, f"HTTP {status}", status
        except urllib.error.URLError as exc:
            return False, True, f"connection failed: {exc.reason}", None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            return False, True, what, None
        if 200 <= status < 300:
            return True, False, f"HTTP {status}", status
        return False, status >= 500, f"HTTP {status}", status

    def backoff(self, attempt: int) -> float:
        """Sleep before retry number `attempt` (1-based)."""
        c = self.config
        return min(c.backoff_max_s, c.backoff_base_s * 2.0 ** (attempt - 1))

    def deliver(self, body: bytes) -> tuple[bool, str, int, int | None]:
        """Try up to 1 + max_retries times; return (delivered, reason, tries, last status)."""
        tries = 0
        reason, status = "", None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._sleep(self.backoff(attempt))
            tries += 1
            ok, retry, reason, status = self._send_once(body)
            if ok:
                return True, reason, tries, status
            if not retry:
                break
        return False, reason, tries, status

    # spool --------------------------------------------------------------------------------
    def spool(self, body: bytes) -> tuple[bool, str]:
        """Append one undelivered alert to the spool file (fsynced); (False, why) when it cannot."""
        line = body + b"\n"
        with self._spool_lock:
            try:
                self.spool_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    size = self.spool_path.stat().st_size
                except FileNotFoundError:
                    size = 0
                if size + len(line) > self.config.max_spool_bytes:
                    self.dropped += 1
                    return False, "spool full"
                fd = os.open(self.spool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                self.dropped += 1
                return False, f"spool error: {exc}"
        return True, ""

    def spooled(self) -> int:
        """How many alerts wait in the spool."""
        with self._spool_lock:
            try:
                data = self.spool_path.read_bytes()
            except FileNotFoundError:
                return 0
        return sum(1 for line in data.split(b"\n") if line.strip())

    def retry_spool(self) -> dict[str, int]:
        """Re-send spooled alerts in order; keep the undelivered ones.

        Each alert gets one try. A connection error or a retryable status ends
        the pass (the receiver is down: the rest stay queued); an alert refused
        for good (other 4xx) stays in the spool and the pass goes on. Lines that
        are not JSON (a write cut short by a crash) are dropped. The spool is
        rewritten atomically (temp file, fsync, rename); alerts spooled while the
        pass runs are kept. Returns counts: sent, failed, dropped, remaining.
        """
        counts = {"sent": 0, "failed": 0, "dropped": 0, "remaining": 0}
        with self._retry_lock:
            with self._spool_lock:
                try:
                    data = self.spool_path.read_bytes()
                except FileNotFoundError:
                    return counts
            consumed = len(data)
            keep: list[bytes] = []
            stopped = False
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                if stopped:
                    keep.append(line)
                    continue
                try:
                    json.loads(line)
                except ValueError:
                    counts["dropped"] += 1
                    continue
                ok, retry, _, _ = self._send_once(line)
                if ok:
                    counts["sent"] += 1
                    continue
                counts["failed"] += 1
                keep.append(line)
                stopped = retry
            with self._spool_lock:
                try:
                    with self.spool_path.open("rb") as fh:
                        fh.seek(consumed)
                        appended = fh.read()
                except FileNotFoundError:
                    appended = b""
                new = b"".join(line + b"\n" for line in keep) + appended
                self._rewrite(new)
        counts["remaining"] = len(keep) + sum(1 for line in appended.split(b"\n") if line.strip())
        return counts

    def _rewrite(self, data: bytes) -> None:
        directory = self.spool_path.parent
        if not data:
            self.spool_path.unlink(missing_ok=True)
        else:
            import tempfile

            fd, tmp = tempfile.mkstemp(prefix=f".{self.spool_path.name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.spool_path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        try:
            dfd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    # the action ---------------------------------------------------------------------------
    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return []

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        def done(result: str, reason: str, **extra: Any) -> dict[str, Any]:
            return outcome(self.type, self.target, dry_run=False, argv=None, result=result, reason=reason, **extra)

        try:
            body = json.dumps(alert, default=_json_default, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return done("failed", f"alert is not JSON-serializable: {exc}")
        ok, reason, tries, status = self.deliver(body)
        if ok:
            return done("ok", f"delivered ({reason})", attempts=tries, status=status)
        spooled, why = self.spool(body)
        if spooled:
            return done(
                "spooled", f"{reason} after {tries} tries; spooled to {self.spool_path}", attempts=tries, status=status
            )
        return done("failed", f"{why} ({reason} after {tries} tries)", attempts=tries, status=status)


def build(config: Config, context: ActionContext | None = None) -> WebhookAction:
    return WebhookAction(config, name=context.name if context and context.name else "webhook")
