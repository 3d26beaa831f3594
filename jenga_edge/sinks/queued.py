"""A sink behind the asynchronous output stage: the scoring thread queues the batch,
a worker writes it (jenga_edge/output_stage.py).

A collector that accepts and never reads, or a TCP connect that waits out its
timeout, then holds this sink's worker and nothing else. What the worker could
not deliver, and what the queue's policy dropped, is reported by the next
`write_batch` (and by `take_lost` at shutdown), so the agent counts it in
``jenga_sink_alerts_lost_total{sink}`` as for any sink: alerts the inner sink
reported lost, a batch whose write raised, a batch dropped by the queue's
policy, and a batch still being sent when the stop's drain_s ran out (its
delivery is not confirmed, so it counts as lost).
"""

from __future__ import annotations

import threading
from typing import Any

from ..contract.errors import ConfigError
from ..output_stage import OutputStage, QueueConfig, WhenFull
from .base import Sink
from .lines import LineSpool

DEFAULT_WHEN_FULL: WhenFull = "drop_oldest"  # a collector down must not stall scoring


class QueuedSink:
    """Wraps a sink; `write_batch` queues and returns the losses seen since the last call."""

    def __init__(self, name: str, inner: Sink, config: QueueConfig):
        self.name, self.inner = name, inner
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._lost = 0
        self._spool = LineSpool(config.spool_path, config.max_spool_bytes) if config.spool_path else None
        when_full = config.when_full or DEFAULT_WHEN_FULL
        if when_full == "spool" and self._spool is None:
            raise ConfigError(f"sinks.{name}.queue.spool_path: when_full spool needs a spool file")
        self.drain_s = config.drain_s
        self.stage: OutputStage[list[dict[str, Any]]] = OutputStage(
            f"sink:{name}",
            self._deliver,
            config.size,
            when_full,
            spill=self._spill if self._spool is not None else None,
            on_dropped=self._dropped,
            on_in_flight=self._dropped,
        )

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        if alerts:
            # A copy of the list: the caller's (Agent.process returns it) may change while this waits.
            self.stage.put(list(alerts))
        return self.take_lost()

    def take_lost(self) -> int:
        with self._lock:
            lost, self._lost = self._lost, 0
        return lost

    def _deliver(self, alerts: list[dict[str, Any]]) -> None:
        failed: Exception | None = None
        try:
            lost, why = self.inner.write_batch(alerts), self.inner.last_error
        except Exception as exc:  # noqa: BLE001 - counted lost here, `failed` in the stage (re-raised)
            failed, lost, why = exc, len(alerts), f"{type(exc).__name__}: {exc}"
        # Not counted if close already counted this batch lost (still sending at stop).
        self.stage.settle(lambda: self._count(lost, why) if lost else None)
        if failed is not None:
            raise failed

    def _spill(self, alerts: list[dict[str, Any]], why: str) -> str | None:
        assert self._spool is not None
        if self._spool.add([{"sink": self.name, "why": why, "alert": a} for a in alerts]):
            return None
        return self._spool.last_error or "spool failed"

    def _dropped(self, alerts: list[dict[str, Any]], why: str) -> None:
        self._count(len(alerts), f"dropped: {why}")

    def _count(self, lost: int, why: str | None) -> None:
        with self._lock:
            self._lost += lost
            self.last_error = why

    def close(self) -> None:
        self.stage.close(self.drain_s)
        if not self.stage.busy:  # a worker still stuck in a send keeps its socket
            self.inner.close()
        if self._spool is not None:
            self._spool.close()
