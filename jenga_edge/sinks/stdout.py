"""`type: stdout`: one line per alert on standard output, as JSON or as a short text line.

`format: json` (or `native`) writes the alert itself; `ecs` and `ocsf` write it converted
(`formats/`), also one compact JSON object per line; `text` is the human line, whatever else a
SIEM takes (the standard formats have no text form).

`format_text` is also what `jenga-edge alerts` prints. Its values come from
events an attacker may write (an address, a timestamp), so each is escaped
(`contract.text.escape_text`, and a space inside a value as ``\\x20``): one alert
is one line of space-separated fields, and nothing in it drives a terminal. The
JSON format is escaped by JSON itself; `json_text_safe` also writes the few
characters JSON lets through raw (DEL, C1, bidi and line separators) as ``\\uXXXX``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import IO, Annotated, Any, Literal

from ..contract.text import escape_text, json_text_safe
from ..contract.typed import doc
from ..timestamps import parse_time
from .base import SinkConfig, SinkContext, dumps, encode
from .formats import converter


class Config(SinkConfig, tag="stdout", kw_only=True):
    """Alerts on standard output (a shell, or a service manager's journal)."""

    format: Annotated[
        Literal["json", "text", "native", "ecs", "ocsf"],
        doc(
            "json (or native): the alert as one compact JSON object per line; ecs, ocsf: the alert mapped "
            "to ECS 8.x or an OCSF 1.x Detection Finding, one JSON object per line; text: a short human line"
        ),
    ] = "json"


def _value(value: Any) -> str:
    """One field of a text line: escaped, and a space written ``\\x20`` so that a
    value cannot pass for more fields."""
    return escape_text(str(value)).replace(" ", "\\x20")


def _short_time(ts: Any) -> str:
    """`2026-11-25T17:00:00.123Z` -> `2026-11-25T17:00:00Z` (whole seconds, UTC)."""
    t = parse_time(ts)
    if t is None:
        return _value(ts) if ts not in (None, "") else "-"
    return datetime.fromtimestamp(int(t // 1), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3f}"
    return _value(value)


def _action_text(action: Any) -> str:
    if not isinstance(action, dict):
        return _value(action)
    name = next((action[k] for k in ("type", "name", "action", "kind") if action.get(k)), None)
    state = next((action[k] for k in ("status", "result", "outcome", "mode") if action.get(k)), None)
    if state is None and action.get("dry_run") is True:
        state = "dry_run"
    parts = [_value(p) for p in (name, state) if p is not None]
    return ":".join(parts) if parts else _value(dumps(action))


def _host_port(host: str, port: Any) -> str:
    return f"[{host}]:{_value(port)}" if ":" in host else f"{host}:{_value(port)}"


def format_text(alert: dict[str, Any]) -> str:
    """One short human line, e.g. ``2026-11-25T17:00:00Z CRITICAL ssh_block threat
    score=0.970>=0.800 src=203.0.113.7 dst=10.0.0.5:22 action=firewall:dry_run``."""
    out = [
        _short_time(alert.get("timestamp")),
        _value(str(alert.get("priority") or "-").upper()),
        _value(alert.get("rule") or "-"),
        _value(alert.get("task") or "-"),
    ]
    score = alert.get("score")
    if score is not None:
        threshold = alert.get("threshold")
        out.append(f"score={_num(score)}" + (f">={_num(threshold)}" if threshold is not None else ""))
    if alert.get("src_ip"):
        src = _value(alert["src_ip"])
        if alert.get("src_port") is not None:
            src = _host_port(src, alert["src_port"])
        out.append(f"src={src}")
    if alert.get("dest_ip"):
        dst = _value(alert["dest_ip"])
        if alert.get("dest_port") is not None:
            dst = _host_port(dst, alert["dest_port"])
        out.append(f"dst={dst}")
    actions = alert.get("actions")
    if actions:
        items = actions if isinstance(actions, list) else [actions]
        out.append("action=" + ",".join(_action_text(a) for a in items))
    return " ".join(out)


def _json_line(alert: dict[str, Any]) -> str:
    return json_text_safe(encode(alert))


class StdoutSink:
    """One line per alert (compact JSON or `format_text`), flushed per batch.
    A closed or broken stream is counted in ``errors``, never raised."""

    def __init__(self, config: Config | None = None, stream: IO[str] | None = None):
        self.config = config or Config()
        self._stream = stream  # None: whatever sys.stdout is at write time
        fmt = self.config.format
        self._convert = converter(fmt) if fmt in ("ecs", "ocsf") else None
        self.errors = 0
        self.last_error: str | None = None

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        if not alerts:
            return 0
        if self._convert is not None:
            convert = self._convert
            text = "".join(_json_line(convert(a)) + "\n" for a in alerts)
        else:
            render = format_text if self.config.format == "text" else _json_line
            text = "".join(render(a) + "\n" for a in alerts)
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return len(alerts)
        return 0

    def close(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def build(config: Config, context: SinkContext) -> StdoutSink:
    return StdoutSink(config, context.stdout)
