"""Tests for jenga_edge/decode.py: JSON lines -> the graph's input arrays, a reason for every reject."""

from __future__ import annotations

import json
import random
import warnings
from collections import Counter

import numpy as np
import pytest

from jenga_edge.contract.schema import OOV_INDEX, OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.decode import DecodedBatch, EventDecoder


def make_schema(strict_field: bool = True) -> FeatureSchema:
    """Numeric (one not allowed to be missing), boolean and categorical features."""
    return FeatureSchema(
        (
            Feature("packet_size", "numeric", "standard", impute=500.0, mean=500.0, std=100.0),
            Feature("port", "categorical", categories=(OOV_TOKEN, "22", "80", "443")),
            Feature("duration", "numeric", "log1p"),
            Feature("request_count", "numeric", allow_missing=not strict_field),
            Feature("protocol", "categorical", categories=(OOV_TOKEN, "tcp", "udp")),
            Feature("syn", "boolean"),
            Feature("bytes_sent", "numeric"),
        )
    )


SCHEMA = make_schema()
NUM_NAMES = [f.name for f in SCHEMA.numeric]


def lines_of(rows) -> list[bytes]:
    return [json.dumps(r).encode() for r in rows]


def assert_same_arrays(batch: DecodedBatch, schema: FeatureSchema, rows) -> None:
    num, cat = schema.vectorize(rows, strict=True)
    assert batch.num.dtype == np.float32 and batch.cat.dtype == np.int64
    assert batch.num.shape == num.shape and batch.cat.shape == cat.shape
    np.testing.assert_array_equal(batch.num, num)  # NaN == NaN here
    np.testing.assert_array_equal(batch.cat, cat)


# --- valid events: the same arrays as schema.vectorize(strict=True) ----------------------------


def random_valid_row(rng: random.Random) -> dict:
    row: dict = {
        "request_count": rng.choice(
            [rng.randint(0, 10_000), float(rng.randint(0, 50)), str(rng.randint(0, 99)), f"{rng.uniform(0, 9):.3f}"]
        )
    }
    if rng.random() < 0.85:
        row["packet_size"] = rng.choice([rng.uniform(40, 1500), rng.randint(40, 1500), "1234.5", "-7", True, False])
    if rng.random() < 0.85:
        row["duration"] = rng.choice([rng.expovariate(1.0), 0, "0.25", 1e-30, -1.5, 3.0e38])
    if rng.random() < 0.85:
        row["bytes_sent"] = rng.choice([rng.randint(0, 10**9), 2**53, "1e6", None])
    if rng.random() < 0.85:
        row["port"] = rng.choice([22, 22.0, "22", 80, "443", 443.0, 8080, "ssh", True, 1.5, None])
    if rng.random() < 0.85:
        row["protocol"] = rng.choice(["tcp", "udp", "icmp", "", 6, None])
    if rng.random() < 0.85:
        row["syn"] = rng.choice([True, False, 0, 1, "true", "false", None])
    if rng.random() < 0.3:
        row["unrelated"] = {"deep": [1, 2, {"x": None}], "s": "text"}
    return row


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valid_events_give_exactly_the_vectorized_arrays(seed):
    rng = random.Random(seed)
    rows = [random_valid_row(rng) for _ in range(300)]
    batch = EventDecoder(SCHEMA).decode(lines_of(rows))
    assert batch.rejects == []
    assert batch.index == list(range(len(rows))) and len(batch) == len(rows)
    assert_same_arrays(batch, SCHEMA, rows)


def test_missing_allowed_fields_are_nan_and_unseen_categories_are_zero():
    rows = [{"request_count": 3}, {"request_count": 4, "port": 9999, "protocol": "sctp", "packet_size": None}]
    batch = EventDecoder(SCHEMA).decode(lines_of(rows))
    assert batch.rejects == []
    rc = NUM_NAMES.index("request_count")
    assert np.isnan(np.delete(batch.num, rc, axis=1)).all()  # every numeric but request_count
    assert batch.num[:, rc].tolist() == [3.0, 4.0]
    assert (batch.cat == OOV_INDEX).all()
    assert_same_arrays(batch, SCHEMA, rows)


