"""fsync off the scoring thread, one per batch, in order (group commit).

A file sink writes and flushes a batch, then asks for an fsync and returns:
the disk wait overlaps the scoring of the next batch instead of stalling it
(on a one-core gateway the wait is I/O, not CPU). Requests that arrive while
an fsync runs are covered by the next one. A failed fsync is raised by the
next `check`, before that batch is written, so the agent reports it like any
sink error (the batch whose fsync failed may not be on disk).

`Syncer()` is the C thread of native/_syncer.c, which never takes the GIL,
or this module's Python thread when the extension is not built: each of the
Python thread's wake-ups takes the GIL from the scoring thread, and on one
core that churn cost ~0.8 us per event at 150k events/s.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from ..contract.errors import DataError
from ..native import syncer as _native


class Syncer(Protocol):
    def request(self, fd: int) -> None: ...
    def check(self) -> None: ...
    def wait(self) -> None: ...
    def stop(self) -> None: ...


def make_syncer(name: str) -> Syncer:
    return _NativeSyncer() if _native is not None else _ThreadSyncer(name)


class _ThreadSyncer:
    """The pure-Python syncer: a daemon thread per file."""

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._requested = self._done = 0
        self._fd: int | None = None
        self._error: OSError | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"fsync:{name}", daemon=True)
        self._thread.start()

    def request(self, fd: int) -> None:
        with self._cond:
            self._fd = fd
            self._requested += 1
            self._cond.notify_all()

    def check(self) -> None:
        """Raise the error of a finished fsync, once."""
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise DataError(f"fsync failed: {error}")

    def wait(self) -> None:
        with self._cond:
            while self._done < self._requested and self._thread.is_alive():
                self._cond.wait(0.5)
            error, self._error = self._error, None
        if error is not None:
            raise DataError(f"fsync failed: {error}")

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._done >= self._requested and not self._stopping:
                    self._cond.wait()
                if self._done >= self._requested:
                    return
                target, fd = self._requested, self._fd
            try:
                assert fd is not None
                os.fsync(fd)
            except OSError as exc:
                with self._cond:
                    self._error = exc
            with self._cond:
                self._done = target
                self._cond.notify_all()


class _NativeSyncer:
    """native/_syncer.c's Syncer, with the sinks' error type."""

    def __init__(self) -> None:
        assert _native is not None
        self._s = _native.Syncer()

    def request(self, fd: int) -> None:
        self._s.request(fd)

    def check(self) -> None:
        try:
            self._s.check()
        except OSError as exc:
            raise DataError(f"fsync failed: {exc}") from None

    def wait(self) -> None:
        try:
            self._s.wait()
        except OSError as exc:
            raise DataError(f"fsync failed: {exc}") from None

    def stop(self) -> None:
        self._s.stop()


def fsync_dir(directory: Path) -> None:
    """Make renames and new names in `directory` durable (POSIX only)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return  # e.g. Windows: directories cannot be opened, nor need to be
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
