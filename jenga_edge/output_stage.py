"""One asynchronous output stage: a bounded queue and a worker thread in front of
anything that can block (a syslog collector, a webhook, exec, nft, ipset).

The scoring thread only `put`s an item and goes on; the worker delivers it. A
dead or slow receiver, or a hung command, then holds its own worker, never the
scoring loop. What happens when the queue is full is the stage's policy
(`when_full`):

* ``block``: the scoring thread waits for room (back-pressure: the sources'
  queue fills and they block or drop as they are configured to);
* ``drop_oldest``: the oldest waiting item is discarded to make room;
* ``spool``: the new item is handed to the stage's spill function (a webhook's
  spool, a sink's spool file); if that fails too, it is dropped.

Every item ends in exactly one counter: ``done`` (the worker ran it),
``failed`` (the worker raised), ``dropped`` (by policy, or left at shutdown),
``spooled``. ``queued`` counts what was accepted into the queue. The agent
mirrors them into ``jenga_output_items_total{stage,state}``, and `on_dropped`
lets the owner record the fate of a discarded item (an action's outcome).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated, Generic, Literal, TypeVar

from .contract.typed import Config, doc

WhenFull = Literal["block", "drop_oldest", "spool"]
STATES = ("queued", "done", "failed", "dropped", "spooled")

T = TypeVar("T")


class QueueConfig(Config, kw_only=True):
    """The output stage in front of a sink or an action that can block (docs/agent.md)."""

    size: Annotated[int, doc("items waiting at most (an item: one batch of alerts, or one action)", ge=1)] = 10_000
    when_full: Annotated[
        WhenFull | None,
        doc(
            "block: scoring waits for room; drop_oldest: the oldest waiting item is discarded (counted); "
            "spool: the new item is spooled (a webhook's spool, or spool_path). Default: the kind's "
            "(syslog, exec, firewall: drop_oldest; webhook: spool)"
        ),
    ] = None
    spool_path: Annotated[str, doc("a sink's spool file for when_full: spool (JSON lines, bounded)")] = ""
    max_spool_bytes: Annotated[int, doc("the spool file's bound: past it, items are dropped (counted)", ge=1024)] = (
        16 * 1024 * 1024
    )
    drain_s: Annotated[
        float, doc("at stop, how long the worker may take to finish what waits (the rest is dropped, counted)", ge=0.0)
    ] = 5.0


class OutputStage(Generic[T]):
    """A bounded queue of items and one worker thread calling `work(item)`."""

    def __init__(
        self,
        name: str,
        work: Callable[[T], None],
        size: int,
        when_full: WhenFull,
        spill: Callable[[T, str], bool] | None = None,
        on_dropped: Callable[[T, str], None] | None = None,
    ):
        if when_full == "spool" and spill is None:
            raise ValueError(f"{name}: when_full spool needs a spool")
        self.name, self.when_full, self.size = name, when_full, size
        self._work, self._spill = work, spill
        self._on_dropped = on_dropped or (lambda item, why: None)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self.busy = False  # the worker is running an item now
        self.counts = dict.fromkeys(STATES, 0)
        self._thread = threading.Thread(target=self._run, name=f"output:{name}", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        return len(self._items)

    def put(self, item: T) -> str:
        """Queue `item` (or apply the policy); returns its state now: queued, spooled or dropped."""
        dropped: T | None = None
        with self._cond:
            if self._closing:
                return self._drop(item, "stage closed")
            if len(self._items) >= self.size:
                if self.when_full == "block":
                    while len(self._items) >= self.size and not self._closing and self._thread.is_alive():
                        self._cond.wait(0.5)
                elif self.when_full == "drop_oldest":
                    dropped = self._items.popleft()
                    self.counts["dropped"] += 1
                else:
                    return self._spill_or_drop(item, "queue full")
            self._items.append(item)
            self.counts["queued"] += 1
            self._cond.notify_all()
        if dropped is not None:
            self._on_dropped(dropped, "queue full (drop_oldest)")
        return "queued"

    def _spill_or_drop(self, item: T, why: str) -> str:
        assert self._spill is not None
        try:
            ok = self._spill(item, why)
        except Exception:  # noqa: BLE001 - a failing spool drops the item, counted
            ok = False
        if ok:
            self.counts["spooled"] += 1
            return "spooled"
        return self._drop(item, f"{why}; spool failed")

    def _drop(self, item: T, why: str) -> str:
        self.counts["dropped"] += 1
        self._on_dropped(item, why)
        return "dropped"

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                self.busy = True
                self._cond.notify_all()  # room for a blocked put
            try:
                self._work(item)
                state = "done"
            except Exception:  # noqa: BLE001 - the worker outlives one bad item; `work` reports its own errors
                state = "failed"
            with self._cond:
                self.counts[state] += 1
                self.busy = False
                self._cond.notify_all()

    def close(self, deadline_s: float) -> int:
        """Let the worker finish what waits within `deadline_s`; what is left then is
        spooled (policy spool) or dropped, counted. Returns how many were left."""
        end = time.monotonic() + deadline_s
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(max(0.0, end - time.monotonic()))
        with self._cond:
            left = list(self._items)
            self._items.clear()
        for item in left:
            if self._spill is not None:
                self._spill_or_drop(item, "shutdown")
            else:
                self._drop(item, f"not done within drain_s {deadline_s:g}s at shutdown")
        return len(left)
