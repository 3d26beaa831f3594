"""`type: syslog`: each alert as one RFC 5424 message, to a SIEM or the local syslog daemon.

What an event put in an alert cannot break a message: HOSTNAME and MSGID keep only
printable US-ASCII (at most 255 and 32 characters); a structured-data PARAM-VALUE
has every control, separator or bidi character written as a visible escape
(`contract.text.escape_text`: a LF becomes the two characters ``\\n``, a NUL ``\\x00``),
then ``"``, ``\\`` and ``]`` escaped with a backslash (RFC 5424 section 6.3.3), so a
collector decodes ``\\n`` where the value held a LF; the MSG is ASCII JSON. So a
message holds no raw LF, CR or NUL, whatever the framing (octet counting over TCP,
one datagram each over UDP and unix, or a relay's LF-terminated lines).

A message longer than ``max_message_bytes`` is cut, not lost (`fit_message`):
header and structured data are kept and the MSG is cut at a UTF-8 character
boundary, ending in ``...[truncated N bytes]``; only if header and structured data
alone leave no room are SD params dropped from the end, and the MSG then says
which. The sink counts each cut message in ``truncated``.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from ..contract.text import escape_text
from ..contract.typed import Invalid, doc
from ..priorities import FACILITIES, SEVERITIES, Facility, Priority, severity_of
from ..timestamps import now_iso, parse_time
from .base import SinkConfig, SinkContext
from .formats import JSON_FORMATS, SyslogFormat, converter

SD_ID = "jenga@32473"
APP_NAME = "jenga-edge"
_SD_PARAMS = ("task", "score", "threshold", "src_ip", "dest_ip", "dest_port")
# RFC 5426 section 3.2: every receiver should take 2048-octet datagrams (more is
# fragmented and often dropped); rsyslog's default maxMessageSize is 8192.
DEFAULT_MAX_BYTES = {"udp": 2048, "tcp": 8192, "unix": 8192}
MIN_MAX_BYTES = 480  # RFC 5426: what every IPv4 receiver must take; a header and an empty SD fit
UDP_MAX_PAYLOAD = 65507  # IPv4: 65535 less the IP and UDP headers
_RFC5424_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class Config(SinkConfig, tag="syslog", kw_only=True):
    """RFC 5424 syslog over ``udp://HOST:PORT``, ``tcp://HOST:PORT`` (octet
    counting, RFC 6587) or ``unix:///PATH`` (a datagram socket such as /dev/log).

    The severity comes from each alert's ``priority``; one that names no
    severity gets ``default_priority``.
    """

    target: Annotated[str, doc("udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")] = "unix:///dev/log"
    facility: Annotated[Facility, doc("the syslog facility")] = "local0"
    default_priority: Annotated[Priority, doc("the severity of an alert whose priority names none")] = "warning"
    hostname: Annotated[
        str | None, doc("HOSTNAME of every message (default: the alert's agent.hostname, else this machine's name)")
    ] = None
    timeout_s: Annotated[float, doc("connect and send timeout", ge=0.01, le=60.0)] = 2.0
    format: Annotated[
        SyslogFormat,
        doc(
            "the MSG: native (the alert as JSON), ecs (ECS 8.x JSON), ocsf (an OCSF 1.x Detection Finding "
            "as JSON) or cef (one ArcSight CEF line); the RFC 5424 header and structured data stay"
        ),
    ] = "native"
    max_message_bytes: Annotated[
        Annotated[int, msgspec.Meta(ge=MIN_MAX_BYTES, le=1 << 20)] | None,
        doc(
            "the longest message sent; a longer one keeps its header and structured data and has "
            "its MSG cut, ending in '...[truncated N bytes]' (null: 2048 over udp, as RFC 5426 "
            "asks every receiver to take; 8192 over tcp and unix)"
        ),
    ] = None

    def __post_init__(self) -> None:
        try:
            scheme, _ = _parse_target(self.target)
        except ValueError as exc:
            raise Invalid("target", str(exc)) from None
        if scheme == "udp" and (self.max_message_bytes or 0) > UDP_MAX_PAYLOAD:
            raise Invalid(
                "max_message_bytes",
                f"{self.max_message_bytes} is more than a UDP datagram holds, expected at most {UDP_MAX_PAYLOAD}",
            )

    def max_bytes(self) -> int:
        """max_message_bytes, or the transport's default."""
        return self.max_message_bytes or DEFAULT_MAX_BYTES[_parse_target(self.target)[0]]


