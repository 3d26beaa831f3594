"""Appending whole JSON lines, never a torn one: the JSONL sink, the dead-letter file and spools.

A write can fail half-way (ENOSPC on a full disk, EFBIG, EIO) or come back
short. `append` then truncates the file back to the end of the last whole line
it wrote (`ftruncate`), so a reader never meets a corrupt line, and raises
`LineWriteError` saying how many of the records made it (`kept`) and how many
did not (`lost`): the caller counts the loss and applies its failure policy.
"""

from __future__ import annotations

import os
from typing import Any

from ..contract.errors import DataError
from .base import ENCODER


class LineWriteError(DataError):
    """Records could not be appended; the file was cut back to its last whole line."""

    def __init__(self, message: str, kept: int, lost: int, size: int):
        super().__init__(message)
        self.kept, self.lost = kept, lost
        self.size = size  # the file's size now, after the cut


def append(fd: int, blob: bytes, start: int, where: str) -> int:
    """Write `blob` (whole lines) at the end of the file whose size is `start`;
    returns the new size. On a failed or short write the file is truncated back to
    the last whole line and LineWriteError raised."""
    view, done = memoryview(blob), 0
    try:
        while done < len(blob):
            n = os.write(fd, view[done:])
            if n <= 0:
                raise OSError(0, "write returned 0 bytes")
            done += n
    except OSError as exc:
        good = blob.rfind(b"\n", 0, done) + 1  # the end of the last whole line written
        kept = blob.count(b"\n", 0, good)
        why = exc.strerror or str(exc)
        size = start + good
        try:
            os.ftruncate(fd, size)
            cut = f"truncated back to {size} bytes"
        except OSError as trunc_exc:
            size = start + done
            cut = f"and truncating back failed too ({trunc_exc.strerror}): the last line may be torn"
        lost = blob.count(b"\n") - kept
        raise LineWriteError(f"{where}: write failed: {why}; {cut}, {lost} record(s) lost", kept, lost, size) from None
    return start + len(blob)


class LineSpool:
    """A bounded JSON Lines spool file (the agent's `on_sink_failure: spool`, an output
    stage's `when_full: spool`). `add` returns False (never raises) when the record
    cannot be kept: the file is full or cannot be written; the caller counts it."""

    def __init__(self, path: str, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        self.added = self.refused = 0
        self.last_error: str | None = None
        self._fd: int | None = None
        self._size = 0

    def add(self, records: list[dict[str, Any]]) -> bool:
        if not records:
            return True
        blob = ENCODER.encode_lines(records)
        try:
            if self._fd is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._size = os.fstat(self._fd).st_size
            if self._size + len(blob) > self.max_bytes:
                raise OSError(0, f"spool full ({self.max_bytes} bytes)")
            self._size = append(self._fd, blob, self._size, self.path)
            os.fsync(self._fd)
        except LineWriteError as exc:
            self._size = exc.size
            self.refused += len(records)
            self.last_error = str(exc)
            return False
        except (OSError, DataError) as exc:
            self.refused += len(records)
            self.last_error = f"{self.path}: {getattr(exc, 'strerror', None) or exc}"
            return False
        self.added += len(records)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
