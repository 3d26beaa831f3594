"""Red-team tests of the event model (a review of commit 182e1d7): the C tier
against the msgspec tier, the agent's decoder against the trainer's
RecordReader, and decode() against crafted input. Tests named *_bug_* each
reproduce a defect the review found (fixed since); the others pin edge cases."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest

from jenga_edge.contract.errors import ConfigError, SchemaError
from jenga_edge.contract.events import EventModel, Normalizer
from jenga_edge.contract.records import RecordReader
from jenga_edge.contract.schema import OOV_INDEX, OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.contract.typed import convert
from jenga_edge.contract.values import parse_time
from jenga_edge.decode import DecodedBatch, EventDecoder
from jenga_edge.native import fastjson

needs_c = pytest.mark.skipif(fastjson is None, reason="the C extension is not built")


def model(spec: dict[str, Any]) -> EventModel:
    return convert(EventModel, spec, source="events", error=SchemaError)


def decoder(spec: dict[str, Any], features: list[Feature], **kw: Any) -> EventDecoder:
    return EventDecoder(FeatureSchema(tuple(features), events=model(spec)), **kw)


def enc(records: list[Any]) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def summary(b: DecodedBatch) -> dict[str, Any]:
    return {
        "num": [["nan" if math.isnan(x) else x for x in row] for row in b.num.tolist()],
        "cat": b.cat.tolist(),
        "index": b.index,
        "filtered": sorted(b.filtered),
        "keys": {k: ["nan" if isinstance(v, float) and math.isnan(v) else v for v in col] for k, col in b.keys.items()},
        "rejects": [(r.index, r.reason, r.field, r.message) for r in b.rejects],
    }


def assert_accounted(b: DecodedBatch, n: int) -> None:
    rejected = [r.index for r in b.rejects]
    assert len(rejected) == len(set(rejected))
    assert len(b.index) + len(b.filtered) + len(rejected) == n == len(set(b.index) | set(b.filtered) | set(rejected))


X = Feature("x", "numeric")


# ============================================================ crashes: exceptions escaping decode()


def test_bug_where_numeric_operator_on_a_huge_integer_escapes_decode():
    # conditions._test catches TypeError/ValueError from float(), not OverflowError;
    # msgspec decodes integers of up to 4300 digits. One such line fails the whole batch.
    dec = decoder({"where": {"severity": {"gte": 2}}}, [X])
    line = b'{"x": 1, "severity": 1' + b"0" * 400 + b"}"
    for decode in (dec.decode, dec._decode_slow):
        batch = decode([line, b'{"x": 2, "severity": 3}'])
        assert_accounted(batch, 2)
        assert batch.index == [0, 1]  # 10**400 >= 2


def test_bug_huge_integer_input_of_a_derived_field_escapes_decode():
    # decode._aux_block catches EventError only; to_number() -> float(10**400) raises OverflowError.
    dec = decoder(
        {"derive": {"r": {"kind": "ratio", "num": ["a"], "den": ["b"]}}},
        [Feature("r", "numeric", allow_missing=True), X],
    )
    line = b'{"x": 1, "b": 1, "a": 1' + b"0" * 400 + b"}"
    for decode in (dec.decode, dec._decode_slow):
        batch = decode([line, b'{"x": 1, "a": 1, "b": 2}'])
        assert_accounted(batch, 2)


def test_bug_deeply_nested_where_value_escapes_decode():
    # A where field holding ~990 nested arrays fails the main decode (a Scalar is
    # expected), _filtered_out decodes it as Any, and category_key() -> str(list)
    # raises RecursionError outside any handler. The window sits just under the
    # depth msgspec refuses, wherever the caller's stack is: sweep it.
    dec = decoder({"where": {"event_type": "flow"}}, [X])
    escaped = []
    for depth in range(600, 1001):
        line = b'{"x": 1, "event_type": ' + b"[" * depth + b"]" * depth + b"}"
        try:
            batch = dec.decode([line])
        except RecursionError:
            escaped.append(depth)
            continue
        assert_accounted(batch, 1)
    assert escaped == []


def test_bug_time_regex_is_quadratic_on_padding():
    # values._ISO_RE: "\s*(offset)?\s*$" backtracks O(n^2) over a run of spaces
    # that does not end the string; a 64 KiB line (the default max_line_bytes)
    # costs ~25 s of the decode thread. C falls back (a space), so Python pays.
    s = "2024-01-01T00:00:00" + " " * 12_000 + "x"
    t0 = time.perf_counter()
    assert parse_time(s) is None
    assert time.perf_counter() - t0 < 0.1


# ============================================================ C tier vs Python tier: vocabularies


@needs_c
def test_bug_map_source_that_is_also_a_category_differs_between_tiers():
    # _vocabulary() folds map sources in with setdefault, so a source that is a
    # category keeps its own index: C reads raw "22" -> "22"; Python normalizes
    # "22" -> "ssh" first. (Numbers give category "22" in training.)
    dec = decoder(
        {"normalize": {"port": {"map": {"22": "ssh"}}}},
        [Feature("port", "categorical", categories=(OOV_TOKEN, "22", "ssh")), X],
    )
    assert dec._plan is not None
    data = enc([{"x": 1, "port": "22"}])
    fast, slow = dec.decode(data), dec._decode_slow(data)
    assert slow.cat.tolist() == [[2]]  # ssh, as Normalizer.apply says
    assert fast.cat.tolist() == slow.cat.tolist()


@needs_c
def test_bug_map_chain_differs_between_tiers_and_from_the_trainer():
    # map {a: b, b: c}: Normalizer.apply maps once (a -> b). The folded vocabulary
    # holds b -> idx(c), so tier 2 looks the normalized "b" up as a *source* and
    # maps twice (a -> c); C and the trainer give "b" (here OOV).
    spec = {"normalize": {"p": {"map": {"a": "b", "b": "c"}}}}
    feats = [Feature("p", "categorical", categories=(OOV_TOKEN, "c")), X]
    dec = decoder(spec, feats)
    records = [{"x": 1, "p": "a"}]
    rows = RecordReader(model(spec)).read(records).rows
    _, trainer_cat = dec.schema.vectorize(rows, strict=False)
    fast, slow = dec.decode(enc(records)), dec._decode_slow(enc(records))
    assert trainer_cat.tolist() == [[OOV_INDEX]]
    assert slow.cat.tolist() == trainer_cat.tolist()
    assert fast.cat.tolist() == slow.cat.tolist()


@needs_c
def test_a_map_source_no_value_can_reach_is_refused_at_load():
    # strip (and lower) run before the map: a source "tcp " could only ever be hit by
    # the C tier's raw lookup. Such a key is refused when the model loads.
    with pytest.raises(SchemaError, match=r"normalize\.p\.map\.'tcp ': no value reaches this key"):
        model({"normalize": {"p": {"map": {"tcp ": "udp"}}}})
    with pytest.raises(SchemaError, match=r"normalize\.p\.map\.'TCP'"):
        model({"normalize": {"p": {"lower": True, "map": {"TCP": "udp"}}}})


def test_bug_map_applies_to_numbers_at_the_edge_only():
    # Normalizer.apply leaves non-strings alone (the trainer's int 22 -> "22" -> OOV
    # here); the agent's _vocab_index finds category_key(22) == "22" among the folded
    # map sources and reads it as "ssh".
    spec = {"normalize": {"port": {"map": {"22": "ssh"}}}}
    feats = [Feature("port", "categorical", categories=(OOV_TOKEN, "ssh")), X]
    dec = decoder(spec, feats)
    records = [{"x": 1, "port": 22}]
    _, trainer_cat = dec.schema.vectorize(RecordReader(model(spec)).read(records).rows, strict=False)
    assert dec.decode(enc(records)).cat.tolist() == trainer_cat.tolist()


# ============================================================ where: filtered, never rejected


@pytest.mark.parametrize(
    "record",
    [
        {"x": 1, "alert": "not an object"},
        {"x": 1, "alert": [1, 2]},
        {"x": 1, "alert": 7},
    ],
)
def test_bug_where_path_through_a_non_object_is_rejected_not_filtered(record):
    # The trainer's get_path gives None (the condition fails: filtered); the agent's
    # filter decoder types 'alert' as an object, fails, and the line is a reject.
    spec = {"where": {"alert.severity": 1}}
    dec = decoder(spec, [X])
    assert RecordReader(model(spec)).read([record]).filtered == 1
    batch = dec.decode(enc([record]))
    assert_accounted(batch, 1)
    assert batch.filtered == [0] and batch.rejects == []


@pytest.mark.parametrize("queries", [[None], ["text"], [5], "not a list", [{"rrname": "b.example"}, 3]])
def test_bug_where_on_a_list_element_with_odd_elements_is_rejected_not_filtered(queries):
    spec = {"where": {"qname": "a.example"}, "mapping": {"qname": "dns.queries[].rrname"}}
    dec = decoder(spec, [X])
    record = {"x": 1, "dns": {"queries": queries}}
    assert RecordReader(model(spec)).read([record]).filtered == 1
    batch = dec.decode(enc([record]))
    assert batch.filtered == [0] and batch.rejects == []


def test_bug_list_path_rejects_for_an_element_it_does_not_read():
    # qname reads element 0; msgspec validates every element of list[Struct], so a
    # later non-object element rejects the line (naming 'dns.queries[1]'); the
    # trainer reads element 0.
    spec = {"mapping": {"qname": "dns.queries[].rrname"}}
    feats = [Feature("qname", "categorical", categories=(OOV_TOKEN, "a.example")), X]
    dec = decoder(spec, feats)
    record = {"x": 1, "dns": {"queries": [{"rrname": "a.example"}, "junk"]}}
    assert RecordReader(model(spec)).read([record]).rows[0]["qname"] == "a.example"
    batch = dec.decode(enc([record]))
    assert batch.rejects == [] and batch.cat.tolist() == [[1]]


def test_bug_wrong_type_message_for_an_intermediate_object_contradicts_itself():
    # "field 'flow' is a str, expected a string or number": 'flow' must be an object.
    dec = decoder({"mapping": {"bts": "flow.bytes_toserver"}}, [Feature("bts", "numeric")])
    (reject,) = dec.decode(enc([{"flow": "oops"}])).rejects
    assert reject.reason == "wrong_type"
    assert "expected a string or number" not in reject.message


def test_filtered_records_are_filtered_whatever_their_other_fields_hold():
    """Passing pin: odd types outside the where path never turn a filtered record into a reject."""
    spec = {"where": {"event_type": "flow"}, "mapping": {"q": "dns.queries[].rrname"}}
    dec = decoder(spec, [X, Feature("q", "categorical", categories=(OOV_TOKEN,), allow_missing=True)])
    odd = [
        {"event_type": "dns", "x": {"a": 1}},
        {"event_type": "dns", "x": [None]},
        {"event_type": "dns", "dns": {"queries": [None, 5]}},
        {"event_type": "dns", "dns": "x", "x": "nan"},
        {"event_type": None, "x": 1},
        {"x": 1},
    ]
    data = [*enc(odd), b'{"event_type": "dns", "x": 1e400}', b'{"event_type": "dns", "x": 1' + b"0" * 400 + b"}"]
    batch = dec.decode(data)
    assert_accounted(batch, len(data))
    assert sorted(batch.filtered) == list(range(len(data)))


@needs_c
def test_accounting_holds_for_a_mixed_batch_in_both_tiers():
    """Passing pin: read = scored + filtered + rejected, oversize lines rejected, tiers agree."""
    spec = {
        "where": {"event_type": "flow"},
        "normalize": {"proto": {"lower": True}, "event_type": {"lower": True}},
        "derive": {"d": {"kind": "duration", "start": "t0", "end": "t1"}},
    }
    feats = [Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp")), Feature("d", "numeric"), X]
    dec = decoder(spec, feats, key_fields=["d"])
    assert dec._plan is not None
    good = {
        "event_type": "FLOW",
        "proto": "TCP",
        "x": 1,
        "t0": "2024-02-29T00:00:00Z",
        "t1": "2024-03-01 00:00:00+01:00",
    }
    data = [
        *enc(
            [good, {**good, "event_type": "dns", "x": "?"}, {**good, "t1": "2023-02-29T00:00:00"}, {**good, "x": [1]}]
        ),
        b"{not json",
        b"[1, 2]",
        json.dumps(good).encode() + b" x",
        json.dumps(good).encode(),
        b"\xff" + json.dumps(good).encode(),
    ]
    oversize = [False] * (len(data) - 2) + [True, False]
    fast, slow = dec.decode(data, oversize), dec._decode_slow(data, oversize)
    assert summary(fast) == summary(slow)
    assert_accounted(fast, len(data))
    assert fast.index == [0] and fast.filtered == [1] and fast.keys["d"] == [82800.0]
    assert {r.index: r.reason for r in fast.rejects}[7] == "oversize"
    assert {r.index: r.reason for r in fast.rejects}[2] == "bad_timestamp"


# ============================================================ derived fields: trainer = agent


def test_bug_derived_value_beyond_float32_is_inf_in_training_missing_at_the_edge():
    # The agent's _derive turns |v| > float32 max into NaN (missing); derive.compute
    # (shared with the trainer) does not, so the trainer's float32 array holds inf.
    spec = {"derive": {"s": {"kind": "sum", "of": ["a", "b"]}}}
    feats = [Feature("s", "numeric", allow_missing=True), Feature("a", "numeric"), Feature("b", "numeric")]
    dec = decoder(spec, feats)
    records = [{"a": 2e38, "b": 2e38}]
    agent = dec.decode(enc(records))
    assert math.isnan(agent.num[0, 0])
    rows = RecordReader(model(spec)).read(records).rows
    with np.errstate(over="ignore"):
        trainer_num, _ = dec.schema.vectorize(rows, strict=False)
    assert math.isnan(trainer_num[0, 0])


def test_bug_ratio_with_an_infinite_input_is_zero_in_training_missing_at_the_edge():
    # The agent turns a non-finite input into NaN before deriving (_aux_block); the
    # trainer's RecordReader._number keeps inf, and 1 / inf == 0.0 is finite.
    spec = {"derive": {"r": {"kind": "ratio", "num": ["a"], "den": ["b"]}}}
    dec = decoder(spec, [Feature("r", "numeric", allow_missing=True), X], key_fields=["r"])
    records = [{"x": 1, "a": 1, "b": "inf"}]
    assert dec.decode(enc(records)).keys["r"] == [None]
    assert RecordReader(model(spec)).read(records).rows[0]["r"] is None


def test_a_normalizer_on_a_numeric_or_boolean_feature_is_refused_on_both_sides():
    # The C tier reads numbers straight from the line: a normalizer there would apply
    # in training only. Normalizers are for categories and raw fields.
    spec = {"normalize": {"port": {"map": {"ssh": "22"}}}}
    with pytest.raises(SchemaError, match=r"events\.normalize\.port: is read as a number"):
        FeatureSchema((Feature("port", "numeric"), X), events=model(spec))
    flat = FeatureSchema((Feature("on", "boolean"), X))  # a bundle without a model: the agent's own normalizer
    with pytest.raises(ConfigError, match=r"event\.normalize\.on: is read as a number"):
        EventDecoder(flat, normalize={"on": convert(Normalizer, {"lower": True})})
    with pytest.raises(SchemaError, match=r"normalize\.a: is read as a number"):
        model({"normalize": {"a": {}}, "derive": {"r": {"kind": "ratio", "num": ["a"], "den": ["b"]}}})


@needs_c
def test_bug_reject_names_a_different_field_in_each_tier():
    # Both a required derived feature and a later required read feature missing:
    # tier 1's _check_missing goes in column order (duration), tier 2 reports read
    # features first (bts).
    spec = {"derive": {"duration": {"kind": "duration", "start": "s", "end": "e"}}}
    feats = [Feature("duration", "numeric", allow_missing=False), Feature("bts", "numeric", allow_missing=False)]
    dec = decoder(spec, feats)
    data = [b'{"e": 5}']
    assert summary(dec.decode(data))["rejects"] == summary(dec._decode_slow(data))["rejects"]


# ============================================================ pins: C times and lower-case = Python


TIMES = [
    "2024-02-29T23:59:59Z",
    "2023-02-28t00:00:00z",
    "2000-02-29 12:00:00+00:00",
    "1900-03-01T00:00:00-23:59",
    "2100-12-31T23:59:59+2359",
    "0002-01-01T00:00:00Z",
    "9998-12-31T23:59:59.999999-00:00",
    "1969-12-31T23:59:59.5",
    "1970-01-01T00:00:00,25+00:99",
    "2011-09-27T18:07:22.913053+0000",
    "2024-01-01T00:00:00." + "9" * 61,
    "2024-01-01T00:00:00." + "1" * 62,
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "2023-02-29T00:00:00",
    "1900-02-29T00:00:00",
    "2024-13-01T00:00:00",
    "2024-01-01T24:00:00",
    "2024-01-01T00:00:60",
    "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00+05:3",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00:00 Z",
    " 2024-01-01T00:00:00 ",
    "\uff12\uff10\uff12\uff14-01-01T00:00:00",  # fullwidth digits: Python's \d takes them
    "2024-01-01T00:00:00\u00a0",
    "2024-1-01T00:00:00",
]


@needs_c
def test_c_times_equal_python_times():
    """Passing pin: on every line C accepts, its epoch seconds equal parse_time's, bit for bit."""
    spec = {"derive": {"d": {"kind": "duration", "start": "t0", "end": "t1"}}}
    dec = decoder(spec, [Feature("d", "numeric", allow_missing=True), X], key_fields=["d"])
    data = enc([{"x": 1, "t0": 0, "t1": t} for t in TIMES])
    fast, slow = dec.decode(data), dec._decode_slow(data)
    assert summary(fast) == summary(slow)
    expect = [parse_time(t) for t in TIMES]
    got = dict(zip(fast.index, fast.keys["d"]))
    for i, e in enumerate(expect):
        if e is not None:
            assert got[i] == e, TIMES[i]
        else:
            assert i not in got, TIMES[i]


@needs_c
def test_c_lower_case_equals_python_lower_case():
    """Passing pin: ASCII folding in C, everything else (Kelvin sign, dotted I, long values) in Python."""
    cats = (OOV_TOKEN, "tcp", "k", "i̇", "x" * 300, "@[`{")
    dec = decoder(
        {"normalize": {"p": {"lower": True}}},
        [Feature("p", "categorical", categories=cats), X],
        key_fields=["p"],
    )
    values = ["TCP", "tCp", " TCP", "TCP ", "\u212a", "K", "\u0130", "X" * 300, "X" * 256, "@[`{", "@{`[", "", "ÜDP"]
    data = [json.dumps({"x": 1, "p": v}, ensure_ascii=False).encode() for v in values]
    fast, slow = dec.decode(data), dec._decode_slow(data)
    assert summary(fast) == summary(slow)
    assert fast.cat[:, 0].tolist() == [1, 1, 1, 1, 2, 2, 3, 4, 0, 5, 0, 0, 0]
