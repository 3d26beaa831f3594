"""`type: jsonl`: an append-only JSON Lines file, rotated by size (also the dead-letter file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Annotated, Any

from ..contract.errors import ConfigError, DataError
from ..contract.typed import Invalid, doc
from .base import ENCODER, FileSink, SinkConfig, SinkContext, encode
from .formats import JsonFormat, converter
from .fsync import Syncer, fsync_dir, make_syncer
from .lines import LineWriteError, append


class Config(SinkConfig, tag="jsonl", kw_only=True):
    """One compact JSON object per line. When the next line would take the file
    past ``max_bytes`` it is renamed ``PATH.1`` (``.1`` becomes ``.2`` ... up to
    ``backups``; the oldest is dropped) and writing goes on in a fresh file. A
    single line longer than ``max_bytes`` still gets written, alone in a file."""

    paths = ("path",)

    def written_files(self, name: str) -> dict[str, str]:
        return {"path": self.path}

    path: Annotated[str, doc("the file (relative paths resolve against the config file)")]
    max_bytes: Annotated[int, doc("rotate before the file passes this size (0: never rotate)", ge=0)] = 64 * 1024 * 1024
    backups: Annotated[int, doc("rotated files kept: PATH.1 ... PATH.N", ge=1, le=1000)] = 5
    fsync: Annotated[bool, doc("flush and fsync once per batch (and around each rotation)")] = True
    format: Annotated[
        JsonFormat,
        doc(
            "native: the alert as the agent writes it; ecs: Elastic Common Schema 8.x; "
            "ocsf: an OCSF 1.x Detection Finding (action outcomes stay native)"
        ),
    ] = "native"

    def __post_init__(self) -> None:
        if not self.path:
            raise Invalid("path", "expected a file path, got ''")


class JsonlSink(FileSink):
    """Appends one compact JSON object per line; also the dead-letter writer
    (records ``{"timestamp", "source", "reason", "field", "message", "line"}``).

    Writes go straight to the descriptor (no Python buffer) through `lines.append`:
    a failed or short write is cut back to the last whole line and raised as
    LineWriteError with the records kept and lost. Action outcomes are appended as
    ``{"event_type": "action_result", "alert_id", ...}`` lines (`write_outcomes`)."""

    def __init__(self, config: Config):
        self.config = config
        self.path = Path(config.path)
        if self.path.is_dir():
            raise ConfigError(f"jsonl path {self.path}: is a directory, expected a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"jsonl path {self.path}: cannot create its directory: {exc.strerror}") from None
        self.rotations = 0
        self._fh: IO[bytes] | None = None
        self._syncer: Syncer | None = None
        self._size = 0
        self._convert = converter(config.format)  # None: native, written as it is
        self._open()

    def _open(self) -> None:
        created = not self.path.exists()
        try:
            self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open across batches, closed in close()
        except OSError as exc:
            raise ConfigError(f"jsonl path {self.path}: cannot open for append: {exc.strerror}") from None
        self._size = os.fstat(self._fh.fileno()).st_size
        if created and self.config.fsync:
            fsync_dir(self.path.parent)

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        if self._convert is not None:  # alerts only: action outcomes stay native (write_outcomes)
            alerts = [self._convert(a) for a in alerts]
        return super().write_batch(alerts)

    def _write(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        if self._fh is None:
            raise ValueError(f"{self.path}: write to a closed JsonlSink")
        if self._syncer is not None:
            # An earlier batch's fsync failed: say so before this batch is written,
            # so this batch is reported as not delivered rather than half of both.
            self._syncer.check()
        # Serialise everything first: a bad record must not leave half a batch written.
        blob = ENCODER.encode_lines(alerts)
        limit = self.config.max_bytes
        if not limit or self._size + len(blob) <= limit:
            self._append(blob)  # one write per batch
        else:
            for i, alert in enumerate(alerts):
                line = encode(alert) + b"\n"
                if self._size > 0 and self._size + len(line) > limit:
                    self._rotate()
                try:
                    self._append(line)
                except LineWriteError as exc:
                    raise LineWriteError(str(exc), i, len(alerts) - i, exc.size) from None
        if self.config.fsync:
            if self._syncer is None:
                self._syncer = make_syncer(str(self.path))
            self._syncer.request(self._fh.fileno())

    def _append(self, blob: bytes) -> None:
        assert self._fh is not None
        try:
            self._size = append(self._fh.fileno(), blob, self._size, str(self.path))
        except LineWriteError as exc:
            self._size = exc.size  # cut back to its last whole line: the next batch goes on from there
            raise

    def write_outcomes(self, records: list[dict[str, Any]]) -> None:
        """Action outcomes, appended like alerts (each carries the `alert_id` it completes)."""
        self._write(records)

    def sync_wait(self) -> None:
        """Block until every batch written so far is on disk (fsync done)."""
        if self._syncer is not None:
            self._syncer.wait()

    def _sync(self) -> None:
        assert self._fh is not None
        if self.config.fsync:
            self.sync_wait()  # the syncer must not hold our descriptor while we use it
            os.fsync(self._fh.fileno())

    def _rotate(self) -> None:
        assert self._fh is not None
        self._sync()  # what is renamed away must already be on disk
        self._fh.close()
        self._fh = None
        base = str(self.path)
        for i in range(self.config.backups - 1, 0, -1):
            older = f"{base}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{base}.{i + 1}")  # replaces (drops) the oldest
        os.replace(base, f"{base}.1")
        self.rotations += 1
        self._open()
        if self.config.fsync:
            fsync_dir(self.path.parent)  # the renames and the new file

    def close(self) -> None:
        if self._fh is None:
            return
        try:
            self._sync()
        finally:
            if self._syncer is not None:
                try:
                    self._syncer.wait()  # never close a descriptor an fsync is running on
                except DataError:
                    pass  # already raised by _sync, or by the write that failed
                self._syncer.stop()
                self._syncer = None
            self._fh.close()
            self._fh = None


def build(config: Config, context: SinkContext) -> JsonlSink:
    return JsonlSink(config)
