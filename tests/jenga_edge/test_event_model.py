"""The event model (jenga_edge/contract/events.py) in the agent's decoder: where
filter, dotted paths with list elements, normalizers and derived fields, the
same in both decoding tiers and the same as jenga_edge/contract/records.py."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import msgspec
import numpy as np
import pytest

from jenga_edge.contract.errors import ConfigError, SchemaError
from jenga_edge.contract.events import EventModel, parse_path
from jenga_edge.contract.records import RecordReader, get_path
from jenga_edge.contract.schema import OOV_INDEX, OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.contract.typed import convert
from jenga_edge.decode import DecodedBatch, EventDecoder
from jenga_edge.native import fastjson
from jenga_edge.timestamps import parse_time

FIXTURES = Path(__file__).parent.parent / "fixtures" / "suricata"

MODEL = {
    "where": {"event_type": "flow"},
    "mapping": {
        "bytes_toserver": "flow.bytes_toserver",
        "pkts_toserver": "flow.pkts_toserver",
    },
    "normalize": {"proto": {"lower": True, "map": {"ipv6-icmp": "icmp"}}},
    "derive": {
        "duration": {"kind": "duration", "start": "flow.start", "end": "flow.end"},
        "bytes_per_packet": {
            "kind": "ratio",
            "num": ["bytes_toserver", "flow.bytes_toclient"],
            "den": ["pkts_toserver", "flow.pkts_toclient"],
        },
        "bytes_total": {"kind": "sum", "of": ["bytes_toserver", "flow.bytes_toclient"]},
    },
}


def model(**changes) -> EventModel:
    return convert(EventModel, {**MODEL, **changes}, source="events", error=SchemaError)


def schema(events: EventModel | None = None) -> FeatureSchema:
    return FeatureSchema(
        (
            Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp", "icmp")),
            Feature("dest_port", "numeric"),
            Feature("bytes_toserver", "numeric"),
            Feature("duration", "numeric"),
            Feature("bytes_per_packet", "numeric"),
            Feature("bytes_total", "numeric"),
        ),
        events=events or model(),
    )


def flow(**over) -> dict:
    rec = {
        "timestamp": "2011-09-27T18:07:22.913053+0000",
        "event_type": "flow",
        "src_ip": "192.168.1.71",
        "dest_port": 80,
        "proto": "TCP",
        "flow": {
            "pkts_toserver": 3,
            "pkts_toclient": 2,
            "bytes_toserver": 300,
            "bytes_toclient": 700,
            "start": "2011-09-27T18:07:21.100604+0000",
            "end": "2011-09-27T18:07:22.350604+0000",
        },
    }
    rec.update(over)
    return rec


def lines(records) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def both_tiers(dec: EventDecoder, data: list[bytes]) -> tuple[DecodedBatch, DecodedBatch]:
    """(tier 1 with tier 2 behind it, tier 2 alone)."""
    return dec.decode(data), dec._decode_slow(data)


def assert_same(a: DecodedBatch, b: DecodedBatch) -> None:
    np.testing.assert_array_equal(a.num, b.num)
    np.testing.assert_array_equal(a.cat, b.cat)
    assert a.index == b.index and a.filtered == b.filtered and a.keys == b.keys
    assert [(r.index, r.reason, r.field, r.message) for r in a.rejects] == [
        (r.index, r.reason, r.field, r.message) for r in b.rejects
    ]


# --- the model: paths and validation ----------------------------------------------------------


def test_paths_parse_keys_and_list_elements():
    assert parse_path("flow.bytes_toserver") == ("flow", "bytes_toserver")
    assert parse_path("dns.queries[].rrname") == ("dns", "queries", 0, "rrname")
    assert parse_path("answers[2]") == ("answers", 2)
    for bad in ("", "a..b", "a[x]", "a[1][2]", "[0]", "a[999]"):
        with pytest.raises(ValueError):
            parse_path(bad)
    rec = {"dns": {"queries": [{"rrname": "a.example"}, {"rrname": "b.example"}]}}
    assert get_path(rec, parse_path("dns.queries[].rrname")) == "a.example"
    assert get_path(rec, parse_path("dns.queries[1].rrname")) == "b.example"
    assert get_path(rec, parse_path("dns.queries[5].rrname")) is None
    assert get_path(rec, parse_path("dns.rrname.x")) is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"mapping": {"x": "a..b"}}, r"events: mapping\.x: 'a..b': '' is not a key"),
        ({"derive": {"bytes_toserver": {"kind": "sum", "of": ["a"]}}}, r"derive\.bytes_toserver: is also in mapping"),
        ({"derive": {"d": {"kind": "sum", "of": ["e"]}, "e": {"kind": "sum", "of": ["f"]}}}, r"derive\.d: input 'e'"),
        ({"derive": {"d": {"kind": "mean", "of": ["e"]}}}, r"derive\.d\.kind: expected one of 'duration', 'ratio'"),
        ({"where": {"event_type": {"like": "fl%"}}}, r"where\.event_type: unknown operator 'like'"),
        ({"where": {"event_type": {"in": "flow"}}}, r"where\.event_type\.in: expected a list"),
        ({"normalize": {"proto": {"upper": True}}}, r"normalize\.proto\.upper: unknown key"),
        ({"mapping": {"x": []}}, r"mapping\.x: a list of 1 to 4 paths, got 0"),
        ({"mapping": {"x": ["a", "b", "c", "d", "e"]}}, r"mapping\.x: a list of 1 to 4 paths, got 5"),
        ({"mapping": {"x": ["a.b", "a.b"]}}, r"mapping\.x: a path is listed twice"),
        ({"mapping": {"x": ["a.b", "a..b"]}}, r"mapping\.x: 'a..b': '' is not a key"),
        ({"mapping": {"x": ["a.b", "a.b.c"]}}, r"mapping\.x: reads 'a\.b' as an object, another path as a value"),
        ({"mapping": {"x": 5}}, r"mapping\.x: expected a string or a list of a string, got int 5"),
    ],
)
def test_a_malformed_model_names_the_key(changes, message):
    with pytest.raises(SchemaError, match=message):
        model(**changes)


def test_the_schema_carries_the_model_through_json():
    s = schema()
    back = FeatureSchema.from_json(json.loads(json.dumps(s.to_json())))
    assert back.events == s.events and back.sha256 == s.sha256
    assert back.derived == {"duration", "bytes_per_packet", "bytes_total"}
    assert FeatureSchema(s.features).sha256 != s.sha256  # the model is part of what is verified


# --- filter ----------------------------------------------------------------------------------


def test_records_the_filter_drops_are_counted_never_scored_or_rejected():
    recs = [flow(), {"event_type": "netflow", "proto": "TCP"}, flow(proto="udp"), {"event_type": "dns"}, "not json"]
    data = [*lines(recs[:4]), b"{not json"]
    dec = EventDecoder(schema())
    fast, slow = both_tiers(dec, data)
    assert_same(fast, slow)
    assert fast.index == [0, 2] and fast.filtered == [1, 3]
    assert [(r.index, r.reason) for r in fast.rejects] == [(4, "bad_json")]
    assert len(fast) + len(fast.filtered) + len(fast.rejects) == len(data)


def test_a_filtered_record_need_not_have_the_fields_types():
    odd = {"event_type": "anomaly", "flow": "not an object", "dest_port": {"x": 1}}
    dec = EventDecoder(schema())
    fast, slow = both_tiers(dec, lines([odd, flow(dest_port={"x": 1})]))
    assert_same(fast, slow)
    assert fast.filtered == [0]
    assert [(r.index, r.reason, r.field) for r in fast.rejects] == [(1, "wrong_type", "dest_port")]


def test_the_agent_may_add_conditions_and_mappings_never_change_the_bundles():
    dec = EventDecoder(schema(), where={"src_ip": {"ne": "10.0.0.1"}}, mapping={"dest_port": "port2"})
    batch = dec.decode(lines([flow(src_ip="10.0.0.1", port2=22), flow(port2=22)]))
    assert batch.filtered == [0] and batch.num[0, 0] == 22
    with pytest.raises(ConfigError, match=r"event\.where\.event_type: is in its where in the bundle's event model"):
        EventDecoder(schema(), where={"event_type": "netflow"})
    with pytest.raises(ConfigError, match=r"event\.mapping\.duration: is computed in the bundle's event model"):
        EventDecoder(schema(), mapping={"duration": "flow.age"})
    with pytest.raises(ConfigError, match=r"event\.normalize\.proto: is in its normalize"):
        EventDecoder(schema(), normalize={"proto": {"lower": False}})


# --- normalizers ------------------------------------------------------------------------------


def test_proto_is_one_category_whatever_its_case_or_padding():
    dec = EventDecoder(schema(), key_fields=["proto"])
    spellings = ["TCP", "tcp", "Tcp", " TCP ", "UDP", "IPv6-ICMP", "ipv6-icmp", "sctp", "ÜDP"]
    fast, slow = both_tiers(dec, lines([flow(proto=p) for p in spellings]))
    assert_same(fast, slow)
    tcp, udp, icmp = 1, 2, 3
    assert fast.cat[:, 0].tolist() == [tcp, tcp, tcp, tcp, udp, icmp, icmp, OOV_INDEX, OOV_INDEX]
    assert fast.keys["proto"][:6] == ["tcp", "tcp", "tcp", "tcp", "udp", "icmp"]  # rules see the normalized value


# --- derived fields ---------------------------------------------------------------------------


def test_derived_fields_from_nested_times_and_counts():
    dec = EventDecoder(schema())
    fast, slow = both_tiers(dec, lines([flow()]))
    assert_same(fast, slow)
    names = [f.name for f in dec.schema.numeric]
    row = dict(zip(names, fast.num[0].tolist()))
    start, end = parse_time("2011-09-27T18:07:21.100604+0000"), parse_time("2011-09-27T18:07:22.350604+0000")
    assert row["duration"] == np.float32(end - start)
    assert row["bytes_per_packet"] == 200.0 and row["bytes_total"] == 1000.0


def test_a_derived_field_is_missing_when_it_cannot_be_computed():
    f = flow()
    f["flow"] = {**f["flow"], "pkts_toserver": 0, "pkts_toclient": 0}
    g = flow()
    del g["flow"]["end"]
    fast, slow = both_tiers(EventDecoder(schema()), lines([f, g]))
    assert_same(fast, slow)
    duration, ratio = 2, 3  # numeric columns: dest_port, bytes_toserver, duration, bytes_per_packet, bytes_total
    assert not np.isnan(fast.num[0, duration]) and np.isnan(fast.num[0, ratio])  # 0 packets: no ratio
    assert np.isnan(fast.num[1, duration]) and fast.num[1, ratio] == 200.0  # no end: no duration


QUERY_BYTES = {"kind": "ratio", "num": ["bytes_toserver"], "den": ["pkts_toserver"]}


def windows_typed(windows: dict) -> dict:
    """An agent config's event.windows, typed as the config loader gives them."""
    return convert(EventModel, {"time": "timestamp", "windows": windows}, source="agent", error=ConfigError).windows


