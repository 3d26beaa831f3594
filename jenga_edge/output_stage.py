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
``spooled``, or ``in_flight`` (the worker was still running it when `close`'s
deadline passed). ``queued`` counts what was accepted into the queue. The agent
mirrors them into ``jenga_output_items_total{stage,state}``, and `on_dropped` /
`on_in_flight` let the owner record the fate of such an item (an action's
outcome) before `close` returns.

At stop the worker takes no item once `close`'s deadline has passed, nor after
`close` gave up on it (both checked under the lock), so nothing starts after the
owner treated the stage as closed. An item still running then gets its outcome
from `close` (``in_flight``); `work` hands its own outcome over through
`settle`, which refuses once `close` did, so no item gets two. Such an item
that finishes later is counted in `late` (the owner logs its real outcome).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated, Generic, Literal, TypeVar

from .contract.typed import Config, doc

WhenFull = Literal["block", "drop_oldest", "spool"]
STATES = ("queued", "done", "failed", "dropped", "spooled", "in_flight")

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
        spill: Callable[[T, str], str | None] | None = None,
        on_dropped: Callable[[T, str], None] | None = None,
        on_in_flight: Callable[[T, str], None] | None = None,
    ):
        """`spill(item, why)` returns None once the item is spooled, else why it could not be."""
        if when_full == "spool" and spill is None:
            raise ValueError(f"{name}: when_full spool needs a spool")
        self.name, self.when_full, self.size = name, when_full, size
        self._work, self._spill = work, spill
        self._on_dropped = on_dropped or (lambda item, why: None)
        self._on_in_flight = on_in_flight or (lambda item, why: None)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = float("inf")  # set by close: the worker starts no item past it
        self._abandoned = False  # close gave up waiting: the worker takes nothing more
        self._current: T | None = None  # the item the worker is running (items are never None)
        self._settled = False  # the running item's outcome was handed over (settle)
        self._in_flight_reported = False  # close gave the running item its outcome
        self.counts = dict.fromkeys(STATES, 0)
        self.late = 0  # items reported in_flight at stop that finished afterwards
        self._thread = threading.Thread(target=self._run, name=f"output:{name}", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        return len(self._items)

    @property
    def busy(self) -> bool:
        """The worker is running an item now."""
        return self._current is not None

    @property
    def worker(self) -> int | None:
        """The worker thread's ident (what it runs, e.g. an action's command, is this stage's)."""
        return self._thread.ident

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
                    if self._closing:  # closed while it waited: nothing would take it any more
                        return self._drop(item, "stage closed")
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
            error = self._spill(item, why)
        except Exception as exc:  # noqa: BLE001 - a failing spool drops the item, counted
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.counts["spooled"] += 1
            return "spooled"
        return self._drop(item, f"{why}; spool failed: {error}")  # its one outcome

    def _drop(self, item: T, why: str) -> str:
        self.counts["dropped"] += 1
        self._on_dropped(item, why)
        return "dropped"

    def settle(self, report: Callable[[], None]) -> bool:
        """From `work`, once its item's outcome is known: run `report` (hand the outcome
        over; keep it short, it runs under the stage's lock) unless `close` already gave
        the item its in_flight outcome. Returns False then: the outcome is late."""
        with self._cond:
            if self._in_flight_reported:
                return False
            report()
            self._settled = True
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items or self._abandoned or time.monotonic() >= self._deadline:
                    return  # close spools or drops what is left
                item = self._items.popleft()
                self._current, self._settled = item, False
                self._cond.notify_all()  # room for a blocked put
            try:
                self._work(item)
                state = "done"
            except Exception:  # noqa: BLE001 - the worker outlives one bad item; `work` reports its own errors
                state = "failed"
            with self._cond:
                self._current = None
                self._cond.notify_all()
                if self._in_flight_reported:  # close counted it in_flight and gave up on the stage
                    self.late += 1
                    return
                self.counts[state] += 1

    def close(self, deadline_s: float) -> int:
        """Let the worker finish what waits within `deadline_s`; what is left then is
        spooled (policy spool) or dropped, and an item still running is counted
        ``in_flight``, each with its outcome before this returns. Returns how many
        were left waiting."""
        end = time.monotonic() + deadline_s
        with self._cond:
            self._closing = True
            self._deadline = min(self._deadline, end)
            self._cond.notify_all()
        self._thread.join(max(0.0, end - time.monotonic()))
        running: list[T] = []
        with self._cond:
            self._abandoned = True  # before the queue is emptied: the worker takes nothing more
            left = list(self._items)
            self._items.clear()
            if self._current is not None and not self._settled and not self._in_flight_reported:
                running.append(self._current)
                self._in_flight_reported = True
                self.counts["in_flight"] += 1
        for item in running:
            self._on_in_flight(item, f"still running when its queue closed (its drain_s of {deadline_s:g}s ran out)")
        for item in left:
            if self._spill is not None:
                self._spill_or_drop(item, "shutdown")
            else:
                self._drop(item, f"not done within drain_s {deadline_s:g}s at shutdown")
        return len(left)
