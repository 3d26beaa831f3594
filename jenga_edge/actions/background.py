"""Run slow actions (those with `slow = True`: webhooks) off the scoring thread.

A webhook that times out and retries would otherwise hold every event behind
it for tens of seconds. The scoring thread hands the alert to a worker and
records "queued"; the worker delivers it. An action that can spool (`spool`,
`spooled`, `retry_spool`: the webhook) keeps on disk what it cannot deliver
and sends it again when a delivery succeeds. On shutdown the worker finishes
the queue within a deadline and spools the rest, so an alert handed over is
never dropped silently.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from .base import Action


class Spooling(Protocol):
    """An action that keeps on disk what it cannot deliver (the webhook)."""

    def spool(self, body: bytes) -> tuple[bool, str]: ...
    def spooled(self) -> int: ...
    def retry_spool(self) -> object: ...


class BackgroundAction:
    """An Action whose `run` only queues the alert for a worker thread."""

    slow = False  # what the agent calls returns at once

    def __init__(
        self,
        name: str,
        action: Action,
        maxsize: int = 10_000,
        on_result: Callable[[str, dict[str, Any]], None] | None = None,
    ):
        self.name, self.action = name, action
        self.on_result = on_result or (lambda name, outcome: None)
        self.q: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize)
        self.delivered = self.failed = 0
        self.type: str = action.type
        self.target: str = action.target
        self._thread = threading.Thread(target=self._work, name=f"action-{name}", daemon=True)
        self._thread.start()

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return list(self.action.addresses(alert))

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        try:
            self.q.put_nowait(copy.deepcopy(dict(alert)))
        except queue.Full:
            return self._spool_now(alert, "background queue full")
        return {"type": self.type, "target": self.target, "result": "queued"}

    def _work(self) -> None:
        while True:
            alert = self.q.get()
            if alert is None:
                return
            try:
                outcome = self.action.run(alert)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad delivery
                outcome = self._spool_now(alert, f"{type(exc).__name__}: {exc}")
            if outcome.get("result") == "ok":
                self.delivered += 1
                if getattr(self.action, "spooled", lambda: 0)():  # then it is Spooling
                    cast(Spooling, self.action).retry_spool()  # the receiver is back: send what waited
            else:
                self.failed += 1
            self.on_result(self.name, outcome)

    def _spool_now(self, alert: Mapping[str, Any], why: str) -> dict[str, Any]:
        spool: Callable[[bytes], tuple[bool, str]] | None = getattr(self.action, "spool", None)
        if spool is None:
            return {"type": self.type, "target": self.target, "result": "failed", "reason": why}
        ok, reason = spool(json.dumps(dict(alert), default=str).encode())
        return {
            "type": self.type,
            "target": self.target,
            "result": "spooled" if ok else "failed",
            "reason": f"{why}; {reason}",
        }

    def close(self, deadline_s: float = 5.0) -> None:
        end = time.monotonic() + deadline_s
        try:
            self.q.put(None, timeout=deadline_s)
        except queue.Full:
            pass  # the worker is stuck on a slow receiver: spool what waits below
        self._thread.join(max(0.0, end - time.monotonic()))
        while self._thread.is_alive():  # past the deadline: spool what is left
            try:
                alert = self.q.get_nowait()
            except queue.Empty:
                break
            if alert is not None:
                self._spool_now(alert, "shutdown")
