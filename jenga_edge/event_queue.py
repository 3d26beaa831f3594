"""The bounded queue between the sources and the agent, and what travels on it.

Sources hand over lines in blocks (all the lines one read framed, from one
origin) and the agent takes micro-batches as parallel lists, so the queue
costs a few list operations per block rather than Python objects per line: at
200k lines/s on one core, a per-line namedtuple, deque entry and popleft were
a third of the agent's time.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, overload

import numpy as np

from .contract.errors import ConfigError
from .native import fastjson as _native

if TYPE_CHECKING:
    import numpy.typing as npt


def _spans_py(buf: bytes, start: int, k: int, out: npt.NDArray[np.int64]) -> int:
    """_fastjson.spans in Python (no C extension): the next k non-empty lines
    from byte `start` as [start, stop) pairs in out; returns the byte after the k-th."""
    got, pos = 0, start
    while got < k:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"spans: {k} lines asked, {got} found")
        stop = nl - 1 if nl > pos and buf[nl - 1 : nl] == b"\r" else nl
        if stop > pos:
            out[got] = (pos, stop)
            got += 1
        pos = nl + 1
    return pos


_spans = _native.spans if _native is not None else _spans_py  # framing of a buffer of lines

_POLL_S = 0.2  # how often blocked producers look at their stop flag


# A line's flag beside its bytes (0: a plain line): OVERSIZE, cut at max_line_bytes
# (rejected, reason oversize); PARTIAL, the last bytes of a listener's connection that
# ended mid-line (either side closed it): rejected as partial_line unless they decode.
OVERSIZE, PARTIAL = 1, 2


class Line(NamedTuple):
    """One framed event: its bytes (no newline), where it came from, and
    whether it was cut at max_line_bytes (the agent rejects those)."""

    data: bytes
    origin: str
    oversize: bool = False


class Chunk(NamedTuple):
    """A read's complete lines left in one buffer (no bytes object per line):
    `count` non-empty lines, each ending with a newline."""

    buf: bytes
    count: int  # type: ignore[assignment]  # shadows tuple.count(), on purpose


# A list of line bytes, or (buffer, int64 spans [n, 2]).
Segment: TypeAlias = "list[bytes] | tuple[bytes, npt.NDArray[np.int64]]"


class Lines(Sequence[bytes]):
    """A batch's lines: segments that are either lists of bytes or a buffer
    with line spans. The decoder's C tier reads spans in place; indexing
    gives a line's bytes (for the few that need them: fallbacks, dead letters)."""

    __slots__ = ("_n", "_starts", "segments")

    def __init__(self, segments: list[Segment]):
        self.segments = [s for s in segments if len(s if isinstance(s, list) else s[1])]
        self._starts: list[int] = []
        n = 0
        for seg in self.segments:
            self._starts.append(n)
            n += len(seg) if isinstance(seg, list) else len(seg[1])
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        k = bisect.bisect_right(self._starts, i) - 1
        seg, r = self.segments[k], i - self._starts[k]
        if isinstance(seg, list):
            return seg[r]
        a, b = seg[1][r]
        return seg[0][a:b]

    def __iter__(self) -> Iterator[bytes]:
        for seg in self.segments:
            if isinstance(seg, list):
                yield from seg
            else:
                buf = seg[0]
                for a, b in seg[1].tolist():
                    yield buf[a:b]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, Lines)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, as a list

    def __repr__(self) -> str:
        return f"Lines({list(self)!r})"


