"""Window state over a restart: written at SIGTERM, read back at start.

A snapshot (contract/window_state.py) is versioned and checksummed and names
the window definitions it holds; one that fails any check is refused with a
line in the log and the agent starts with empty windows, never with state it
cannot trust. Written to a temporary file, fsynced and renamed: a crash while
saving leaves the previous snapshot whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from .contract.errors import BundleError
from .contract.window_state import WindowEngine
from .sinks.fsync import fsync_dir


def save(engine: WindowEngine, path: str) -> tuple[str, str]:
    """Write the snapshot; returns (result for the metric: saved | failed, the log line)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            engine.write_snapshot(fh)  # streamed: no copy of the state in memory
            size = fh.tell()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        fsync_dir(p.parent)
    except Exception as exc:  # noqa: BLE001 - a snapshot must never stop the shutdown
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        return "failed", f"window snapshot NOT saved to {path}: {reason}"
    return "saved", f"window snapshot saved to {path}: {engine.live_keys} keys, {size} bytes"


def restore(engine: WindowEngine, path: str) -> tuple[str, str]:
    """Load the snapshot if there is one of these windows; returns (result for the metric:
    restored | none | unreadable | refused, the log line)."""
    fresh = WindowEngine(engine.model)  # read into a spare: a refused snapshot leaves the engine empty
    try:
        with open(path, "rb") as fh:
            fresh.read_snapshot(fh, path)
    except FileNotFoundError:
        return "none", f"window snapshot {path}: none yet, windows start empty"
    except OSError as exc:
        return "unreadable", f"window snapshot {path} unreadable ({exc.strerror or exc}): windows start empty"
    except (BundleError, ValueError, KeyError, TypeError, IndexError) as exc:  # refused, or malformed inside
        return "refused", f"window snapshot refused: {exc}: windows start empty"
    except MemoryError:  # a state larger than this machine can hold (or a header that says so)
        return "refused", f"window snapshot {path} refused: not enough memory to load it: windows start empty"
    engine.carry_from(fresh)
    return "restored", f"window snapshot {path} restored: {engine.live_keys} keys"
