"""Where alerts go: one module per kind (jsonl, stdout, syslog, sqlite).

Each kind has its `Config` (`type: <kind>` in the agent config's `sinks:`
mapping, where the name may stand for the type) and `build`; base.py has the
`Sink` protocol. A new kind is a module here and its name in the list below
(jenga_edge/kinds.py). Several sinks of one kind are several named entries.
"""

from __future__ import annotations

from typing import IO

from ..kinds import Kinds
from . import jsonl, sqlite, stdout, syslog
from .base import Sink, SinkConfig, SinkContext

KINDS: Kinds[Sink] = Kinds("sink", [jsonl, stdout, syslog, sqlite])


def build_sinks(configs: dict[str, SinkConfig], stdout: IO[str] | None = None) -> dict[str, Sink]:
    """The configured sinks by name, in config order. If one cannot be opened,
    those already opened are closed again."""
    sinks: dict[str, Sink] = {}
    try:
        for name, cfg in configs.items():
            sinks[name] = KINDS.build(cfg, SinkContext(name=name, stdout=stdout))
    except BaseException:
        for s in sinks.values():
            try:
                s.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise
    return sinks


__all__ = ["KINDS", "Sink", "SinkConfig", "SinkContext", "build_sinks"]
