"""Actions that can block (a webhook, a live exec, nft or ipset command) run behind the
asynchronous output stage (jenga_edge/output_stage.py), never on the scoring thread.

The scoring thread checks the allowlist and the rate limit (cheap), then hands
the alert to this action's queue and records ``queued`` in the alert; the
worker runs the action and hands the final outcome to `on_result(name, alert,
outcome)`, which the agent records as an ``action_result`` keyed by the
alert's ``alert_id``. A hung command or a dead receiver holds this worker only.

When the queue is full (``queue.when_full``): ``spool`` (the webhook's
default: its own spool file, sent again after the next successful delivery),
``drop_oldest`` (exec and firewall: the oldest waiting alert gets outcome
``dropped``; a spool that fails too: ``dropped`` with the spool's error, the
item's one outcome), or ``block``. On shutdown the worker finishes what waits
within ``queue.drain_s``; the rest is spooled or dropped, and a command still
running then gets outcome ``in_flight_at_stop``: each gets exactly one outcome
before `close` returns, so an alert handed over is never dropped silently. If
that command finishes afterwards, its real outcome follows, marked ``late``
(the agent records it while its sinks are open, else logs it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from ..output_stage import OutputStage, QueueConfig, WhenFull
from .base import Action

OnResult = Callable[[str, Mapping[str, Any], dict[str, Any]], None]


class Spooling(Protocol):
    """An action that keeps on disk what it cannot deliver (the webhook)."""

    def spool(self, body: bytes) -> tuple[bool, str]: ...
    def spooled(self) -> int: ...
    def retry_spool(self) -> object: ...


class BackgroundAction:
    """An Action whose `run` only queues the alert for the worker."""

    slow = False  # what the agent calls returns at once

    def __init__(
        self,
        name: str,
        action: Action,
        config: QueueConfig | None = None,
        on_result: OnResult | None = None,
    ):
        config = config or QueueConfig()
        self.name, self.action = name, action
        self.on_result: OnResult = on_result or (lambda name, alert, outcome: None)
        self.delivered = self.failed = 0
        self.type: str = action.type
        self.target: str = action.target
        self.drain_s = config.drain_s
        can_spool = callable(getattr(action, "spool", None))
        when_full: WhenFull = config.when_full or ("spool" if can_spool else "drop_oldest")
        if when_full == "spool" and not can_spool:
            from ..contract.errors import ConfigError

            raise ConfigError(f"actions.{name}.queue.when_full: spool needs an action that spools (webhook)")
        self.stage: OutputStage[dict[str, Any]] = OutputStage(
            f"action:{name}",
            self._work,
            config.size,
            when_full,
            spill=self._spill if can_spool else None,
            on_dropped=self._dropped,
            on_in_flight=self._in_flight,
        )

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return list(self.action.addresses(alert))

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        """Queue the alert; the outcome now says queued (or spooled, dropped by the queue's policy)."""
        state = self.stage.put(dict(alert))
        return {"type": self.type, "target": self.target, "result": state}

    def _work(self, alert: dict[str, Any]) -> None:
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
        if not self.stage.settle(lambda: self.on_result(self.name, alert, outcome)):
            self.on_result(self.name, alert, {**outcome, "late": True})  # after its in_flight_at_stop

    def _spill(self, alert: dict[str, Any], why: str) -> str | None:
        """The queue is full (or the stage closing): spool the alert. On failure the stage
        drops it, and that `dropped` (with this error) is the alert's one outcome."""
        outcome = self._spool_now(alert, why)
        if outcome["result"] != "spooled":
            return str(outcome.get("reason"))
        self.on_result(self.name, alert, outcome)
        return None

    def _dropped(self, alert: dict[str, Any], why: str) -> None:
        self.on_result(self.name, alert, {"type": self.type, "target": self.target, "result": "dropped", "reason": why})

    def _in_flight(self, alert: dict[str, Any], why: str) -> None:
        outcome = {"type": self.type, "target": self.target, "result": "in_flight_at_stop", "reason": why}
        self.on_result(self.name, alert, outcome)

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

    def close(self, deadline_s: float | None = None) -> None:
        self.stage.close(self.drain_s if deadline_s is None else deadline_s)
