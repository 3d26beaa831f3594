"""Rules' warm-up after a cold start: alerts held while the windows fill.

A window feature of an agent that just started, with no window state restored
(`event.snapshot`), has seen nothing: the first flow of a host has no history,
no replies counted, no peers. To a model trained on warm windows, such a flow
can look like a scan's first probe (the SOC model, README: LAN-discovery flows
in the first seconds of the stream). A rule with `warmup_s` is quiet until
event time has run that long past the stream's first event; what it would have
raised meanwhile is counted per rule (jenga_alerts_warmup_held_total), never
raised, and the start and end of the warm-up are logged once.

The clock is the windows' (DecodedBatch.times): the warm-up ends at the first
event whose time, as the window clock saw it, is `warmup_s` past the first
event's; events after it are never held, even one that comes late. A window
snapshot restored at start means warm state for a rule if its windows still hold
something at the first event: not if the snapshot's windows were empty (saved
before any event), nor if the first event is the rule's span or more past the
snapshot's newest (every window that long empties at it: a restart after an
outage); such a rule warms up from the first event as after a cold start. Window
state a reload kept means warm state: no warm-up (a reload that reset the
windows starts one again).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt


class WarmUp:
    """The event-time state the warm-up needs: shared by every rule of a pipeline, and
    carried with the window state over a reload."""

    def __init__(self) -> None:
        self.warm = False  # window state carried over a reload, or that ran untracked: nothing is held
        # the window clock of a restored snapshot (-inf: none, or its windows were empty): a rule
        # is warm if the first event comes less than its span after it
        self.restored = -math.inf
        self.start: float | None = None  # the event time of the first event seen cold
        self.clock = -math.inf  # the highest event time seen (the windows' view of it)
        self._running: npt.NDArray[np.float64] | None = None  # this batch: the clock as of each row
        self.announced = False  # the start was logged (the agent's)

    def advance(self, times: npt.NDArray[np.float64] | None, clock: float | None) -> None:
        """Take a batch's event times as the windows placed them (a time far ahead of their
        clock: at the clock, until a run of them moves it; the same whatever the batches) and
        the window clock after it (None: a batch without windows, nothing to hold). Only while
        a rule warms up."""
        self._running = None
        if self.warm or times is None or clock is None or not len(times):
            return
        running = np.minimum(times, clock)
        if self.start is None:
            self.start = float(running[0])
        np.maximum.accumulate(running, out=running)
        np.maximum(running, self.clock, out=running)
        self._running = running
        self.clock = float(running[-1])

    def held(self, span: float) -> npt.NDArray[np.bool_] | None:
        """This batch's rows a rule with warm-up `span` holds (None: none)."""
        running, start = self._running, self.start
        if running is None or start is None or span <= 0 or running[0] >= start + span or self.restored_warm(span):
            return None
        return running < start + span

    def restored_warm(self, span: float) -> bool:
        """Whether a restored snapshot's windows still held something at the first event, for a
        rule of warm-up `span` (False before the first event, or without a snapshot)."""
        return self.start is not None and self.start - self.restored < span

    def over(self, span: float) -> bool:
        """Whether a warm-up of `span` has ended (or never applied: warm state)."""
        return self.warm or (
            self.start is not None and (self.clock >= self.start + span or self.start - self.restored < span)
        )
