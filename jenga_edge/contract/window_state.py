"""The window engine: per-key state over event time, one implementation for the
trainer (over its file, in event-time order) and the agent (over its stream).

`WindowEngine.update` takes a batch's columns (event times, key and field
values, numbers) and returns each window feature's column. Rows are processed
strictly in order, so a stream gives the same values however it is cut into
batches (tests/jenga_edge/test_windows.py).

State lives in numpy arrays indexed by a key's slot; each key tuple (e.g.
[src_ip]) has a KeySpace that maps keys to slots, at most `max_keys` of them,
evicting the least recently seen sixteenth when full. The per-row kernels are
C (native/_windows.c) when built, else the Python loops here: same arrays,
same arithmetic, same values (tests/jenga_edge/test_windows.py).

Event time: the engine keeps a clock, the latest event time seen. An event up
to `lag_s` behind it counts at its own time; further behind, at clock - lag_s
(counted `late`). An event more than `max_ahead_s` ahead of it counts at the
clock's time and does not move it (counted `ahead`), so one wild timestamp
cannot expire every window; after 8 such events in a row the clock jumps (a
real gap in the data). The current event is included in its own features.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec
import numpy as np

from ..native import windows as _native  # None: the Python loops below
from .conditions import condition_mask
from .digest import sha256
from .errors import BundleError
from .events import EventModel
from .values import category_key
from .windows import (
    BUCKETS,
    EXACT_DISTINCT,
    SKETCH_REGISTERS,
    Count,
    Damped,
    Distinct,
    Mean,
    Rate,
    SincePrevious,
    Std,
    Sum,
    Window,
    span,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]
    I64 = npt.NDArray[np.int64]

EMPTY = np.iinfo(np.int64).min
SEEN_MOD = 248  # a distinct entry's sub-window is kept mod 248 (a multiple of BUCKETS), + 1
_I64 = 1 << 63
# Event times beyond this (epoch seconds, about the year 5138) are no times: callers reject
# them (bad_timestamp) and the engine clips them, so sub-window indexes stay far from int64's ends.
MAX_EVENT_TIME = 1e11
AHEAD_JUMP = 8  # consecutive events ahead of the clock after which it jumps (a real gap)
SNAPSHOT_VERSION = 3  # 2: streamed (a fixed-size header, then the body); 3: sum/mean/std share a state
_HEAD_BYTES = 512
_HASH_MEMO = 65536


_M64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def value_hash(value: Any) -> int:
    """A stable 64-bit hash of a value as a category (22, 22.0 and "22" alike): FNV-1a
    over the UTF-8 of its category key, mixed (native/_windows.c value_hashes: the same)."""
    f = 0xCBF29CE484222325
    for byte in category_key(value).encode("utf-8", "surrogatepass"):
        f = ((f ^ byte) * 0x100000001B3) & _M64
    return _mix64(f)


def key_of(value: Any) -> Any:
    """A key value as the key tables hold it: strings and 64-bit integers as they are
    (no conversion per event: they are most keys), an integral float as its integer,
    anything else (bigger integers too) as its category key."""
    t = type(value)
    if t is str:
        return value
    if t is float and value.is_integer() and -_I64 <= value < _I64:
        return int(value)
    if t is int and -_I64 <= value < _I64:
        return value
    return category_key(value)


# --------------------------------------------------------------------------- keys


class KeySpace:
    """Keys of one key tuple -> slots, with LRU eviction. Free slots are a stack
    (`free[:free_n]`) that grows and eviction refill; new keys take from it in C or
    in Python alike."""

    def __init__(self, fields: tuple[str, ...], max_keys: int):
        self.fields, self.max_keys = fields, max_keys
        self.index: dict[Any, int] = {}
        self.keys: list[Any] = []  # slot -> key (None: free), as long as the arrays
        self.free = np.zeros(0, dtype=np.int64)
        self.free_n = np.zeros(1, dtype=np.int64)
        self.touch = np.zeros(0, dtype=np.int64)
        self.owner = np.zeros(0, dtype=np.int64)  # slot -> the id of its current assignment
        self.incarnations = np.zeros(1, dtype=np.int64)  # keys ever given a slot: each assignment's id
        self.states: list[_State] = []
        self.evicted = 0
        # C: the keys indexed by fingerprint (one probe a row, no tuple built); the dict stays the reference
        self.table = _native.KeyTable() if _native is not None else None

    @property
    def live(self) -> int:
        return self.table.live() if self.table is not None else len(self.index)

    def assign(self, cols: list[Sequence[Any]], seq: int) -> tuple[I64, npt.NDArray[np.bool_], I64]:
        """Each row's slot (the key: one value per column), whether the row is its
        slot's first (fresh state), and the id of the slot's assignment at that row
        (a slot evicted and reused later in the batch holds another key by then: the
        kernels must not mix the two)."""
        n = len(cols[0])
        slots = np.empty(n, dtype=np.int64)
        fresh = np.zeros(n, dtype=bool)
        inc = np.empty(n, dtype=np.int64)
        if self.table is not None:
            self._assign_c(cols, seq, slots, fresh, inc)
            return slots, fresh, inc
        conv = [_key_column(c) for c in cols]
        keys = conv[0] if len(conv) == 1 else list(zip(*conv))
        for i, k in enumerate(keys):
            s = self.index.get(k)
            if s is None:
                s = self._new(k)
                fresh[i] = True
            slots[i] = s
            self.touch[s] = seq + i
            inc[i] = self.owner[s]
        return slots, fresh, inc

    def _assign_c(
        self, cols: list[Sequence[Any]], seq: int, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64
    ) -> None:
        assert self.table is not None
        lists = [c if type(c) is list else list(c) for c in cols]
        n, i = len(lists[0]), 0
        while i < n:
            i = self.table.assign(
                lists,
                None,  # with the C table, Python keeps no dict of the keys
                self.touch,
                self.owner,
                seq,
                i,
                slots,
                fresh.view(np.uint8),
                inc,
                self.keys,
                self.free,
                self.free_n,
                self.incarnations,
            )
            if i < 0:  # a value that is neither a str nor an int: the key columns as the tables hold keys
                lists, i = [_key_column(c) for c in lists], -i - 1
            elif i < n:  # a new key and no free slot
                self._refill()

    def sync(self) -> None:
        """The slot arrays `touch` and `owner` as of now (C keeps them in its table)."""
        if self.table is not None:
            self.table.export(self.touch, self.owner)

    def _refill(self) -> None:
        if len(self.keys) < self.max_keys:
            self._grow(len(self.keys) + 1)
        else:
            self._evict()

    def _new(self, key: Any) -> int:
        if not self.free_n[0]:
            self._refill()
        self.free_n[0] -= 1
        s = int(self.free[self.free_n[0]])
        self.index[key] = s
        self.keys[s] = key
        self.incarnations[0] += 1
        self.owner[s] = self.incarnations[0]
        return s

    def _grow(self, need: int) -> None:
        cap = len(self.touch)
        new = min(self.max_keys, max(1024, cap * 2, need))
        self.touch = np.concatenate([self.touch, np.zeros(new - cap, dtype=np.int64)])
        self.owner = np.concatenate([self.owner, np.zeros(new - cap, dtype=np.int64)])
        self.keys.extend([None] * (new - cap))
        k = int(self.free_n[0])
        free = np.zeros(new, dtype=np.int64)
        free[:k] = self.free[:k]
        free[k : k + new - cap] = np.arange(new - 1, cap - 1, -1)  # the lowest new slot is taken first
        self.free, self.free_n[0] = free, k + new - cap
        for st in self.states:
            st.resize(new)

    def _evict(self) -> None:
        """The least recently seen sixteenth of the keys goes (amortized O(1) per key)."""
        n = max(1, self.max_keys // 16)
        self.sync()
        victims = np.argpartition(self.touch[: len(self.keys)], n - 1)[:n]
        k = int(self.free_n[0])
        if self.table is not None:
            self.table.remove([self.keys[s] for s in victims.tolist()])
        for s in sorted(victims.tolist(), reverse=True):
            if self.table is None:  # with the C table, the dict is not kept
                del self.index[self.keys[s]]
            self.keys[s] = None
            self.free[k] = s
            k += 1
        self.free_n[0] = k
        self.evicted += n


# --------------------------------------------------------------------------- state


class _State:
    """One window feature's state arrays (first axis: slot) and its row kernel."""

    arrays: tuple[str, ...] = ()

    def __init__(self, w: Window):
        self.w = w

    def resize(self, cap: int) -> None:
        for name in self.arrays:
            arr = getattr(self, name)
            grown = np.zeros((cap, *arr.shape[1:]), dtype=arr.dtype)  # zeros: a snapshot holds no stray bytes
            grown[: len(arr)] = arr
            setattr(self, name, grown)

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        raise NotImplementedError

    def check(self, cap: int) -> None:
        """Indexes the kernels follow are in range (a restored snapshot)."""
        newest = getattr(self, "newest", None)
        if newest is not None and bool(np.any((newest != EMPTY) & (np.abs(newest) > 1 << 53))):
            raise ValueError("a sub-window index is out of range")


