"""ISO 8601 timestamps: alerts write them, the sinks and `jenga-edge alerts` read them
(parse_time lives in contract/values.py: the trainer reads event times with it too)."""

from __future__ import annotations

import time

from .contract.values import parse_time

__all__ = ["iso_utc", "now_iso", "parse_time"]


def iso_utc(t: float) -> str:
    """Epoch seconds as `2026-11-25T17:00:00.123Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def now_iso() -> str:
    return iso_utc(time.time())
