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
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from . import _fastjson, _syncer, _windows

PURE = os.environ.get("JENGA_EDGE_PURE", "").strip() not in ("", "0")


class FastJsonModule(Protocol):
    """The _fastjson module (its stub: _fastjson.pyi)."""

    @property
    def Plan(self) -> type[_fastjson.Plan]: ...
    def frame(self, buf: bytes, /) -> tuple[int, int]: ...
    def spans(self, buf: bytes, start: int, k: int, out: npt.NDArray[np.int64], /) -> int: ...


class SyncerModule(Protocol):
    """The _syncer module (its stub: _syncer.pyi)."""

    @property
    def Syncer(self) -> type[_syncer.Syncer]: ...


def _load(name: str) -> ModuleType | None:
    if PURE:
        return None
    try:
        return importlib.import_module(f"jenga_edge.native.{name}")
    except ImportError:
        return None


if TYPE_CHECKING:  # the checker reads the stubs, and checks them against the protocols
    fastjson: FastJsonModule | None = _fastjson
    syncer: SyncerModule | None = _syncer
    windows: ModuleType | None = _windows
else:
    fastjson = _load("_fastjson")  # decode.py tier 1, line framing (sources, event_queue)
    syncer = _load("_syncer")  # sinks.py: fsync on a thread without the GIL
    windows = _load("_windows")  # contract/window_state.py: the per-row kernels