class _Buckets(_State):
    """Time windows as 8 sub-windows per key: newest sub-window index, and per
    sub-window accumulators (k of them)."""

    arrays: tuple[str, ...] = ("newest", "acc")
    k = 1

    def __init__(self, w: Window):
        super().__init__(w)
        self.width = span(w) / BUCKETS
        self.newest = np.zeros(0, dtype=np.int64)
        self.acc = np.zeros((0, BUCKETS, self.k), dtype=np.float64)

    def _advance(self, s: int, b: int, fresh: bool) -> int:
        """Move slot s's ring to sub-window b (clearing what expires); returns the
        sub-window the event counts in (a late one: at the oldest still kept)."""
        newest = int(self.newest[s])
        if fresh or newest == EMPTY or b - newest >= BUCKETS:
            self.acc[s] = 0.0
            self.newest[s] = b
            return b
        if b > newest:
            for j in range(newest + 1, b + 1):
                self.acc[s, j % BUCKETS] = 0.0
            self.newest[s] = b
            return b
        return max(b, newest - BUCKETS + 1)

    kind = 0  # the C kernel's kind (native/_windows.c)

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        out = np.empty(len(slots), dtype=np.float64)
        if _native is not None:
            cond = None if extra is None else np.ascontiguousarray(extra, dtype=np.uint8)
            _native.buckets(self.kind, self.width, slots, _u8(fresh), t, x, cond, self.newest, self.acc, out)
            return out
        for i in range(len(slots)):
            out[i] = self._value(self._row_totals(i, slots, fresh, t, x, extra))
        return out

    def _row_totals(
        self, i: int, slots: I64, fresh: npt.NDArray[np.bool_], t: F64, x: F64 | None, extra: Any
    ) -> list[float]:
        """Row i placed in its slot's ring; the slot's accumulators summed over the sub-windows."""
        s = int(slots[i])
        b = self._advance(s, math.floor(t[i] / self.width), bool(fresh[i]))
        self._add(s, b % BUCKETS, i, x, extra)
        acc, k = self.acc[s], self.k
        total = [0.0] * k
        for p in range(BUCKETS):  # in the C kernel's order: the same float sums
            for q in range(k):
                total[q] += float(acc[p, q])
        return total

    def _add(self, s: int, pos: int, i: int, x: F64 | None, extra: Any) -> None:
        self.acc[s, pos, 0] += 1.0

    def _value(self, total: list[float]) -> float:
        return float(total[0])


