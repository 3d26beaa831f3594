"""ISO 8601 timestamps: alerts write them, the sinks and `jenga-edge alerts` read them
(parse_time lives in contract/values.py: the trainer reads event times with it too)."""

from __future__ import annotations

import time

from .contract.values import parse_time

__all__ = ["iso_utc", "now_iso", "parse_time"]


_last_second: tuple[int, str] = (-(2**63), "")  # the last whole second formatted, and its text


def iso_utc(t: float) -> str:
    """Epoch seconds as `2026-11-25T17:00:00.123Z`. The agent stamps every batch: the
    date part is formatted once per second (strftime was most of a small batch's stamp)."""
    global _last_second
    second, cached = int(t // 1), _last_second  # one read: another thread may replace it
    if cached[0] != second:
        cached = _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int(t % 1 * 1000):03d}Z"


def now_iso() -> str:
    return iso_utc(time.time())
