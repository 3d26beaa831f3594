"""Window feature kernels for contract/window_state.py (native/_windows.c)."""

from typing import Any

def clock(times: Any, state: Any, lag: float, ahead_max: float, jump: int, /) -> None: ...
def buckets(
    kind: int, width: float, slots: Any, fresh: Any, t: Any, x: Any, cond: Any, newest: Any, acc: Any, out: Any, /
) -> None: ...
def stats(
    width: float,
    slots: Any,
    fresh: Any,
    t: Any,
    x: Any,
    newest: Any,
    acc: Any,
    out_sum: Any,
    out_mean: Any,
    out_std: Any,
    /,
) -> None: ...
def count_last(slots: Any, fresh: Any, inc: Any, count: Any, owner: Any, ring: Any, pos: Any, out: Any, /) -> None: ...
def since_previous(slots: Any, fresh: Any, t: Any, last: Any, out: Any, /) -> None: ...
def damped(
    decay: float, stat: int, has_field: int, slots: Any, fresh: Any, t: Any, x: Any, st: Any, out: Any, /
) -> None: ...
def distinct(
    width: float,
    start: int,
    slots: Any,
    fresh: Any,
    t: Any,
    h: Any,
    has: Any,
    newest: Any,
    hashes: Any,
    seen: Any,
    sketch: Any,
    pool: Any,
    free: Any,
    free_n: Any,
    out: Any,
    /,
) -> int: ...
def has_none(values: list[Any], /) -> bool: ...
def memo_mask(values: list[Any], memo: dict[Any, bool], out: Any, start: int, /) -> int: ...

class KeyTable:
    """Live keys by fingerprint -> slot, for one key space."""

    def assign(
        self,
        cols: list[list[Any]],
        index: dict[Any, int] | None,
        touch: Any,
        owner: Any,
        seq: int,
        start: int,
        slots: Any,
        fresh: Any,
        inc: Any,
        keylist: list[Any],
        free: Any,
        free_n: Any,
        incarnations: Any,
        /,
    ) -> int: ...
    def remove(self, keys: list[Any], /) -> None: ...
    def rebuild(self, keylist: list[Any], touch: Any, owner: Any, /) -> None: ...
    def export(self, touch: Any, owner: Any, /) -> None: ...
    def live(self) -> int: ...
    def size(self) -> int: ...