class Batch:
    """Lines taken from the queue together, as parallel lists.

    ``data[i]`` is line i's bytes (`data` is a `Lines`); ``oversize`` is None when no line in the
    batch is oversize (the common case) or a list of flags; ``origins`` is a
    run-length list of ``(origin, count)``. ``batch[i]`` gives line i as a
    `Line` (for the few lines that become alerts or dead letters).
    """

    __slots__ = ("data", "origins", "oversize")

    def __init__(
        self,
        data: list[bytes] | Lines,
        oversize: list[int] | None = None,
        origins: list[tuple[str, int]] | None = None,
    ):
        self.data = data if isinstance(data, Lines) else Lines([list(data)])
        self.oversize = oversize if oversize is not None and any(oversize) else None
        self.origins = origins if origins is not None else [("unknown", len(data))]

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __getitem__(self, i: int) -> Line:
        return Line(self.data[i], self.origin_of(i), bool(self.oversize and self.oversize[i] == OVERSIZE))

    def origin_of(self, i: int) -> str:
        for origin, count in self.origins:
            if i < count:
                return origin
            i -= count
        raise IndexError(i)

    def oversize_flags(self) -> list[int]:
        return self.oversize if self.oversize is not None else []


class _Block:
    """Lines queued together: one origin, one enqueue time; `pos` is how many
    the agent already took. Either a list of line bytes (`data`) or a
    `Chunk`'s buffer (`buf`, `count`; `at` is the byte where untaken lines start)."""

    __slots__ = ("at", "buf", "count", "data", "origin", "oversize", "pos", "t")

    def __init__(
        self,
        t: float,
        data: list[bytes] | None,
        oversize: list[int] | None,
        origin: str,
        buf: bytes | None = None,
        count: int = 0,
    ):
        self.t, self.data, self.oversize, self.origin, self.pos = t, data, oversize, origin, 0
        self.buf, self.at = buf, 0
        self.count = len(data) if data is not None else count