class _CountTime(_Buckets):
    kind = 0


class _Stat(_Buckets):
    """Sum, mean and std of one key, field and window hold the same accumulators: one
    state serves every such feature (`kinds`, in the features' order), in one pass."""

    k = 3  # values present, sum, sum of squares

    def __init__(self, w: Window):
        super().__init__(w)
        self.kinds = [self.kind]

    def update_all(self, slots: I64, fresh: npt.NDArray[np.bool_], t: F64, x: F64) -> list[F64]:
        """One column per kind served (`kinds`)."""
        if len(self.kinds) == 1:
            return [self.update(slots, fresh, slots, t, x, None)]
        cols = {kind: np.empty(len(slots), dtype=np.float64) for kind in self.kinds}
        if _native is not None:
            outs = [cols.get(kind) for kind in (_Sum.kind, _Mean.kind, _Std.kind)]
            _native.stats(self.width, slots, _u8(fresh), t, x, self.newest, self.acc, *outs)
            return [cols[kind] for kind in self.kinds]
        values = [(cols[kind], _STAT_VALUES[kind]) for kind in self.kinds]
        for i in range(len(slots)):
            total = self._row_totals(i, slots, fresh, t, x, None)
            for col, value in values:
                col[i] = value(total)
        return [cols[kind] for kind in self.kinds]

    def _add(self, s: int, pos: int, i: int, x: F64 | None, extra: Any) -> None:
        assert x is not None
        v = x[i]
        if v == v:  # present
            acc = self.acc[s, pos]
            acc[0] += 1.0
            acc[1] += v
            acc[2] += v * v


class _Sum(_Stat):
    kind = 1

    @staticmethod
    def _value(total: list[float]) -> float:
        return float(total[1])


class _Mean(_Stat):
    kind = 2

    @staticmethod
    def _value(total: list[float]) -> float:
        return float(total[1] / total[0]) if total[0] else math.nan


class _Std(_Stat):
    kind = 3

    @staticmethod
    def _value(total: list[float]) -> float:
        if not total[0]:
            return math.nan
        mean = total[1] / total[0]
        return math.sqrt(max(0.0, total[2] / total[0] - mean * mean))


_STAT_VALUES = {1: _Sum._value, 2: _Mean._value, 3: _Std._value}  # kind -> value of the totals


class _Rate(_Buckets):
    k = 2  # events, events meeting the condition
    kind = 4

    def _add(self, s: int, pos: int, i: int, x: F64 | None, extra: Any) -> None:
        acc = self.acc[s, pos]
        acc[0] += 1.0
        acc[1] += 1.0 if extra[i] else 0.0

    def _value(self, total: list[float]) -> float:
        return float(total[1] / total[0])


class _CountLast(_State):
    """Events of the key among the stream's last N (a ring of (slot, generation))."""

    arrays = ("count", "owner")

    def __init__(self, w: Count):
        super().__init__(w)
        assert w.among_last is not None
        self.count = np.zeros(0, dtype=np.int64)
        self.owner = np.zeros(0, dtype=np.int64)  # slot -> assignment id, as of the row being processed
        self.ring = np.full((w.among_last, 2), -1, dtype=np.int64)  # (slot, assignment id) of the last N
        self.pos = np.zeros(1, dtype=np.int64)  # an array, so a snapshot holds it

    def check(self, cap: int) -> None:
        n = len(self.ring)
        if not 0 <= int(self.pos[0]) < n or bool(np.any((self.ring[:, 0] < -1) | (self.ring[:, 0] >= max(cap, 1)))):
            raise ValueError("the last-N ring is out of range")

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        out = np.empty(len(slots), dtype=np.float64)
        if _native is not None:
            _native.count_last(slots, _u8(fresh), inc, self.count, self.owner, self.ring, self.pos, out)
            return out
        ring, count, owner, n = self.ring, self.count, self.owner, len(self.ring)
        for i in range(len(slots)):
            s = int(slots[i])
            if fresh[i]:
                count[s] = 0
                owner[s] = inc[i]
            p = int(self.pos[0])
            old, old_inc = int(ring[p, 0]), int(ring[p, 1])
            if old >= 0 and owner[old] == old_inc:  # still the key it was pushed for
                count[old] -= 1
            ring[p, 0], ring[p, 1] = s, inc[i]
            self.pos[0] = (p + 1) % n
            count[s] += 1
            out[i] = float(count[s])
        return out


