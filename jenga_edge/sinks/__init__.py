"""Where alerts go: one module per kind (jsonl, stdout, syslog, sqlite).

`formats/` turns an alert into ECS, OCSF or CEF for the sinks that have a `format:` (jsonl,
stdout, syslog); the default, native, writes it as it is.

Each kind has its `Config` (`type: <kind>` in the agent config's `sinks:`
mapping, where the name may stand for the type) and `build`; base.py has the
`Sink` protocol. A new kind is a module here and its name in the list below
(jenga_edge/kinds.py). Several sinks of one kind are several named entries.

A sink that can block on the network (syslog, every transport) runs behind the
asynchronous output stage (queued.py); any other sink can be put there with
its `queue:` setting. File sinks stay on the scoring thread: they are the
durable record the agent writes before any action runs.
"""

from __future__ import annotations

from typing import IO

from ..kinds import Kinds
from ..output_stage import QueueConfig
from . import jsonl, sqlite, stdout, syslog
from .base import Sink, SinkConfig, SinkContext
from .queued import QueuedSink

KINDS: Kinds[Sink] = Kinds("sink", [jsonl, stdout, syslog, sqlite])
QUEUED_KINDS = {"syslog"}  # kinds that run behind an output queue unless told otherwise


def _build(name: str, cfg: SinkConfig, stdout: IO[str] | None) -> Sink:
    sink = KINDS.build(cfg, SinkContext(name=name, stdout=stdout))
    queue = cfg.queue if cfg.queue is not None else (QueueConfig() if cfg.kind in QUEUED_KINDS else None)
    return QueuedSink(name, sink, queue) if queue is not None else sink


def build_sinks(configs: dict[str, SinkConfig], stdout: IO[str] | None = None) -> dict[str, Sink]:
    """The configured sinks by name, in config order. If one cannot be opened,
    those already opened are closed again."""
    sinks: dict[str, Sink] = {}
    try:
        for name, cfg in configs.items():
            sinks[name] = _build(name, cfg, stdout)
    except BaseException:
        for s in sinks.values():
            try:
                s.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise
    return sinks


__all__ = ["KINDS", "QueuedSink", "Sink", "SinkConfig", "SinkContext", "build_sinks"]
