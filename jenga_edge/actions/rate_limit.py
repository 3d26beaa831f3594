"""The budget every action shares: at most N actions in any window, with bursts up to N."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Annotated

from ..contract.errors import ConfigError
from ..contract.typed import Config, doc
from .base import short


class RateLimitConfig(Config, kw_only=True):
    """At most `max_actions` actions in any `per_seconds` window, shared by all actions;
    an action over the budget is skipped (reason rate_limited) and counted."""

    max_actions: Annotated[int, doc("actions per window, and the largest burst", ge=1)] = 10
    per_seconds: Annotated[float, doc("the window, seconds", ge=0.001)] = 60.0


class RateLimiter:
    """Token bucket: holds up to `max_actions` tokens, refilled at max_actions/per_seconds.

    Thread-safe. `clock` is any monotonic seconds function (tests pass a fake one).
    """

    def __init__(self, max_actions: int, per_seconds: float, clock: Callable[[], float] = time.monotonic):
        if isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 1:
            raise ConfigError(f"rate_limit.max_actions: expected an integer >= 1, got {short(max_actions)}")
        if (
            isinstance(per_seconds, bool)
            or not isinstance(per_seconds, (int, float))
            or not math.isfinite(per_seconds)
            or per_seconds <= 0
        ):
            raise ConfigError(f"rate_limit.per_seconds: expected a number > 0, got {short(per_seconds)}")
        self.capacity = float(max_actions)
        self.rate = max_actions / float(per_seconds)  # tokens per second
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:  # a clock that steps back refills nothing
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._last = now

    def allow(self, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many; False (and take none) otherwise."""
        with self._lock:
            self._refill()
            if self._tokens + 1e-9 >= cost:
                self._tokens = max(0.0, self._tokens - cost)
                return True
            return False