class _Distinct(_Buckets):
    """Exact distinct values (hash, sub-window last seen) up to EXACT_DISTINCT per key,
    then a HyperLogLog sketch per sub-window (registers from a shared pool, whose
    free ones are a stack: `free[:free_n]`)."""

    arrays = ("newest", "hashes", "seen", "sketch")

    def __init__(self, w: Window):
        _State.__init__(self, w)
        self.width = span(w) / BUCKETS
        self.newest = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros((0, EXACT_DISTINCT), dtype=np.uint64)
        # each entry's sub-window mod SEEN_MOD, + 1 (0: empty); every entry kept is within
        # the window (_advance empties the others), so none is older than 2 * BUCKETS - 2
        self.seen = np.zeros((0, EXACT_DISTINCT), dtype=np.uint8)
        self.sketch = np.zeros(0, dtype=np.int64)
        self.pool = np.zeros((0, BUCKETS, SKETCH_REGISTERS), dtype=np.uint8)
        self.free = np.zeros(0, dtype=np.int64)
        self.free_n = np.zeros(1, dtype=np.int64)

    def resize(self, cap: int) -> None:
        old = len(self.sketch)
        super().resize(cap)
        self.sketch[old:] = -1

    def check(self, cap: int) -> None:
        super().check(cap)
        pool = len(self.pool)
        k = int(self.free_n[0])
        free = self.free[:k].tolist()
        used = self.sketch[self.sketch >= 0].tolist()
        if (
            len(self.free) != pool
            or not 0 <= k <= pool
            or bool(np.any((self.sketch < -1) | (self.sketch >= pool)))
            or len(set(free) | set(used)) != len(free) + len(used)
            or any(not 0 <= f < pool for f in free)
            or bool(np.any(self.seen > SEEN_MOD))
        ):
            raise ValueError("the distinct sketches are out of range")

    def _grow_pool(self) -> None:
        n = len(self.pool)
        add = max(16, n)
        self.pool = np.concatenate([self.pool, np.zeros((add, BUCKETS, SKETCH_REGISTERS), np.uint8)])
        free = np.zeros(n + add, dtype=np.int64)
        k = int(self.free_n[0])
        free[:k] = self.free[:k]
        free[k : k + add] = np.arange(n + add - 1, n - 1, -1)  # the lowest new index is taken first
        self.free, self.free_n[0] = free, k + add

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        out = np.empty(len(slots), dtype=np.float64)
        if _native is not None:  # extra: the values
            hashes, has = _native_hashes(extra)
            row, n = 0, len(slots)
            while True:
                row = _native.distinct(
                    self.width,
                    row,
                    slots,
                    _u8(fresh),
                    t,
                    hashes,
                    has,
                    self.newest,
                    self.hashes,
                    self.seen,
                    self.sketch,
                    self.pool,
                    self.free,
                    self.free_n,
                    out,
                )
                if row >= n:
                    return out
                self._grow_pool()
        width = self.width
        for i in range(len(slots)):
            s = int(slots[i])
            b = self._advance(s, math.floor(t[i] / width), bool(fresh[i]))
            h = extra[i]  # extra: the values' hashes (None: missing)
            if h is not None:
                self._insert(s, b, int(h))
            out[i] = self._value_of(s)
        return out

    def _advance(self, s: int, b: int, fresh: bool) -> int:
        newest = int(self.newest[s])
        if fresh or newest == EMPTY or b - newest >= BUCKETS:
            self._clear(s)
            self.newest[s] = b
            return b
        if b > newest:
            k = int(self.sketch[s])
            if k >= 0:
                for j in range(newest + 1, b + 1):
                    self.pool[k, j % BUCKETS] = 0
            else:  # entries the window leaves are emptied
                seen = self.seen[s]
                for j in range(EXACT_DISTINCT):
                    if seen[j] and _seen_age(int(seen[j]), newest) + b - newest >= BUCKETS:
                        seen[j] = 0
            self.newest[s] = b
            return b
        return max(b, newest - BUCKETS + 1)

    def _clear(self, s: int) -> None:
        self.seen[s] = 0
        k = int(self.sketch[s])
        if k >= 0:
            self.free[self.free_n[0]] = k
            self.free_n[0] += 1
            self.sketch[s] = -1

    def _insert(self, s: int, b: int, h: int) -> None:
        k = int(self.sketch[s])
        if k >= 0:
            _hll_add(self.pool[k, b % BUCKETS], h)
            return
        newest = int(self.newest[s])
        seen, hashes = self.seen[s], self.hashes[s]
        live = seen != 0
        hit = np.flatnonzero(live & (hashes == np.uint64(h)))
        if hit.size:
            if newest - b < _seen_age(int(seen[hit[0]]), newest):  # b is newer
                seen[hit[0]] = b % SEEN_MOD + 1
            return
        room = np.flatnonzero(~live)
        if room.size:
            hashes[room[0]], seen[room[0]] = h, b % SEEN_MOD + 1
            return
        if not self.free_n[0]:
            self._grow_pool()
        self.free_n[0] -= 1
        k = int(self.free[self.free_n[0]])
        self.sketch[s] = k
        self.pool[k] = 0
        for j in range(EXACT_DISTINCT):
            _hll_add(self.pool[k, (int(seen[j]) - 1) % BUCKETS], int(hashes[j]))
        _hll_add(self.pool[k, b % BUCKETS], h)

    def _value_of(self, s: int) -> float:
        k = int(self.sketch[s])
        if k >= 0:
            return hll_estimate(self.pool[k].max(axis=0))
        return float(np.count_nonzero(self.seen[s]))


def _seen_age(v: int, newest: int) -> int:
    """How many sub-windows before `newest` an entry kept as `v` was last seen."""
    return (newest - (v - 1)) % SEEN_MOD


def _hll_add(registers: npt.NDArray[np.uint8], h: int) -> None:
    """HyperLogLog with 64 registers: the top 6 bits pick one, the rest give the rank."""
    j = h >> 58
    rest = h & ((1 << 58) - 1)
    rank = 58 - rest.bit_length() + 1
    if rank > registers[j]:
        registers[j] = rank


def hll_estimate(registers: npt.NDArray[np.uint8]) -> float:
    m = SKETCH_REGISTERS
    total = 0.0
    for r in registers.tolist():  # in the C kernel's order: the same float sum
        total += math.ldexp(1.0, -r)
    est = 0.709 * m * m / total
    zeros = int((registers == 0).sum())
    if est <= 2.5 * m and zeros:
        est = m * math.log(m / zeros)  # linear counting for small sets
    return est


class _SincePrevious(_State):
    arrays = ("last",)

    def __init__(self, w: Window):
        super().__init__(w)
        self.last = np.zeros(0, dtype=np.float64)

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        out = np.empty(len(slots), dtype=np.float64)
        if _native is not None:
            _native.since_previous(slots, _u8(fresh), t, self.last, out)
            return out
        last = self.last
        for i in range(len(slots)):
            s, ti = int(slots[i]), float(t[i])
            prev = math.nan if fresh[i] else float(last[s])
            out[i] = max(0.0, ti - prev) if prev == prev else math.nan
            last[s] = ti if prev != prev else max(prev, ti)
        return out


