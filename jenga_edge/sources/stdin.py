"""`type: stdin`: events on standard input, read to its end."""

from __future__ import annotations

import os
import select
import sys
from typing import IO, Any

from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import POLL_S, READ_CHUNK, Source, SourceConfig, SourceContext, log


class Config(SourceConfig, tag="stdin", kw_only=True):
    """Newline-delimited JSON on standard input. At its end the agent scores
    what it holds and exits (a pipe, `jenga-edge run < events.jsonl`)."""


class StdinSource(Source):
    """Reads sys.stdin.buffer (or an injected binary stream) to EOF, then sets
    `eof` (after its last line is queued).

    A stream with a real file descriptor is read with select + os.read, so
    `stop` is prompt even while no input arrives; other streams (io.BytesIO)
    are read with read1/read.
    """

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int, stream: IO[bytes] | None = None):
        super().__init__(config, queue, max_line_bytes)
        self._stream = stream

    def _run(self) -> None:
        stream = self._stream if self._stream is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:  # no stdin at all (e.g. started by a service manager)
            self.eof = True
            return
        fd = _fileno(stream)
        reader = getattr(stream, "read1", None) or stream.read
        splitter = LineSplitter(self.max_line_bytes)
        at_eof = False
        while not self._stop.is_set():
            try:
                if fd is not None:
                    try:
                        ready, _, _ = select.select([fd], [], [], POLL_S)
                    except (OSError, ValueError):
                        fd = None  # not selectable: fall back to blocking reads
                        continue
                    if not ready:
                        continue
                    data = os.read(fd, READ_CHUNK)
                else:
                    data = reader(READ_CHUNK)
            except (OSError, ValueError) as exc:  # closed stream, EIO on a hung-up tty
                log.warning("stdin: read failed (%s); treating it as end of input", exc)
                data = b""
            if not data:
                at_eof = True
                break
            self._feed(splitter, data)
        self._finish(splitter)
        if at_eof:
            self.eof = True


def _fileno(stream: Any) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def build(config: Config, context: SourceContext) -> StdinSource:
    return StdinSource(config, context.queue, context.max_line_bytes, context.stdin)
