"""Which worker scores an event: the shard key, its stable hash, and routing per batch.

With `agent.workers` > 1 (workers.py) state that is kept per key must live in one
worker: window features (per their `key` fields), rule cooldowns and min_matches
(per the rule's `key`). The shard key is one field that every such key contains: events with the
same shard value have the same value of every state key's fields' shard part, so a
key's events all reach one worker. `agent.shard_key` names it; by default it is the
field all of them share (the first, in the first key's order, if several do).

`among_last` windows count over the whole stream's last N events, not a key's:
with several workers each sees only its share of the stream, so they are refused.

An event's owner is `stable_hash(value) % workers`, where the value is read from
the line as the decoder reads it (decode.field_reader: its path, normalizer) and
hashed over its category key (22, 22.0 and "22" alike; strings stripped, as rule
cooldowns compare them): CRC-32, the same in every process and every run (Python's
hash() is salted per process). A line whose shard value cannot be read (bad JSON,
a missing or non-scalar field) stays where it was read: the decoder rejects it
with its reason, or scores it without touching keyed state.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .contract.errors import ConfigError
from .contract.events import EventModel
from .contract.values import category_key
from .contract.windows import Count, Window
from .decode import UNREADABLE, field_column
from .rules import RuleConfig

LOCAL = -1  # an event scored where it was read


@dataclass(frozen=True)
class KeyedState:
    """One piece of state kept per key: where it is configured, and its key's fields."""

    where: str  # e.g. event.windows.flows_60s.key, rules[2].key
    fields: tuple[str, ...]


def keyed_state(
    windows: dict[str, Window], rules: Sequence[RuleConfig], windows_at: str = "event.windows"
) -> list[KeyedState]:
    """Window features, rule cooldowns and min_matches, each with its key fields. A rule's key
    without cooldown_s or min_matches keeps no state (it names what actions act on), so it
    does not count."""
    out = [KeyedState(f"{windows_at}.{name}.key", tuple(w.key)) for name, w in windows.items()]
    out += [
        KeyedState(f"rules[{i}].key", (r.key,))
        for i, r in enumerate(rules)
        if r.enabled and r.key is not None and (r.cooldown_s > 0 or r.min_matches is not None)
    ]
    return out


def check_windows(windows: dict[str, Window], windows_at: str = "event.windows") -> None:
    """`among_last` counts over the stream, not per key: refused with several workers."""
    for name, w in windows.items():
        if isinstance(w, Count) and w.among_last is not None:
            raise ConfigError(
                f"{windows_at}.{name}.among_last: counts among the whole stream's last events, and with "
                "agent.workers > 1 each worker sees only its share of the stream; use window_s, or workers: 1"
            )


def shard_key(state: Sequence[KeyedState], explicit: str | None) -> str | None:
    """The field events are routed by (None: no keyed state and none asked for: no routing
    by key). `explicit` (agent.shard_key) must be in every key; otherwise the first field
    every key shares. ConfigError names the key path and the keys that disagree."""
    if explicit is not None:
        missing = [s for s in state if explicit not in s.fields]
        if missing:
            raise ConfigError(
                f"agent.shard_key: {explicit!r} is not in {_listing(missing)}; with agent.workers > 1 every "
                "window key and cooldown rule key must contain the shard key, so that a key's state lives in one worker"
            )
        return explicit
    if not state:
        return None
    common = set(state[0].fields).intersection(*(s.fields for s in state[1:]))
    if not common:
        raise ConfigError(
            f"agent.shard_key: no field is in every keyed state's key ({_listing(state)}); with agent.workers > 1 "
            "a key's state must live in one worker: give them a common key field (e.g. src_ip), or run workers: 1"
        )
    return next(f for f in state[0].fields if f in common)


def check_computed(name: str, model: EventModel) -> None:
    """The shard key must be read from the event: a derived or window field is computed
    after routing, in the worker."""
    if name in model.derive or name in model.windows:
        raise ConfigError(
            f"agent.shard_key: {name!r} is computed ({'derive' if name in model.derive else 'windows'}), "
            "not read from the event; route by a field the events carry"
        )


def _listing(state: Iterable[KeyedState]) -> str:
    return ", ".join(f"{s.where} [{', '.join(s.fields)}]" for s in state)


def stable_hash(value: Any) -> int:
    """A value's shard hash: CRC-32 of its category key's UTF-8; the same in every
    process (Python's hash() is salted per process)."""
    return zlib.crc32(category_key(value).encode("utf-8", "surrogatepass"))


class ShardReader:
    """Owners of lines by their shard value, read as the decoder reads it."""

    def __init__(self, model: EventModel, name: str, workers: int):
        self.name, self.workers = name, workers
        self._column = field_column(model, name)

    def owners(self, lines: Sequence[bytes]) -> list[int]:
        """Each line's owner (a list, or the queue's Lines); LOCAL where its shard value
        cannot be read (the decoder rejects the line there) or is missing."""
        workers, local, crc, key = self.workers, LOCAL, zlib.crc32, category_key
        return [
            local
            if value is None or value is UNREADABLE or isinstance(value, (dict, list))
            else crc(key(value).encode("utf-8", "surrogatepass")) % workers
            for value in self._column(lines)
        ]