class _Damped(_State):
    """Kitsune's damped statistics: weight, linear sum, squared sum, last time."""

    arrays = ("st",)

    def __init__(self, w: Damped):
        super().__init__(w)
        self.decay, self.stat, self.has_field = w.decay, w.stat, w.field is not None
        self.st = np.zeros((0, 4), dtype=np.float64)

    def update(self, slots: I64, fresh: npt.NDArray[np.bool_], inc: I64, t: F64, x: F64 | None, extra: Any) -> F64:
        out = np.empty(len(slots), dtype=np.float64)
        if _native is not None:
            stat = ("weight", "mean", "std").index(self.stat)
            _native.damped(self.decay, stat, int(self.has_field), slots, _u8(fresh), t, x, self.st, out)
            return out
        for i in range(len(slots)):
            s, ti = int(slots[i]), float(t[i])
            st = self.st[s]
            if fresh[i]:
                st[0] = st[1] = st[2] = 0.0
                st[3] = math.nan
            w, ls, ss, tl = float(st[0]), float(st[1]), float(st[2]), float(st[3])
            if tl == tl:
                f = 2.0 ** (-self.decay * max(0.0, ti - tl))
                w, ls, ss, tl = w * f, ls * f, ss * f, max(tl, ti)
            else:
                tl = ti
            v = float(x[i]) if self.has_field and x is not None else 0.0
            if not self.has_field or v == v:
                w, ls, ss = w + 1.0, ls + v, ss + v * v
            st[0], st[1], st[2], st[3] = w, ls, ss, tl
            out[i] = _damped_value(self.stat, w, ls, ss)
        return out


def _damped_value(stat: str, w: float, ls: float, ss: float) -> float:
    if stat == "weight":
        return w
    if not w:
        return math.nan
    mean = ls / w
    return mean if stat == "mean" else math.sqrt(max(0.0, ss / w - mean * mean))


def _own_times(
    raw: npt.NDArray[Any], placed: F64, before: float, lag: float, clipped: dict[str, int] | None = None
) -> F64:
    """A window's own times (its `time` field) for rows the clock placed at `placed`:
    each row's own time, at most `lag` behind the clock as that row left it and never
    ahead of it; a row without one counts at the clock. The clock after a row is the
    latest placed time so far (a row moves the clock only to its own placed time).
    `clipped` counts the rows placed elsewhere than their own time says, by reason."""
    clock = np.maximum.accumulate(np.maximum(placed, before))
    raw = np.ascontiguousarray(raw, dtype=np.float64)
    missing = np.isnan(raw)
    if clipped is not None:
        clipped["missing"] += int(missing.sum())
        clipped["late"] += int((raw < clock - lag).sum())  # NaN compares False
        clipped["ahead"] += int((raw > clock).sum())
    return np.where(missing, clock, np.clip(raw, clock - lag, clock))


def _state_for(w: Window, space: KeySpace) -> _State:
    if isinstance(w, Count):
        return _CountTime(w) if w.window_s is not None else _CountLast(w)
    kinds: dict[type, type[_State]] = {
        Distinct: _Distinct,
        Sum: _Sum,
        Mean: _Mean,
        Std: _Std,
        Rate: _Rate,
        SincePrevious: _SincePrevious,
    }
    if isinstance(w, Damped):
        return _Damped(w)
    return kinds[type(w)](w)


# --------------------------------------------------------------------------- engine