def _parse_target(target: str) -> tuple[str, Any]:
    """('udp'|'tcp', (host, port)) or ('unix', path); ValueError otherwise."""
    expected = "expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
    if not isinstance(target, str) or "://" not in target:
        raise ValueError(f"{target!r}: {expected}")
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"{target!r}: no socket path; {expected}")
        return "unix", path
    if scheme in ("udp", "tcp"):
        try:
            port = parts.port or 514
        except ValueError:
            raise ValueError(f"{target!r}: port must be 1-65535") from None
        if not parts.hostname:
            raise ValueError(f"{target!r}: no host; {expected}")
        if parts.path not in ("", "/"):
            raise ValueError(f"{target!r}: unexpected path {parts.path!r}; {expected}")
        return scheme, (parts.hostname, port)
    raise ValueError(f"{target!r}: unknown scheme {parts.scheme!r}; {expected}")


def _header_field(value: Any, max_len: int) -> str:
    """A header field: printable US-ASCII without spaces, at most max_len, '-' if empty."""
    text = "".join(c for c in str(value if value is not None else "") if 33 <= ord(c) <= 126)
    return text[:max_len] or "-"


def _sd_escape(value: Any) -> str:
    """RFC 5424 PARAM-VALUE escaping: backslash, double quote and ']' (section 6.3.3), after
    control, separator and bidi characters became visible escapes (a LF the two characters
    backslash and n, whose backslash is then escaped like any other)."""
    text = escape_text(str(value), backslash=False)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _syslog_timestamp(ts: Any) -> str:
    if isinstance(ts, str) and _RFC5424_TS.match(ts):
        m = re.match(r"^(.*?:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", ts)
        assert m is not None
        head, frac, off = m.groups()
        return head + (frac[:7] if frac else "") + off  # at most 6 fraction digits
    t = parse_time(ts)
    if t is None:
        return now_iso()
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_msg(alert: Any) -> str:
    return json.dumps(alert, separators=(",", ":"), default=str)  # ASCII: no BOM needed


def renderer(fmt: str) -> Callable[[dict[str, Any]], str]:
    """The MSG of one alert in format `fmt` (see formats/): JSON for native, ecs and ocsf, a CEF line for cef."""
    convert = converter(fmt)
    if convert is None:
        return _json_msg
    if fmt in JSON_FORMATS:
        return lambda alert: _json_msg(convert(alert))
    return convert


def syslog_parts(
    alert: dict[str, Any],
    facility: int,
    default_severity: int = 4,
    hostname: str | None = None,
    render: Callable[[dict[str, Any]], str] = _json_msg,
) -> tuple[str, list[str], str]:
    """The header ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID``, the SD params
    (``name="value"``) and the MSG (`render`: the alert as JSON unless told) of one alert's message."""
    severity = severity_of(alert.get("priority"), default_severity)
    pri = facility * 8 + severity
    if hostname is None:
        agent = alert.get("agent")
        hostname = agent.get("hostname") if isinstance(agent, dict) else None
    host = _header_field(hostname or socket.gethostname(), 255)
    params = [f'{k}="{_sd_escape(alert[k])}"' for k in _SD_PARAMS if alert.get(k) is not None]
    msg = render(alert)
    header = (
        f"<{pri}>1 {_syslog_timestamp(alert.get('timestamp'))} {host} {APP_NAME} "
        f"{os.getpid()} {_header_field(alert.get('rule'), 32)}"
    )
    return header, params, msg


def _sd(params: list[str]) -> str:
    return "[" + " ".join([SD_ID, *params]) + "]"


