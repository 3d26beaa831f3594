"""`type: file`: follow a file like `tail -F` (Suricata's eve.json, a flow log)."""

from __future__ import annotations

import os
import stat
import time
from typing import IO, Annotated, Literal

from ..contract.typed import Invalid, doc
from ..event_queue import EventQueue
from ..framing import LineSplitter
from .base import READ_CHUNK, Source, SourceConfig, SourceContext, log


class Config(SourceConfig, tag="file", kw_only=True):
    """Follow a file: rotation (rename, remove, replace) and truncation are
    handled; a file that does not exist yet is waited for."""

    paths = ("path",)

    path: Annotated[str, doc("the file (relative paths resolve against the config file)")]
    start_at: Annotated[
        Literal["end", "beginning"],
        doc("where to start in a file that exists at start-up; a file that appears later is read from its beginning"),
    ] = "end"
    poll_interval_s: Annotated[float, doc("how often to look for new data", ge=0.01, le=60.0)] = 0.25
    rotate_wait_s: Annotated[
        float, doc("keep reading a rotated-away file this long, for its writer's last lines", ge=0.0, le=600.0)
    ] = 1.0

    def __post_init__(self) -> None:
        if not self.path:
            raise Invalid("path", "expected a file path, got ''")


class _Follow:
    """One open generation of a followed file."""

    def __init__(self, fh: IO[bytes], max_line_bytes: int):
        st = os.fstat(fh.fileno())
        self.fh = fh
        self.ident = (st.st_dev, st.st_ino)
        self.pos = 0
        self.splitter = LineSplitter(max_line_bytes)
        self.retire_at = 0.0


class FileSource(Source):
    """Follows a file like `tail -F`.

    * start_at="end" skips what the file holds at start() (except a line still
      being written at its end); "beginning" reads it all. A file that appears
      later (created, or a new one after rotation) is always read from its start.
    * rotation (path renamed/removed/replaced: its inode changes): the old file
      is read to its end, and kept for `rotate_wait_s` in case its writer has
      not reopened yet, while the new path is read from its beginning;
    * truncation (size < position): read again from offset 0;
    * a missing file is waited for. A partial last line stays buffered until
      its newline arrives (or its file is rotated away).
    """

    config: Config

    def __init__(self, config: Config, queue: EventQueue, max_line_bytes: int):
        super().__init__(config, queue, max_line_bytes)
        self.path = config.path
        self.rotations = 0
        self.truncations = 0
        self._cur: _Follow | None = None
        self._old: list[_Follow] = []

    @property
    def origin(self) -> str:
        return f"file:{self.path}"

    def _open(self) -> None:
        self._cur = self._try_open()
        if self._cur is not None and self.config.start_at == "end":
            self._seek_to_end(self._cur)

    def _try_open(self) -> _Follow | None:
        # Why the file cannot be read is kept in `waiting`: the agent counts and logs it.
        try:
            fh = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in _close
        except FileNotFoundError:
            self.waiting = "does not exist; waiting for it to appear"
            return None
        except OSError as exc:
            self.waiting = f"cannot open ({exc.strerror or exc}); will retry"
            return None
        try:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                self.waiting = "not a regular file; will retry"
                fh.close()
                return None
            self.waiting = None
            return _Follow(fh, self.max_line_bytes)
        except OSError as exc:
            self.waiting = f"cannot read ({exc.strerror or exc}); will retry"
            fh.close()
            return None

    def _seek_to_end(self, f: _Follow) -> None:
        """Position at the end, but back at the start of a line being written."""
        size = os.fstat(f.fh.fileno()).st_size
        window = min(size, self.max_line_bytes + 2)
        f.fh.seek(size - window)
        tail = f.fh.read(window) or b""
        nl = tail.rfind(b"\n")
        if nl >= 0:
            f.pos = size - window + nl + 1
        elif window == size:
            f.pos = 0  # the whole file is one unfinished line
        else:
            f.pos = size  # an unfinished line already over the limit:
            f.splitter.skip_line()  # skip its remainder rather than emit a fragment
        f.fh.seek(f.pos)

    def _drain(self, f: _Follow) -> bool:
        """Read what `f` holds now (until EOF or stop); True if anything came."""
        got = False
        while not self._stop.is_set():
            try:
                data = f.fh.read(READ_CHUNK)
            except OSError as exc:
                log.warning("%s: read failed (%s)", self.origin, exc)
                return got
            if not data:
                return got
            got = True
            f.pos += len(data)
            self._feed(f.splitter, data)
        return got

    def _close(self, f: _Follow) -> None:
        self._finish(f.splitter)
        try:
            f.fh.close()
        except OSError:
            pass

    def _check_rotation(self, f: _Follow) -> None:
        try:
            st = os.stat(self.path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        if ident != f.ident:
            # Renamed away, removed or replaced: finish the old file on the side.
            self.rotations += 1
            f.retire_at = time.monotonic() + self.config.rotate_wait_s
            self._old.append(f)
            self._cur = None
            return
        try:
            size = os.fstat(f.fh.fileno()).st_size
        except OSError:
            return
        if size < f.pos:
            self.truncations += 1
            self._finish(f.splitter)
            f.fh.seek(0)
            f.pos = 0

    def _run(self) -> None:
        poll = self.config.poll_interval_s
        try:
            while not self._stop.is_set():
                progressed = False
                if self._cur is None:
                    self._cur = self._try_open()  # appeared after start/rotation: from its start
                if self._cur is not None:
                    progressed |= self._drain(self._cur)
                for old in list(self._old):
                    if self._drain(old):
                        progressed = True
                        old.retire_at = time.monotonic() + self.config.rotate_wait_s
                    elif time.monotonic() >= old.retire_at:
                        self._old.remove(old)
                        self._close(old)
                if self._stop.is_set():
                    break
                if self._cur is not None:
                    self._check_rotation(self._cur)
                    if self._cur is None:
                        continue  # look for the new file right away
                if not progressed:
                    self._stop.wait(poll)
        finally:
            for f in self._old + ([self._cur] if self._cur is not None else []):
                self._close(f)
            self._old, self._cur = [], None


def build(config: Config, context: SourceContext) -> FileSource:
    return FileSource(config, context.queue, context.max_line_bytes)
