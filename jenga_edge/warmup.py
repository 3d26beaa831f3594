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
windows starts one again). Windows emptied because their clock came back from a
burst of wild times (WindowEngine.reset) are cold again: the warm-up starts over
at the row where they were emptied (the rows before it count as the warm-up stood).
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
        # this batch, per row: event time past the start, and the start past a restored snapshot's clock
        self._elapsed: npt.NDArray[np.float64] | None = None
        self._gap: npt.NDArray[np.float64] | None = None
        self.announced = False  # the start was logged (the agent's)

    def restart(self) -> None:
        """The windows were emptied (their clock came back): cold again, from the next event."""
        self.warm, self.restored, self.start, self.clock, self.announced = False, -math.inf, None, -math.inf, False

    def advance(
        self, times: npt.NDArray[np.float64] | None, clock: float | None, reset_rows: tuple[int, ...] = ()
    ) -> None:
        """Take a batch's event times as the windows placed them (a time far ahead of their
        clock: at the clock, until a run of them moves it; the same whatever the batches) and
        the window clock after it (None: a batch without windows, nothing to hold). `reset_rows`:
        rows from which the windows were emptied: the rows before each count as the warm-up
        stood, then it starts over (restart) there, as if the batch had been cut at each. Only
        while a rule warms up, or the windows were emptied."""
        self._elapsed = self._gap = None
        if times is None or clock is None or not len(times):
            return
        if not reset_rows:
            self._elapsed, self._gap = self._segment(np.minimum(times, clock))
            return
        parts = []
        for i, (a, b) in enumerate(zip((0, *reset_rows), (*reset_rows, len(times)))):
            if i:
                self.restart()
            parts.append(self._segment(times[a:b]))
        self._elapsed = np.concatenate([p[0] for p in parts])
        self._gap = np.concatenate([p[1] for p in parts])

    def _segment(self, times: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Each row's event time past the warm-up's start (the clock as of the row), and how long
        after a restored snapshot's newest event the warm-up started (inf: none restored)."""
        n = len(times)
        if self.warm or not n:
            return np.full(n, math.inf), np.full(n, -math.inf)
        if self.start is None:
            self.start = float(times[0])
        running = np.maximum.accumulate(times)
        np.maximum(running, self.clock, out=running)
        self.clock = float(running[-1])
        return running - self.start, np.full(n, self.start - self.restored)

    def held(self, span: float) -> npt.NDArray[np.bool_] | None:
        """This batch's rows a rule with warm-up `span` holds (None: none): before `span` has
        run, unless a restored snapshot's windows still held something at the first event."""
        if self._elapsed is None or self._gap is None or span <= 0:
            return None
        mask = (self._elapsed < span) & (span <= self._gap)
        return mask if bool(mask.any()) else None

    def restored_warm(self, span: float) -> bool:
        """Whether a restored snapshot's windows still held something at the first event, for a
        rule of warm-up `span` (False before the first event, or without a snapshot)."""
        return self.start is not None and self.start - self.restored < span

    def over(self, span: float) -> bool:
        """Whether a warm-up of `span` has ended (or never applied: warm state)."""
        return self.warm or self.restored_warm(span) or (self.start is not None and self.clock >= self.start + span)
