"""Raw values as both sides read them: categories, numbers, booleans, times.

The trainer's rows and the agent's events go through these same functions,
so a value means the same thing in training and at the edge.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import EventError

_TRUE = {"true", "yes", "1", "t", "y"}
_FALSE = {"false", "no", "0", "f", "n"}
# Matched against the stripped string, with one \s* inside: two around the optional
# offset made a run of spaces quadratic to reject (seconds for a 64 KB line).
_ISO_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?")
ISO_MAX_CHARS = 100  # longer is no time (the C tier reads at most 61 fraction digits)


def category_key(value: Any) -> str:
    """The vocabulary key of a raw value: 22, 22.0 and '22' are the same category."""
    t = type(value)  # exact types first: this runs per value in rules, filters and window keys
    if t is str:
        return value.strip()  # type: ignore[no-any-return]
    if t is int:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def to_number(value: Any, name: str) -> float:
    """Coerce numbers, booleans and numeric strings; anything else is an EventError."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float (msgspec reads 4,300 digits)
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise EventError("wrong_type", f"field {name!r} is {type(value).__name__} {value!r:.40}, expected a number", name)


def to_boolean(value: Any, name: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            return 1.0 if text in _TRUE else 0.0
        try:
            number = float(text)  # "0.0", "1e0": numeric strings, as numeric features take them
        except ValueError:
            number = None
        if number in (0.0, 1.0):
            return number
    raise EventError(
        "wrong_type",
        f"field {name!r} is {type(value).__name__} {value!r:.40}, expected a boolean (true/false, 0/1)",
        name,
    )


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 string (naive = UTC), a number, or a datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            t = float(value)
        except OverflowError:  # an integer beyond any float
            return None
        return t if math.isfinite(t) else None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    if not isinstance(value, str):
        return None
    if len(value) > ISO_MAX_CHARS:
        return None
    m = _ISO_RE.fullmatch(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = timezone.utc
    try:
        if off and off not in ("Z", "z"):
            sign = -1 if off[0] == "-" else 1
            digits = off[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))  # |offset| < 24 h
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)
