"""Lines of JSON -> the graph's input arrays, with a reason for every reject.

The hot path of the agent, in two tiers:

1. `_fastjson` (C, built at install; see setup.py) extracts the schema's fields
   from each line straight into numpy buffers. It accepts only lines it is
   sure of: well-formed JSON whose read fields are plain numbers, null,
   true/false or vocabulary strings (a number or true/false given for a
   categorical feature is looked up by its category_key, as in tier 2:
   "port": 8081 finds "8081"), or unescaped strings for text features; it
   reads list elements and names mapped to several paths (first present
   wins). On 1 KB, 41-feature events it takes 1.2-1.3 us per event where
   tier 2 took 5.0 (parse 2.4, columns 2.6).
2. Every other line (and every line when the extension is not built) goes
   through one msgspec decoder per schema and field mapping, which decodes the
   event into a typed struct; columns are built with numpy, and each reject
   gets its reason and field. Tier 2 is the reference: tier 1 may only accept
   what tier 2 accepts, with the same values (tests/jenga_edge/test_fastjson.py).

Lines are decoded one by one, never joined: a crafted line must not be able to
splice into its neighbours.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .contract import derive
from .contract.conditions import condition_mask
from .contract.errors import ConfigError, EventError
from .contract.events import TIME_INPUTS, Derived, EventModel, Normalizer, Step, parse_path
from .contract.records import get_path
from .contract.schema import OOV_INDEX, Feature, FeatureSchema, category_key, to_boolean, to_number
from .contract.text_input import encode_text
from .contract.typed import Invalid
from .contract.values import parse_time
from .contract.window_state import MAX_EVENT_TIME, WindowEngine, has_none
from .contract.windows import Window
from .event_queue import OVERSIZE, PARTIAL, Lines
from .native import fastjson as _fastjson  # None: tier 2 alone

if TYPE_CHECKING:
    import numpy.typing as npt

    from .native._fastjson import Plan

Scalar = str | int | float | bool | None
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Reject:
    index: int  # position in the batch
    reason: str  # bad_json | not_object | wrong_type | missing_field | non_finite | oversize | partial_line
    field: str | None
    message: str


@dataclass
class DecodedBatch:
    num: npt.NDArray[Any]  # float32 [accepted, n] (float64 with auxiliary columns inside the decoder)
    cat: npt.NDArray[np.int64]  # [accepted, m]
    index: list[int]  # batch positions of the accepted events
    keys: dict[str, list[Any]]  # key/condition fields of accepted events, by name
    rejects: list[Reject] = field(default_factory=list)
    filtered: list[int] = field(default_factory=list)  # batch positions the `where` filter dropped
    # Text features (schema kind text): each value's bytes (contract/text_input.encode_text),
    # zero-padded to the schema's text_width, and its length; [accepted, 0, 0] without text.
    text: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint8))
    text_len: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    # With windows: each row's event time as the windows placed it (float64; one far ahead of the
    # window clock: at the clock, until a run of them moves it) and the window clock after the
    # batch; rules' warm-up runs on them. None without windows.
    times: npt.NDArray[np.float64] | None = None
    clock: float | None = None
    reset_rows: tuple[int, ...] = ()  # rows from which the windows were emptied (their clock came back)

    def __len__(self) -> int:
        return len(self.index)


def _reader(
    paths: dict[str, tuple[Step, ...]], name: str, leaf: Any, raw: bool = False
) -> tuple[type, dict[str, Callable[[Any], Any]], dict[str, str]]:
    """A msgspec Struct type that decodes what `paths` read, a getter per name, and
    the attribute of each name read typed from the top level.

    Paths without list elements become nested typed Structs (a value of the wrong
    type is a reject naming its path). A top-level key under which some path reads a
    list element is decoded untyped and walked as the trainer walks records
    (contract/records.py get_path): a list of odd elements or a missing element is
    then a missing value, never a reject for an element no feature reads. `raw`:
    every path so (the `where` fields' second look). So is a name read from the first
    of several paths (its `|alt` names): a path after the one that holds the value
    is never looked at, so it cannot reject the event."""
    untyped = {str(st[0]) for st in paths.values()} if raw else {k.decode() for k in _untyped_keys(paths)}
    tree = _Tree()
    for st in paths.values():
        tree.add(st[:1] if str(st[0]) in untyped else st, Any if str(st[0]) in untyped else leaf)
    struct = tree.build(name)
    getters: dict[str, Callable[[Any], Any]] = {}
    top: dict[str, str] = {}
    for n, st in paths.items():
        if str(st[0]) in untyped:
            getters[n] = _untyped_getter(tree.attrs[str(st[0])], st[1:])
        else:
            attrs = tree.resolve(st)
            getters[n] = _getter(attrs)
            if len(attrs) == 1:
                top[n] = attrs[0]
    return struct, getters, top


def _untyped_keys(paths: dict[str, tuple[Step, ...]]) -> tuple[bytes, ...]:
    """Top-level keys tier 2 decodes whole, untyped: those under which a path reads a list
    element, or a name (or one of its other paths) is read from the first present of
    several. The C plan checks everything under them as msgspec decodes it (strict)."""
    keys = {
        str(st[0]) for n, st in paths.items() if any(type(p) is int for p in st) or _ALT in n or f"{n}{_ALT}1" in paths
    }
    return tuple(sorted(k.encode() for k in keys))


def _plan_spec(targets: dict[tuple[Step, ...], list[tuple[int, ...]]]) -> dict[bytes, Any]:
    """Paths -> the C plan's nested spec: a key's dict, a list element as [{b"<index>": ...}],
    a leaf's tuple of targets. A path read both as a value and as an object (or list) is
    a TypeError: tier 2 alone then."""
    spec: dict[bytes, Any] = {}
    for steps, leaf in targets.items():
        node: dict[bytes, Any] = spec
        for step, nxt in itertools.pairwise(steps):
            key = str(step).encode()
            if type(nxt) is int:
                holder = node.setdefault(key, [{}])
                if type(holder) is not list:
                    raise TypeError(f"{key!r}: read as a list and as something else")
                node = holder[0]
            else:
                node = node.setdefault(key, {})
                if type(node) is not dict:
                    raise TypeError(f"{key!r}: read as an object and as something else")
        last = str(steps[-1]).encode()
        if last in node:
            raise TypeError(f"{last!r}: read as a value and as an object")
        node[last] = tuple(leaf)
    return spec


_ALT = "|alt"  # "name|alt1": the second path a name may be read from (a mapping to a list of paths)


def _alternative_steps(model: EventModel, reads: dict[str, str]) -> dict[str, tuple[Step, ...]]:
    """Each name's path as steps, plus, for a name mapped to a list of paths, its
    other paths under hidden names (`name|alt1`, ...), read like any other path."""
    out = {name: parse_path(path) for name, path in reads.items()}
    for name in reads:
        for i, path in enumerate(model.paths(name)[1:], 1):
            out[f"{name}{_ALT}{i}"] = parse_path(path)
    return out


def _first_present(get: dict[str, Callable[[Any], Any]], top: dict[str, str], names: Iterable[str]) -> None:
    """A name with other paths reads the first that holds a value (not missing, not null),
    as contract/records.py reads it for the trainer."""
    for name in names:
        alts = [get[n] for n in _alt_names(get, name)]
        if not alts:
            continue
        getters = [get[name], *alts]

        def first(e: Any, getters: list[Callable[[Any], Any]] = getters) -> Any:
            for g in getters:
                value = g(e)
                if value is not None:
                    return value
            return None

        get[name] = first
        top.pop(name, None)  # not a single attribute any more


def _alt_names(get: dict[str, Any], name: str) -> list[str]:
    out, i = [], 1
    while f"{name}{_ALT}{i}" in get:
        out.append(f"{name}{_ALT}{i}")
        i += 1
    return out


def _untyped_getter(attr: str, rest: tuple[Step, ...]) -> Callable[[Any], Any]:
    top = operator.attrgetter(attr)
    if not rest:
        return top
    return lambda e: get_path(top(e), rest)


class _Tree:
    """Nested msgspec Struct types mirroring the paths that are read (no list
    elements: _reader reads those untyped)."""

    def __init__(self) -> None:
        self.children: dict[str, _Tree] = {}
        self.leaves: dict[str, Any] = {}
        self.attrs: dict[str, str] = {}  # JSON key -> attribute, after build()

    def add(self, steps: Sequence[Step], tp: Any) -> None:
        key, rest = str(steps[0]), steps[1:]
        if (rest and key in self.leaves) or (not rest and key in self.children):
            raise ConfigError(f"event paths read {key!r} both as a value and as an object")
        if rest:
            self.children.setdefault(key, _Tree()).add(rest, tp)
        else:
            self.leaves[key] = tp

    def build(self, name: str) -> type:
        """The Struct type; `attrs` then names each JSON key's attribute."""
        fields, rename = [], {}
        for i, (key, sub) in enumerate(sorted(self.children.items())):
            attr = f"c{i}"
            fields.append((attr, sub.build(f"{name}_{i}") | None, None))
            rename[attr], self.attrs[key] = key, attr
        for i, (key, tp) in enumerate(sorted(self.leaves.items())):
            attr = f"v{i}"
            fields.append((attr, tp, None))
            rename[attr], self.attrs[key] = key, attr
        return msgspec.defstruct(name, fields, rename=rename, omit_defaults=True)

    def resolve(self, steps: Sequence[Step]) -> tuple[str, ...]:
        """The attribute names that lead to `steps`' value."""
        out: list[str] = []
        node: _Tree | None = self
        for step in steps:
            assert node is not None
            out.append(node.attrs[str(step)])
            node = node.children.get(str(step))
        return tuple(out)


def _check_added_names(schema: FeatureSchema, windows: dict[str, Window], derive: dict[str, Derived]) -> None:
    """The agent's own windows and derived fields take new names: one named after a feature the
    model reads would replace the model's input (or shadow the raw value its rules compare).
    (Names the bundle's model computes are refused before, by EventModel.overlay.)"""
    features = {f.name for f in schema.features}
    for section, names in (("windows", windows), ("derive", derive)):
        for name in sorted(names):
            if name in features:
                raise Invalid(f"{section}.{name}", "is a feature the bundle's model reads; the agent may only add")


class EventDecoder:
    """Decode events for one schema, read with the schema's event model (if any)
    and `mapping` on top (an agent config's event.mapping: name -> dotted path).
    Unmapped names are read from the path they spell."""

    def __init__(
        self,
        schema: FeatureSchema,
        mapping: dict[str, str | list[str]] | None = None,
        key_fields: Sequence[str] = (),
        min_present: int = 0,
        where: dict[str, Any] | None = None,
        normalize: dict[str, Normalizer] | None = None,
        time: str | None = None,
        windows: dict[str, Window] | None = None,
        limits: dict[str, Any] | None = None,
        derive_fields: dict[str, Derived] | None = None,
    ):
        self.schema = schema
        try:
            base = schema.events or EventModel()
            self.model = base.overlay(mapping, where, normalize, time, windows, limits, derive_fields)
            self.model.check_normalizers({f.name for f in schema.features if f.is_numeric})
            _check_added_names(schema, windows or {}, derive_fields or {})
        except Invalid as exc:
            raise ConfigError(f"event.{exc}") from None
        model = self.model
        # An event with fewer of the schema's features than this is rejected (too_sparse):
        # imputing all of them would turn an unrelated record into a confident verdict.
        self.min_present = min(min_present, len([f for f in schema.features if f.name not in model.windows]))
        # Window state lives in the decoder: it sees every scored event in order. The
        # agent carries it over a reload (carry_windows) and through a restart (snapshots).
        self.windows = WindowEngine(model) if model.windows else None
        computed = {**model.derive, **model.windows}  # features not read from the event
        derived = model.derive
        self.paths = {f.name: model.path(f.name) for f in schema.features if f.name not in computed}
        window_reads = self.windows.fields if self.windows else []
        self.key_names = list(dict.fromkeys([*key_fields, *model.where, *window_reads]))
        self.key_paths = {k: model.path(k) for k in self.key_names if k not in self.paths and k not in computed}
        self._derived_keys = [k for k in self.key_names if k in derived]
        self._window_keys = [k for k in self.key_names if k in model.windows]
        self._norm = {k: n for k, n in model.normalize.items() if k in self.key_names}
        self._input_col, self._aux = self._inputs(schema, model)
        # per batch, only what the schema uses is visited (a batch of one pays each loop)
        self._derived_cols = [(j, derived[f.name]) for j, f in enumerate(schema.numeric) if f.name in derived]
        self._derived_key_cols = {
            name: next((j for j, f in enumerate(schema.numeric) if f.name == name), None) for name in self._derived_keys
        }
        # A key field may share a path with a feature (dest_port -> port): one
        # leaf, read raw; the feature's checks happen in the column code.
        reads = {**self.paths, **self.key_paths, **{name: model.path(name) for name, _ in self._aux}}
        self._steps = _alternative_steps(model, reads)
        self.struct, self._get, self._top = _reader(self._steps, "Event", Scalar)
        _first_present(self._get, self._top, reads)
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.struct, strict=False)
        self._where_one = self._filter_decoder() if model.where else None
        self._read_numeric = [f for f in schema.numeric if f.name not in computed]
        self._read_cols = np.array([j for j, f in enumerate(schema.numeric) if f.name not in computed], dtype=np.intp)
        self._window_cols = {j: f.name for j, f in enumerate(schema.numeric) if f.name in model.windows}
        # min_present counts the fields an event brings: window features are always computed
        self._counted = np.array([f.name not in model.windows for f in schema.numeric], dtype=bool)
        self._bool_cols = [j for j, f in enumerate(self._read_numeric) if f.kind == "boolean"]
        getters = [self._get[f.name] for f in self._read_numeric]
        self._all_numeric: Callable[[Any], Any] | None = (lambda e: tuple(g(e) for g in getters)) if getters else None
        flat = [self._top.get(f.name) for f in self._read_numeric]
        if flat and all(flat):  # top-level fields: one C-level call per event
            self._all_numeric = operator.attrgetter(*(a for a in flat if a))
        # read features first, then derived ones: the order tier 2 reports them in
        required = [j for j, f in enumerate(schema.numeric) if not f.allow_missing and f.name not in model.windows]
        self._required_numeric = np.array(
            sorted(required, key=lambda j: schema.numeric[j].name in derived), dtype=np.intp
        )
        self._vocab = {f.name: {c: i for i, c in enumerate(f.categories)} for f in schema.categorical}
        self._expected = {
            f.name: {
                "numeric": "a number (or a numeric string)",
                "boolean": "true or false",
                "categorical": "a string or number",
                "text": "a string (text feature)",
            }[f.kind]
            for f in schema.features
        }
        self._expected.update({n: "a time (ISO 8601 or epoch seconds)" if t else "a number" for n, t in self._aux})

        self._has_text = bool(schema.text)
        self._no_text = (np.empty((1 << 30, 0, 0), np.uint8), np.empty((1 << 30, 0), np.int64))  # 0 bytes
        self._plan = self._build_plan(_fastjson.Plan) if _fastjson is not None else None
        # Lines each tier decoded (oversize ones count as tier 2's): the benchmark reports the shares.
        self.tier_lines = {"c": 0, "msgspec": 0}

    def _inputs(self, schema: FeatureSchema, model: EventModel) -> tuple[dict[str, int], list[tuple[str, bool]]]:
        """Where each derived field's inputs are: a numeric feature's own column, or
        an extra (auxiliary) column after the schema's numeric ones; aux entries
        are (name, is a time)."""
        computed = {**model.derive, **model.windows}
        cols = {f.name: j for j, f in enumerate(schema.numeric) if f.kind == "numeric" and f.name not in computed}
        wanted = set(schema.derived) | set(self._derived_keys)
        needs: list[tuple[str, str, bool]] = []  # (what needs it, input, is a time)
        for name, spec in model.derive.items():
            if name in wanted:
                is_time = isinstance(spec, TIME_INPUTS)
                needs += [(f"derive.{name}", inp, is_time) for inp in spec.inputs]
        if self.windows is not None:
            assert model.time is not None  # the model checks: windows need a time
            needs.append(("time", model.time, True))
            needs += [("windows", f, False) for f in self.windows.numeric]
            needs += [("windows", f, True) for f in self.windows.time_fields]
        aux: list[tuple[str, bool]] = []
        for what, inp, is_time in needs:
            if inp in cols and not is_time:
                continue
            if (inp, is_time) not in aux:
                if any(a == inp for a, _ in aux):
                    raise ConfigError(f"event.{what}: {inp!r} is read both as a time and as a number")
                aux.append((inp, is_time))
        base = len(schema.numeric)
        aux_cols = {name: base + i for i, (name, _) in enumerate(aux)}
        return {**cols, **aux_cols}, aux

    def _c_vocabulary(self, f: Feature) -> dict[str, int]:
        """The C tier's lookup: category -> index, and a normalizer's map sources ->
        their target's index (C lower-cases, then looks up once; what it does not
        find without stripping goes to tier 2, which normalizes in Python)."""
        vocab = dict(self._vocab[f.name])
        norm = self.model.normalize.get(f.name)
        if norm is not None:
            for src, dst in norm.map.items():  # the target is then looked up as tier 2 does (stripped)
                vocab[src] = _vocab_index(self._vocab[f.name], dst)
        return vocab

    def _filter_decoder(self) -> msgspec.json.Decoder[Any]:
        """Reads only the `where` fields, untyped (as the trainer's get_path reads them):
        whether a record that fails the full decode would have been filtered anyway."""
        steps = _alternative_steps(self.model, {name: self.model.path(name) for name in self.model.where})
        struct, self._where_get, top = _reader(steps, "Where", Any, raw=True)
        _first_present(self._where_get, top, self.model.where)
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(struct, strict=False)
        return decoder

    # ------------------------------------------------------------------ API
    def decode(self, lines: Sequence[bytes], oversize: Sequence[int] = ()) -> DecodedBatch:
        """`lines`: a list of bytes, or the queue's `Lines` (whose buffer
        segments tier 1 reads in place)."""
        plan = self._plan
        if plan is None or not lines:
            self.tier_lines["msgspec"] += len(lines)
            return self._decode_slow(lines if type(lines) is list else list(lines), oversize)
        return self._finish(
            self._decode_fast(plan, lines if type(lines) is list or isinstance(lines, Lines) else list(lines), oversize)
        )

    def _decode_slow(self, lines: Sequence[bytes], oversize: Sequence[int] = ()) -> DecodedBatch:
        """Tier 2 alone (the reference tier 1 is tested against)."""
        return self._finish(self._slow_columns(lines, oversize))

    def _slow_columns(self, lines: Sequence[bytes], oversize: Sequence[int] = ()) -> DecodedBatch:
        rejects: list[Reject] = []
        filtered: list[int] = []
        events, index = self._parse(lines, oversize, rejects, filtered)
        batch = self._columns(events, index, rejects, filtered)
        batch.filtered.sort()
        return batch

    def _finish(self, batch: DecodedBatch) -> DecodedBatch:
        """Both tiers' rows (float64, auxiliary columns included) -> window features,
        then the graph's float32 numeric input."""
        if self.windows is not None and len(batch):
            batch = self._apply_windows(batch)
        num = batch.num[:, : len(self.schema.numeric)]
        batch.num = num.astype(np.float32) if num.dtype != np.float32 else num
        return batch

    def _apply_windows(self, batch: DecodedBatch) -> DecodedBatch:
        """Window features, in row order; an event without its time or a key is rejected
        first (windows could not place it), so it changes no state."""
        engine, model = self.windows, self.model
        assert engine is not None and model.time is not None
        times = batch.num[:, self._input_col[model.time]]
        missing = np.isnan(times)
        ok = np.ones(len(times), dtype=bool)
        rejects: list[Reject] = []
        self._reject_rows(
            np.flatnonzero(missing),
            "missing_field",
            model.time,
            f"field {model.time!r} (the event time windows run on) is missing",
            ok,
            batch.index,
            rejects,
        )
        with np.errstate(invalid="ignore"):
            wild = np.flatnonzero(ok & (np.abs(times) > MAX_EVENT_TIME))
        self._reject_rows(
            wild,
            "bad_timestamp",
            model.time,
            f"field {model.time!r} is beyond the year 5000 (epoch seconds > {MAX_EVENT_TIME:g})",
            ok,
            batch.index,
            rejects,
        )
        for f in dict.fromkeys(k for w in model.windows.values() for k in w.key):
            if not has_none(batch.keys[f]):  # the usual case, at C speed
                continue
            rows = np.flatnonzero(ok & np.array([v is None for v in batch.keys[f]], dtype=bool))
            self._reject_rows(
                rows, "missing_field", f, f"field {f!r} (a window key) is missing", ok, batch.index, rejects
            )
        if rejects:
            keep = np.flatnonzero(ok)
            rows = keep.tolist()
            batch = DecodedBatch(
                batch.num[keep],
                batch.cat[keep],
                [batch.index[r] for r in rows],
                {k: [col[r] for r in rows] for k, col in batch.keys.items()},
                sorted(batch.rejects + rejects, key=lambda r: r.index),
                batch.filtered,
                batch.text[keep],
                batch.text_len[keep],
            )
            if not len(batch):
                return batch
        numbers = {f: batch.num[:, self._input_col[f]] for f in (*engine.numeric, *engine.time_fields)}
        out = engine.update(batch.num[:, self._input_col[model.time]], batch.keys, numbers)
        batch.times, batch.clock, batch.reset_rows = engine.placed, engine.clock, engine.reset_rows
        for j, name in self._window_cols.items():
            col = out[name]
            col[np.abs(col) > _F32_MAX] = np.nan
            batch.num[:, j] = col
        for name in self._window_keys:
            batch.keys[name] = [v if math.isfinite(v) else None for v in out[name].tolist()]
        return batch

    # ---------------------------------------------------------- tier 1 (C)
    def _build_plan(self, plan: type[Plan]) -> Plan | None:
        """The C extractor's plan: a tree of JSON keys (and list elements) whose leaves
        say which column (numeric, boolean, categorical, time, text) or key field a
        value fills; a name read from the first present of several paths has a group,
        and each of its paths its priority."""
        if any(f.name in self.model.normalize for f in self.schema.text):
            return None  # a normalizer before encode_text: Python's string rules, tier 2 alone
        self._key_order = [k for k in self.key_names if k in self._get]
        reads: list[tuple[str, tuple[int, int]]] = [
            (f.name, (_BOOL if f.kind == "boolean" else _NUM, j))
            for j, f in enumerate(self.schema.numeric)
            if f.name in self.paths
        ]
        reads += [(f.name, (_CAT, j)) for j, f in enumerate(self.schema.categorical)]
        reads += [(f.name, (_TEXT, j)) for j, f in enumerate(self.schema.text)]
        reads += [(k, (_KEY, j)) for j, k in enumerate(self._key_order)]
        reads += [(name, (_TIME if is_time else _NUM, self._input_col[name])) for name, is_time in self._aux]
        groups: dict[str, int] = {}
        targets: dict[tuple[Step, ...], list[tuple[int, ...]]] = {}
        for name, target in reads:
            paths = self.model.paths(name)
            if len(paths) > 1:
                g = groups.setdefault(name, len(groups))
                for prio, path in enumerate(paths):
                    targets.setdefault(parse_path(path), []).append((*target, g, prio))
            else:
                targets.setdefault(parse_path(paths[0]), []).append(target)
        try:
            spec = _plan_spec(targets)
            vocabs: tuple[dict[bytes, tuple[tuple[int, ...], ...]], ...] = tuple(
                {c.encode(): ((_CAT, i),) for c, i in self._c_vocabulary(f).items()} for f in self.schema.categorical
            )
            lower = tuple(self._lower(f.name) for f in self.schema.categorical)
            width = len(self.schema.numeric) + len(self._aux)
            text = tuple((f.text_limit, f.normalize == "dns", f.truncate == "tail") for f in self.schema.text)
            return plan(
                spec,
                width,
                len(self.schema.categorical),
                len(self._key_order),
                vocabs,
                lower,
                text,
                self.schema.text_width,
                len(groups),
                _untyped_keys(self._steps),
            )
        except (TypeError, ValueError, AttributeError):  # a path both a leaf and an object: tier 2 only
            return None

    def _lower(self, name: str) -> bool:
        norm = self.model.normalize.get(name)
        return norm is not None and norm.lower

    def _decode_fast(self, plan: Plan, lines: list[bytes] | Lines, oversize: Sequence[int]) -> DecodedBatch:
        n, schema = len(lines), self.schema
        num = np.empty((n, len(schema.numeric) + len(self._aux)), dtype=np.float64)
        cat = np.empty((n, len(schema.categorical)), dtype=np.int64)
        status = np.empty(n, dtype=np.uint8)
        has_text = self._has_text
        if has_text:  # zeroed: a slot C leaves alone (a missing text) is padding
            text = np.zeros((n, len(schema.text), schema.text_width), dtype=np.uint8)
            text_len = np.empty((n, len(schema.text)), dtype=np.int64)
        else:  # zero-size views of n rows: no allocation per batch
            text, text_len = self._no_text[0][:n], self._no_text[1][:n]
        segments = lines.segments if isinstance(lines, Lines) else [lines]
        if len(segments) == 1:  # the common case: the plan fills the key columns in place
            key_values: list[list[Any]] = [[None] * n for _ in self._key_order]
            if has_text:
                accepted = plan.decode(segments[0], num, cat, key_values, status, text, text_len)
            else:
                accepted = plan.decode(segments[0], num, cat, key_values, status)
        else:
            key_values = [[] for _ in self._key_order]
            accepted, r0 = 0, 0
            for seg in segments:
                r1 = r0 + (len(seg) if isinstance(seg, list) else len(seg[1]))
                part = [[None] * (r1 - r0) for _ in self._key_order]
                tail = (text[r0:r1], text_len[r0:r1]) if has_text else ()
                accepted += plan.decode(seg, num[r0:r1], cat[r0:r1], part, status[r0:r1], *tail)
                for col, values in zip(key_values, part):
                    col.extend(values)
                r0 = r1
        slow = status != 0
        if any(oversize):
            slow |= np.asarray(oversize, dtype=bool)
        ok = ~slow
        n_slow = int(np.count_nonzero(slow))
        self.tier_lines["c"] += n - n_slow
        self.tier_lines["msgspec"] += n_slow
        keys = self._normalized(dict(zip(self._key_order, key_values)))
        rejects: list[Reject] = []
        filtered = self._filter(keys, ok, list(range(n)))
        if accepted:
            self._derive(num)
            # present before missing becomes OOV / length 0; text columns after the categorical ones
            cat_present = np.concatenate([cat >= 0, text_len >= 0], axis=1) if self.min_present else None
            self._check_missing(num, cat, ok, rejects)  # first, as tier 2 reports a required field first
            if has_text:
                self._check_missing_text(text_len, ok, rejects)
            if cat_present is not None:
                self._check_sparse(~np.isnan(num[:, : len(schema.numeric)]), cat_present, ok, list(range(n)), rejects)
        if has_text:
            text_len[text_len < 0] = 0
        self._derived_key_values(num, keys)
        if slow.any():
            self._merge_slow(
                lines, oversize, np.flatnonzero(slow), num, cat, keys, ok, rejects, filtered, (text, text_len)
            )
        keep = np.flatnonzero(ok)
        if len(keep) < n:
            num, cat = num[keep], cat[keep]
            if has_text:
                text, text_len = text[keep], text_len[keep]
            else:  # zero-size blocks: a view of the right row count is enough
                text, text_len = text[: len(keep)], text_len[: len(keep)]
            rows = keep.tolist()
            keys = {k: [col[r] for r in rows] for k, col in keys.items()}
        rejects.sort(key=lambda r: r.index)
        filtered.sort()
        return DecodedBatch(num, cat, keep.tolist(), keys, rejects, filtered, text, text_len)

    def _check_missing_text(
        self, text_len: npt.NDArray[np.int64], ok: npt.NDArray[np.bool_], rejects: list[Reject]
    ) -> None:
        """Tier-1 rows: a text feature the schema requires is missing (after numeric and categorical, as tier 2)."""
        for j, f in enumerate(self.schema.text):
            if not f.allow_missing:
                rows = np.flatnonzero((text_len[:, j] < 0) & ok)
                self._reject_rows(
                    rows, "missing_field", f.name, f"field {f.name!r} is missing", ok, list(range(len(ok))), rejects
                )

    # ------------------------------------------------------ the event model
    def _normalized(self, keys: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for k, norm in self._norm.items():
            if k in keys:
                keys[k] = [norm.apply(v) for v in keys[k]]
        return keys

    def _filter(self, keys: dict[str, list[Any]], ok: npt.NDArray[np.bool_], index: list[int]) -> list[int]:
        """Rows (still ok) that the `where` filter drops: not ok any more, and
        returned by their batch position."""
        if not self.model.where:
            return []
        keep = np.ones(len(ok), dtype=bool)
        for name, spec in self.model.where.items():
            keep &= condition_mask(name, spec, keys[name])
        out = np.flatnonzero(ok & ~keep)
        ok[out] = False
        return [index[r] for r in out.tolist()]

    def _derive(self, num: npt.NDArray[np.float64]) -> None:
        """Derived features into their columns (NaN where an input is missing)."""
        cols = self._input_col
        for j, spec in self._derived_cols:
            num[:, j] = derive.compute(spec, lambda name: num[:, cols[name]])

    def _derived_key_values(self, num: npt.NDArray[np.float64], keys: dict[str, list[Any]]) -> None:
        """Derived fields that rules or alerts read: a float, or None where missing."""
        cols = self._input_col
        for name, j in self._derived_key_cols.items():
            values = num[:, j] if j is not None else derive.compute(self.model.derive[name], lambda n: num[:, cols[n]])
            keys[name] = [v if math.isfinite(v) else None for v in values.tolist()]

    def _check_missing(
        self,
        num: npt.NDArray[np.float64],
        cat: npt.NDArray[np.int64],
        ok: npt.NDArray[np.bool_],
        rejects: list[Reject],
    ) -> None:
        """Tier-1 rows: a missing feature the schema requires rejects its row
        (first such feature, numeric before categorical, as tier 2 reports)."""
        required = self._required_numeric
        if required.size:
            for r, j in np.argwhere(np.isnan(num[:, required]) & ok[:, None]):
                if ok[r]:
                    name = self.schema.numeric[required[j]].name
                    ok[r] = False
                    rejects.append(Reject(int(r), "missing_field", name, f"field {name!r} is missing"))
        absent = cat < 0
        if not absent.any():  # the common case: one check for all columns
            return
        for j, f in enumerate(self.schema.categorical):
            missing = absent[:, j]
            if missing.any():
                cat[missing, j] = OOV_INDEX
                if not f.allow_missing:
                    self._reject_rows(
                        np.flatnonzero(missing & ok),
                        "missing_field",
                        f.name,
                        f"field {f.name!r} is missing",
                        ok,
                        list(range(len(ok))),
                        rejects,
                    )

    def _check_sparse(
        self,
        num_present: npt.NDArray[np.bool_],
        cat_present: npt.NDArray[np.bool_],
        ok: npt.NDArray[np.bool_],
        index: list[int],
        rejects: list[Reject],
    ) -> None:
        """Reject rows with fewer than `min_present` of the schema's fields, naming what is missing."""
        if self._window_cols:
            num_present = num_present & self._counted  # window features are computed, not brought
        total = len(self.schema.features) - len(self._window_cols)
        # The common case in a few operations: if the whole batch lacks no more fields than one
        # row may, no row can (a batch of one is exact). Only then count per row.
        lacking = len(ok) * total - np.count_nonzero(num_present) - np.count_nonzero(cat_present)
        if lacking <= total - self.min_present:
            return
        count = num_present.sum(axis=1) + cat_present.sum(axis=1)
        for r in np.flatnonzero((count < self.min_present) & ok):
            ok[r] = False
            absent = {f.name for f, p, c in zip(self.schema.numeric, num_present[r], self._counted) if c and not p}
            others = (*self.schema.categorical, *self.schema.text)  # cat_present's columns, text last
            absent |= {f.name for f, p in zip(others, cat_present[r]) if not p}
            missing = [f.name for f in self.schema.features if f.name in absent]  # in schema order
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            rejects.append(
                Reject(
                    index[r],
                    "too_sparse",
                    None,
                    f"{count[r]} of {total} features present, at least {self.min_present} needed; missing: {shown}",
                )
            )

    def _merge_slow(
        self,
        lines: list[bytes] | Lines,
        oversize: Sequence[int],
        rows: npt.NDArray[np.intp],
        num: npt.NDArray[np.float64],
        cat: npt.NDArray[np.int64],
        keys: dict[str, list[Any]],
        ok: npt.NDArray[np.bool_],
        rejects: list[Reject],
        filtered: list[int],
        text: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]],
    ) -> None:
        """Lines tier 1 left alone go through tier 2; its rows, rejects and
        filtered lines are put back at their places in the batch."""
        sub = self._slow_columns([lines[r] for r in rows], [int(oversize[r]) for r in rows] if any(oversize) else ())
        ok[rows] = False
        at = rows[sub.index] if sub.index else np.empty(0, dtype=np.intp)
        ok[at] = True
        num[at, : sub.num.shape[1]] = sub.num
        cat[at] = sub.cat
        text[0][at], text[1][at] = sub.text, sub.text_len
        for k, col in keys.items():
            values = sub.keys.get(k)
            if values is not None:
                for r, v in zip(at.tolist(), values):
                    col[r] = v
        rejects.extend(Reject(int(rows[r.index]), r.reason, r.field, r.message) for r in sub.rejects)
        filtered.extend(int(rows[i]) for i in sub.filtered)

    # ---------------------------------------------------------------- parse
    def _parse(
        self, lines: Sequence[bytes], oversize: Sequence[int], rejects: list[Reject], filtered: list[int]
    ) -> tuple[list[Any], list[int]]:
        # Each line is decoded on its own. (Joining a batch into one JSON array
        # is a little faster but lets crafted lines splice into each other and
        # swallow a neighbour's event: never again.)
        if not any(oversize):
            one = self._one.decode
            try:
                return [one(line) for line in lines], list(range(len(lines)))
            except (msgspec.DecodeError, RecursionError, ValueError):
                pass  # some line is bad: find out which, line by line
        events: list[Any] = []  # decoded Structs
        index: list[int] = []
        for i, line in enumerate(lines):
            if oversize and oversize[i] == OVERSIZE:
                rejects.append(Reject(i, "oversize", None, f"line longer than the limit ({len(line)}+ bytes)"))
                continue
            try:
                events.append(self._one.decode(line))
                index.append(i)
            except msgspec.ValidationError as exc:
                if self._filtered_out(line):  # a record the filter drops need not have the fields' types
                    filtered.append(i)
                else:
                    rejects.append(self._validation_reject(i, str(exc)))
            except msgspec.DecodeError as exc:
                if oversize and oversize[i] == PARTIAL:  # not bad JSON: the rest of it never came
                    rejects.append(Reject(i, "partial_line", None, f"connection ended mid-line, no newline: {exc}"))
                else:
                    rejects.append(Reject(i, "bad_json", None, f"invalid JSON: {exc}"))
            except RecursionError:
                rejects.append(Reject(i, "bad_json", None, "invalid JSON: nested too deeply"))
            except ValueError as exc:  # UnicodeDecodeError in a string the event's fields use
                rejects.append(Reject(i, "bad_json", None, f"invalid JSON: {exc}"))
        return events, index

    def _filtered_out(self, line: bytes) -> bool:
        if self._where_one is None:
            return False
        try:
            record = self._where_one.decode(line)
            values = self._normalized({n: [g(record)] for n, g in self._where_get.items()})
            return bool(self._filter(values, np.ones(1, dtype=bool), [0]))
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError, OverflowError):
            return False  # not even the filter's fields can be read: the full decode's reject stands

    def _validation_reject(self, i: int, text: str) -> Reject:
        # msgspec: "Expected `float | null`, got `str` - at `$.flow.bytes`"
        where = text.rsplit(" - at `$", 1)
        path = where[1].rstrip("`").lstrip(".") if len(where) == 2 else ""
        if not path:
            return Reject(i, "not_object", None, f"event must be a JSON object: {text}")
        try:
            steps = parse_path(path)
        except ValueError:
            steps = ()
        name = next((n for n, st in self._steps.items() if st == steps), path).split(_ALT)[0]
        inner = next((n for n, st in self._steps.items() if len(st) > len(steps) and st[: len(steps)] == steps), None)
        inner = inner.split(_ALT)[0] if inner is not None else None
        if inner is not None and name == path:  # an object on the way to a field holds something else
            got = where[0].rsplit("got ", 1)[-1].strip("`") if "got " in where[0] else "?"
            return Reject(
                i, "wrong_type", path, f"field {path!r} is {_article(got)}, expected an object (holding {inner!r})"
            )
        if "out of range" in text:
            return Reject(i, "non_finite", name, f"field {name!r} is out of range, expected a finite number")
        got = where[0].rsplit("got ", 1)[-1].strip("`") if "got " in where[0] else "?"
        at = f" (at {path})" if path != name else ""
        return Reject(
            i,
            "wrong_type",
            name,
            f"field {name!r}{at} is {_article(got)}, expected {self._expected.get(name, 'a string or number')}",
        )

    # -------------------------------------------------------------- columns
    def _columns(self, events: list[Any], index: list[int], rejects: list[Reject], filtered: list[int]) -> DecodedBatch:
        n, n_num = len(events), len(self.schema.numeric)
        ok = np.ones(n, dtype=bool)
        keys = self._normalized({k: [self._get[k](e) for e in events] for k in self.key_names if k in self._get})
        filtered.extend(self._filter(keys, ok, index))
        num = np.full((n, n_num + len(self._aux)), np.nan)
        num[:, self._read_cols] = self._numeric_block(events, ok, index, rejects)
        if self._aux:
            self._aux_block(events, num, ok, index, rejects)
        if self.model.derive:
            self._derive(num)
            self._check_derived(num, ok, index, rejects)
        cat = np.empty((n, len(self.schema.categorical)), dtype=np.int64)
        cat_present = np.empty((n, len(self.schema.categorical)), dtype=bool)
        for j, f in enumerate(self.schema.categorical):
            values = [self._get[f.name](e) for e in events]
            if self.min_present:
                cat_present[:, j] = [v is not None for v in values]
            cat[:, j] = self._categorical_column(f, values, ok, index, rejects)
        text, text_len = self._text_block(events, ok, index, rejects)
        if self.min_present:
            present = np.concatenate([cat_present, text_len >= 0], axis=1)
            self._check_sparse(~np.isnan(num[:, :n_num]), present, ok, index, rejects)
        text_len[text_len < 0] = 0
        self._derived_key_values(num, keys)
        if not ok.all():
            keep = np.flatnonzero(ok)
            num, cat, text, text_len = num[keep], cat[keep], text[keep], text_len[keep]
            keys = {k: [v[i] for i in keep] for k, v in keys.items()}
            index = [index[i] for i in keep]
        rejects.sort(key=lambda r: r.index)
        return DecodedBatch(num, cat, index, keys, rejects, filtered, text, text_len)

    def _text_block(
        self, events: list[Any], ok: npt.NDArray[np.bool_], index: list[int], rejects: list[Reject]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """Text features: each value's bytes by encode_text (the trainer's rule), zero-padded
        to text_width, and its length; -1 marks a missing value (min_present counts it
        absent; the caller turns it into 0). A value that is not a string is a reject."""
        feats, width, n = self.schema.text, self.schema.text_width, len(events)
        data = np.zeros((n, len(feats), width), dtype=np.uint8)
        lengths = np.full((n, len(feats)), -1, dtype=np.int64)
        for j, f in enumerate(feats):
            get, norm = self._get[f.name], self.model.normalize.get(f.name)
            raws: list[bytes] = []
            for r, e in enumerate(events):
                value = get(e)
                if norm is not None:
                    value = norm.apply(value)
                raw = b""
                if value is None:
                    if not f.allow_missing and ok[r]:
                        self._reject_rows(
                            np.array([r]), "missing_field", f.name, f"field {f.name!r} is missing", ok, index, rejects
                        )
                else:
                    try:
                        raw = encode_text(value, f)
                        lengths[r, j] = len(raw)
                    except EventError as exc:
                        if ok[r]:
                            self._reject_rows(np.array([r]), exc.reason, f.name, str(exc), ok, index, rejects)
                raws.append(raw)
            if n:  # one copy per column: padded values joined, viewed as [n, width]
                block = b"".join(raw.ljust(width, b"\0") for raw in raws)
                data[:, j, :] = np.frombuffer(block, dtype=np.uint8).reshape(n, width)
        return data, lengths

    def _aux_block(
        self,
        events: list[Any],
        num: npt.NDArray[np.float64],
        ok: npt.NDArray[np.bool_],
        index: list[int],
        rejects: list[Reject],
    ) -> None:
        """Inputs of derived fields that are not features: numbers, or times in epoch seconds."""
        for name, is_time in self._aux:
            get, col = self._get[name], self._input_col[name]
            for r, e in enumerate(events):
                value = get(e)
                if value is None:
                    continue
                try:
                    x = _time_value(value, name) if is_time else to_number(value, name)
                except EventError as exc:
                    if ok[r]:
                        ok[r] = False
                        rejects.append(Reject(index[r], exc.reason, name, str(exc)))
                    continue
                num[r, col] = x if math.isfinite(x) else math.nan

    def _check_derived(
        self, num: npt.NDArray[np.float64], ok: npt.NDArray[np.bool_], index: list[int], rejects: list[Reject]
    ) -> None:
        """A derived feature the schema requires is rejected where it could not be computed."""
        for j, f in enumerate(self.schema.numeric):
            if f.name in self.model.derive and not f.allow_missing:
                rows = np.flatnonzero(np.isnan(num[:, j]) & ok)
                self._reject_rows(rows, "missing_field", f.name, f"field {f.name!r} is missing", ok, index, rejects)

    def _numeric_block(
        self, events: list[Any], ok: npt.NDArray[np.bool_], index: list[int], rejects: list[Reject]
    ) -> npt.NDArray[np.float64]:
        """All numeric features read from the event at once: one getter call per
        event, numpy turns None into NaN and parses numeric strings; anything
        numpy cannot take goes through the schema's own coercion, value by value."""
        feats = self._read_numeric
        if not feats:
            return np.empty((len(events), 0), dtype=np.float64)
        all_numeric = self._all_numeric
        assert all_numeric is not None  # there are numeric features
        rows: list[Any]
        try:
            rows = [all_numeric(e) for e in events]
        except AttributeError:  # an intermediate object is missing: take the careful path
            rows = [tuple(self._get[f.name](e) for f in feats) for e in events]
        if len(feats) == 1:
            rows = [(r,) if not isinstance(r, tuple) else r for r in rows]
        try:
            block = np.array(rows, dtype=np.float64).reshape(len(events), len(feats))
            if self._bool_cols and not _zero_one(block[:, self._bool_cols]):
                raise ValueError("a boolean column holds other values")
        except (ValueError, TypeError, OverflowError):
            block = self._coerce(rows, feats, ok, index, rejects)
        with np.errstate(invalid="ignore"):
            bad = np.argwhere(~np.isfinite(block) | (np.abs(block) > _F32_MAX))
        for r, j in bad:
            f, value = feats[j], rows[r][j]
            if not ok[r]:
                continue
            if value is None:
                if f.allow_missing:
                    continue
                reason, message = "missing_field", f"field {f.name!r} is missing"
            else:
                reason, message = "non_finite", f"field {f.name!r} is {value!r}, expected a finite float32 number"
            ok[r] = False
            rejects.append(Reject(index[r], reason, f.name, message))
        block[~ok] = 0.0  # rejected rows are dropped
        return block

    def _coerce(
        self,
        rows: list[Any],
        feats: Sequence[Feature],
        ok: npt.NDArray[np.bool_],
        index: list[int],
        rejects: list[Reject],
    ) -> npt.NDArray[np.float64]:
        block = np.empty((len(rows), len(feats)), dtype=np.float64)
        for r, row in enumerate(rows):
            for j, (f, v) in enumerate(zip(feats, row)):
                if v is None:
                    block[r, j] = math.nan
                    continue
                try:
                    block[r, j] = to_boolean(v, f.name) if f.kind == "boolean" else to_number(v, f.name)
                except OverflowError:  # an integer literal beyond any float
                    block[r, j] = math.inf
                except EventError as exc:
                    block[r, j] = 0.0
                    if ok[r]:
                        ok[r] = False
                        rejects.append(
                            Reject(
                                index[r],
                                exc.reason,
                                f.name,
                                f"{exc}".replace("expected a number", "expected a number (or a numeric string)"),
                            )
                        )
        return block

    def _categorical_column(
        self, f: Feature, values: list[Any], ok: npt.NDArray[np.bool_], index: list[int], rejects: list[Reject]
    ) -> npt.NDArray[np.int64]:
        vocab = self._vocab[f.name]
        norm = self.model.normalize.get(f.name)
        if norm is not None:
            values = [norm.apply(v) for v in values]
        # Strings that are in the vocabulary take the dict lookup inline; anything
        # else (numbers, booleans, padded strings, unseen values) goes the long way.
        get = vocab.get
        out = np.array([get(v, -1) if type(v) is str else -1 for v in values], dtype=np.int64)
        for i in np.flatnonzero(out < 0):
            v = values[i]
            if isinstance(v, (dict, list)):  # read through a list element (untyped): refused as tier 2 refuses
                out[i] = OOV_INDEX
                if ok[i]:
                    kind = "an object" if isinstance(v, dict) else "an array"
                    self._reject_rows(
                        np.array([i]),
                        "wrong_type",
                        f.name,
                        f"field {f.name!r} is {kind}, expected a string or number",
                        ok,
                        index,
                        rejects,
                    )
                continue
            out[i] = _vocab_index(vocab, v)
        if not f.allow_missing:
            missing = np.array([v is None for v in values], dtype=bool)
            self._reject_rows(
                np.flatnonzero(missing & ok),
                "missing_field",
                f.name,
                f"field {f.name!r} is missing",
                ok,
                index,
                rejects,
            )
        return out

    @staticmethod
    def _reject_rows(
        rows: npt.NDArray[np.intp],
        reason: str,
        name: str,
        message: str,
        ok: npt.NDArray[np.bool_],
        index: list[int],
        rejects: list[Reject],
    ) -> None:
        for r in rows:
            ok[r] = False
            rejects.append(Reject(index[r], reason, name, message))


_NUM, _BOOL, _CAT, _KEY, _TIME, _TEXT = 0, 1, 2, 3, 4, 5  # target kinds of the C plan (_fastjson.c)


def _zero_one(values: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(np.isnan(values) | (values == 0.0) | (values == 1.0)))


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _vocab_index(vocab: dict[str, int], value: Any) -> int:
    if value is None:
        return OOV_INDEX
    if type(value) is str:
        hit = vocab.get(value)
        if hit is not None:
            return hit
    return vocab.get(category_key(value), OOV_INDEX)


def _time_value(value: Any, name: str) -> float:
    t = parse_time(value)
    if t is None:
        raise EventError(
            "bad_timestamp", f"field {name!r} is {str(value)[:60]!r}, expected a time (ISO 8601 or epoch seconds)", name
        )
    return t


def _getter(attrs: tuple[str, ...]) -> Callable[[Any], Any]:
    """The value at `attrs` of a decoded event; None where an intermediate object is missing."""
    if len(attrs) == 1:
        return operator.attrgetter(attrs[0])

    def get(e: Any) -> Any:
        for attr in attrs:
            e = getattr(e, attr)
            if e is None:
                return None
        return e

    return get


UNREADABLE = object()  # field_column: the line's field cannot be read (bad JSON, a wrong type)


def field_reader(model: EventModel, name: str) -> Callable[[bytes], Any]:
    """One field of an event, read from its line as EventDecoder reads a key field (its
    path, or the first of its paths that holds a value; typed as a scalar) and
    normalized as the decoder normalizes it, without decoding the rest of the event:
    what routes an event to the worker that holds its key's state (sharding.py). Raises
    msgspec.DecodeError (ValidationError too) or ValueError where the decoder would
    reject the line for that field."""
    steps = _alternative_steps(model, {name: model.path(name)})
    struct, get, top = _reader(steps, "Key", Scalar)
    _first_present(get, top, [name])
    one: Callable[[bytes], Any] = msgspec.json.Decoder(struct, strict=False).decode
    getter, norm = get[name], model.normalize.get(name)
    if norm is None:
        return lambda line: getter(one(line))
    apply = norm.apply
    return lambda line: apply(getter(one(line)))


def field_column(model: EventModel, name: str) -> Callable[[Sequence[bytes]], list[Any]]:
    """`field_reader` for a batch of lines (a list, or the queue's Lines): each line's value
    (None: missing), or UNREADABLE. The C tier reads a whole buffer in one call, in place,
    skipping what it does not need; the lines it is not sure of (and all of them without
    the extension) go through field_reader, the reference."""
    one = field_reader(model, name)

    def slow(line: bytes) -> Any:
        try:
            return one(line)
        except (msgspec.DecodeError, ValueError, RecursionError, TypeError):
            return UNREADABLE

    plan = _key_plan(model, name) if _fastjson is not None else None
    if plan is None:
        return lambda lines: [slow(line) for line in lines]
    norm = model.normalize.get(name)
    no_num, no_cat = np.empty((1 << 30, 0)), np.empty((1 << 30, 0), dtype=np.int64)  # 0 bytes

    def column(lines: Sequence[bytes]) -> list[Any]:
        segments = lines.segments if isinstance(lines, Lines) else [list(lines)]
        out: list[Any] = []
        for seg in segments:
            n = len(seg) if isinstance(seg, list) else len(seg[1])
            values: list[Any] = [None] * n
            status = np.empty(n, dtype=np.uint8)
            plan.decode(seg, no_num[:n], no_cat[:n], [values], status)
            if norm is not None:
                values = [norm.apply(v) for v in values]
            for i in np.flatnonzero(status).tolist():  # declined by C: the reference reads it
                line = seg[i] if isinstance(seg, list) else seg[0][int(seg[1][i][0]) : int(seg[1][i][1])]
                values[i] = slow(line)
            out += values
        return out

    return column


def _key_plan(model: EventModel, name: str) -> Plan | None:
    """A C plan that reads one key field and nothing else (as EventDecoder's plan reads it)."""
    assert _fastjson is not None
    paths = model.paths(name)
    targets: dict[tuple[Step, ...], list[tuple[int, ...]]] = {}
    for prio, path in enumerate(paths):
        targets.setdefault(parse_path(path), []).append((_KEY, 0, 0, prio) if len(paths) > 1 else (_KEY, 0))
    steps = _alternative_steps(model, {name: model.path(name)})
    try:
        return _fastjson.Plan(_plan_spec(targets), 0, 0, 1, (), (), (), 0, int(len(paths) > 1), _untyped_keys(steps))
    except (TypeError, ValueError, AttributeError):
        return None