def syslog_message(alert: dict[str, Any], facility: int, default_severity: int = 4, hostname: str | None = None) -> str:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`` for one alert."""
    header, params, msg = syslog_parts(alert, facility, default_severity, hostname)
    return f"{header} {_sd(params)} {msg}"


def _char_start(data: bytes, i: int) -> int:
    """The largest j <= i where a UTF-8 character starts (or the end): data[:j] cuts no character."""
    while 0 < i < len(data) and data[i] & 0xC0 == 0x80:
        i -= 1
    return i


def _cut(body: bytes, room: int) -> bytes | None:
    """body cut to `room` bytes at a character boundary, ending in the marker; None if
    not even the marker fits. The marker is sized for the most bytes that could be cut,
    so the real one (no more digits) always fits."""
    keep = room - len(f"...[truncated {len(body)} bytes]")
    if keep < 0:
        return None
    keep = _char_start(body, keep)
    if (keep - len(body[:keep].rstrip(b"\\"))) % 2:  # never end in half an escape (CEF, JSON): a lone backslash
        keep -= 1
    return body[:keep] + f"...[truncated {len(body) - keep} bytes]".encode("ascii")


def fit_message(header: str, params: list[str], msg: str, max_bytes: int) -> tuple[bytes, bool]:
    """The message as UTF-8 within `max_bytes`, and whether it was cut: the MSG first (see
    the module docstring); if header and SD leave no room for the marker, SD params are
    dropped from the end and the MSG names them. ValueError if even the header does not fit."""
    sd = _sd(params)
    whole = f"{header} {sd} {msg}".encode()
    if len(whole) <= max_bytes:
        return whole, False
    body = msg.encode("utf-8")
    head = f"{header} {sd} ".encode()
    cut = _cut(body, max_bytes - len(head))
    if cut is not None:
        return head + cut, True
    kept = list(params)
    while kept:
        kept.pop()
        names = ",".join(p.split("=", 1)[0] for p in params[len(kept) :])
        note = f"...[truncated {len(body)} bytes; SD params dropped: {names}]".encode("ascii")
        head = f"{header} {_sd(kept)} ".encode()
        if len(head) + len(note) <= max_bytes:
            return head + note, True
    raise ValueError(f"a message header of {len(head)} bytes leaves no room within max_message_bytes {max_bytes}")


class SyslogSink:
    """Sends each alert as one RFC 5424 message. Never raises on network
    trouble: ``errors`` counts failures, ``dropped`` the alerts they lost,
    ``last_error`` says what went wrong; a TCP connection is re-made on the
    next batch. ``truncated`` counts messages cut to ``max_message_bytes``
    before sending (cut, not lost), ``last_truncated`` says the latest."""

    def __init__(self, config: Config):
        self.config = config
        self.transport, self.address = _parse_target(config.target)
        self.facility = FACILITIES[config.facility]
        self.default_severity = SEVERITIES[config.default_priority]
        self.errors = 0
        self.dropped = 0
        self.sent = 0
        self.truncated = 0
        self.last_error: str | None = None
        self.last_truncated: str | None = None
        self.max_bytes = config.max_bytes()
        self._render = renderer(config.format)
        self._sock: socket.socket | None = None
        self._addr: Any = None  # resolved datagram destination

    # -- public
    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        if not alerts:
            return 0
        before = self.dropped
        messages = []
        for a in alerts:
            try:
                messages.append(self._encode(a))
            except Exception as exc:  # noqa: BLE001 - a malformed alert must not stop the others
                self._fail(exc, 1)
        if self.transport == "tcp":
            self._send_tcp(messages)
        else:
            self._send_datagrams(messages)
        return self.dropped - before

    def close(self) -> None:
        self._drop_socket()

    # -- internals
    def _encode(self, alert: dict[str, Any]) -> bytes:
        header, params, msg = syslog_parts(
            alert, self.facility, self.default_severity, self.config.hostname, self._render
        )
        data, cut = fit_message(header, params, msg, self.max_bytes)
        if cut:
            self.truncated += 1
            full = len(f"{header} {_sd(params)} {msg}".encode())  # only for the log line: rare
            self.last_truncated = f"a message of {full} bytes cut to {len(data)} (max_message_bytes {self.max_bytes})"
        return data

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
        for msg in messages:
            try:
                if self._sock is None:
                    self._open_datagram()
                assert self._sock is not None
                self._sock.send(msg)
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
        # Connected, so a collector that is down is seen: the ICMP "port unreachable" it
        # causes fails a later send (ECONNREFUSED), and those alerts are counted as lost.
        # UDP confirms nothing else; only the first alert after each refusal goes unseen.
        sock.connect(addr)
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


def build(config: Config, context: SinkContext) -> SyslogSink:
    return SyslogSink(config)
