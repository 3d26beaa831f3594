"""Alert priorities: the syslog severities (as Falco's are), and syslog facilities."""

from __future__ import annotations

from typing import Any, Literal, overload

#: RFC 5424 severities, most severe first; an alert's ``priority`` is one of these.
SEVERITIES: dict[str, int] = {
    "emergency": 0,
    "alert": 1,
    "critical": 2,
    "error": 3,
    "warning": 4,
    "notice": 5,
    "informational": 6,
    "debug": 7,
}
# The short spellings syslog tools use; accepted on input, never written.
SEVERITY_ALIASES: dict[str, int] = {
    "emerg": 0,
    "panic": 0,
    "crit": 2,
    "err": 3,
    "warn": 4,
    "info": 6,
}

#: RFC 5424 facility codes by name.
FACILITIES: dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "security": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}

Priority = Literal["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]
Facility = Literal[
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "security",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
]


@overload
def severity_of(priority: Any, default: int) -> int: ...
@overload
def severity_of(priority: Any, default: int | None = None) -> int | None: ...
def severity_of(priority: Any, default: int | None = None) -> int | None:
    """The numeric syslog severity of a priority name (case-insensitive, short
    spellings like ``crit`` accepted), or `default` if it names none."""
    if isinstance(priority, str):
        key = priority.strip().lower()
        if key in SEVERITIES:
            return SEVERITIES[key]
        if key in SEVERITY_ALIASES:
            return SEVERITY_ALIASES[key]
    return default


def at_least(priority: str) -> list[str]:
    """Every spelling of `priority` and of the more severe ones (like ``journalctl -p``)."""
    level = severity_of(priority)
    if level is None:
        raise ValueError(f"priority {priority!r}: expected one of {', '.join(SEVERITIES)}")
    return [n for table in (SEVERITIES, SEVERITY_ALIASES) for n, v in table.items() if v <= level]
