"""Where alerts go: a JSONL file, stdout, syslog, a local SQLite store.

Every sink takes a whole scored micro-batch at once (``write_batch``), so the
costly part — an fsync, a transaction, a TCP send — happens once per batch and
not once per alert. An empty batch does nothing.

An alert is a JSON-serialisable dict (see the agent): ``timestamp`` (ISO 8601
UTC), ``rule``, ``priority`` (a syslog severity name), ``task``, ``score``,
``threshold``, ``src_ip``, ``dest_ip``, ``dest_port``, ``actions`` ... Sinks
read only the keys they need and tolerate missing ones.

Failure policy:

* file sinks (JSONL, SQLite) raise on a disk error: losing alerts silently on
  the appliance's own disk would be worse than stopping;
* network sinks (syslog) and stdout never raise into the agent: a failure is
  counted in ``errors`` (and the alerts it lost in ``dropped``) and the next
  batch tries again — TCP reconnects then.

Standard library only, besides this package's errors and typed_config.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Literal, Optional, Protocol, runtime_checkable
from urllib.parse import urlsplit

import msgspec

from .contract.errors import ConfigError, DataError
from .contract.typed import bounded

from .native import syncer as _native

_NativeSyncer = _native.Syncer if _native is not None else None   # see _syncer.c: fsync without the GIL

__all__ = [
    "FACILITIES", "SEVERITIES", "Sink", "JsonlSinkConfig", "JsonlSink", "StdoutSinkConfig",
    "StdoutSink", "SyslogSinkConfig", "SyslogSink", "SqliteSinkConfig", "SqliteSink",
    "SinksConfig", "build_sinks", "query_alerts", "parse_since", "severity_of",
    "format_text", "syslog_message",
]

# --------------------------------------------------------------------------- names

#: RFC 5424 severities, most severe first; the alert's ``priority`` is one of these.
SEVERITIES: dict[str, int] = {
    "emergency": 0, "alert": 1, "critical": 2, "error": 3,
    "warning": 4, "notice": 5, "informational": 6, "debug": 7,
}
# The short spellings syslog tools use; accepted on input, never written.
_SEVERITY_ALIASES: dict[str, int] = {
    "emerg": 0, "panic": 0, "crit": 2, "err": 3, "warn": 4, "info": 6,
}

#: RFC 5424 facility codes by name.
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}

Priority = Literal["emergency", "alert", "critical", "error", "warning", "notice",
                   "informational", "debug"]
Facility = Literal["kern", "user", "mail", "daemon", "auth", "security", "syslog", "lpr",
                   "news", "uucp", "cron", "authpriv", "ftp", "local0", "local1", "local2",
                   "local3", "local4", "local5", "local6", "local7"]


def severity_of(priority: Any, default: int | None = None) -> int | None:
    """The numeric syslog severity of a priority name (case-insensitive, short
    spellings like ``crit`` accepted), or `default` if it names none."""
    if isinstance(priority, str):
        key = priority.strip().lower()
        if key in SEVERITIES:
            return SEVERITIES[key]
        if key in _SEVERITY_ALIASES:
            return _SEVERITY_ALIASES[key]
    return default


_ENCODER = msgspec.json.Encoder(enc_hook=str)


def _encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON (msgspec: several times faster than json.dumps on the
    agent's hot path); a value JSON cannot hold becomes its str()."""
    return _ENCODER.encode(obj)


def _dumps(obj: Any) -> str:
    return _encode(obj).decode("utf-8")


# --------------------------------------------------------------------------- timestamps

_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?\s*$")


def _parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 string (naive = UTC), a number, or a datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    if not isinstance(value, str):
        return None
    m = _ISO_RE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = timezone.utc
    if off and off not in ("Z", "z"):
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- protocol

@runtime_checkable
class Sink(Protocol):
    """One destination for alerts."""

    def write_batch(self, alerts: list[dict]) -> None:
        """Deliver one scored micro-batch of alerts; an empty list does nothing."""

    def close(self) -> None:
        """Flush and release files and sockets; the sink is not used afterwards."""


# --------------------------------------------------------------------------- JSONL

