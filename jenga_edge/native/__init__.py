"""The agent's optional C extensions, each a module or None.

None when it was not built (no C compiler at install time) or when
JENGA_EDGE_PURE=1 is set: the agent then runs its pure-Python paths, with the
same results, slower. The switch lets an operator tell a fast-path problem
from any other, and the tests run both ways.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE = os.environ.get("JENGA_EDGE_PURE", "").strip() not in ("", "0")


def _load(name: str) -> ModuleType | None:
    if PURE:
        return None
    try:
        return importlib.import_module(f"jenga_edge.native.{name}")
    except ImportError:
        return None


fastjson = _load("_fastjson")  # decode.py tier 1, line framing (sources, event_queue)
syncer = _load("_syncer")  # sinks.py: fsync on a thread without the GIL