class WindowEngine:
    """Every window feature of one event model, and the clock they share."""

    def __init__(self, model: EventModel):
        self.model = model
        self.definition = model.window_definition()
        self.clock = -math.inf
        self.ahead_run = self.behind_run = 0
        self.resets = 0
        self.seq = 0
        self.late = self.ahead = 0
        # rows whose own time field (a window's `time`) was placed elsewhere than it says, by reason:
        # late (more than time_lag_s behind the clock), ahead (of the clock), missing; counted once
        # per row and time field, not kept in a snapshot
        self.own_clipped: dict[str, int] = {"late": 0, "ahead": 0, "missing": 0}
        # the last update's rows' times as the windows placed them (one far ahead: at the clock)
        self.placed: F64 = np.zeros(0, dtype=np.float64)
        self.reset_rows: tuple[int, ...] = ()  # the last update's rows from which the windows were emptied (reset)
        self.spaces: dict[tuple[str, ...], KeySpace] = {}
        self.states: dict[str, _State] = {}
        stats: dict[tuple[Any, ...], _Stat] = {}  # (key, field, window_s) -> the state its sum/mean/std share
        for name, w in model.windows.items():
            space = self.spaces.setdefault(tuple(w.key), KeySpace(tuple(w.key), model.max_keys))
            st = _state_for(w, space)
            if isinstance(st, _Stat) and isinstance(w, (Sum, Mean, Std)):
                shared = stats.setdefault((tuple(w.key), w.field, w.window_s, w.time, w.time_lag_s), st)
                if shared is not st:
                    shared.kinds.append(st.kind)
                    self.states[name] = shared
                    continue
            space.states.append(st)
            self.states[name] = st
        # each state once, with the features it gives (a shared stat state gives several)
        plan: dict[int, tuple[_State, list[str]]] = {}
        for name, st in self.states.items():
            plan.setdefault(id(st), (st, []))[1].append(name)
        self._plan = list(plan.values())
        self._hash_memo: dict[Any, int] = {}
        self._cond_memo: dict[tuple[str, str], dict[Any, bool]] = {}  # rate conditions: value -> verdict

    @property
    def fields(self) -> list[str]:
        """Fields read as raw values (keys, distinct values, condition fields)."""
        out: dict[str, None] = {}
        for w in self.model.windows.values():
            out.update(dict.fromkeys(w.key))
            if not w.numeric:
                out.update(dict.fromkeys(w.fields))
        return list(out)

    @property
    def numeric(self) -> list[str]:
        """Fields read as numbers (NaN where missing)."""
        return list(dict.fromkeys(f for w in self.model.windows.values() for f in w.numeric))

    @property
    def time_fields(self) -> list[str]:
        """Fields some window places its events at instead of the event time (read as times)."""
        return list(dict.fromkeys(w.time for w in self.model.windows.values() if w.time is not None))

    @property
    def evicted(self) -> int:
        return sum(sp.evicted for sp in self.spaces.values())

    @property
    def live_keys(self) -> int:
        return sum(sp.live for sp in self.spaces.values())

    def update(
        self, times: npt.NDArray[Any], values: Mapping[str, Sequence[Any]], numbers: Mapping[str, npt.NDArray[Any]]
    ) -> dict[str, F64]:
        """Each window feature's column for a batch, in row order. No key value may be
        None (the caller rejects such events) and no time NaN. `numbers` holds the
        windows' numeric fields and their own time fields (time_fields; NaN: missing)."""
        times = np.ascontiguousarray(times, dtype=np.float64)
        before = self.clock
        t, back = self._event_times(times)
        if back < len(t):  # the rows before the jump back, then the rest on reset state
            head = self._place(
                t[:back],
                {k: v[:back] for k, v in values.items()},
                {k: v[:back] for k, v in numbers.items()},
                before,
            )
            self.reset()
            tail = self.update(
                times[back:], {k: v[back:] for k, v in values.items()}, {k: v[back:] for k, v in numbers.items()}
            )
            self.placed = np.concatenate([t[:back], self.placed])
            self.reset_rows = (back, *(back + r for r in self.reset_rows))
            return {name: np.concatenate([head[name], tail[name]]) for name in head}
        self.placed, self.reset_rows = t, ()
        return self._place(t, values, numbers, before)

    def reset(self) -> None:
        """Empty every window (the clock came back from a burst of wild times: state placed
        in that future would never expire). The clock and the counts stay."""
        fresh = WindowEngine(self.model)
        self.spaces, self.states, self._plan = fresh.spaces, fresh.states, fresh._plan
        self.resets += 1

    def _place(
        self, t: F64, values: Mapping[str, Sequence[Any]], numbers: Mapping[str, npt.NDArray[Any]], before: float
    ) -> dict[str, F64]:
        """Each window feature's column for rows whose times are placed (`before`: the
        clock before the first of them)."""
        n = len(t)
        slots = {}
        for fields, space in self.spaces.items():
            slots[fields] = space.assign([values[f] for f in fields], self.seq)
        self.seq += n
        out: dict[str, F64] = {}
        own: dict[tuple[str, float], F64] = {}  # (time field, time_lag_s) -> its rows' placed times
        for st, names in self._plan:
            w, name = st.w, names[0]
            s, fresh, inc = slots[tuple(w.key)]
            tw = t
            if w.time is not None:
                at = (w.time, w.time_lag_s)
                if at not in own:
                    own[at] = _own_times(numbers[w.time], t, before, w.time_lag_s, self.own_clipped)
                tw = own[at]
            x = np.ascontiguousarray(numbers[w.numeric[0]], dtype=np.float64) if w.numeric else None
            if isinstance(st, _Stat):
                assert x is not None
                out.update(zip(names, st.update_all(s, fresh, tw, x)))
                continue
            extra: Any = None
            if isinstance(w, Distinct):
                extra = values[w.field] if _native is not None else self._hashes(values[w.field])
            elif isinstance(w, Rate):
                extra = np.ones(n, dtype=bool)
                for f, spec in w.condition.items():
                    extra &= self._condition(name, f, spec, values[f])
            out[name] = st.update(s, fresh, inc, tw, x, extra)
        return {name: out[name] for name in self.model.windows}

    def _condition(self, name: str, field: str, spec: Any, values: Sequence[Any]) -> npt.NDArray[np.bool_]:
        """A rate window's condition on one field as a mask. In C, each row's verdict is looked
        up in a memo of the verdicts of the values seen (None, str and int values: one
        condition_mask call per new value, not a Python pass per batch); else condition_mask."""
        col = values if type(values) is list else list(values)
        if _native is None:
            return condition_mask(field, spec, col)
        memo = self._cond_memo.setdefault((name, field), {})
        if len(memo) > _HASH_MEMO:
            memo.clear()
        out = np.empty(len(col), dtype=np.uint8)
        i = 0
        while True:
            i = _native.memo_mask(col, memo, out, i)
            if i >= len(col):
                return out.view(np.bool_)
            if i < 0:  # a value of another type (a float, a boolean, a list): the column as it was
                return condition_mask(field, spec, col)
            seen = dict.fromkeys(v for v in col[i:] if v is None or type(v) is str or type(v) is int)
            new = [v for v in seen if v not in memo]
            memo.update(zip(new, condition_mask(field, spec, new).tolist()))

    def _event_times(self, times: F64) -> tuple[F64, int]:
        """The times the windows count each row at, and the row where the clock jumped
        back (len: none); rows from there are not placed yet."""
        out: F64 = np.clip(times, -MAX_EVENT_TIME, MAX_EVENT_TIME)
        if _native is not None:
            state = np.array([self.clock, self.ahead_run, self.late, self.ahead, self.behind_run], dtype=np.float64)
            back = _native.clock(out, state, self.model.lag_s, self.model.max_ahead_s, AHEAD_JUMP)
            self.clock = float(state[0])
            self.ahead_run, self.late, self.ahead, self.behind_run = (int(x) for x in state[1:])
            return out, back
        clock, lag, ahead_max = self.clock, self.model.lag_s, self.model.max_ahead_s
        back = len(out)
        for i in range(len(out)):
            ti = float(out[i])
            if clock == -math.inf:
                clock = ti
            if ti > clock + ahead_max:
                self.ahead += 1
                self.ahead_run += 1
                self.behind_run = 0
                if self.ahead_run >= AHEAD_JUMP:  # a real gap in the data, not one wild timestamp
                    clock, self.ahead_run = ti, 0
                else:
                    out[i] = clock
                continue
            if ti < clock - ahead_max:
                self.late += 1
                self.behind_run += 1
                self.ahead_run = 0
                if self.behind_run >= AHEAD_JUMP:  # the clock went wrong (a burst of wild times): back
                    clock, self.behind_run, back = ti, 0, i
                    break
                out[i] = clock - lag
                continue
            self.ahead_run = self.behind_run = 0
            if ti < clock - lag:
                self.late += 1
                out[i] = clock - lag
            elif ti > clock:
                clock = ti
        self.clock = clock
        return out, back

    def _hashes(self, values: Sequence[Any]) -> list[int | None]:
        """Each value's hash, computed once per distinct value (ports, addresses repeat)."""
        memo = self._hash_memo
        if len(memo) > _HASH_MEMO:
            memo.clear()
        try:
            uniq = set(values)
        except TypeError:  # an unhashable value (an object read through a list path)
            return [None if v is None else value_hash(v) for v in values]
        if (0 in uniq or 1 in uniq) and any(type(v) is bool for v in values):  # True == 1 in a set: exact way
            return [None if v is None else value_hash(v) for v in values]
        for v in uniq:
            if v is not None and v not in memo:
                memo[v] = value_hash(v)
        get = memo.get  # None (a missing value) is never a key: it maps to None
        out: list[int | None] = list(map(get, values))
        return out

    # ------------------------------------------------------------ snapshots
    def snapshot(self) -> bytes:
        """The whole state as bytes (write_snapshot into memory)."""
        buf = io.BytesIO()
        self.write_snapshot(buf)
        return buf.getvalue()

    def restore(self, data: bytes, where: str = "snapshot") -> None:
        self.read_snapshot(io.BytesIO(data), where)

    def _arrays(self) -> list[tuple[Any, str]]:
        """(owner object, attribute) of every state array, in the snapshot's order."""
        out: list[tuple[Any, str]] = []
        for sp in self.spaces.values():
            out += [(sp, a) for a in ("free", "free_n", "touch", "owner", "incarnations")]
        for st, _names in self._plan:  # a shared state once
            out += [(st, a) for a in (*st.arrays, *_extra_arrays(st))]
        return out

    def write_snapshot(self, fh: BinaryIO) -> None:
        """The whole state, versioned and checksummed, streamed: a fixed-size header
        (written last: it holds the body's sha256), then the body: the small fields
        and keys (msgpack, length first) and every array's raw bytes, in order. Peak
        memory stays the state's own, never a copy of it."""
        for sp in self.spaces.values():
            sp.sync()
        arrays = self._arrays()
        meta = msgspec.msgpack.encode(
            {
                "clock": self.clock,
                "ahead_run": self.ahead_run,
                "behind_run": self.behind_run,
                "resets": self.resets,
                "seq": self.seq,
                "late": self.late,
                "ahead": self.ahead,
                "keys": [[list(k) if isinstance(k, tuple) else k for k in sp.keys] for sp in self.spaces.values()],
                "evicted": [sp.evicted for sp in self.spaces.values()],
                "arrays": [[getattr(o, a).dtype.str, list(getattr(o, a).shape)] for o, a in arrays],
            }
        )
        start = fh.tell()
        fh.write(b" " * _HEAD_BYTES)
        digest = sha256()
        for part in (len(meta).to_bytes(8, "little"), meta):
            digest.update(part)
            fh.write(part)
        for o, a in arrays:
            data = np.ascontiguousarray(getattr(o, a)).reshape(-1).view(np.uint8).data  # raw bytes, no copy
            digest.update(data)
            fh.write(data)
        end = fh.tell()
        head = msgspec.json.encode(
            {
                "version": SNAPSHOT_VERSION,
                "definition": sha256(self.definition).hexdigest(),
                "sha256": digest.hexdigest(),
                "bytes": end - start - _HEAD_BYTES,
            }
        )
        fh.seek(start)
        fh.write(head.ljust(_HEAD_BYTES - 1) + b"\n")
        fh.seek(end)

    def read_snapshot(self, fh: BinaryIO, where: str = "snapshot") -> None:
        """Load a snapshot of the same window definitions; BundleError if it is not one.
        The checksum is checked over the whole body before any state is taken."""
        try:
            meta = msgspec.json.decode(fh.read(_HEAD_BYTES).strip())
        except msgspec.DecodeError:
            raise BundleError(f"{where}: not a window snapshot") from None
        if not isinstance(meta, dict) or meta.get("version") != SNAPSHOT_VERSION:
            raise BundleError(
                f"{where}: snapshot version {meta.get('version') if isinstance(meta, dict) else '?'} "
                f"is not {SNAPSHOT_VERSION}"
            )
        if meta.get("definition") != sha256(self.definition).hexdigest():
            raise BundleError(f"{where}: the snapshot is of other window definitions")
        body = fh.tell()
        digest, left = sha256(), int(meta.get("bytes", -1))
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        if left != 0 or fh.read(1) or meta.get("sha256") != digest.hexdigest():
            raise BundleError(f"{where}: the snapshot fails its checksum (truncated or altered)")
        fh.seek(body)
        state = msgspec.msgpack.decode(fh.read(int.from_bytes(fh.read(8), "little")))
        arrays = self._arrays()
        if len(state["arrays"]) != len(arrays):
            raise BundleError(f"{where}: the snapshot's arrays are not these windows'")
        self.clock, self.ahead_run, self.seq = state["clock"], state["ahead_run"], state["seq"]
        self.late, self.ahead = state["late"], state["ahead"]
        self.behind_run, self.resets = state["behind_run"], state["resets"]
        for (o, a), (dtype, shape) in zip(arrays, state["arrays"]):
            count = int(np.prod(shape))
            arr = np.frombuffer(fh.read(count * np.dtype(dtype).itemsize), dtype=np.dtype(dtype)).reshape(shape)
            setattr(o, a, arr.copy())  # writable, owned
        for sp, keys, evicted in zip(self.spaces.values(), state["keys"], state["evicted"]):
            sp.keys = [tuple(k) if isinstance(k, list) else k for k in keys]
            sp.evicted = evicted
        try:
            self._check_state()
        except (ValueError, TypeError) as exc:  # the checksum only says the file is whole, not that it is sane
            raise BundleError(f"{where}: the snapshot's state is inconsistent: {exc}") from None
        for sp in self.spaces.values():
            sp.index = {k: s for s, k in enumerate(sp.keys) if k is not None} if sp.table is None else {}
            if sp.table is not None:
                sp.table.rebuild(sp.keys, sp.touch, sp.owner)

    def _check_state(self) -> None:
        """What the kernels index with must be in range: a snapshot file is not trusted."""
        for name, val in (("clock", self.clock),):
            if type(val) is not float or (math.isnan(val) or (math.isinf(val) and val > 0)):
                raise ValueError(f"{name} is {val!r}")
        for name, val in (("seq", self.seq), ("ahead_run", self.ahead_run), ("behind_run", self.behind_run)):
            if type(val) is not int or not 0 <= val < _I64:
                raise ValueError(f"{name} is {val!r}")
        fresh = WindowEngine(self.model)
        for fields, sp in self.spaces.items():
            cap = len(sp.keys)
            if cap > sp.max_keys:
                raise ValueError(f"{fields}: {cap} slots, above max_keys")
            for a in ("touch", "owner", "free"):
                _check_array(getattr(sp, a), (cap,), np.int64, a)
            for a in ("free_n", "incarnations"):
                _check_array(getattr(sp, a), (1,), np.int64, a)
            k = int(sp.free_n[0])
            free = sp.free[:k].tolist()
            if (
                not 0 <= k <= cap
                or len(set(free)) != k
                or any(not 0 <= f < cap or sp.keys[f] is not None for f in free)
            ):
                raise ValueError(f"{fields}: the free slots are not the empty ones")
            live = [key for key in sp.keys if key is not None]
            if len(live) + k != cap or len(set(live)) != len(live):
                raise ValueError(f"{fields}: keys and free slots do not add up, or a key appears twice")
            for key in live:
                parts = key if isinstance(key, tuple) else (key,)
                if len(parts) != len(fields) or any(key_of(v) is not v or type(v) is bool for v in parts):
                    raise ValueError(f"{fields}: {str(key)[:40]!r} is not a key")
        for (name, st), ref_st in zip(self.states.items(), fresh.states.values()):
            cap = len(self.spaces[tuple(st.w.key)].keys)
            for a in (*st.arrays, *_extra_arrays(st)):
                arr, want = getattr(st, a), getattr(ref_st, a)
                lead = (cap,) if a in st.arrays else want.shape[:1] if a == "ring" or a == "pos" else arr.shape[:1]
                _check_array(arr, (*lead, *want.shape[1:]), want.dtype.type, f"{name}.{a}")
            st.check(cap)

    def carry_from(self, old: WindowEngine) -> bool:
        """Take `old`'s state if its window definitions are these (a reload)."""
        if old.definition != self.definition:
            return False
        self.__dict__.update(old.__dict__)
        return True


