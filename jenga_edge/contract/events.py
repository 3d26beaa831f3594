"""The event model: how a sensor record becomes the schema's fields.

Declared once, in the trainer's source config; fitted into the feature schema,
so the bundle carries it and the agent reads events exactly as the trainer
read its data (an agent config may only add a mapping on top)::

    events:
      where: {event_type: flow}                    # other records: filtered, never scored
      mapping:                                     # name -> dotted path
        bytes_toserver: flow.bytes_toserver
        qname: dns.queries[].rrname                # [] = the list's first element, [2] = its third
      normalize:
        proto: {lower: true, map: {ipv6-icmp: icmp}}
      derive:
        duration: {kind: duration, start: flow.start, end: flow.end}
        bytes_per_packet: {kind: ratio, num: [bytes_toserver, bytes_toclient], den: [pkts_toserver, pkts_toclient]}

A name (a feature, a derived input, a `where` field, a rule's field) is read
from `mapping[name]` if mapped, else from the path the name spells.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from .conditions import check_condition
from .errors import ConfigError
from .typed import Config, Invalid, doc

_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d*)\])?")
MAX_PATH_DEPTH = 16
MAX_INDEX = 255

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
    """What a string value goes through before it is compared or looked up:
    strip, then lower-case, then the value map. Other values pass unchanged."""

    strip: Annotated[bool, doc("remove leading and trailing white space")] = True
    lower: Annotated[bool, doc("lower-case (TCP -> tcp)")] = False
    map: Annotated[dict[str, str], doc("value -> value, after strip and lower (e.g. ipv6-icmp: icmp)")] = {}

    def apply(self, value: Any) -> Any:
        if type(value) is not str:
            return value
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
        dict[str, str], doc("name -> dotted path into the record; `x[]` is the first element of list x")
    ] = {}
    normalize: Annotated[dict[str, Normalizer], doc("name -> what its string values go through")] = {}
    derive: Annotated[
        dict[str, Derived], doc("name -> a field computed from others: duration, ratio or sum (stateless)")
    ] = {}

    def __post_init__(self) -> None:
        for name, path in self.mapping.items():
            try:
                parse_path(path)
            except ValueError as exc:
                raise Invalid(f"mapping.{name}", str(exc)) from None
        for name in self.derive:
            if name in self.mapping:
                raise Invalid(f"derive.{name}", "is also in mapping: a derived field is computed, not read")
        for name, spec in self.derive.items():
            for i, inp in enumerate(spec.inputs):
                if inp in self.derive:
                    raise Invalid(f"derive.{name}", f"input {inp!r} is derived too; derive from read fields only")
                try:
                    parse_path(self.path(inp))
                except ValueError as exc:
                    raise Invalid(f"derive.{name}", f"input {i}: {exc}") from None
        for name, spec in self.where.items():
            if name in self.derive:
                raise Invalid(f"where.{name}", "filters on read fields only, not derived ones")
            try:
                check_condition(spec, f"where.{name}")
            except ConfigError as exc:  # "where.x.in: expected a list, ...": key, then message
                key, _, message = str(exc).partition(": ")
                raise Invalid(key, message) from None

    def path(self, name: str) -> str:
        return self.mapping.get(name, name)

    def overlay(
        self,
        mapping: dict[str, str] | None = None,
        where: dict[str, Any] | None = None,
        normalize: dict[str, Normalizer] | None = None,
    ) -> EventModel:
        """This model with an agent config's additions on top: more (or other) paths,
        more filter conditions, normalizers for names this model leaves alone. What
        the model itself filters and normalizes cannot be changed at the edge."""
        mapping, where, normalize = mapping or {}, where or {}, normalize or {}
        if not (mapping or where or normalize):
            return self
        for section, names, own in (
            ("mapping", mapping, self.derive),
            ("where", where, self.where),
            ("normalize", normalize, self.normalize),
        ):
            clash = sorted(set(names) & set(own))
            if clash:
                what = "derived" if section == "mapping" else f"in its {section}"
                raise Invalid(f"{section}.{clash[0]}", f"is {what} in the bundle's event model; the agent may only add")
        return EventModel(
            where={**self.where, **where},
            mapping={**self.mapping, **mapping},
            normalize={**self.normalize, **normalize},
            derive=self.derive,
        )

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    @property
    def empty(self) -> bool:
        return not (self.where or self.mapping or self.normalize or self.derive)