def derived(fields: dict) -> dict:
    """An agent config's event.derive, typed as the config loader gives it."""
    return convert(EventModel, {"derive": fields}, source="agent", error=ConfigError).derive


def test_the_agent_may_derive_fields_for_its_rules_in_both_tiers():
    """event.derive: a ratio of a feature's column and a field read only for it (flow.bytes_toclient
    is no feature), computed for the rules, never a model input; missing where it cannot be."""
    extra = {
        "query_bytes": QUERY_BYTES,
        "answer_bytes": {"kind": "ratio", "num": ["flow.bytes_toclient"], "den": ["flow.pkts_toclient"]},
    }
    dec = EventDecoder(schema(), key_fields=["query_bytes", "answer_bytes"], derive_fields=derived(extra))
    quiet = flow()
    quiet["flow"] = {**quiet["flow"], "pkts_toclient": 0}
    fast, slow = both_tiers(dec, lines([flow(), quiet]))
    assert_same(fast, slow)
    assert fast.keys["query_bytes"] == [100.0, 100.0] and fast.keys["answer_bytes"] == [350.0, None]
    plain = EventDecoder(schema()).decode(lines([flow(), quiet]))  # the model's inputs: unchanged
    np.testing.assert_array_equal(fast.num, plain.num)
    np.testing.assert_array_equal(fast.cat, plain.cat)


