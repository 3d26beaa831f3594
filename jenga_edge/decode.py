"""Lines of JSON -> the graph's input arrays, with a reason for every reject.

The hot path of the agent, in two tiers:

1. `_fastjson` (C, built at install; see setup.py) extracts the schema's fields
   from each line straight into numpy buffers. It accepts only lines it is
   sure of: well-formed JSON whose read fields are plain numbers, null,
   true/false or vocabulary strings. On 1 KB, 41-feature events it takes
   1.2-1.3 us per event where tier 2 took 5.0 (parse 2.4, columns 2.6).
2. Every other line (and every line when the extension is not built) goes
   through one msgspec decoder per schema and field mapping, which decodes the
   event into a typed struct; columns are built with numpy, and each reject
   gets its reason and field. Tier 2 is the reference: tier 1 may only accept
   what tier 2 accepts, with the same values (tests/jenga_edge/test_fastjson.py).

Lines are decoded one by one, never joined: a crafted line must not be able to
splice into its neighbours.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .contract.errors import EventError
from .contract.schema import OOV_INDEX, Feature, FeatureSchema, category_key, to_boolean, to_number
from .event_queue import Lines
from .native import fastjson as _fastjson  # None: tier 2 alone

if TYPE_CHECKING:
    import numpy.typing as npt

    from .native._fastjson import Plan

Scalar = str | int | float | bool | None
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Reject:
    index: int  # position in the batch
    reason: str  # bad_json | not_object | wrong_type | missing_field | non_finite | oversize
    field: str | None
    message: str


@dataclass
class DecodedBatch:
    num: npt.NDArray[np.float32]  # [accepted, n]
    cat: npt.NDArray[np.int64]  # [accepted, m]
    index: list[int]  # batch positions of the accepted events
    keys: dict[str, list[Any]]  # key/condition fields of accepted events, by name
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)


class _Tree:
    """Nested msgspec Struct types mirroring the dotted paths that are read."""

    def __init__(self) -> None:
        self.children: dict[str, _Tree] = {}
        self.leaves: dict[str, Any] = {}

    def add(self, parts: list[str], tp: Any) -> None:
        if len(parts) == 1:
            self.leaves[parts[0]] = tp
        else:
            self.children.setdefault(parts[0], _Tree()).add(parts[1:], tp)

    def build(self, name: str) -> tuple[type, dict[str, str]]:
        """A Struct type and, per JSON key, the attribute name it lives under."""
        fields, rename, attrs = [], {}, {}
        for i, (key, sub) in enumerate(sorted(self.children.items())):
            attr = f"c{i}"
            sub_type, sub_attrs = sub.build(f"{name}_{i}")
            fields.append((attr, sub_type | None, None))
            rename[attr], attrs[key] = key, attr
            attrs.update({f"{key}.{k}": f"{attr}.{v}" for k, v in sub_attrs.items()})
        for i, (key, tp) in enumerate(sorted(self.leaves.items())):
            attr = f"v{i}"
            fields.append((attr, tp, None))
            rename[attr], attrs[key] = key, attr
        struct = msgspec.defstruct(name, fields, rename=rename, omit_defaults=True)
        return struct, attrs


class EventDecoder:
    """Decode events for one schema. `mapping` maps feature (and key field)
    names to dotted paths in the event; unmapped names are read at the top level."""

    def __init__(
        self,
        schema: FeatureSchema,
        mapping: dict[str, str] | None = None,
        key_fields: Sequence[str] = (),
        min_present: int = 0,
    ):
        self.schema = schema
        # An event with fewer of the schema's fields than this is rejected (too_sparse):
        # imputing all of them would turn an unrelated record into a confident verdict.
        self.min_present = min(min_present, len(schema.features))
        mapping = dict(mapping or {})
        self.paths = {f.name: mapping.get(f.name, f.name) for f in schema.features}
        self.key_paths = {k: mapping.get(k, k) for k in key_fields if k not in self.paths}
        self.key_names = list(key_fields)
        tree = _Tree()
        # A key field may share a path with a feature (dest_port -> port): one
        # leaf, read raw; the feature's checks happen in the column code.
        for path in {*self.paths.values(), *self.key_paths.values()}:
            tree.add(path.split("."), Scalar)
        self.struct, attrs = tree.build("Event")
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.struct, strict=False)
        self._get: dict[str, Callable[[Any], Any]] = {
            n: _getter(attrs[p]) for n, p in {**self.paths, **self.key_paths}.items()
        }
        numeric_attrs = [attrs[self.paths[f.name]] for f in schema.numeric]
        self._bool_cols = [j for j, f in enumerate(schema.numeric) if f.kind == "boolean"]
        self._all_numeric = operator.attrgetter(*numeric_attrs) if numeric_attrs else None
        self._required_numeric = np.array(
            [j for j, f in enumerate(schema.numeric) if not f.allow_missing], dtype=np.intp
        )
        self._vocab = {f.name: {c: i for i, c in enumerate(f.categories)} for f in schema.categorical}
        self._expected = {
            f.name: {
                "numeric": "a number (or a numeric string)",
                "boolean": "true or false",
                "categorical": "a string or number",
            }[f.kind]
            for f in schema.features
        }

        self._plan = self._build_plan(_fastjson.Plan, attrs) if _fastjson is not None else None

    # ------------------------------------------------------------------ API
    def decode(self, lines: Sequence[bytes], oversize: Sequence[bool] = ()) -> DecodedBatch:
        """`lines`: a list of bytes, or the queue's `Lines` (whose buffer
        segments tier 1 reads in place)."""
        plan = self._plan
        if plan is None or not lines:
            return self._decode_slow(lines if type(lines) is list else list(lines), oversize)
        return self._decode_fast(
            plan, lines if type(lines) is list or isinstance(lines, Lines) else list(lines), oversize
        )

    def _decode_slow(self, lines: Sequence[bytes], oversize: Sequence[bool] = ()) -> DecodedBatch:
        rejects: list[Reject] = []
        events, index = self._parse(lines, oversize, rejects)
        return self._columns(events, index, rejects)

    # ---------------------------------------------------------- tier 1 (C)
    def _build_plan(self, plan: type[Plan], attrs: dict[str, str]) -> Plan | None:
        """The C extractor's plan: a tree of JSON keys whose leaves say which
        column (numeric, boolean, categorical) or key field a value fills."""
        spec: dict[bytes, Any] = {}
        self._key_order = [k for k in self.key_names if k in self._get]
        targets: dict[str, list[tuple[int, int]]] = {}
        for j, f in enumerate(self.schema.numeric):
            targets.setdefault(self.paths[f.name], []).append((_BOOL if f.kind == "boolean" else _NUM, j))
        for j, f in enumerate(self.schema.categorical):
            targets.setdefault(self.paths[f.name], []).append((_CAT, j))
        for j, k in enumerate(self._key_order):
            targets.setdefault(self.paths.get(k) or self.key_paths[k], []).append((_KEY, j))
        try:
            for path, leaf in targets.items():
                node, parts = spec, path.split(".")
                for part in parts[:-1]:
                    node = node.setdefault(part.encode(), {})
                node[parts[-1].encode()] = tuple(leaf)
            vocabs: tuple[dict[bytes, tuple[tuple[int, int], ...]], ...] = tuple(
                {c.encode(): ((_CAT, i),) for c, i in self._vocab[f.name].items()} for f in self.schema.categorical
            )
            return plan(spec, len(self.schema.numeric), len(self.schema.categorical), len(self._key_order), vocabs)
        except (TypeError, ValueError, AttributeError):  # a path both a leaf and an object: tier 2 only
            return None

    def _decode_fast(self, plan: Plan, lines: list[bytes] | Lines, oversize: Sequence[bool]) -> DecodedBatch:
        n, schema = len(lines), self.schema
        num = np.empty((n, len(schema.numeric)), dtype=np.float64)
        cat = np.empty((n, len(schema.categorical)), dtype=np.int64)
        key_values: list[list[Any]] = [[] for _ in self._key_order]
        status = np.empty(n, dtype=np.uint8)
        accepted, r0 = 0, 0
        for seg in lines.segments if isinstance(lines, Lines) else [lines]:
            r1 = r0 + (len(seg) if isinstance(seg, list) else len(seg[1]))
            part = [[None] * (r1 - r0) for _ in self._key_order]
            accepted += plan.decode(seg, num[r0:r1], cat[r0:r1], part, status[r0:r1])
            for col, values in zip(key_values, part):
                col.extend(values)
            r0 = r1
        slow = status != 0
        if any(oversize):
            slow |= np.asarray(oversize, dtype=bool)
        ok = ~slow
        keys = dict(zip(self._key_order, key_values))
        rejects: list[Reject] = []
        if accepted:
            cat_present = cat >= 0 if self.min_present else None  # before missing becomes OOV
            self._check_missing(num, cat, ok, rejects)  # first, as tier 2 reports a required field first
            if cat_present is not None:
                self._check_sparse(~np.isnan(num), cat_present, ok, list(range(n)), rejects)
        if slow.any():
            self._merge_slow(lines, oversize, np.flatnonzero(slow), num, cat, keys, ok, rejects)
        keep = np.flatnonzero(ok)
        if len(keep) < n:
            num, cat = num[keep], cat[keep]
            rows = keep.tolist()
            keys = {k: [col[r] for r in rows] for k, col in keys.items()}
        rejects.sort(key=lambda r: r.index)
        return DecodedBatch(num.astype(np.float32), cat, keep.tolist(), keys, rejects)

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
        for j, f in enumerate(self.schema.categorical):
            missing = cat[:, j] < 0
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
        count = num_present.sum(axis=1) + cat_present.sum(axis=1)
        total = len(self.schema.features)
        for r in np.flatnonzero((count < self.min_present) & ok):
            ok[r] = False
            absent = {f.name for f, p in zip(self.schema.numeric, num_present[r]) if not p}
            absent |= {f.name for f, p in zip(self.schema.categorical, cat_present[r]) if not p}
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
        oversize: Sequence[bool],
        rows: npt.NDArray[np.intp],
        num: npt.NDArray[np.float64],
        cat: npt.NDArray[np.int64],
        keys: dict[str, list[Any]],
        ok: npt.NDArray[np.bool_],
        rejects: list[Reject],
    ) -> None:
        """Lines tier 1 left alone go through tier 2; its rows and rejects
        are put back at their places in the batch."""
        sub = self._decode_slow([lines[r] for r in rows], [bool(oversize[r]) for r in rows] if any(oversize) else ())
        ok[rows] = False
        at = rows[sub.index] if sub.index else np.empty(0, dtype=np.intp)
        ok[at] = True
        num[at] = sub.num
        cat[at] = sub.cat
        for k, col in keys.items():
            values = sub.keys.get(k)
            if values is not None:
                for r, v in zip(at.tolist(), values):
                    col[r] = v
        rejects.extend(Reject(int(rows[r.index]), r.reason, r.field, r.message) for r in sub.rejects)

    # ---------------------------------------------------------------- parse
    def _parse(
        self, lines: Sequence[bytes], oversize: Sequence[bool], rejects: list[Reject]
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
            if oversize and oversize[i]:
                rejects.append(Reject(i, "oversize", None, f"line longer than the limit ({len(line)}+ bytes)"))
                continue
            try:
                events.append(self._one.decode(line))
                index.append(i)
            except msgspec.ValidationError as exc:
                rejects.append(self._validation_reject(i, str(exc)))
            except msgspec.DecodeError as exc:
                rejects.append(Reject(i, "bad_json", None, f"invalid JSON: {exc}"))
            except RecursionError:
                rejects.append(Reject(i, "bad_json", None, "invalid JSON: nested too deeply"))
            except ValueError as exc:  # UnicodeDecodeError in a string the event's fields use
                rejects.append(Reject(i, "bad_json", None, f"invalid JSON: {exc}"))
        return events, index

    def _validation_reject(self, i: int, text: str) -> Reject:
        # msgspec: "Expected `float | null`, got `str` - at `$.flow.bytes`"
        where = text.rsplit(" - at `$", 1)
        path = where[1].rstrip("`").lstrip(".") if len(where) == 2 else ""
        if not path:
            return Reject(i, "not_object", None, f"event must be a JSON object: {text}")
        name = next((n for n, p in {**self.paths, **self.key_paths}.items() if p == path), path)
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
    def _columns(self, events: list[Any], index: list[int], rejects: list[Reject]) -> DecodedBatch:
        n = len(events)
        ok = np.ones(n, dtype=bool)
        num = self._numeric_block(events, ok, index, rejects)
        cat = np.empty((n, len(self.schema.categorical)), dtype=np.int64)
        cat_present = np.empty((n, len(self.schema.categorical)), dtype=bool)
        for j, f in enumerate(self.schema.categorical):
            values = [self._get[f.name](e) for e in events]
            if self.min_present:
                cat_present[:, j] = [v is not None for v in values]
            cat[:, j] = self._categorical_column(f, values, ok, index, rejects)
        if self.min_present:
            self._check_sparse(~np.isnan(num), cat_present, ok, index, rejects)
        keys = {k: [self._get[k](e) for e in events] for k in self.key_names if k in self._get}
        if not ok.all():
            keep = np.flatnonzero(ok)
            num, cat = num[keep], cat[keep]
            keys = {k: [v[i] for i in keep] for k, v in keys.items()}
            index = [index[i] for i in keep]
        rejects.sort(key=lambda r: r.index)
        return DecodedBatch(num, cat, index, keys, rejects)

    def _numeric_block(
        self, events: list[Any], ok: npt.NDArray[np.bool_], index: list[int], rejects: list[Reject]
    ) -> npt.NDArray[np.float32]:
        """All numeric features at once: one getter call per event, numpy turns
        None into NaN and parses numeric strings; anything numpy cannot take
        goes through the schema's own coercion, value by value."""
        feats = self.schema.numeric
        if not feats:
            return np.empty((len(events), 0), dtype=np.float32)
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
        block[~ok] = 0.0  # rejected rows are dropped; keep the cast below quiet
        return block.astype(np.float32)

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
        # Strings that are in the vocabulary take the dict lookup inline; anything
        # else (numbers, booleans, padded strings, unseen values) goes the long way.
        get = vocab.get
        out = np.array([get(v, -1) if type(v) is str else -1 for v in values], dtype=np.int64)
        for i in np.flatnonzero(out < 0):
            out[i] = _vocab_index(vocab, values[i])
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


_NUM, _BOOL, _CAT, _KEY = 0, 1, 2, 3  # target kinds of the C plan (_fastjson.c)


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


def _getter(attr_path: str) -> Callable[[Any], Any]:
    """attrgetter for a nested path whose intermediate structs may be None."""
    parts = attr_path.split(".")
    if len(parts) == 1:
        return operator.attrgetter(parts[0])

    def get(e: Any) -> Any:
        for p in parts:
            e = getattr(e, p)
            if e is None:
                return None
        return e

    return get
