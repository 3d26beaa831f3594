"""Read tabular rows from JSON arrays, JSON Lines and CSV (with or without header)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from jenga_edge.contract.errors import DataError


def read_rows(
    path: str | Path, fmt: str = "auto", columns: list[str] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Every row as a dict; CSV cells become int/float where they parse, None when empty."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    fmt = _detect(p) if fmt == "auto" else fmt
    reader = {"json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv}[fmt]
    rows = reader(p, columns, limit)
    if not rows:
        raise DataError(f"{p}: no rows")
    return rows[:limit] if limit else rows


def _detect(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        with p.open("r", encoding="utf-8") as fh:
            head = fh.read(4096).lstrip()
        return "json" if head.startswith("[") else "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise DataError(f"{p}: cannot tell the format from the suffix {suffix!r}; set format: json, jsonl or csv")


def _read_json(p: Path, columns, limit) -> list[dict]:
    try:
        with p.open("r", encoding="utf-8") as fh:
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
    with p.open("r", encoding="utf-8") as fh:
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
    with p.open("r", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
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