def test_numeric_strings_and_booleans_are_numbers():
    rows = [
        {"request_count": "12", "packet_size": "1.5e3", "duration": True, "bytes_sent": False},
        {"request_count": "-0.25", "packet_size": 7, "duration": "0", "bytes_sent": "3"},
    ]
    batch = EventDecoder(SCHEMA).decode(lines_of(rows))
    assert batch.rejects == []
    got = dict(zip(NUM_NAMES, batch.num[0].tolist()))
    assert np.isnan(got.pop("syn"))
    assert got == {"packet_size": 1500.0, "duration": 1.0, "request_count": 12.0, "bytes_sent": 0.0}
    assert batch.num[1, NUM_NAMES.index("request_count")] == -0.25
    assert_same_arrays(batch, SCHEMA, rows)


def test_22_22point0_and_string_22_are_the_same_category():
    rows = [
        {"request_count": 1, "port": 22},
        {"request_count": 1, "port": 22.0},
        {"request_count": 1, "port": "22"},
        {"request_count": 1, "port": " 22 "},
        {"request_count": 1, "port": 22.5},
    ]
    batch = EventDecoder(SCHEMA).decode(lines_of(rows))
    port = SCHEMA.categorical.index(next(f for f in SCHEMA.categorical if f.name == "port"))
    assert batch.cat[:, port].tolist() == [1, 1, 1, 1, OOV_INDEX]
    assert_same_arrays(batch, SCHEMA, rows)


def test_the_decoder_counts_the_lines_each_tier_decodes():
    # The C tier (when built) takes plain events, ports given as numbers included; a numeric
    # string, bad JSON and an oversize line go to msgspec. Every line is counted once.
    dec = EventDecoder(SCHEMA)
    plain = lines_of([{"request_count": 1, "port": p, "protocol": "tcp"} for p in (22, 8081, 443.0, "80")])
    odd = [b'{"request_count": "7"}', b"not json", b'{"request_count": 2}']
    dec.decode(plain + odd, [False] * 6 + [True])
    dec.decode([])
    dec.decode(plain[:1])
    c = 5 if dec._plan is not None else 0  # JENGA_EDGE_PURE=1 or no C compiler: msgspec alone
    assert dec.tier_lines == {"c": c, "msgspec": 8 - c}


def test_boolean_feature_accepts_true_false_and_0_1():
    rows = [{"request_count": 1, "syn": v} for v in (True, False, 1, 0, "true", "false", "TRUE", "1", "0")]
    batch = EventDecoder(SCHEMA).decode(lines_of(rows))
    assert batch.rejects == []
    syn = NUM_NAMES.index("syn")
    assert batch.num[:, syn].tolist() == [1, 0, 1, 0, 1, 0, 1, 1, 0]


def test_numbers_far_below_float32_range_are_kept():
    batch = EventDecoder(SCHEMA).decode([b'{"request_count": 1e-50, "packet_size": -3e38}'])
    assert batch.rejects == []
    assert batch.num[0, NUM_NAMES.index("request_count")] == 0.0
    assert batch.num[0, NUM_NAMES.index("packet_size")] == np.float32(-3e38)


def test_empty_batch():
    batch = EventDecoder(SCHEMA).decode([])
    assert len(batch) == 0 and batch.rejects == []
    assert batch.num.shape == (0, len(SCHEMA.numeric)) and batch.cat.shape == (0, len(SCHEMA.categorical))


def test_schema_with_only_one_kind_of_feature():
    only_num = FeatureSchema((Feature("x", "numeric"),))
    b = EventDecoder(only_num).decode([b'{"x": 2}', b'{"x": "3"}', b"{}"])
    assert b.num.ravel().tolist()[:2] == [2.0, 3.0] and np.isnan(b.num[2, 0])
    assert b.cat.shape == (3, 0)
    only_cat = FeatureSchema((Feature("c", "categorical", categories=(OOV_TOKEN, "a")),))
    b = EventDecoder(only_cat).decode([b'{"c": "a"}', b'{"c": "b"}'])
    assert b.cat.ravel().tolist() == [1, 0] and b.num.shape == (2, 0)


# --- nested mapping paths ---------------------------------------------------------------------

MAPPING = {
    "bytes_sent": "flow.bytes_toserver",
    "duration": "flow.age",
    "port": "dest_port",
    "request_count": "flow.stats.pkts",
}


