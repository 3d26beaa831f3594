"""Newline framing of a byte stream into events, with exact bounds.

Every source frames what it reads with a `LineSplitter`, so framing never
loses a line silently:

* a line longer than `max_line_bytes` is neither dropped nor split: the rest of
  it (up to the next newline) is discarded and ONE line holding its first
  `max_line_bytes` bytes is emitted flagged oversize, for the agent to reject
  with reason "oversize";
* the trailing ``\\n`` / ``\\r\\n`` is stripped and empty lines are skipped;
* a partial last line is kept until its newline arrives, and emitted as a line
  of its own when its stream ends (`flush`).

`feed` returns a read's complete lines as one `Chunk` (left in the read buffer:
the queue and the decoder's C tier read it in place, with no bytes object per
line) when none is over the limit, else as `Framed` lines with their flags.
"""

from __future__ import annotations

from .contract.errors import ConfigError
from .event_queue import PARTIAL, Chunk
from .native import fastjson as _native

_frame = _native.frame if _native is not None else None  # C: count a buffer's lines, find the longest

MIN_LINE_BYTES = 64
MAX_LINE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
CUT_KEEP = 4096  # what a cut line keeps: as much as its dead letter shows

# Lines and their flags, OVERSIZE or PARTIAL (event_queue.py; None when no line has one).
Framed = tuple[list[bytes], list[int] | None]


def check_max_line_bytes(value: object, where: str = "max_line_bytes") -> int:
    """Validate the agent-wide line limit (64 bytes .. 16 MiB)."""
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_LINE_BYTES <= value <= MAX_LINE_BYTES:
        raise ConfigError(
            f"{where}: expected an integer between {MIN_LINE_BYTES} and {MAX_LINE_BYTES} (16 MiB), got {value!r}"
        )
    return value


class LineSplitter:
    """Incremental newline framing for one byte stream.

    A trailing partial line stays buffered (at most max_line_bytes + 2 bytes,
    whatever the line's real length) until its newline arrives or `flush`.
    """

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self._buf = bytearray()
        self._discarding = False  # inside an oversize line already emitted
        # Bytes searched or copied so far: a measure of framing work that stays
        # within a small multiple of the bytes fed, however the input is cut.
        self.work = 0
        self.reserved = 0  # bytes of `pending` its owner has counted against the queue's budget

    @property
    def pending(self) -> int:
        """Bytes of a partial line held back until its newline arrives."""
        return len(self._buf)

    def skip_line(self) -> None:
        """Discard input up to the next newline (a reader that starts inside a
        line already over the limit: its remainder is not an event)."""
        self._buf.clear()
        self._discarding = True

    def feed(self, chunk: bytes) -> Chunk | Framed:
        """The lines `chunk` completes: one `Chunk` when every one is within the
        limit (the usual case), else `Framed` lines and flags.

        Only `chunk` is searched, and a partial line grows in place, so a line
        that arrives a byte at a time costs O(its length), not O(length**2):
        the pending bytes are copied once, when their newline arrives."""
        if _frame is None or self._discarding:
            return self._feed_lines(chunk)
        cut = chunk.rfind(b"\n")
        self.work += len(chunk)
        if cut < 0:
            return self._hold(chunk)
        if len(chunk) - cut - 1 > self.max_line_bytes:
            return self._feed_lines(chunk)
        if self._buf:
            complete = b"".join((self._buf, memoryview(chunk)[: cut + 1]))
            self.work += len(complete)
        else:
            complete = chunk if cut == len(chunk) - 1 else chunk[: cut + 1]
        count, longest = _frame(complete)
        if longest > self.max_line_bytes:
            return self._feed_lines(chunk)
        self._buf = bytearray(memoryview(chunk)[cut + 1 :])
        return Chunk(complete, count)

    def _hold(self, chunk: bytes) -> Framed:
        """`chunk` holds no newline: it extends the partial line (or makes it oversize)."""
        if len(self._buf) + len(chunk) > self.max_line_bytes + 1:  # +1: room for a '\r\n' ending's '\r'
            return _unpair(self._feed_slowly(chunk))
        self._buf += chunk
        self.work += len(chunk)
        return [], None

    def cut(self) -> Framed:
        """Give the partial line up now (no memory to hold it): it comes back as one
        oversize line of its first CUT_KEEP bytes, and its remainder, up to the
        next newline, is skipped."""
        if not self._buf:
            return [], None
        line = bytes(self._buf[:CUT_KEEP])
        self._buf = bytearray()
        self._discarding = True
        return [line], [True]

    def flush(self, cut_off: bool = False) -> Framed:
        """End the stream: the buffered partial line, if any; flagged PARTIAL if
        `cut_off` (the stream ended mid-line: its rest will never come)."""
        out: list[tuple[bytes, int]] = []
        if not self._discarding:
            self._finish(out, PARTIAL if cut_off else 0)
        self._discarding = False
        self._buf.clear()
        return _unpair(out)

    def _feed_lines(self, chunk: bytes) -> Framed:
        # Fast path: no line in this chunk is anywhere near the limit, so one
        # C-level split does the framing (3x cheaper per line than the loop below).
        if not self._discarding:
            if chunk.find(b"\n") < 0:
                self.work += len(chunk)
                return self._hold(chunk)
            data = b"".join((self._buf, chunk)) if self._buf else chunk
            self.work += 2 * len(data)  # searched, then split
            parts = data.split(b"\n")
            tail = parts.pop()
            if len(tail) <= self.max_line_bytes and (not parts or max(map(len, parts)) <= self.max_line_bytes):
                self._buf = bytearray(tail)
                if b"\r" in data:
                    return [p[:-1] if p[-1:] == b"\r" else p for p in parts if p and p != b"\r"], None
                return list(filter(None, parts)), None
        return _unpair(self._feed_slowly(chunk))

    def _feed_slowly(self, chunk: bytes) -> list[tuple[bytes, int]]:
        out: list[tuple[bytes, int]] = []
        limit = self.max_line_bytes + 1  # room for the '\r' of a '\r\n' ending
        pos, n = 0, len(chunk)
        while pos < n:
            nl = chunk.find(b"\n", pos)
            end = n if nl < 0 else nl
            if not self._discarding:
                room = limit + 1 - len(self._buf)  # one byte past the limit proves oversize
                self._buf += chunk[pos : min(end, pos + room)]
                if nl >= 0:
                    self._finish(out)
                elif len(self._buf) > limit:
                    out.append((bytes(self._buf[: self.max_line_bytes]), True))
                    self._buf.clear()
                    self._discarding = True
            if nl < 0:
                break
            self._discarding = False  # this newline ends the discarded line
            pos = nl + 1
        return out

    def _finish(self, out: list[tuple[bytes, int]], flag: int = 0) -> None:
        buf = self._buf
        if buf.endswith(b"\r"):
            del buf[-1]
        if len(buf) > self.max_line_bytes:
            out.append((bytes(buf[: self.max_line_bytes]), True))
        elif buf:
            out.append((bytes(buf), flag))
        buf.clear()


def _unpair(pairs: list[tuple[bytes, int]]) -> Framed:
    flags = [o for _, o in pairs]
    return [d for d, _ in pairs], (flags if any(flags) else None)
