"""What every sink is: a destination that takes a whole scored micro-batch of alerts.

``write_batch`` gets a batch at once, so the costly part (an fsync, a
transaction, a TCP send) happens once per batch and not once per alert. An
empty batch does nothing.

An alert is a JSON-serialisable dict (see the agent): ``timestamp`` (ISO 8601
UTC), ``rule``, ``priority`` (a syslog severity name), ``task``, ``score``,
``threshold``, ``src_ip``, ``dest_ip``, ``dest_port``, ``actions`` ... Sinks
read only the keys they need and tolerate missing ones.

Failure policy: file sinks (JSONL, SQLite) are the durable record: they raise
on a disk error (a `lines.LineWriteError` says how many of the batch's alerts
were kept whole), and the agent counts the lost alerts for that sink and
applies its `on_sink_failure` policy (stop, or spool). A sink failure never
turns the batch's events into rejections: they were scored. Network sinks
(syslog) and stdout never raise into the agent: ``write_batch`` returns how
many of the batch's alerts it could not deliver, ``last_error`` says why, and
the next batch tries again. Either way the agent counts the lost alerts in
``jenga_sink_alerts_lost_total{sink}`` and logs them (rate-limited).

A sink that can block (syslog, or any sink given a `queue:`) runs behind the
asynchronous output stage (queued.py, jenga_edge/output_stage.py). A file sink
may also take action outcomes (`write_outcomes`, records with ``event_type:
action_result`` and the ``alert_id`` they complete); others never see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Annotated, Any, Protocol, runtime_checkable

import msgspec

from ..contract.typed import doc
from ..kinds import TaggedConfig
from ..output_stage import QueueConfig


class SinkConfig(TaggedConfig, kw_only=True):
    """Base of every sink kind's Config."""

    queue: Annotated[
        QueueConfig | None,
        doc("run this sink behind an output queue and worker (default: syslog does, file sinks and stdout do not)"),
    ] = None


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
    than lose alerts silently; the agent counts the loss and applies `on_sink_failure`.
    A kind implements `_write` (and `write_outcomes`)."""

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