def has_none(values: Sequence[Any]) -> bool:
    """Whether a value is None (a key column's missing values), by identity, in C when built."""
    if _native is not None and type(values) is list:
        return bool(_native.has_none(values))
    return None in values


def _key_column(values: Sequence[Any]) -> list[Any]:
    if all(type(v) is str for v in values):
        return list(values)  # the usual case: no conversion
    if values and all(type(v) is int for v in values) and min(values) >= -_I64 and max(values) < _I64:
        return list(values)
    return [key_of(v) for v in values]


def _native_hashes(values: Sequence[Any]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """value_hash of each value in C; the few C leaves (non-ASCII text, floats, booleans) in Python."""
    assert _native is not None
    vals = values if type(values) is list else list(values)
    hashes = np.empty(len(vals), dtype=np.uint64)
    has = np.empty(len(vals), dtype=np.uint8)
    _native.value_hashes(vals, hashes, has)
    for i in np.flatnonzero(has == 2).tolist():
        hashes[i], has[i] = value_hash(vals[i]), 1
    return hashes, has


def _u8(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    return (
        mask.view(np.uint8)
        if mask.dtype == np.bool_ and mask.flags.c_contiguous
        else np.ascontiguousarray(mask, np.uint8)
    )


def _check_array(arr: Any, shape: tuple[int, ...], dtype: Any, what: str) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype.type is not dtype or arr.shape != tuple(shape):
        raise ValueError(f"{what}: expected {np.dtype(dtype).name} {tuple(shape)}")


def _extra_arrays(st: _State) -> tuple[str, ...]:
    if isinstance(st, _Distinct):
        return ("pool", "free", "free_n")
    if isinstance(st, _CountLast):
        return ("ring", "pos")
    return ()
