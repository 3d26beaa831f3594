"""ISO 8601 timestamps: alerts write them, the sinks and `jenga-edge alerts` read them."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?\s*$"
)


def iso_utc(t: float) -> str:
    """Epoch seconds as `2026-11-25T17:00:00.123Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def now_iso() -> str:
    return iso_utc(time.time())


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 string (naive = UTC), a number, or a datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    if not isinstance(value, str):
        return None
    m = _ISO_RE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = timezone.utc
    if off and off not in ("Z", "z"):
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)
