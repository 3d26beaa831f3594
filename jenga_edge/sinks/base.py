"""What every sink is: a destination that takes a whole scored micro-batch of alerts.

``write_batch`` gets a batch at once, so the costly part (an fsync, a
transaction, a TCP send) happens once per batch and not once per alert. An
empty batch does nothing.

An alert is a JSON-serialisable dict (see the agent): ``timestamp`` (ISO 8601
UTC), ``rule``, ``priority`` (a syslog severity name), ``task``, ``score``,
``threshold``, ``src_ip``, ``dest_ip``, ``dest_port``, ``actions`` ... Sinks
read only the keys they need and tolerate missing ones.

Failure policy: file sinks (JSONL, SQLite) raise on a disk error (losing
alerts silently on the appliance's own disk would be worse than stopping);
network sinks (syslog) and stdout never raise into the agent: ``write_batch``
returns how many of the batch's alerts it could not deliver, ``last_error``
says why, and the next batch tries again. The agent counts the lost alerts in
``jenga_sink_alerts_lost_total{sink}`` and logs them (rate-limited).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

import msgspec

from ..kinds import TaggedConfig


class SinkConfig(TaggedConfig, kw_only=True):
    """Base of every sink kind's Config."""


@dataclass
class SinkContext:
    """What `build` gets besides the config."""

    name: str = ""  # the sink's name in the config
    stdout: IO[str] | None = None  # replaces sys.stdout (tests, embedding)


@runtime_checkable
class Sink(Protocol):
    """One destination for alerts."""

    last_error: str | None  # why the last undelivered alert was lost

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        """Deliver one scored micro-batch of alerts; an empty list does nothing.
        Returns how many alerts were lost (0: all delivered)."""

    def close(self) -> None:
        """Flush and release files and sockets; the sink is not used afterwards."""


class FileSink:
    """A sink on the appliance's own disk (JSONL, SQLite): it raises on a disk error rather
    than lose alerts silently, so the agent dead-letters the batch's events instead. A kind
    implements `_write`."""

    last_error: str | None = None  # never set: a failure raises

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        self._write(alerts)
        return 0

    def _write(self, alerts: list[dict[str, Any]]) -> None:
        raise NotImplementedError


ENCODER = msgspec.json.Encoder(enc_hook=str)


def encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON (msgspec: several times faster than json.dumps on the
    agent's hot path); a value JSON cannot hold becomes its str()."""
    return ENCODER.encode(obj)


def dumps(obj: Any) -> str:
    return encode(obj).decode("utf-8")
