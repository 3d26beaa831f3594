"""Stateful window features: what each one is (the engine is window_state.py).

Each window feature is computed per key (one field or a tuple of fields, e.g.
`[src_ip]` or `[src_ip, dest_port]`) over event time, and becomes an ordinary
numeric feature of the schema::

    windows:
      flows_60s:         {kind: count, key: [src_ip], window_s: 60}
      same_srv_last_100: {kind: count, key: [src_ip, dest_port], among_last: 100}
      ports_60s:         {kind: distinct, key: [src_ip], field: dest_port, window_s: 60}
      bytes_mean_60s:    {kind: mean, key: [src_ip], field: bytes_toserver, window_s: 60}
      no_reply_60s:      {kind: rate, key: [src_ip], window_s: 60, condition: {pkts_toclient: 0}}
      gap:               {kind: since_previous, key: [src_ip]}
      bytes_l01:         {kind: damped, key: [src_ip], field: bytes_toserver, lambda: 0.1, stat: mean}

Semantics (docs/training.md, "Window features"): the current event is
included; a time window is 8 sub-windows of window_s/8, so it covers between
7/8 and all of window_s back; events may arrive up to `lag_s` late.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .conditions import COMBINATORS, check_condition
from .errors import ConfigError
from .typed import Config, Invalid, doc

BUCKETS = 8  # sub-windows of a time window
EXACT_DISTINCT = 32  # distinct values counted exactly per key, then a sketch
SKETCH_REGISTERS = 64  # HyperLogLog registers per sub-window: about 13 % standard error

Key = Annotated[list[str], doc("the fields whose values identify the key, e.g. [src_ip]", min_length=1, max_length=4)]
WindowS = Annotated[float, doc("the window's length in seconds of event time", ge=0.01, le=7 * 86400.0)]
Field = Annotated[str, doc("the field (name or path) whose values are aggregated")]


class _Window(Config, kw_only=True, tag_field="kind"):
    key: Key
    # A Suricata flow record is written when the flow times out, seconds to minutes after
    # it began, and a burst of connections is written over that spread: a window counting
    # attempts (a brute force's tries) places each at its start (time: flow.start).
    time: Annotated[
        str | None,
        doc(
            "the field (ISO 8601 or epoch seconds) whose time places each event in this window, "
            "e.g. flow.start: when a connection began, not when its record was written; "
            "default: the event time. At most time_lag_s behind the event-time clock, never ahead of it"
        ),
    ] = None
    time_lag_s: Annotated[
        float,
        doc(
            "with time: how far behind the event-time clock the time may be and still count at itself "
            "(further back: at clock - time_lag_s). A flow record comes up to its flow timeout after "
            "the flow's last packet",
            ge=0.0,
            le=86400.0,
        ),
    ] = 120.0

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the feature reads besides its key."""
        return ()

    @property
    def numeric(self) -> tuple[str, ...]:
        """Fields read as numbers."""
        return ()


class Count(_Window, kw_only=True, tag="count"):
    """Events of the key within window_s, or among the stream's last `among_last` events
    (UNSW-NB15's ct_* features)."""

    window_s: Annotated[float, doc("the window's length in seconds of event time", ge=0.01, le=7 * 86400.0)] | None = (
        None
    )
    among_last: Annotated[int, doc("count among the last N events of the stream", ge=1, le=1_000_000)] | None = None

    def __post_init__(self) -> None:
        if (self.window_s is None) == (self.among_last is None):
            raise Invalid("window_s", "give exactly one of window_s (a time window) and among_last (the last N events)")


class Distinct(_Window, kw_only=True, tag="distinct"):
    """Distinct values of `field` for the key within window_s: exact up to 32, then a
    HyperLogLog sketch (about 13 % standard error)."""

    field: Field
    window_s: WindowS

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)


class _Stat(_Window, kw_only=True):
    field: Field
    window_s: WindowS

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    @property
    def numeric(self) -> tuple[str, ...]:
        return (self.field,)


class Sum(_Stat, kw_only=True, tag="sum"):
    """The sum of `field` over the key's events within window_s (missing values skipped)."""


class Mean(_Stat, kw_only=True, tag="mean"):
    """The mean of `field` over the key's events within window_s; missing without values."""


class Std(_Stat, kw_only=True, tag="std"):
    """The population standard deviation of `field` over the key's events within window_s."""


class Rate(_Window, kw_only=True, tag="rate"):
    """The share of the key's events within window_s that meet `condition`."""

    window_s: WindowS
    condition: Annotated[dict[str, Any], doc("field -> condition, as in rules (all must hold)", min_length=1)]

    def __post_init__(self) -> None:
        for name, spec in self.condition.items():
            if name in COMBINATORS:
                raise Invalid(
                    f"condition.{name}", "any/all/not/macro are for rules; a rate counts fields and their conditions"
                )
            try:
                check_condition(spec, f"condition.{name}")
            except ConfigError as exc:
                key, _, message = str(exc).partition(": ")
                raise Invalid(key, message) from None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.condition)


class SincePrevious(_Window, kw_only=True, tag="since_previous"):
    """Seconds since the key's previous event; missing for a key's first event."""


class Damped(_Window, kw_only=True, tag="damped"):
    """Kitsune's damped incremental statistics: each event's weight decays by
    2^(-lambda * age in seconds). `stat`: weight (with no field: a decayed event count),
    mean or std of `field`."""

    decay: Annotated[float, doc("lambda: the decay rate per second (Kitsune: 5, 3, 1, 0.1, 0.01)", gt=0.0)] = (
        msgspec.field(name="lambda")
    )
    field: Annotated[str | None, doc("the numeric field (none: weight counts events)")] = None
    stat: Annotated[Literal["weight", "mean", "std"], doc("which statistic")] = "weight"

    def __post_init__(self) -> None:
        if self.field is None and self.stat != "weight":
            raise Invalid("stat", f"{self.stat} needs a field")

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,) if self.field else ()

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.fields


Window = Count | Distinct | Sum | Mean | Std | Rate | SincePrevious | Damped
TIME_WINDOWS = (Count, Distinct, Sum, Mean, Std, Rate)  # kinds with window_s (Count: unless among_last)


def builtins(w: Window) -> dict[str, Any]:
    """The window as plain data, without time and time_lag_s when it runs on the event
    time: windows that existed before them keep their bundle JSON, schema hash and
    snapshot definition (an older agent reads such a bundle)."""
    out: dict[str, Any] = msgspec.to_builtins(w)
    if w.time is None:
        out.pop("time", None)
        out.pop("time_lag_s", None)
    return out


def span(w: Window) -> float:
    """How long an idle key's state matters, in seconds (0: for ever)."""
    return float(getattr(w, "window_s", None) or 0.0)