def test_an_unreadable_input_rejects_the_event_only_where_the_field_is_read():
    """A derived field's input that is not a number rejects its event (wrong_type, as for the
    bundle's derived fields) where a rule or an alert reads the field; unread, it is never computed."""
    extra = derived({"per_second": {"kind": "ratio", "num": ["flow.bytes_toclient"], "den": ["flow.age"]}})
    odd = flow()
    odd["flow"] = {**odd["flow"], "age": "two"}  # no feature reads flow.age
    unread = EventDecoder(schema(), derive_fields=extra).decode(lines([odd]))
    assert unread.index == [0] and not unread.rejects and "per_second" not in unread.keys
    fast, slow = both_tiers(EventDecoder(schema(), key_fields=["per_second"], derive_fields=extra), lines([odd]))
    assert_same(fast, slow)
    assert [(r.reason, r.field) for r in fast.rejects] == [("wrong_type", "flow.age")]


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"duration": QUERY_BYTES}, r"event\.derive\.duration: is taken in the bundle's event model"),
        (
            {"bytes_toserver": {"kind": "sum", "of": ["flow.bytes_toclient"]}},
            r"event\.derive\.bytes_toserver: is taken in the bundle's event model",
        ),
        (
            {"q": {"kind": "ratio", "num": ["bytes_total"], "den": ["pkts_toserver"]}},
            r"event\.derive\.q: input 'bytes_total' is derived too",
        ),
        # a feature read by its own name: it would replace the model's input
        ({"dest_port": {"kind": "sum", "of": ["flow.pkts_toserver"]}}, r"event\.derive\.dest_port: is a feature"),
        ({"proto": {"kind": "sum", "of": ["flow.pkts_toserver"]}}, r"event\.derive\.proto: is taken in the bundle"),
    ],
)
def test_the_agent_derives_new_names_from_read_fields_only(extra, message):
    with pytest.raises(ConfigError, match=message):
        EventDecoder(schema(), derive_fields=derived(extra))


