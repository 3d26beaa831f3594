"""`type: sqlite`: a local alert store, and the query `jenga-edge alerts` reads it with."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from ..contract.errors import ConfigError, DataError
from ..contract.typed import Invalid, doc
from ..priorities import at_least
from ..timestamps import parse_time
from .base import FileSink, SinkConfig, SinkContext, dumps

if TYPE_CHECKING:  # sqlite3 is imported only when a store is configured or queried (~2 MB)
    import sqlite3


class Config(SinkConfig, tag="sqlite", kw_only=True):
    """A local SQLite store (WAL mode, one transaction per batch), for `jenga-edge alerts`."""

    paths = ("path",)

    def written_files(self, name: str) -> dict[str, str]:
        return {"path": self.path}

    path: Annotated[str, doc("the database file (relative paths resolve against the config file)")]
    max_rows: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None, doc("keep only the newest rows (null: keep everything)")
    ] = 100_000

    def __post_init__(self) -> None:
        if not self.path:
            raise Invalid("path", "expected a file path, got ''")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    ts        REAL NOT NULL,
    timestamp TEXT,
    rule      TEXT,
    priority  TEXT,
    task      TEXT,
    score     REAL,
    src_ip    TEXT,
    dest_ip   TEXT,
    dest_port INTEGER,
    json      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE TABLE IF NOT EXISTS action_results (
    alert_id  TEXT NOT NULL,
    ts        REAL NOT NULL,
    json      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_results_alert ON action_results (alert_id);
"""


def _opt(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind is int and not -(1 << 63) <= out < (1 << 63):  # SQLite's INTEGER: an event's 2**70 would fail the batch
        return None
    return out


class SqliteSink(FileSink):
    """Stores alerts in SQLite (WAL mode, one transaction per batch). An action's outcome,
    known after the alert was stored, goes to table `action_results` keyed by the alert's
    `alert_id`; `query_alerts` puts it back in the alert's `actions`."""

    def __init__(self, config: Config):
        import sqlite3

        self.config = config
        self.path = Path(config.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._rows = int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"sqlite path {self.path}: cannot open the alert store: {exc}") from None

    def _write(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        if self._db is None:
            raise ValueError(f"{self.path}: write to a closed SqliteSink")
        now = time.time()
        rows = []
        for a in alerts:
            ts = parse_time(a.get("timestamp"))
            rows.append(
                (
                    ts if ts is not None else now,
                    _opt(a.get("timestamp"), str),
                    _opt(a.get("rule"), str),
                    _opt(a.get("priority"), str),
                    _opt(a.get("task"), str),
                    _opt(a.get("score"), float),
                    _opt(a.get("src_ip"), str),
                    _opt(a.get("dest_ip"), str),
                    _opt(a.get("dest_port"), int),
                    dumps(a),
                )
            )
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO alerts (ts, timestamp, rule, priority, task, score, src_ip, dest_ip,"
                " dest_port, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            rows_now = self._rows + len(rows)
            cap = self.config.max_rows
            if cap is not None and rows_now > cap:
                db.execute(
                    "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts"
                    " ORDER BY ts DESC, id DESC LIMIT -1 OFFSET ?)",
                    (cap,),
                )
                rows_now = cap
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._rows = rows_now

    def write_outcomes(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self._db is None:
            raise ValueError(f"{self.path}: write to a closed SqliteSink")
        now = time.time()
        rows = [(str(r.get("alert_id")), now, dumps(r)) for r in records]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO action_results (alert_id, ts, json) VALUES (?, ?, ?)", rows)
            if self.config.max_rows is not None:  # bounded like the alerts they complete
                db.execute(
                    "DELETE FROM action_results WHERE rowid IN (SELECT rowid FROM action_results"
                    " ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                    (self.config.max_rows,),
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def build(config: Config, context: SinkContext) -> SqliteSink:
    return SqliteSink(config)


def query_alerts(
    path: str | os.PathLike[str],
    since_seconds: float | None = None,
    until: Any = None,
    task: str | None = None,
    priority: str | None = None,
    limit: int | None = 1000,
) -> list[dict[str, Any]]:
    """Alerts from a store, newest first.

    since_seconds: only alerts from the last N seconds.
    until: only alerts at or before this time (epoch seconds, ISO 8601 string or datetime).
    task: exact task name.
    priority: this severity or a more severe one, like ``journalctl -p``
        (``"error"`` gives error, critical, alert and emergency).
    limit: at most this many (None: all).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: alert store not found")
    where: list[str] = []
    args: list[str | float] = []  # the query's parameters
    if since_seconds is not None:
        if since_seconds < 0:
            raise ValueError(f"since_seconds must be >= 0, got {since_seconds}")
        where.append("ts >= ?")
        args.append(time.time() - since_seconds)
    if until is not None:
        t = parse_time(until)
        if t is None:
            raise ValueError(f"until {until!r}: expected epoch seconds, an ISO 8601 time or a datetime")
        where.append("ts <= ?")
        args.append(t)
    if task is not None:
        where.append("task = ?")
        args.append(task)
    if priority is not None:
        names = at_least(priority)
        where.append(f"lower(priority) IN ({', '.join('?' * len(names))})")
        args.extend(names)
    sql = "SELECT json FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC"
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        sql += " LIMIT ?"
        args.append(int(limit))
    import sqlite3

    try:
        db = sqlite3.connect(str(p), timeout=10.0)
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot open the alert store: {exc}") from None
    try:
        alerts = [json.loads(r[0]) for r in db.execute(sql, args)]
        return _with_outcomes(db, alerts)
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot read alerts: {exc}") from None
    finally:
        db.close()


def _with_outcomes(db: sqlite3.Connection, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each alert's actions with the outcomes recorded after it was stored (by action name)."""
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'action_results'").fetchone()
    ids = [a["alert_id"] for a in alerts if isinstance(a, dict) and a.get("alert_id")]
    if not has or not ids:
        return alerts
    done: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):  # SQLite's bound on parameters
        chunk = ids[i : i + 500]
        sql = f"SELECT json FROM action_results WHERE alert_id IN ({', '.join('?' * len(chunk))}) ORDER BY rowid"
        for (text,) in db.execute(sql, chunk):
            rec = json.loads(text)
            action = rec.get("action") or {}
            done[f"{rec.get('alert_id')}/{action.get('name')}"] = action
    for a in alerts:
        acts = a.get("actions") if isinstance(a, dict) else None
        if isinstance(acts, list):
            a["actions"] = [
                done.get(f"{a.get('alert_id')}/{x.get('name')}", x) if isinstance(x, dict) else x for x in acts
            ]
    return alerts
