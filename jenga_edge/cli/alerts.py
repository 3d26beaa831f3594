"""jenga-edge alerts: recent alerts from the local SQLite alert store."""

from __future__ import annotations

import json
import re

import click

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_since(text: str | int | float) -> float:
    """``"90"`` / ``"45s"`` / ``"30m"`` / ``"1h"`` / ``"2d"`` / ``"1w"`` -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"invalid duration {text!r}: expected a positive number of seconds")
        return float(text)
    m = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(
            f"invalid duration {text!r}: expected a number with an optional unit "
            "s, m, h, d or w, e.g. 90, 45s, 30m, 1h, 2d"
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: expected a positive duration")
    return seconds


@click.command()
@click.option(
    "--db",
    required=True,
    type=click.Path(dir_okay=False),
    help="The agent's SQLite alert store (a sink of type sqlite).",
)
@click.option("--since", default="1h", show_default=True, help="How far back: 45s, 30m, 1h, 2d, 1w.")
@click.option("--task", help="Only this task.")
@click.option("--priority", help="This priority or a more severe one (syslog order), e.g. error.")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1), help="At most this many, newest first."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
def alerts(db: str, since: str, task: str | None, priority: str | None, limit: int, as_json: bool) -> None:
    """Query recent alerts from the SQLite alert store, newest first."""
    from ..sinks.sqlite import query_alerts
    from ..sinks.stdout import format_text

    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        rows = query_alerts(db, since_seconds=seconds, task=task, priority=priority, limit=limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--priority") from None
    for a in rows:
        click.echo(json.dumps(a) if as_json else format_text(a))
    if not as_json:
        click.echo(f"{len(rows)} alert(s) in the last {since}", err=True)