def test_the_agents_own_window_may_not_take_a_features_name():
    ports = {"dest_port": {"kind": "distinct", "key": ["src_ip"], "field": "dest_ip", "window_s": 10}}
    with pytest.raises(ConfigError, match=r"event\.windows\.dest_port: is a feature the bundle's model reads"):
        EventDecoder(schema(), time="timestamp", windows=windows_typed(ports))


def test_the_event_time_is_read_never_computed():
    with pytest.raises(SchemaError, match=r"time: 'duration' is computed; the event time is read from the record"):
        model(time="duration")


def test_a_window_over_a_derived_field_and_a_field_derived_from_a_window_are_refused():
    """Either would read a path of the other's name, missing in every record: a sum of 0, a
    ratio never computed."""
    windows = {"q_sum": {"kind": "sum", "key": ["src_ip"], "field": "bytes_total", "window_s": 10}}
    with pytest.raises(SchemaError, match=r"windows\.q_sum: reads 'bytes_total', a derived field"):
        model(time="timestamp", windows=windows)
    flows = {"flows_10s": {"kind": "count", "key": ["src_ip"], "window_s": 10}}
    per_flow = {"kind": "ratio", "num": ["bytes_toserver"], "den": ["flows_10s"]}
    with pytest.raises(SchemaError, match=r"derive\.per_flow: input 'flows_10s' is a window feature"):
        model(time="timestamp", windows=flows, derive={**MODEL["derive"], "per_flow": per_flow})
    with pytest.raises(ConfigError, match=r"event\.derive\.per_flow: input 'flows_10s' is a window feature"):
        EventDecoder(
            schema(), time="timestamp", windows=windows_typed(flows), derive_fields=derived({"per_flow": per_flow})
        )