def test_nested_mapping_reads_dotted_paths():
    schema = make_schema(strict_field=False)
    dec = EventDecoder(schema, MAPPING)
    event = {
        "flow": {"bytes_toserver": 1200, "age": "3.5", "stats": {"pkts": 9}},
        "dest_port": 443,
        "bytes_sent": 99999,
        "port": 22,
        "protocol": "tcp",
    }  # top-level names are not read
    batch = dec.decode(lines_of([event]))
    assert batch.rejects == []
    flat = {"bytes_sent": 1200, "duration": "3.5", "request_count": 9, "port": 443, "protocol": "tcp"}
    assert_same_arrays(batch, schema, [flat])


@pytest.mark.parametrize(
    "event", [{"dest_port": 22}, {"flow": None}, {"flow": {}}, {"flow": {"stats": None}}, {"flow": {"stats": {}}}]
)
def test_a_missing_intermediate_object_means_missing_fields(event):
    schema = make_schema(strict_field=False)
    batch = EventDecoder(schema, MAPPING).decode(lines_of([event]))
    assert batch.rejects == [] and len(batch) == 1
    names = [f.name for f in schema.numeric]
    for name in ("bytes_sent", "duration", "request_count"):
        assert np.isnan(batch.num[0, names.index(name)])


def test_a_missing_intermediate_object_is_missing_field_when_not_allowed():
    lines = lines_of([{"flow": {"stats": {"pkts": 1}}}, {"flow": {"age": 1}}, {"flow": {"stats": None}}, {}])
    batch = EventDecoder(SCHEMA, MAPPING).decode(lines)
    assert batch.index == [0]
    assert [(r.index, r.reason, r.field) for r in batch.rejects] == [
        (1, "missing_field", "request_count"),
        (2, "missing_field", "request_count"),
        (3, "missing_field", "request_count"),
    ]


@pytest.mark.parametrize("flow", [5, "x", [1, 2], True])
def test_an_intermediate_that_is_not_an_object_is_wrong_type(flow):
    schema = make_schema(strict_field=False)
    batch = EventDecoder(schema, MAPPING).decode(lines_of([{"flow": flow}, {"flow": {"age": 1}}]))
    assert batch.index == [1]
    (r,) = batch.rejects
    assert (r.index, r.reason) == (0, "wrong_type")
    assert "flow" in r.field and "flow" in r.message


# --- key fields ---------------------------------------------------------------------------------


def test_key_fields_are_extracted_raw_and_aligned_after_rejects():
    dec = EventDecoder(SCHEMA, {"port": "dest_port"}, key_fields=["src_ip", "dest_port", "protocol", "flow.id"])
    events = [
        {"src_ip": "10.0.0.1", "dest_port": 22, "request_count": 1, "protocol": "tcp", "flow": {"id": 7}},
        {"src_ip": "10.0.0.2", "dest_port": 22, "request_count": "oops"},  # rejected
        {"src_ip": "10.0.0.3", "dest_port": "22", "request_count": 1, "protocol": 6},
        "not json at all",  # rejected
        {"dest_port": 22.0, "request_count": 1},
        {"src_ip": "2001:db8::1", "dest_port": 22.5, "request_count": 1, "flow": {}},
    ]
    lines = [json.dumps(e).encode() if isinstance(e, dict) else e.encode() for e in events]
    batch = dec.decode(lines)
    assert batch.index == [0, 2, 4, 5]
    assert batch.keys["src_ip"] == ["10.0.0.1", "10.0.0.3", None, "2001:db8::1"]
    assert batch.keys["dest_port"] == [22, "22", 22.0, 22.5]  # raw: not a category index
    assert batch.keys["protocol"] == ["tcp", 6, None, None]  # a feature name as a key: raw too
    assert batch.keys["flow.id"] == [7, None, None, None]
    assert set(batch.keys) == {"src_ip", "dest_port", "protocol", "flow.id"}
    port = [f.name for f in SCHEMA.categorical].index("port")
    assert batch.cat[:, port].tolist() == [1, 1, 1, OOV_INDEX]  # port read from dest_port
    assert len(batch.num) == len(batch.cat) == len(batch.index)


def test_a_key_field_holding_an_object_is_wrong_type():
    batch = EventDecoder(SCHEMA, key_fields=["src_ip"]).decode(
        [b'{"request_count": 1, "src_ip": {"v4": "1.2.3.4"}}', b'{"request_count": 1, "src_ip": "1.2.3.4"}']
    )
    assert batch.index == [1] and batch.keys["src_ip"] == ["1.2.3.4"]
    assert (batch.rejects[0].reason, batch.rejects[0].field) == ("wrong_type", "src_ip")