@dataclass
class JsonlSinkConfig:
    """An append-only JSON Lines file, rotated by size.

    ``max_bytes`` 0 never rotates. When the next line would take the file past
    ``max_bytes`` it is renamed ``PATH.1`` (``.1`` becomes ``.2`` ... up to
    ``backups``; the oldest is dropped) and writing goes on in a fresh file.
    A single line longer than ``max_bytes`` still gets written, alone in a file.
    """

    path: str
    max_bytes: int = bounded(64 * 1024 * 1024, lo=0)
    backups: int = bounded(5, lo=1, hi=1000)
    fsync: bool = True     # flush + fsync once per batch (and around each rotation)


class JsonlSink:
    """Appends one compact JSON object per line; also the dead-letter writer
    (records ``{"timestamp", "source", "reason", "field", "line"}``)."""

    def __init__(self, config: JsonlSinkConfig):
        self.config = config
        self.path = Path(config.path)
        if self.path.is_dir():
            raise ConfigError(f"jsonl path {self.path}: is a directory, expected a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"jsonl path {self.path}: cannot create its directory: {exc.strerror}") from None
        self.rotations = 0
        self._fh: IO[bytes] | None = None
        self._sync_thread: _ThreadSyncer | _Native | None = None
        self._open()

    def _open(self) -> None:
        created = not self.path.exists()
        try:
            self._fh = open(self.path, "ab")
        except OSError as exc:
            raise ConfigError(f"jsonl path {self.path}: cannot open for append: {exc.strerror}") from None
        self._size = os.fstat(self._fh.fileno()).st_size
        if created and self.config.fsync:
            _fsync_dir(self.path.parent)

    def write_batch(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        if self._fh is None:
            raise ValueError(f"{self.path}: write to a closed JsonlSink")
        if self._sync_thread is not None:
            # An earlier batch's fsync failed: say so before this batch is written,
            # so this batch is reported as not delivered rather than half of both.
            self._sync_thread.check()
        # Serialise everything first: a bad record must not leave half a batch written.
        blob = _ENCODER.encode_lines(alerts)
        limit = self.config.max_bytes
        if not limit or self._size + len(blob) <= limit:
            self._fh.write(blob)        # one write per batch
            self._size += len(blob)
        else:
            for alert in alerts:
                line = _encode(alert) + b"\n"
                if self._size > 0 and self._size + len(line) > limit:
                    self._rotate()
                self._fh.write(line)
                self._size += len(line)
        self._fh.flush()
        if self.config.fsync:
            self._syncer().request(self._fh.fileno())

    def _syncer(self) -> "_ThreadSyncer | _Native":
        if self._sync_thread is None:
            self._sync_thread = _Native() if _NativeSyncer is not None else _ThreadSyncer(str(self.path))
        return self._sync_thread

    def sync_wait(self) -> None:
        """Block until every batch written so far is on disk (fsync done)."""
        if self._sync_thread is not None:
            self._sync_thread.wait()

    def _sync(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        if self.config.fsync:
            self.sync_wait()            # the syncer must not hold our descriptor while we use it
            os.fsync(self._fh.fileno())

    def _rotate(self) -> None:
        assert self._fh is not None
        self._sync()            # what is renamed away must already be on disk
        self._fh.close()
        self._fh = None
        base = str(self.path)
        for i in range(self.config.backups - 1, 0, -1):
            older = f"{base}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{base}.{i + 1}")   # replaces (drops) the oldest
        os.replace(base, f"{base}.1")
        self.rotations += 1
        self._open()
        if self.config.fsync:
            _fsync_dir(self.path.parent)            # the renames and the new file

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._sync()
            finally:
                if self._sync_thread is not None:
                    try:
                        self._sync_thread.wait()    # never close a descriptor an fsync is running on
                    except DataError:
                        pass                        # already raised by _sync, or by the write that failed
                    self._sync_thread.stop()
                    self._sync_thread = None
                self._fh.close()
                self._fh = None


class _ThreadSyncer:
    """fsync off the scoring thread, one per batch, in order (group commit).

    write_batch writes and flushes, then asks for an fsync and returns: the
    disk wait overlaps the scoring of the next batch instead of stalling it
    (on a one-core gateway the wait is I/O, not CPU). Requests that arrive
    while an fsync runs are covered by the next one. A failed fsync is raised
    by the next write, before that batch is written, so the agent reports it
    like any sink error (the batch whose fsync failed may not be on disk).

    This Python thread is the fallback for `_Native` (the same protocol on
    _syncer.c's thread, which never takes the GIL): each of its wake-ups takes
    the GIL from the scoring thread, and on one core that churn cost ~0.8 us
    per event at 150k events/s.
    """

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._requested = self._done = 0
        self._fd: int | None = None
        self._error: OSError | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"fsync:{name}", daemon=True)
        self._thread.start()

    def request(self, fd: int) -> None:
        with self._cond:
            self._fd = fd
            self._requested += 1
            self._cond.notify_all()

    def check(self) -> None:
        """Raise the error of a finished fsync, once."""
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise DataError(f"fsync failed: {error}")

    def wait(self) -> None:
        with self._cond:
            while self._done < self._requested and self._thread.is_alive():
                self._cond.wait(0.5)
            error, self._error = self._error, None
        if error is not None:
            raise DataError(f"fsync failed: {error}")

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._done >= self._requested and not self._stopping:
                    self._cond.wait()
                if self._done >= self._requested:
                    return
                target, fd = self._requested, self._fd
            try:
                os.fsync(fd)
            except OSError as exc:
                with self._cond:
                    self._error = exc
            with self._cond:
                self._done = target
                self._cond.notify_all()


class _Native:
    """_syncer.Syncer (C) with the sink's error type."""

    def __init__(self) -> None:
        self._s = _NativeSyncer()

    def request(self, fd: int) -> None:
        self._s.request(fd)

    def check(self) -> None:
        try:
            self._s.check()
        except OSError as exc:
            raise DataError(f"fsync failed: {exc}") from None

    def wait(self) -> None:
        try:
            self._s.wait()
        except OSError as exc:
            raise DataError(f"fsync failed: {exc}") from None

    def stop(self) -> None:
        self._s.stop()


def _fsync_dir(directory: Path) -> None:
    """Make renames and new names in `directory` durable (POSIX only)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return      # e.g. Windows: directories cannot be opened, nor need to be
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- stdout

@dataclass
class StdoutSinkConfig:
    format: Literal["json", "text"] = "json"


def _short_time(ts: Any) -> str:
    """`2026-11-25T17:00:00.123Z` -> `2026-11-25T17:00:00Z` (whole seconds, UTC)."""
    t = _parse_time(ts)
    if t is None:
        return str(ts) if ts not in (None, "") else "-"
    return datetime.fromtimestamp(int(t // 1), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3f}"
    return str(value)


def _action_text(action: Any) -> str:
    if not isinstance(action, dict):
        return str(action)
    name = next((action[k] for k in ("type", "name", "action", "kind") if action.get(k)), None)
    state = next((action[k] for k in ("status", "result", "outcome", "mode") if action.get(k)), None)
    if state is None and action.get("dry_run") is True:
        state = "dry_run"
    parts = [str(p) for p in (name, state) if p is not None]
    return ":".join(parts) if parts else _dumps(action)


def format_text(alert: dict) -> str:
    """One short human line, e.g. ``2026-11-25T17:00:00Z CRITICAL ssh_block threat
    score=0.970>=0.800 src=203.0.113.7 dst=10.0.0.5:22 action=firewall:dry_run``."""
    out = [_short_time(alert.get("timestamp")),
           str(alert.get("priority") or "-").upper(),
           str(alert.get("rule") or "-"),
           str(alert.get("task") or "-")]
    score = alert.get("score")
    if score is not None:
        threshold = alert.get("threshold")
        out.append(f"score={_num(score)}" + (f">={_num(threshold)}" if threshold is not None else ""))
    if alert.get("src_ip"):
        src = str(alert["src_ip"])
        if alert.get("src_port") is not None:
            src = _host_port(src, alert["src_port"])
        out.append(f"src={src}")
    if alert.get("dest_ip"):
        dst = str(alert["dest_ip"])
        if alert.get("dest_port") is not None:
            dst = _host_port(dst, alert["dest_port"])
        out.append(f"dst={dst}")
    actions = alert.get("actions")
    if actions:
        items = actions if isinstance(actions, list) else [actions]
        out.append("action=" + ",".join(_action_text(a) for a in items))
    return " ".join(out)


def _host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class StdoutSink:
    """One line per alert (compact JSON or `format_text`), flushed per batch.
    A closed or broken stream is counted in ``errors``, never raised."""

    def __init__(self, config: StdoutSinkConfig | None = None, stream: IO[str] | None = None):
        self.config = config or StdoutSinkConfig()
        self._stream = stream          # None: whatever sys.stdout is at write time
        self.errors = 0

    def write_batch(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        render = format_text if self.config.format == "text" else _dumps
        text = "".join(render(a) + "\n" for a in alerts)
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            self.errors += 1

    def close(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


# --------------------------------------------------------------------------- syslog

SD_ID = "jenga@32473"
APP_NAME = "jenga-edge"
_SD_PARAMS = ("task", "score", "threshold", "src_ip", "dest_ip", "dest_port")
_RFC5424_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class SyslogSinkConfig:
    """RFC 5424 syslog over ``udp://HOST:PORT``, ``tcp://HOST:PORT`` (octet
    counting, RFC 6587) or ``unix:///PATH`` (a datagram socket such as /dev/log).

    The severity comes from each alert's ``priority``; one that names no
    severity gets ``default_priority``. ``hostname`` null: the alert's
    ``agent.hostname``, else this machine's name.
    """

    target: str = "unix:///dev/log"
    facility: Facility = "local0"
    default_priority: Priority = "warning"
    hostname: Optional[str] = None
    timeout_s: float = bounded(2.0, lo=0.01, hi=60.0)

    def __post_init__(self) -> None:
        _parse_target(self.target)


def _parse_target(target: str) -> tuple[str, Any]:
    """('udp'|'tcp', (host, port)) or ('unix', path); ConfigError otherwise."""
    expected = "expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
    if not isinstance(target, str) or "://" not in target:
        raise ConfigError(f"syslog target {target!r}: {expected}")
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = parts.netloc + parts.path
        if not path:
            raise ConfigError(f"syslog target {target!r}: no socket path; {expected}")
        return "unix", path
    if scheme in ("udp", "tcp"):
        try:
            port = parts.port or 514
        except ValueError:
            raise ConfigError(f"syslog target {target!r}: port must be 1-65535") from None
        if not parts.hostname:
            raise ConfigError(f"syslog target {target!r}: no host; {expected}")
        if parts.path not in ("", "/"):
            raise ConfigError(f"syslog target {target!r}: unexpected path {parts.path!r}; {expected}")
        return scheme, (parts.hostname, port)
    raise ConfigError(f"syslog target {target!r}: unknown scheme {parts.scheme!r}; {expected}")


def _header_field(value: Any, max_len: int) -> str:
    """A header field: printable US-ASCII without spaces, at most max_len, '-' if empty."""
    text = "".join(c for c in str(value if value is not None else "") if 33 <= ord(c) <= 126)
    return text[:max_len] or "-"


def _sd_escape(value: Any) -> str:
    """RFC 5424 PARAM-VALUE escaping: backslash, double quote and ']'."""
    return (str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]"))


def _syslog_timestamp(ts: Any) -> str:
    if isinstance(ts, str) and _RFC5424_TS.match(ts):
        m = re.match(r"^(.*?:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", ts)
        assert m is not None
        head, frac, off = m.groups()
        return head + (frac[:7] if frac else "") + off     # at most 6 fraction digits
    t = _parse_time(ts)
    if t is None:
        return _now_iso()
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def syslog_message(alert: dict, facility: int, default_severity: int = 4,
                   hostname: str | None = None) -> str:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`` for one alert."""
    severity = severity_of(alert.get("priority"), default_severity)
    pri = facility * 8 + severity
    if hostname is None:
        agent = alert.get("agent")
        hostname = agent.get("hostname") if isinstance(agent, dict) else None
    host = _header_field(hostname or socket.gethostname(), 255)
    params = " ".join(f'{k}="{_sd_escape(alert[k])}"' for k in _SD_PARAMS if alert.get(k) is not None)
    sd = f"[{SD_ID}{' ' + params if params else ''}]"
    msg = json.dumps(alert, separators=(",", ":"), default=str)   # ASCII: no BOM needed
    return (f"<{pri}>1 {_syslog_timestamp(alert.get('timestamp'))} {host} {APP_NAME} "
            f"{os.getpid()} {_header_field(alert.get('rule'), 32)} {sd} {msg}")


