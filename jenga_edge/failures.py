"""Failures the agent survives, made visible: counted in metrics and logged, rate-limited.

Nothing may fail silently: a sink that cannot deliver, an action that fails, a
source that waits for its file. Each such failure is counted by the caller in
its metric, and reported here under a key ("sink:siem", "action:block",
"source:file:/var/log/eve.json"). The first report of a key is logged at once;
repeats within `every_s` are only counted, and the next line logged for the key
says how many there were, so a dead collector at 10k alerts/s costs one log
line a minute, not 10k.

Log text can carry what a peer sent (an error message, a path), so it is
escaped before it reaches a terminal or a log file (`contract.text.terminal_safe`:
control characters, newlines and ANSI escape sequences included, are written as
backslash escapes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .contract.text import terminal_safe

__all__ = ["FailureLog", "terminal_safe"]


class FailureLog:
    """Rate-limited warnings per key; thread-safe (sources and action workers report too)."""

    def __init__(
        self,
        log: Callable[[str], None],
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log, self.every_s, self.clock = log, every_s, clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (last logged at, repeats since)

    def warn(self, key: str, message: str, count: bool = True) -> None:
        """Log `message` unless `key` was logged less than `every_s` ago (then count it;
        `count=False` for a lasting condition re-checked in a loop, whose repeats mean nothing)."""
        with self._lock:
            now = self.clock()
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.every_s:
                self._seen[key] = (last[0], last[1] + int(count))
                return
            repeats = last[1] if last is not None else 0
            self._seen[key] = (now, 0)
        more = f" (and {repeats} more since the last report)" if repeats else ""
        self.log(terminal_safe(message) + more)

    def resolved(self, key: str, message: str) -> None:
        """Log that `key`'s condition has ended (a file appeared) and forget it."""
        with self._lock:
            known = self._seen.pop(key, None) is not None
        if known:
            self.log(terminal_safe(message))