class EventQueue:
    """A bounded FIFO of lines shared by all sources and the agent, bounded by
    line count and (optionally) by bytes.

    Producers put a read's lines at once (`put_chunk`, `put_lines`) and block
    while it is full (back-pressure) but give up as soon as their `stop` event
    is set or the queue is closed, so shutdown never deadlocks; `block=False`
    never blocks (UDP). `take` is the agent's micro-batching primitive ("N
    lines or T seconds, whichever first").
    """

    def __init__(self, maxsize: int, max_bytes: int = 0):
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ConfigError(f"queue maxsize: expected a positive integer, got {maxsize!r}")
        self.maxsize = maxsize
        # Memory is what a gateway runs out of: bound the queued bytes too (0 = no
        # bound). A single line bigger than the bound is still let into an empty queue.
        self.max_bytes = max_bytes
        self._bytes = 0
        # Partial lines the sources hold (waiting for their newline) count against
        # max_bytes too (`reserve`): a peer holding lines open must not hold memory.
        self._partial = 0
        self._holders = 0  # streams holding a partial line
        self.partial_peak = 0  # the most partial-line bytes held at once
        self._count = 0
        self._blocks: collections.deque[_Block] = collections.deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        # Hand-overs cost context switches, and on one core those cost as much as
        # the work: producers wake the consumer only once it can fill what it
        # waits for (`_want` lines, or the queue is full), and a consumer wakes
        # blocked producers only once the queue has drained to half.
        self._want = 1
        self._closed = False

    # ------------------------------------------------------------ producers
    def put_lines(
        self,
        data: list[bytes],
        origin: str,
        oversize: list[int] | None = None,
        *,
        block: bool = True,
        stop: threading.Event | None = None,
        timeout: float | None = None,
    ) -> int:
        """Enqueue lines in order, as much as there is room for at a time;
        while full, wait (if `block`). Returns how many were enqueued: fewer
        only if the queue closed, `stop` got set, `timeout` passed, or (not
        blocking) there was no room."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done, n = 0, len(data)
        with self._lock:
            while done < n:
                if not self._wait_for_room(block, stop, deadline):
                    return done
                k = self._fitting(data, done)
                part = data[done : done + k] if (done or k < n) else data
                flags = oversize[done : done + k] if oversize is not None and any(oversize) else None
                self._append(_Block(time.monotonic(), part, flags, origin), sum(map(len, part)))
                done += k
        return done

    def put_chunk(self, chunk: Chunk, origin: str, *, block: bool = True, stop: threading.Event | None = None) -> int:
        """`put_lines` for a `Chunk`: as many of its lines as there is room
        for at a time (the chunk is cut at a line boundary when it does not
        fit whole); returns how many were enqueued."""
        done = 0
        with self._lock:
            while chunk.count:
                if not self._wait_for_room(block, stop, None):
                    return done
                k = self._fitting_chunk(chunk)
                if k < chunk.count:
                    spans = np.empty((k, 2), dtype=np.int64)
                    end = _spans(chunk.buf, 0, k, spans)
                    head, chunk = Chunk(chunk.buf[:end], k), Chunk(chunk.buf[end:], chunk.count - k)
                else:
                    head, chunk = chunk, Chunk(b"", 0)
                self._append(_Block(time.monotonic(), None, None, origin, head.buf, head.count), len(head.buf))
                done += head.count
        return done

    def reserve(self, n: int, held: int, stop: threading.Event | None = None) -> bool:
        """A stream's partial line grows by `n` bytes (it holds `held` already):
        count them against max_bytes, with the queued lines.

        While the queued lines are what leaves no room, wait for the consumer
        (the source stops reading: back-pressure). Partial lines are another
        matter: a peer can hold one open as long as it likes, so waiting for
        them could last forever. Each stream holding one may hold its fair share
        (max_bytes / streams holding one) whatever the others hold, and a stream
        alone may hold one line up to its own cap (max_line_bytes), as one line
        is let into an empty queue. A stream past its share is refused (False):
        its owner cuts the line (rejected as oversize), so the stream holding
        the most pays, not the next one to need a few bytes."""
        with self._lock:
            holders = self._holders + (held == 0)
            while self.max_bytes and self._bytes + self._partial + n > self.max_bytes:
                if held + n > self.max_bytes // holders:
                    if holders > 1:
                        return False
                    break  # alone: its own cap bounds it
                if self._partial + n > self.max_bytes:
                    break  # within its share: the streams past theirs are cut when they grow
                if self._closed or (stop is not None and stop.is_set()):
                    break  # shutting down: the line is handed over (or counted) right after
                self._not_empty.notify()  # the consumer must drain now, not at its deadline
                self._not_full.wait(_POLL_S)
            self._partial += n
            self._holders += held == 0
            self.partial_peak = max(self.partial_peak, self._partial)
            return True

    def release(self, n: int, left: int) -> None:
        """A stream's partial line shrank by `n` bytes (completed, cut, or its
        stream ended), leaving it `left` bytes."""
        if n:
            with self._lock:
                self._partial -= n
                self._holders -= left == 0
                self._not_full.notify_all()

    @property
    def partial_bytes(self) -> int:
        """Bytes of partial lines the sources hold now."""
        return self._partial

    def _wait_for_room(self, block: bool, stop: threading.Event | None, deadline: float | None) -> bool:
        """With the lock held: wait while the queue is full. False if the
        producer should give up (closed, not blocking, stopped, timed out)."""
        while self._full() and not self._closed:
            self._not_empty.notify()  # full: the consumer must drain it now, not at its deadline
            if not block or (stop is not None and stop.is_set()):
                return False
            wait = _POLL_S
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return False
            self._not_full.wait(wait)
        return not self._closed

    def _append(self, block: _Block, nbytes: int) -> None:
        self._blocks.append(block)
        self._count += block.count
        self._bytes += nbytes
        if self._count >= self._want or self._full():
            self._not_empty.notify()

    # ------------------------------------------------------------- consumer
    def take(self, max_items: int, timeout_s: float) -> Batch:
        """Up to `max_items` lines: "N events or T seconds, whichever first".

        Waits at most `timeout_s` for a first line (an empty Batch if none
        comes, or the queue is closed and empty). Then keeps collecting until
        `max_items` or until `timeout_s` after that first line was enqueued, so
        a line waits for batch-mates at most `timeout_s`; lines that already
        waited longer (a busy consumer) are returned with whatever else is
        available now.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        segments: list[Segment] = []
        taken_total = 0
        flags: list[int] = []
        any_oversize = False
        origins: list[tuple[str, int]] = []
        with self._lock:
            try:
                first_deadline = time.monotonic() + timeout_s
                self._want = 1
                while not self._count:
                    remaining = first_deadline - time.monotonic()
                    if self._closed or remaining <= 0:
                        return Batch([])
                    self._not_empty.wait(remaining)
                deadline = self._blocks[0].t + timeout_s
                while True:
                    taken = 0
                    while self._blocks and taken_total < max_items:
                        b = self._blocks[0]
                        k = min(max_items - taken_total, b.count - b.pos)
                        if b.data is not None:
                            part = b.data[b.pos : b.pos + k] if (b.pos or k < b.count) else b.data
                            segments.append(part)
                            self._bytes -= sum(map(len, part))
                            if b.oversize is not None:
                                any_oversize = True
                                flags.extend([False] * (taken_total - len(flags)))
                                flags.extend(b.oversize[b.pos : b.pos + k])
                        else:
                            buf = b.buf
                            assert buf is not None  # a block without `data` holds a buffer
                            spans = np.empty((k, 2), dtype=np.int64)
                            end = _spans(buf, b.at, k, spans)
                            segments.append((buf, spans))
                            self._bytes -= end - b.at
                            b.at = end
                        if origins and origins[-1][0] == b.origin:
                            origins[-1] = (b.origin, origins[-1][1] + k)
                        else:
                            origins.append((b.origin, k))
                        b.pos += k
                        taken_total += k
                        taken += k
                        if b.pos == b.count:
                            if b.buf is not None:
                                self._bytes -= len(b.buf) - b.at  # trailing empty lines
                            self._blocks.popleft()
                    self._count -= taken
                    if taken and self._drained():
                        self._not_full.notify_all()
                    remaining = deadline - time.monotonic()
                    if taken_total >= max_items or self._closed or remaining <= 0:
                        break
                    self._want = max_items - taken_total
                    self._not_empty.wait(remaining)
            finally:
                self._want = 1  # whatever happened, a plain waiter is woken by any line

        if any_oversize:
            flags.extend([False] * (taken_total - len(flags)))
        return Batch(Lines(segments), flags if any_oversize else None, origins)

    # -------------------------------------------------------------- helpers
    def _full(self) -> bool:
        return self._count >= self.maxsize or bool(self.max_bytes and self._count and self._bytes >= self.max_bytes)

    def _fitting(self, data: list[bytes], start: int) -> int:
        """How many lines from `start` fit now (at least one: the caller
        waited until the queue was not full)."""
        room = min(self.maxsize - self._count, len(data) - start)
        if not self.max_bytes:
            return room
        budget, n = self.max_bytes - self._bytes, 0
        for line in data[start : start + room]:
            budget -= len(line)
            n += 1
            if budget <= 0:
                break
        return max(1, n)

    def _drained(self) -> bool:
        return self._count <= self.maxsize // 2 and (not self.max_bytes or self._bytes <= self.max_bytes // 2)

    def _fitting_chunk(self, chunk: Chunk) -> int:
        room = min(self.maxsize - self._count, chunk.count)
        budget = self.max_bytes - self._bytes
        if not self.max_bytes or len(chunk.buf) <= budget:
            return max(1, room)
        spans = np.empty((room, 2), dtype=np.int64)
        _spans(chunk.buf, 0, room, spans)
        within = (
            int(np.searchsorted(spans[:, 1] + 1, budget, side="left")) + 1
        )  # with the line reaching the budget, as _fitting
        return max(1, min(room, within))

    def wait_nonempty(self, timeout_s: float) -> bool:
        """Block until a line is queued (True) or `timeout_s` passes or the queue
        closes (False). Lets an idle agent sleep instead of polling."""
        with self._lock:
            if not self._count and not self._closed:
                self._not_empty.wait(timeout_s)
            return bool(self._count)

    def depth(self) -> int:
        with self._lock:
            return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    def interrupt(self) -> None:
        """Wake blocked producers so they re-check their stop events now."""
        with self._lock:
            self._not_full.notify_all()

    def close(self) -> None:
        """Refuse further lines and wake every waiter. Lines already queued
        can still be taken."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()