class SyslogSink:
    """Sends each alert as one RFC 5424 message. Never raises on network
    trouble: ``errors`` counts failures, ``dropped`` the alerts they lost,
    ``last_error`` says what went wrong; a TCP connection is re-made on the
    next batch."""

    def __init__(self, config: SyslogSinkConfig):
        self.config = config
        self.transport, self.address = _parse_target(config.target)
        self.facility = FACILITIES[config.facility]
        self.default_severity = SEVERITIES[config.default_priority]
        self.errors = 0
        self.dropped = 0
        self.sent = 0
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._addr: Any = None          # resolved datagram destination

    # -- public
    def write_batch(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        messages = []
        for a in alerts:
            try:
                messages.append(syslog_message(a, self.facility, self.default_severity,
                                               self.config.hostname).encode("utf-8"))
            except Exception as exc:     # a malformed alert must not stop the others
                self._fail(exc, 1)
        if self.transport == "tcp":
            self._send_tcp(messages)
        else:
            self._send_datagrams(messages)

    def close(self) -> None:
        self._drop_socket()

    # -- internals
    def _fail(self, exc: BaseException, lost: int) -> None:
        self.errors += 1
        self.dropped += lost
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._addr = None

    def _send_datagrams(self, messages: list[bytes]) -> None:
        for i, msg in enumerate(messages):
            try:
                if self._sock is None:
                    self._open_datagram()
                assert self._sock is not None
                self._sock.sendto(msg, self._addr)
                self.sent += 1
            except OSError as exc:
                self._fail(exc, 1)
                self._drop_socket()

    def _open_datagram(self) -> None:
        if self.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            addr: Any = self.address
        else:
            host, port = self.address
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.settimeout(self.config.timeout_s)
        self._sock, self._addr = sock, addr

    def _send_tcp(self, messages: list[bytes]) -> None:
        if not messages:
            return
        payload = b"".join(str(len(m)).encode("ascii") + b" " + m for m in messages)
        try:
            if self._sock is not None and self._peer_closed(self._sock):
                self._drop_socket()
            if self._sock is None:
                host, port = self.address
                self._sock = socket.create_connection((host, port), timeout=self.config.timeout_s)
            self._sock.sendall(payload)
            self.sent += len(messages)
        except OSError as exc:
            self._fail(exc, len(messages))
            self._drop_socket()

    @staticmethod
    def _peer_closed(sock: socket.socket) -> bool:
        """True if the collector has closed or reset the connection (a send
        would otherwise 'succeed' into a dead socket and lose the batch)."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


# --------------------------------------------------------------------------- SQLite

@dataclass
class SqliteSinkConfig:
    """A local alert store for ``jenga-edge alerts``; ``max_rows`` keeps only
    the newest rows (null: keep everything)."""

    path: str
    max_rows: Optional[int] = bounded(100_000, lo=1)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    ts        REAL NOT NULL,
    timestamp TEXT,
    rule      TEXT,
    priority  TEXT,
    task      TEXT,
    score     REAL,
    src_ip    TEXT,
    dest_ip   TEXT,
    dest_port INTEGER,
    json      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
"""


def _opt(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


class SqliteSink:
    """Stores alerts in SQLite (WAL mode, one transaction per batch)."""

    def __init__(self, config: SqliteSinkConfig):
        import sqlite3   # only when an SQLite store is configured (~2 MB)
        self.config = config
        self.path = Path(config.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                str(self.path), timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._rows = self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"sqlite path {self.path}: cannot open the alert store: {exc}") from None

    def write_batch(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        if self._db is None:
            raise ValueError(f"{self.path}: write to a closed SqliteSink")
        now = time.time()
        rows = []
        for a in alerts:
            ts = _parse_time(a.get("timestamp"))
            rows.append((ts if ts is not None else now, _opt(a.get("timestamp"), str),
                         _opt(a.get("rule"), str), _opt(a.get("priority"), str),
                         _opt(a.get("task"), str), _opt(a.get("score"), float),
                         _opt(a.get("src_ip"), str), _opt(a.get("dest_ip"), str),
                         _opt(a.get("dest_port"), int), _dumps(a)))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO alerts (ts, timestamp, rule, priority, task, score, src_ip, dest_ip,"
                " dest_port, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            rows_now = self._rows + len(rows)
            cap = self.config.max_rows
            if cap is not None and rows_now > cap:
                db.execute("DELETE FROM alerts WHERE id IN (SELECT id FROM alerts"
                           " ORDER BY ts DESC, id DESC LIMIT -1 OFFSET ?)", (cap,))
                rows_now = cap
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._rows = rows_now

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def query_alerts(path: str | os.PathLike, since_seconds: float | None = None, until: Any = None,
                 task: str | None = None, priority: str | None = None,
                 limit: int | None = 1000) -> list[dict]:
    """Alerts from a SqliteSink store, newest first.

    since_seconds: only alerts from the last N seconds (see `parse_since`).
    until: only alerts at or before this time (epoch seconds, ISO 8601 string or datetime).
    task: exact task name.
    priority: this severity or a more severe one, like ``journalctl -p``
        (``"error"`` gives error, critical, alert and emergency).
    limit: at most this many (None: all).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: alert store not found")
    where, args = [], []
    if since_seconds is not None:
        if since_seconds < 0:
            raise ValueError(f"since_seconds must be >= 0, got {since_seconds}")
        where.append("ts >= ?")
        args.append(time.time() - since_seconds)
    if until is not None:
        t = _parse_time(until)
        if t is None:
            raise ValueError(f"until {until!r}: expected epoch seconds, an ISO 8601 time or a datetime")
        where.append("ts <= ?")
        args.append(t)
    if task is not None:
        where.append("task = ?")
        args.append(task)
    if priority is not None:
        level = severity_of(priority)
        if level is None:
            raise ValueError(f"priority {priority!r}: expected one of {', '.join(SEVERITIES)}")
        names = [n for table in (SEVERITIES, _SEVERITY_ALIASES) for n, v in table.items() if v <= level]
        where.append(f"lower(priority) IN ({', '.join('?' * len(names))})")
        args.extend(names)
    sql = "SELECT json FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC"
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        sql += " LIMIT ?"
        args.append(int(limit))
    import sqlite3
    try:
        db = sqlite3.connect(str(p), timeout=10.0)
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot open the alert store: {exc}") from None
    try:
        return [json.loads(r[0]) for r in db.execute(sql, args)]
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot read alerts: {exc}") from None
    finally:
        db.close()


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_since(text: str | int | float) -> float:
    """``"90"`` / ``"45s"`` / ``"30m"`` / ``"1h"`` / ``"2d"`` / ``"1w"`` -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"invalid duration {text!r}: expected a positive number of seconds")
        return float(text)
    m = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected a number with an optional unit "
                         "s, m, h, d or w, e.g. 90, 45s, 30m, 1h, 2d")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: expected a positive duration")
    return seconds


# --------------------------------------------------------------------------- config

@dataclass
class SinksConfig:
    """The agent config's ``sinks:`` section; each sink is on when present."""

    jsonl: Optional[JsonlSinkConfig] = None
    stdout: Optional[StdoutSinkConfig] = None
    syslog: Optional[SyslogSinkConfig] = None
    sqlite: Optional[SqliteSinkConfig] = None


def build_sinks(cfg: SinksConfig, stdout: IO[str] | None = None) -> list[Sink]:
    """The configured sinks, in field order (jsonl, stdout, syslog, sqlite).
    If one cannot be opened, those already opened are closed again."""
    makers = {"jsonl": JsonlSink, "stdout": lambda c: StdoutSink(c, stdout),
              "syslog": SyslogSink, "sqlite": SqliteSink}
    sinks: list[Sink] = []
    try:
        for f in fields(cfg):
            sub = getattr(cfg, f.name)
            if sub is not None:
                sinks.append(makers[f.name](sub))
    except BaseException:
        for s in sinks:
            try:
                s.close()
            except Exception:
                pass
        raise
    return sinks