def test_an_unreadable_time_is_rejected_as_bad_timestamp():
    bad = [
        "yesterday",
        "2011-13-01T00:00:00Z",
        "2011-02-29T00:00:00Z",
        "2011-09-27T24:00:00Z",
        True,
        "2011-09-27T18:07:21+2400",
    ]
    recs = []
    for value in bad:
        f = flow()
        f["flow"] = {**f["flow"], "start": value}
        recs.append(f)
    fast, slow = both_tiers(EventDecoder(schema()), lines(recs))
    assert_same(fast, slow)
    assert [(r.reason, r.field) for r in fast.rejects] == [("bad_timestamp", "flow.start")] * len(bad)
    assert "expected a time (ISO 8601 or epoch seconds)" in fast.rejects[0].message


def test_times_in_c_are_parse_time_exactly():
    """Tier 1 reads the plain forms in C; every value it accepts must equal timestamps.parse_time's."""
    if fastjson is None:
        pytest.skip("jenga_edge.native._fastjson is not built")
    rng = random.Random(7)
    values: list = [1317146841.1006, 0, -1.5, 1e12, "1970-01-01T00:00:00Z", "2000-02-29 23:59:59,5-01:30"]
    for _ in range(3000):
        y, mo, d = rng.randint(1, 9999), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, s = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        frac = rng.choice(["", "." + str(rng.randint(0, 10**9)).zfill(rng.randint(1, 12)), ",5", "."])
        off = rng.choice(["", "Z", "z", "+0000", "-05:30", "+2359", "+2400", "+0099", "-1", " +0100"])
        sep = rng.choice("Tt ")
        values.append(f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}")
    dec = EventDecoder(schema())
    recs = []
    for v in values:
        f = flow()
        f["flow"] = {**f["flow"], "start": v, "end": "2011-09-27T18:07:22.350604+0000"}
        recs.append(f)
    fast, slow = both_tiers(dec, lines(recs))
    assert_same(fast, slow)
    status = np.empty(len(recs), dtype=np.uint8)
    assert dec._plan is not None
    n = len(recs)
    width = len(dec.schema.numeric) + len(dec._aux)
    dec._plan.decode(lines(recs), np.empty((n, width)), np.empty((n, 1), dtype=np.int64), [[None] * n], status)
    assert (status == 0).sum() > 1000  # most valid forms were read in C, not handed to tier 2


def test_a_list_element_path_reads_the_first_or_nth_element():
    s = FeatureSchema(
        (Feature("qname", "categorical", categories=(OOV_TOKEN, "a.example", "b.example")), Feature("ttl", "numeric")),
        events=convert(
            EventModel,
            {"mapping": {"qname": "dns.queries[].rrname", "ttl": "dns.answers[1].ttl"}},
            error=SchemaError,
        ),
    )
    dec = EventDecoder(s, key_fields=["qname"])
    rec = {"dns": {"queries": [{"rrname": "b.example"}], "answers": [{"ttl": 5}, {"ttl": 60}]}}
    odd = [{"dns": {"queries": []}}, {"dns": {"queries": "x"}}, {"dns": {"queries": [{"rrname": "a.example"}, 7]}}]
    fast, slow = both_tiers(dec, lines([rec, *odd, {"dns": {"queries": [{"rrname": {"x": 1}}]}}]))
    assert_same(fast, slow)
    # as the trainer reads records: a list that is not there, or an element no field reads, is no reject
    assert fast.cat[:, 0].tolist() == [2, OOV_INDEX, OOV_INDEX, 1] and fast.num[0, 0] == 60.0
    assert np.isnan(fast.num[1, 0])
    assert [(r.index, r.reason, r.field) for r in fast.rejects] == [(4, "wrong_type", "qname")]
    rows = RecordReader(s.events).read([rec, *odd]).rows
    assert [r["qname"] for r in rows] == ["b.example", None, None, "a.example"]


