"""Read rows from JSON arrays, JSON Lines (Suricata's eve.json) and CSV (with or
without header), gzip-compressed or not; with an event model, records are read
as the agent reads them (jenga_edge/contract/records.py)."""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from jenga_edge.contract.errors import DataError
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.records import RecordReader


def read_rows(
    path: str | Path | Sequence[str | Path],
    fmt: str = "auto",
    columns: list[str] | None = None,
    limit: int | None = None,
    events: EventModel | None = None,
    names: list[str] | None = None,
    starts: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Every row as a dict; CSV cells become int/float where they parse, None when empty.
    With `events`, records the filter drops are left out and `limit` counts kept rows.
    A list of files is read in order as one source; with `events`, each file is read
    from a fresh start of the windows: files are separate captures, and a host's
    windows must not carry one capture's flows into another's. `starts`, if given,
    receives the index of each file's first row (row_locator names a row's file)."""
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise DataError("no data files given")
    rows: list[dict[str, Any]] = []
    for p in paths:
        if starts is not None:
            starts.append(len(rows))
        rows += _read_file(p, fmt, columns, limit - len(rows) if limit else None, events, names)
        if limit and len(rows) >= limit:
            break
    return rows


def row_locator(paths: Sequence[str | Path], starts: Sequence[int]) -> Callable[[int], str]:
    """Row i of rows read_rows concatenated -> "FILE: row K" (K within that file)."""

    def locate(i: int) -> str:
        k = bisect.bisect_right(starts, i) - 1
        return f"{paths[k]}: row {i - starts[k]}"

    return locate


def _read_file(
    p: Path,
    fmt: str,
    columns: list[str] | None,
    limit: int | None,
    events: EventModel | None,
    names: list[str] | None,
) -> list[dict[str, Any]]:
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    fmt = _detect(p) if fmt == "auto" else fmt
    reader = {"json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv}[fmt]
    try:
        rows = reader(p, columns, None if events else limit)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # a truncated or foreign .gz, bad UTF-8
        raise DataError(f"{p}: cannot read: {exc}") from None
    if events is not None:
        rows = apply_events(rows, events, str(p), names or ())
    if not rows:
        raise DataError(f"{p}: no rows" + (" left after the event model's filter" if events else ""))
    return rows[:limit] if limit else rows


def apply_events(
    records: list[dict[str, Any]], events: EventModel, where: str, names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Records read with the event model: filtered, mapped, normalized, derived. Records
    the agent would reject (a bad timestamp) are left out, and counted on stderr."""
    out = RecordReader(events, names).read(records)
    dropped = sum(out.rejected.values())
    if out.filtered or dropped:
        parts = [f"{out.filtered} filtered"] + [f"{n} {reason}" for reason, n in sorted(out.rejected.items())]
        print(f"{where}: {len(records)} records, {len(out.rows)} kept ({', '.join(parts)})", file=sys.stderr)
        for reason, message in sorted(out.first_reject.items()):
            print(f"{where}: first {reason}: {message}", file=sys.stderr)
    return out.rows


def _open(p: Path) -> IO[str]:
    if p.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return p.open("r", encoding="utf-8", newline="")


def _detect(p: Path) -> str:
    suffix = Path(p.stem).suffix.lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        with _open(p) as fh:
            head = fh.read(4096).lstrip()
        return "json" if head.startswith("[") else "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise DataError(f"{p}: cannot tell the format from the suffix {suffix!r}; set format: json, jsonl or csv")


def _read_json(p: Path, columns, limit) -> list[dict]:
    try:
        with _open(p) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise DataError(f"{p}: expected a JSON array of objects, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{p}: item {i}: expected an object, got {type(row).__name__}")
    return data


def _read_jsonl(p: Path, columns, limit) -> list[dict]:
    rows = []
    with _open(p) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}: line {lineno}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise DataError(f"{p}: line {lineno}: expected an object, got {type(row).__name__}")
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    return rows


def _read_csv(p: Path, columns, limit) -> list[dict]:
    rows = []
    with _open(p) as fh:
        tsv = (Path(p.stem).suffix if p.suffix.lower() == ".gz" else p.suffix).lower() == ".tsv"
        reader = csv.reader(fh, delimiter="\t" if tsv else ",")
        names = list(columns) if columns else next(reader, None)
        if not names:
            raise DataError(f"{p}: empty CSV file")
        for lineno, cells in enumerate(reader, 1 if columns else 2):
            if not cells:
                continue
            if len(cells) != len(names):
                raise DataError(
                    f"{p}: line {lineno}: {len(cells)} fields, expected {len(names)} "
                    f"({'columns: list' if columns else 'header'} has {len(names)})"
                )
            rows.append({n: _cell(c) for n, c in zip(names, cells)})
            if limit and len(rows) >= limit:
                break
    return rows


def _cell(text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