# --- the malformed corpus: exact counts and reasons ----------------------------------------------

GOOD = b'{"request_count": 5, "port": 22, "protocol": "tcp"}'

CORPUS: list[tuple[bytes, str | None, str | None]] = [
    # line, expected reason (None: accepted), expected field
    (GOOD, None, None),
    (b'{"request_count": 5', "bad_json", None),
    (b"{bad json}", "bad_json", None),
    (b'{"request_count": NaN}', "bad_json", None),  # bare NaN is not JSON
    (b"", "bad_json", None),
    (b"[1, 2, 3]", "not_object", None),
    (b'[{"request_count": 5}]', "not_object", None),
    (b"42", "not_object", None),
    (b'"a string"', "not_object", None),
    (b"null", "not_object", None),
    (b'{"request_count": "many"}', "wrong_type", "request_count"),
    (b'{"request_count": 1, "packet_size": "12 bytes"}', "wrong_type", "packet_size"),
    (b'{"request_count": 1, "packet_size": [1]}', "wrong_type", "packet_size"),
    (b'{"request_count": 1, "packet_size": {"v": 1}}', "wrong_type", "packet_size"),
    (b'{"request_count": 1, "port": {"n": 22}}', "wrong_type", "port"),
    (b'{"request_count": 1, "protocol": ["tcp"]}', "wrong_type", "protocol"),
    (b'{"request_count": 1, "syn": "maybe"}', "wrong_type", "syn"),
    (b'{"request_count": 1, "syn": 2}', "wrong_type", "syn"),
    (b'{"request_count": "NaN"}', "non_finite", "request_count"),
    (b'{"request_count": "nan"}', "non_finite", "request_count"),
    (b'{"request_count": "inf"}', "non_finite", "request_count"),
    (b'{"request_count": 1, "duration": "-Infinity"}', "non_finite", "duration"),
    (b'{"request_count": 1e400}', "non_finite", "request_count"),
    (b'{"request_count": 1, "bytes_sent": -1e400}', "non_finite", "bytes_sent"),
    (b'{"request_count": 1e39}', "non_finite", "request_count"),  # finite float64, not float32
    (b'{"request_count": 1, "packet_size": -4e38}', "non_finite", "packet_size"),
    (b'{"request_count": "1e39"}', "non_finite", "request_count"),
    (b'{"request_count": 1' + b"0" * 400 + b"}", "non_finite", "request_count"),  # a huge integer
    (b'{"packet_size": 1}', "missing_field", "request_count"),
    (b'{"request_count": null}', "missing_field", "request_count"),
    (b"{}", "missing_field", "request_count"),
]