def test_a_list_of_paths_reads_the_first_that_holds_a_value_in_both_tiers_and_the_trainer():
    """Suricata 7 writes a DNS name at dns.rrname, Suricata 8 at dns.queries[].rrname: one
    mapping reads both, first present (not missing, not null) wins, as records.py reads it."""
    qname = ["dns.rrname", "dns.queries[].rrname"]
    s = FeatureSchema(
        (Feature("qname", "categorical", categories=(OOV_TOKEN, "a.example", "b.example")), Feature("ttl", "numeric")),
        events=convert(EventModel, {"mapping": {"qname": qname, "ttl": ["ttl", "dns.ttl"]}}, error=SchemaError),
    )
    recs = [
        {"dns": {"rrname": "a.example"}, "ttl": 5},
        {"dns": {"queries": [{"rrname": "b.example"}], "ttl": 7}},
        {"dns": {"rrname": None, "queries": [{"rrname": "a.example"}]}, "ttl": None},
        {"dns": {"rrname": "b.example", "queries": "not a list"}},
        {"dns": {"queries": []}},
        {"dns": "x"},
    ]
    dec = EventDecoder(s, key_fields=["qname"])
    assert (dec._plan is None) == (fastjson is None)  # the C tier reads them too (first present, list elements)
    fast, slow = both_tiers(dec, lines(recs))
    assert_same(fast, slow)
    assert fast.rejects == [] and fast.keys["qname"] == ["a.example", "b.example", "a.example", "b.example", None, None]
    assert fast.num[:4, 0].tolist()[:2] == [5.0, 7.0] and np.isnan(fast.num[2:, 0]).all()
    rows = RecordReader(s.events).read(recs).rows
    assert [r["qname"] for r in rows] == fast.keys["qname"]
    assert [r["ttl"] for r in rows] == [5, 7, None, None, None, None]
    # the second path's wrong type is a reject only where it is the one read
    bad = [{"dns": {"rrname": "a.example", "queries": [{"rrname": 5}]}}, {"dns": {"queries": [{"rrname": {"o": 1}}]}}]
    batch = dec.decode(lines(bad))
    assert [(r.index, r.reason, r.field) for r in batch.rejects] == [(1, "wrong_type", "qname")]


# --- the decoder and records.py read the same ---------------------------------------------


def eve_records() -> list[dict]:
    out = []
    for path in sorted(FIXTURES.glob("*.eve.json.gz")):
        with gzip.open(path, "rt") as fh:
            out += [json.loads(line) for line in fh][:400]
    return out


def test_decoder_and_record_reader_agree_on_real_suricata_output():
    recs = eve_records()
    s = schema()
    reader = RecordReader(s.events)
    rows = reader.read(recs)
    num, cat = s.vectorize(rows.rows, strict=False)
    data = [msgspec.json.encode(r) for r in recs]
    dec = EventDecoder(s)
    fast, slow = both_tiers(dec, data)
    assert_same(fast, slow)
    assert fast.index == rows.positions
    assert len(fast.filtered) == rows.filtered > 300 and len(fast) > 300 and not fast.rejects
    np.testing.assert_array_equal(fast.num, num)
    np.testing.assert_array_equal(fast.cat, cat)
    assert set(fast.cat[:, 0].tolist()) >= {1, 2}  # TCP and UDP flows, all in the vocabulary
