"""Event sources: where the agent reads newline-delimited JSON events.

One module per kind (stdin, file, tcp, udp, unix), each with its `Config`
(`type: <kind>` in the agent config) and `build`; base.py has what they share.
A new kind is a module here and its name in the list below (jenga_edge/kinds.py).
"""

from __future__ import annotations

from ..kinds import Kinds
from . import file, stdin, tcp, udp, unix
from .base import Source, SourceConfig, SourceContext

KINDS: Kinds[Source] = Kinds("source", [stdin, file, tcp, udp, unix])


def build_source(config: SourceConfig, context: SourceContext) -> Source:
    """The source `config` describes, not yet started."""
    source = KINDS.build(config, context)
    source.drain_s = context.drain_s
    return source


__all__ = ["KINDS", "Source", "SourceConfig", "SourceContext", "build_source"]