def decode_quietly(dec: EventDecoder, lines, oversize=(), tier2: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # see test_no_overflow_warning_for_rejected_rows
        return (dec._decode_slow if tier2 else dec.decode)(lines, oversize)


@pytest.mark.parametrize("line,reason,field", CORPUS, ids=[c[0][:40].decode(errors="replace") for c in CORPUS])
def test_each_malformed_line_alone(line, reason, field):
    batch = decode_quietly(EventDecoder(SCHEMA), [line])
    if reason is None:
        assert batch.index == [0] and batch.rejects == []
        return
    assert batch.index == [] and len(batch.num) == 0 and len(batch.cat) == 0
    (r,) = batch.rejects
    assert (r.index, r.reason, r.field) == (0, reason, field)
    if field is not None:
        assert repr(field) in r.message  # the message names the field


def test_the_whole_corpus_in_one_batch_has_exact_counts():
    lines = [c[0] for c in CORPUS]
    oversize = [False] * len(lines) + [True, True]
    lines += [GOOD, b'{"request_count": 1, "packet_size": "x' + b"x" * 100]  # cut lines, flagged oversize
    batch = decode_quietly(EventDecoder(SCHEMA), lines, oversize)
    assert Counter(r.reason for r in batch.rejects) == {
        "bad_json": 4,
        "not_object": 5,
        "wrong_type": 8,
        "non_finite": 10,
        "missing_field": 3,
        "oversize": 2,
    }
    assert batch.index == [0]
    expected = [(i, reason, field) for i, (_, reason, field) in enumerate(CORPUS) if reason]
    expected += [(len(CORPUS), "oversize", None), (len(CORPUS) + 1, "oversize", None)]
    assert [(r.index, r.reason, r.field) for r in batch.rejects] == expected


def test_an_oversize_line_is_rejected_even_when_it_parses():
    lines = [GOOD, GOOD, GOOD]
    batch = EventDecoder(SCHEMA).decode(lines, [False, True, False])
    assert batch.index == [0, 2]
    (r,) = batch.rejects
    assert (r.index, r.reason, r.field) == (1, "oversize", None)
    assert "limit" in r.message


def test_wrong_type_message_says_what_was_expected():
    (r,) = EventDecoder(SCHEMA).decode([b'{"request_count": "many"}']).rejects
    assert "request_count" in r.message and "number" in r.message
    (r,) = EventDecoder(SCHEMA).decode([b'{"request_count": 1, "port": {"n": 22}}']).rejects
    assert "port" in r.message and "string or number" in r.message


# --- accounting: every line accepted or rejected, exactly once -----------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_every_line_is_accepted_or_rejected_exactly_once(seed):
    rng = random.Random(seed)
    dec = EventDecoder(SCHEMA, key_fields=["src_ip"])
    n = rng.randint(1, 200)
    picks, lines, oversize = [], [], []
    for i in range(n):
        if rng.random() < 0.5:
            row = random_valid_row(rng)
            row["src_ip"] = f"ip{i}"
            line, reason, field = json.dumps(row).encode(), None, None
        else:
            line, reason, field = rng.choice(CORPUS)
        big = rng.random() < 0.05
        picks.append(("oversize", None) if big else (reason, field))
        lines.append(line)
        oversize.append(big)
    batch = decode_quietly(dec, lines, oversize if any(oversize) else ())
    accepted, rejected = set(batch.index), [r.index for r in batch.rejects]
    assert len(rejected) == len(set(rejected))  # never twice
    assert not accepted & set(rejected)  # never both
    assert accepted | set(rejected) == set(range(n))  # never neither
    assert rejected == sorted(rejected) and batch.index == sorted(batch.index)
    assert len(batch.num) == len(batch.cat) == len(batch.index) == len(batch.keys["src_ip"])
    for r in batch.rejects:
        assert (r.reason, r.field) == picks[r.index]
    for i in batch.index:
        assert picks[i][0] is None
    good_srcs = [json.loads(lines[i]).get("src_ip") for i in batch.index]
    assert batch.keys["src_ip"] == good_srcs


# --- tier 2 (msgspec): batch fast path vs line-by-line fallback ---------------------------------


class CountingDecoder:
    """Wraps msgspec's one-line decoder to see whether the fallback ran."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def decode(self, line):
        self.calls += 1
        return self.inner.decode(line)


@pytest.mark.parametrize("bad", [b"{oops", b'{"request_count": "x"}', b"[]", b'{"request_count": 1e39}'])
def test_tier2_fast_path_and_fallback_give_identical_arrays(bad):
    rng = random.Random(11)
    rows = [random_valid_row(rng) for _ in range(64)]
    for i, r in enumerate(rows):
        r["src_ip"] = f"10.0.{i}.1"
    fast = EventDecoder(SCHEMA, {"duration": "flow.age"}, key_fields=["src_ip"])
    fast._one = CountingDecoder(fast._one)
    a = fast._decode_slow([json.dumps({**r, "flow": {"age": r.get("duration")}}).encode() for r in rows])
    assert fast._one.calls == 64, "an all-good batch is decoded once, line by line"

    slow = EventDecoder(SCHEMA, {"duration": "flow.age"}, key_fields=["src_ip"])
    slow._one = CountingDecoder(slow._one)
    mixed = [json.dumps({**r, "flow": {"age": r.get("duration")}}).encode() for r in rows]
    mixed.insert(17, bad)
    b = decode_quietly(slow, mixed, tier2=True)
    if bad not in (b'{"request_count": 1e39}', b'{"request_count": "x"}'):  # these parse: the column checks reject them
        assert slow._one.calls > len(mixed)  # the batch was walked again for the reject's reason
    else:
        assert slow._one.calls == len(mixed)
    assert b.index == list(range(17)) + list(range(18, 65))
    assert [r.index for r in b.rejects] == [17]
    np.testing.assert_array_equal(a.num, b.num)
    np.testing.assert_array_equal(a.cat, b.cat)
    assert a.keys == b.keys
    assert_same_arrays(a, SCHEMA, rows)


def test_rejects_are_ordered_by_batch_index_across_stages():
    # parse-stage, numeric-stage and categorical-stage rejects interleaved
    lines = [
        GOOD,
        b'{"request_count": 1e39}',
        b"{oops",
        b'{"packet_size": 1}',
        b"[]",
        b'{"request_count": "inf"}',
        GOOD,
        b'{"request_count": 1, "port": {}}',
    ]
    batch = decode_quietly(EventDecoder(SCHEMA), lines, [False, False, False, False, False, False, False, False])
    assert [r.index for r in batch.rejects] == [1, 2, 3, 4, 5, 7]
    assert batch.index == [0, 6]


def test_categorical_not_allowed_missing():
    schema = FeatureSchema(
        (Feature("x", "numeric"), Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp"), allow_missing=False))
    )
    batch = EventDecoder(schema).decode([b'{"proto": "tcp"}', b'{"x": 1}', b'{"proto": null}', b'{"proto": "zz"}'])
    assert batch.index == [0, 3]
    assert [(r.index, r.reason, r.field) for r in batch.rejects] == [
        (1, "missing_field", "proto"),
        (2, "missing_field", "proto"),
    ]
    assert batch.cat.ravel().tolist() == [1, OOV_INDEX]


def test_a_row_with_two_problems_is_rejected_once():
    lines = [b'{"packet_size": 1e39}', b'{"request_count": 1e39, "bytes_sent": 1e39}']  # two problems each
    batch = decode_quietly(EventDecoder(SCHEMA), lines)
    assert [r.index for r in batch.rejects] == [0, 1]


# --- known bugs ----------------------------------------------------------------------------------


def shared_path_decoder() -> EventDecoder:
    schema = FeatureSchema((Feature("port", "numeric"), Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp"))))
    # `port: dest_port` with the default keys [src_ip, dest_ip, dest_port]: one path, a feature and a key.
    return EventDecoder(schema, {"port": "dest_port"}, key_fields=["src_ip", "dest_port"])


@pytest.mark.parametrize(
    "value,reason",
    [
        (b'"abc"', "wrong_type"),
        (b"1" + b"0" * 400, "non_finite"),
        (b'{"n": 1}', "wrong_type"),
        (b'"inf"', "non_finite"),
    ],
)
def test_a_feature_sharing_its_path_with_a_key_keeps_its_validation(value, reason):
    batch = decode_quietly(shared_path_decoder(), [b'{"dest_port": 22}', b'{"dest_port": ' + value + b"}"])
    assert batch.index == [0] and batch.num[:, 0].tolist() == [22.0]
    (r,) = batch.rejects
    assert (r.index, r.reason, r.field) == (1, reason, "port")


def test_a_key_sharing_its_path_with_a_numeric_feature_stays_raw():
    batch = shared_path_decoder().decode([b'{"dest_port": 22, "src_ip": "10.0.0.1"}', b'{"dest_port": "443"}'])
    assert batch.num[:, 0].tolist() == [22.0, 443.0]
    assert batch.keys["dest_port"] == [22, "443"]
    assert type(batch.keys["dest_port"][0]) is int


@pytest.mark.parametrize(
    "row",
    [
        {"request_count": 1, "syn": "yes"},
        {"request_count": 1, "syn": "n"},
        {"request_count": 1, "syn": 1.0},
        {"request_count": " 12 "},
    ],
)
def test_decoder_accepts_what_vectorize_accepts(row):
    SCHEMA.vectorize([row], strict=True)  # the schema contract accepts it
    batch = EventDecoder(SCHEMA).decode(lines_of([row]))
    assert batch.rejects == []
    assert_same_arrays(batch, SCHEMA, [row])


def test_no_overflow_warning_for_rejected_rows():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = EventDecoder(SCHEMA).decode([b'{"request_count": 1e39}', GOOD])
    assert batch.index == [1]


def test_crafted_lines_cannot_splice_into_their_neighbours():
    """Three lines that are each invalid JSON but would form valid array elements
    if the batch were joined: the middle (valid) event must be scored on its own
    and the two crafted lines rejected."""
    good = json.dumps({"packet_size": 1, "request_count": 5, "src_ip": "10.0.0.99"}).encode()
    first = (json.dumps({"packet_size": 2, "src_ip": "6.6.6.6"}) + ',{"packet_size": 3, "zzz": [0').encode()
    last = b"0]}"
    dec = EventDecoder(SCHEMA, key_fields=["src_ip"])
    out = dec.decode([first, good, last])
    assert out.index == [1] and out.keys["src_ip"] == ["10.0.0.99"]
    assert [r.index for r in out.rejects] == [0, 2]
    assert out.rejects[0].reason == "bad_json"
    assert out.rejects[1].reason in ("bad_json", "not_object")  # msgspec stops at the leading 0


def test_a_boolean_numeric_string_is_judged_the_same_alone_and_in_any_batch():
    # Tier 2's batch path (numpy) and its per-value path (to_boolean) must agree,
    # so an event's fate never depends on its batch-mates.
    dec = EventDecoder(SCHEMA)
    base = {"request_count": 1}
    zero, yes, bad = ({**base, "syn": v} for v in ("0.0", "yes", "2.0"))
    alone = decode_quietly(dec, lines_of([zero]), tier2=True)
    mixed = decode_quietly(dec, lines_of([zero, yes, bad]), tier2=True)
    assert alone.index == [0] and mixed.index == [0, 1]
    syn = NUM_NAMES.index("syn")
    assert alone.num[0, syn] == 0.0 and mixed.num[:, syn].tolist() == [0.0, 1.0]
    assert [(r.index, r.reason, r.field) for r in mixed.rejects] == [(2, "wrong_type", "syn")]


# --- too sparse: an event with few of the schema's fields is not imputed into a verdict ---------


def test_an_event_with_too_few_fields_is_rejected_naming_the_missing_ones():
    dec = EventDecoder(SCHEMA, min_present=3)
    rows = [
        {"request_count": 1},  # 1 of 7
        {"request_count": 1, "packet_size": 60, "port": 22},  # 3 of 7: enough
        {"request_count": 1, "protocol": None, "syn": None, "flow": {"x": 1}},  # nulls are missing too
        {"packet_size": 60, "port": 22, "protocol": "tcp"},  # a required field missing: that reason first
    ]
    batch = dec.decode(lines_of(rows))
    assert batch.index == [1]
    got = {(r.index, r.reason, r.field) for r in batch.rejects}
    assert got == {(0, "too_sparse", None), (2, "too_sparse", None), (3, "missing_field", "request_count")}
    first = next(r for r in batch.rejects if r.index == 0)
    assert first.message == (
        "1 of 7 features present, at least 3 needed; missing: packet_size, port, duration, protocol, syn, bytes_sent"
    )


def test_both_decoding_tiers_reject_the_same_sparse_events():
    dec = EventDecoder(make_schema(strict_field=False), min_present=2)
    rng = random.Random(7)
    rows = [{k: v for k, v in random_valid_row(rng).items() if rng.random() < 0.3} for _ in range(400)]
    lines = lines_of(rows)
    fast, slow = dec.decode(lines), dec._decode_slow(lines)
    assert fast.index == slow.index
    assert [(r.index, r.reason, r.message) for r in fast.rejects] == [
        (r.index, r.reason, r.message) for r in slow.rejects
    ]
    assert Counter(r.reason for r in fast.rejects)["too_sparse"] > 20


def test_one_sparse_event_among_complete_ones_is_still_rejected():
    """The decoder skips the per-row count when the whole batch lacks no more fields than one
    row may; one sparse row among complete ones must still be found, at any position."""
    dec = EventDecoder(make_schema(strict_field=False), min_present=3)
    rng = random.Random(3)
    for pos in (0, 17, 49):
        rows = [random_valid_row(rng) for _ in range(50)]
        rows[pos] = {"request_count": 4}
        for got in (dec.decode(lines_of(rows)), dec._decode_slow(lines_of(rows))):
            assert [(r.index, r.reason) for r in got.rejects] == [(pos, "too_sparse")]
            assert len(got.index) == 49


def test_min_present_zero_imputes_an_empty_event_as_before():
    batch = EventDecoder(make_schema(strict_field=False), min_present=0).decode([b"{}"])
    assert batch.index == [0] and batch.rejects == []
    capped = EventDecoder(make_schema(strict_field=False), min_present=99)  # more than the schema has: all of them
    assert capped.min_present == 7
