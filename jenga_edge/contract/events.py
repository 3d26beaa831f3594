"""The event model: how a sensor record becomes the schema's fields.

Declared once, in the trainer's source config; fitted into the feature schema,
so the bundle carries it and the agent reads events exactly as the trainer
read its data (an agent config may only add a mapping on top)::

    events:
      where: {event_type: flow}                    # other records: filtered, never scored
      mapping:                                     # name -> dotted path
        bytes_toserver: flow.bytes_toserver
        qname: dns.queries[].rrname                # [] = the list's first element, [2] = its third
        rrname: [dns.rrname, dns.queries[].rrname] # the first path that holds a value (Suricata 7 | 8)
      normalize:
        proto: {lower: true, map: {ipv6-icmp: icmp}}
      derive:
        duration: {kind: duration, start: flow.start, end: flow.end}
        bytes_per_packet: {kind: ratio, num: [bytes_toserver, bytes_toclient], den: [pkts_toserver, pkts_toclient]}

A name (a feature, a derived input, a `where` field, a rule's field) is read
from `mapping[name]` if mapped, else from the path the name spells. A mapping to a
list of paths reads the first that holds a value (not missing, not null): one
model for two versions of a sensor's records.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from .conditions import COMBINATORS, check_condition
from .errors import ConfigError
from .typed import Config, Invalid, doc
from .values import category_key
from .windows import Count, Window
from .windows import builtins as window_builtins

_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d*)\])?")
MAX_PATH_DEPTH = 16
MAX_INDEX = 255
MAX_ALTERNATIVES = 4  # paths one name may be read from, first present wins

Step = str | int  # a key of an object, or an index into a list


def parse_path(path: str) -> tuple[Step, ...]:
    """`a.b[].c` -> ('a', 'b', 0, 'c'). Raises ValueError with what is wrong."""
    if not path:
        raise ValueError("an empty path")
    steps: list[Step] = []
    for part in path.split("."):
        m = _STEP.fullmatch(part)
        if not m:
            raise ValueError(f"{path!r}: {part!r} is not a key, optionally followed by [] or [N]")
        steps.append(m.group(1))
        if m.group(2) is not None:
            n = int(m.group(2)) if m.group(2) else 0
            if n > MAX_INDEX:
                raise ValueError(f"{path!r}: index {n} is above {MAX_INDEX}")
            steps.append(n)
    if len(steps) > MAX_PATH_DEPTH:
        raise ValueError(f"{path!r}: deeper than {MAX_PATH_DEPTH} steps")
    return tuple(steps)


class Normalizer(Config, kw_only=True):
    """What a value goes through before it is compared or looked up: a string is
    stripped, then lower-cased, then mapped; a number or boolean is mapped by its
    category key (22 and "22" alike). For categorical features and raw fields
    (rule, key and window fields), not numeric features."""

    strip: Annotated[bool, doc("remove leading and trailing white space")] = True
    lower: Annotated[bool, doc("lower-case (TCP -> tcp)")] = False
    map: Annotated[dict[str, str], doc("value -> value, after strip and lower (e.g. ipv6-icmp: icmp)")] = {}

    def __post_init__(self) -> None:
        for key in self.map:
            if (self.strip and key != key.strip()) or (self.lower and key != key.lower()):
                raise Invalid(
                    f"map.{key!r}", "no value reaches this key after strip and lower; write it as they leave it"
                )

    def apply(self, value: Any) -> Any:
        if type(value) is not str:
            if not self.map or value is None or isinstance(value, (dict, list)):
                return value
            return self.map.get(category_key(value), value)
        if self.strip:
            value = value.strip()
        if self.lower:
            value = value.lower()
        return self.map.get(value, value)


class Duration(Config, kw_only=True, tag="duration", tag_field="kind"):
    """Seconds from `start` to `end`, two timestamps (ISO 8601 or epoch seconds)."""

    start: Annotated[str, doc("the start time's name or path")]
    end: Annotated[str, doc("the end time's name or path")]

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.start, self.end)


class Ratio(Config, kw_only=True, tag="ratio", tag_field="kind"):
    """sum(num) / sum(den); missing when any input is missing or the denominator is 0."""

    num: Annotated[list[str], doc("numerator: the sum of these numeric fields", min_length=1)]
    den: Annotated[list[str], doc("denominator: the sum of these numeric fields", min_length=1)]

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.num, *self.den)


class Sum(Config, kw_only=True, tag="sum", tag_field="kind"):
    """The sum of numeric fields (bytes both ways); missing when any is missing."""

    of: Annotated[list[str], doc("the numeric fields added", min_length=1)]

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.of)


Derived = Duration | Ratio | Sum
TIME_INPUTS = (Duration,)  # kinds whose inputs are timestamps


class EventModel(Config, kw_only=True):
    """How records are read: filter, paths, normalizers and derived fields."""

    where: Annotated[
        dict[str, Any],
        doc(
            "records to score: field -> condition (a value, a list, or operators as in rules); "
            "others are counted as filtered and never scored"
        ),
    ] = {}
    mapping: Annotated[
        dict[str, str | list[str]],
        doc(
            "name -> dotted path into the record; `x[]` is the first element of list x; a list of paths: "
            "the first that holds a value (e.g. [dns.rrname, dns.queries[].rrname])"
        ),
    ] = {}
    normalize: Annotated[dict[str, Normalizer], doc("name -> what its string values go through")] = {}
    derive: Annotated[
        dict[str, Derived], doc("name -> a field computed from others: duration, ratio or sum (stateless)")
    ] = {}
    time: Annotated[
        str | None, doc("the event-time field (ISO 8601 or epoch seconds) that windows run on, e.g. flow.start")
    ] = None
    lag_s: Annotated[
        float, doc("how late (in event time) an event may arrive and still count at its own time", ge=0.0)
    ] = 10.0
    max_ahead_s: Annotated[
        float,
        doc(
            "an event further ahead of the window clock counts at the clock's time (a wild timestamp cannot "
            "expire every window)",
            gt=0.0,
        ),
    ] = 3600.0
    max_keys: Annotated[
        int, doc("live keys per window key (e.g. [src_ip]); the least recently seen are evicted", ge=16)
    ] = 100_000
    windows: Annotated[
        dict[str, Window],
        doc(
            "name -> a stateful feature per key over event time: count, distinct, sum, mean, std, rate, "
            "since_previous or damped"
        ),
    ] = {}

    def __post_init__(self) -> None:
        for name, path in self.mapping.items():
            if isinstance(path, list) and not 1 <= len(path) <= MAX_ALTERNATIVES:
                raise Invalid(f"mapping.{name}", f"a list of 1 to {MAX_ALTERNATIVES} paths, got {len(path)}")
            if isinstance(path, list) and len(set(path)) < len(path):
                raise Invalid(f"mapping.{name}", "a path is listed twice")
            for p in self.paths(name):
                try:
                    parse_path(p)
                except ValueError as exc:
                    raise Invalid(f"mapping.{name}", str(exc)) from None
        for name in self.derive:
            if name in self.mapping:
                raise Invalid(f"derive.{name}", "is also in mapping: a derived field is computed, not read")
            if name in self.normalize:
                raise Invalid(f"derive.{name}", "is also in normalize: normalizers are for values read, not computed")
        for name, spec in self.derive.items():
            for i, inp in enumerate(spec.inputs):
                if inp in self.derive:
                    raise Invalid(f"derive.{name}", f"input {inp!r} is derived too; derive from read fields only")
                if inp in self.windows:  # it would be read as a path of that name: missing in every record
                    raise Invalid(f"derive.{name}", f"input {inp!r} is a window feature; derive from read fields only")
                try:
                    parse_path(self.path(inp))
                except ValueError as exc:
                    raise Invalid(f"derive.{name}", f"input {i}: {exc}") from None
        for name, spec in self.where.items():
            if name in self.derive or name in self.windows:
                raise Invalid(f"where.{name}", "filters on read fields only, not derived or window ones")
            if name in COMBINATORS:
                raise Invalid(
                    f"where.{name}", "any/all/not/macro are for rules; a filter is fields and their conditions"
                )
            try:
                check_condition(spec, f"where.{name}")
            except ConfigError as exc:  # "where.x.in: expected a list, ...": key, then message
                key, _, message = str(exc).partition(": ")
                raise Invalid(key, message) from None

        self._check_windows()
        self._check_paths()
        self.check_normalizers(self.numeric_inputs)

    @property
    def numeric_inputs(self) -> set[str]:
        """Names read as numbers by derived and window fields."""
        out = {i for d in self.derive.values() if not isinstance(d, TIME_INPUTS) for i in d.inputs}
        return out | {f for w in self.windows.values() for f in w.numeric}

    @property
    def time_inputs(self) -> set[str]:
        out = {i for d in self.derive.values() if isinstance(d, TIME_INPUTS) for i in d.inputs}
        out |= {w.time for w in self.windows.values() if w.time is not None}
        return out | ({self.time} if self.time else set())

    def check_normalizers(self, numeric: set[str]) -> None:
        """Normalizers are for values looked up or compared, not numbers."""
        for name in sorted(set(self.normalize) & (numeric | self.time_inputs)):
            raise Invalid(
                f"normalize.{name}", "is read as a number or a time; normalizers are for categories and raw fields"
            )

    def _check_paths(self) -> None:
        """Every path the model names, as one tree: a key is a value or an object, a
        list or not, never both (the decoder could not read it both ways)."""
        clash = sorted(self.numeric_inputs & self.time_inputs)
        if clash:
            raise Invalid("derive", f"{clash[0]!r} is read both as a time and as a number")
        names = {*self.mapping, *self.where, *self.numeric_inputs, *self.time_inputs}
        names |= {f for w in self.windows.values() for f in (*w.key, *w.fields)}
        seen: dict[tuple[Step, ...], str] = {}  # a path prefix -> "value" | "object" | "list"
        for name, path in sorted((n, p) for n in names for p in self.paths(n)):
            steps = parse_path(path)
            for i in range(len(steps)):
                prefix, nxt = steps[: i + 1], steps[i + 1] if i + 1 < len(steps) else None
                if type(steps[i]) is int:
                    continue
                role = "value" if nxt is None else "list" if type(nxt) is int else "object"
                if seen.setdefault(prefix, role) != role:
                    where = ".".join(str(p) for p in prefix)
                    article = {"value": "a value", "object": "an object", "list": "a list"}
                    raise Invalid(
                        f"mapping.{name}",
                        f"reads {where!r} as {article[role]}, another path as {article[seen[prefix]]}",
                    )

    def _check_windows(self) -> None:
        if self.windows and self.time is None:
            raise Invalid("time", "windows need the event-time field, e.g. time: flow.start")
        if self.time is not None and (self.time in self.derive or self.time in self.windows):
            raise Invalid("time", f"{self.time!r} is computed; the event time is read from the record")
        if self.time is not None:
            try:
                parse_path(self.path(self.time))
            except ValueError as exc:
                raise Invalid("time", str(exc)) from None
        for name, w in self.windows.items():
            if name in self.mapping or name in self.derive:
                raise Invalid(f"windows.{name}", "is also mapped or derived: a window feature is computed per key")
            if w.time is not None and isinstance(w, Count) and w.among_last is not None:
                raise Invalid(f"windows.{name}.time", "among_last counts the last N events, whatever their time")
            if w.time is not None and (w.time in self.windows or w.time in self.derive):
                raise Invalid(f"windows.{name}.time", f"{w.time!r} is computed; a window's time is read from the event")
            for f in (*w.key, *w.fields, *((w.time,) if w.time is not None else ())):
                if f in self.windows:
                    raise Invalid(f"windows.{name}", f"reads {f!r}, another window feature; read event fields only")
                if f in self.derive:  # it would be read as a path of that name: missing in every record
                    raise Invalid(f"windows.{name}", f"reads {f!r}, a derived field; read event fields only")
                try:
                    parse_path(self.path(f))
                except ValueError as exc:
                    raise Invalid(f"windows.{name}", str(exc)) from None

    def path(self, name: str) -> str:
        """The (first) path `name` is read from."""
        return self.paths(name)[0]

    def paths(self, name: str) -> tuple[str, ...]:
        """Every path `name` is read from, in order: the first that holds a value wins."""
        path = self.mapping.get(name, name)
        return tuple(path) if isinstance(path, list) else (path,)

    def overlay(
        self,
        mapping: dict[str, str | list[str]] | None = None,
        where: dict[str, Any] | None = None,
        normalize: dict[str, Normalizer] | None = None,
        time: str | None = None,
        windows: dict[str, Window] | None = None,
        limits: dict[str, Any] | None = None,
        derive: dict[str, Derived] | None = None,
    ) -> EventModel:
        """This model with an agent config's additions on top: more (or other) paths,
        more filter conditions, normalizers for names this model leaves alone, window
        features and derived fields for rules. What the model itself reads, filters,
        normalizes, derives and windows cannot be changed at the edge."""
        mapping, where, normalize, windows = mapping or {}, where or {}, normalize or {}, windows or {}
        derive = derive or {}
        limits = {k: v for k, v in (limits or {}).items() if v is not None}  # lag_s, max_ahead_s, max_keys
        if not (mapping or where or normalize or windows or time or limits or derive):
            return self
        for key, value in limits.items():
            if self.windows and value != getattr(self, key):
                raise Invalid(key, f"the bundle's windows run with {key} {getattr(self, key)}; the agent may only add")
        computed = {**self.derive, **self.windows}
        remapped = sorted(k for k, v in mapping.items() if k in self.mapping and self.mapping[k] != v)
        if remapped:
            raise Invalid(
                f"mapping.{remapped[0]}",
                f"the bundle's event model reads it from {self.mapping[remapped[0]]!r}; the agent may only add",
            )
        for section, names, own in (
            ("mapping", mapping, computed),
            ("where", where, self.where),
            ("normalize", normalize, self.normalize),
            ("windows", windows, {**computed, **self.mapping}),
            ("derive", derive, {**computed, **self.mapping, **self.normalize}),
        ):
            clash = sorted(set(names) & set(own))
            if clash:
                taken = "taken" if section in ("windows", "derive") else f"in its {section}"
                what = "computed" if section == "mapping" else taken
                raise Invalid(f"{section}.{clash[0]}", f"is {what} in the bundle's event model; the agent may only add")
        if time is not None and self.time is not None and time != self.time:
            raise Invalid("time", f"the bundle's event model runs its windows on {self.time!r}; the agent may only add")
        return EventModel(
            where={**self.where, **where},
            mapping={**self.mapping, **mapping},
            normalize={**self.normalize, **normalize},
            derive={**self.derive, **derive},
            time=self.time or time,
            lag_s=limits.get("lag_s", self.lag_s),
            max_ahead_s=limits.get("max_ahead_s", self.max_ahead_s),
            max_keys=limits.get("max_keys", self.max_keys),
            windows={**self.windows, **windows},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out["windows"] = {name: window_builtins(w) for name, w in self.windows.items()}
        return out

    @property
    def empty(self) -> bool:
        return not (self.where or self.mapping or self.normalize or self.derive or self.windows)

    def window_definition(self) -> bytes:
        """What window state depends on: state is carried over (reload, restart) only
        when this is unchanged."""
        return msgspec.json.encode(
            {
                k: {n: window_builtins(w) for n, w in self.windows.items()} if k == "windows" else getattr(self, k)
                for k in ("time", "lag_s", "max_ahead_s", "max_keys", "windows", "mapping", "normalize")
            }
        )
