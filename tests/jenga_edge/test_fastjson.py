"""Tier 1 of the decoder (the C extractor, jenga_edge/_fastjson.c) against tier 2 (msgspec).

Tier 1 may only accept what tier 2 accepts, with the same values; everything
else it must hand to tier 2. So every test here decodes the same lines both
ways and wants identical results: arrays bit for bit, key values, and every
reject's index, reason, field and message.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import warnings

import numpy as np
import pytest

from jenga_edge import decode as decode_mod
from jenga_edge import native
from jenga_edge.contract.events import Normalizer
from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.decode import EventDecoder

if native.PURE:
    pytest.skip("JENGA_EDGE_PURE=1: the C tier is switched off", allow_module_level=True)
if decode_mod._fastjson is None:
    if shutil.which("cc") or shutil.which("gcc"):
        pytest.fail(
            "jenga_edge.native._fastjson is not built although a C compiler is here: run `pip install -e .` again",
            pytrace=False,
        )
    pytest.skip("no C compiler: the agent runs on tier 2 alone", allow_module_level=True)

SCHEMA = FeatureSchema(
    (
        Feature("bytes", "numeric", "log1p"),
        Feature("packets", "numeric", allow_missing=False),
        Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp", "ünï")),
        Feature("syn", "boolean"),
        Feature("port", "numeric"),
        Feature("service", "categorical", categories=(OOV_TOKEN, "http", "ssh", "22"), allow_missing=False),
        Feature("rate", "numeric"),
    )
)
MAPPING = {"bytes": "flow.bytes_toserver", "packets": "flow.pkts", "proto": "flow.meta.proto", "port": "dest_port"}
KEYS = ["src_ip", "dest_port", "alert.signature", "proto"]


def decoder() -> EventDecoder:
    return EventDecoder(SCHEMA, MAPPING, key_fields=KEYS)


def base_event(rng: random.Random) -> dict:
    return {
        "timestamp": "2026-11-25T10:00:00.000000+0000",
        "event_type": "flow",
        "src_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "dest_port": rng.choice([22, 80, 443, 3389]),
        "flow": {
            "bytes_toserver": rng.randrange(10**6),
            "pkts": rng.randrange(1, 500),
            "meta": {"proto": rng.choice(["tcp", "udp", "icmp", "ünï"]), "ttl": 64},
        },
        "syn": rng.choice([True, False, 0, 1]),
        "service": rng.choice(["http", "ssh", "dns", "22", 22, 22.0, 8080, 0.5, True]),  # numbers: by category key
        "rate": rng.choice([0.25, 1e-3, 12.5, -3.75, 1.5e10, 0, 7]),
        "alert": {"signature": "ET SCAN", "severity": 2},
        "payload": "x" * rng.randrange(0, 300) + 'é\\"\\n',
        "extra": [1, {"a": [None, True, "s"]}, -0.5e-3],
    }


def both(lines: list[bytes], oversize=(), dec: EventDecoder | None = None):
    dec = dec or decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return dec.decode(lines, oversize), dec._decode_slow(lines, oversize)


def assert_same(lines: list[bytes], oversize=(), dec: EventDecoder | None = None) -> None:
    fast, slow = both(lines, oversize, dec)
    assert fast.index == slow.index
    assert [(r.index, r.reason, r.field, r.message) for r in fast.rejects] == [
        (r.index, r.reason, r.field, r.message) for r in slow.rejects
    ]
    assert fast.num.dtype == slow.num.dtype == np.float32
    np.testing.assert_array_equal(fast.num.view(np.uint32), slow.num.view(np.uint32))  # bits: -0.0, NaN
    np.testing.assert_array_equal(fast.cat, slow.cat)
    assert fast.text.dtype == slow.text.dtype == np.uint8 and fast.text.shape == slow.text.shape
    np.testing.assert_array_equal(fast.text, slow.text)
    np.testing.assert_array_equal(fast.text_len, slow.text_len)
    assert set(fast.keys) == set(slow.keys)
    for k in fast.keys:
        got, want = list(fast.keys[k]), list(slow.keys[k])
        assert got == want and [type(v) for v in got] == [type(v) for v in want], k


def tier1_status(lines: list[bytes], dec: EventDecoder | None = None) -> np.ndarray:
    dec, n = dec or decoder(), len(lines)
    status = np.empty(n, dtype=np.uint8)
    dec._plan.decode(
        lines,
        np.empty((n, len(dec.schema.numeric))),
        np.empty((n, len(dec.schema.categorical)), np.int64),
        [[None] * n for _ in dec._key_order],
        status,
        *(
            (
                np.empty((n, len(dec.schema.text), dec.schema.text_width), np.uint8),
                np.empty((n, len(dec.schema.text)), np.int64),
            )
            if dec.schema.text
            else ()
        ),
    )
    return status


# --- tier 1 really takes the plain lines -------------------------------------------------------


def test_tier1_accepts_plain_events_and_matches_tier2():
    rng = random.Random(1)
    lines = [json.dumps(base_event(rng), ensure_ascii=False).encode() for _ in range(300)]
    assert not tier1_status(lines).any(), "plain events must not fall back to tier 2"
    assert_same(lines)


def test_tier1_values_in_detail():
    line = (
        b'{"flow":{"bytes_toserver":1.5e3,"pkts":-0,"meta":{"proto":"\xc3\xbcn\xc3\xaf"}},"syn":true,'
        b'"dest_port":443,"service":"telnet","rate":-0.0,"src_ip":"10.1.2.3","alert":null}'
    )
    assert not tier1_status([line]).any()
    fast, _ = both([line])
    assert fast.num.tolist() == [[1500.0, 0.0, 1.0, 443.0, 0.0]]
    assert np.signbit(fast.num[0, 4])  # -0.0 kept; -0 (an integer) is 0
    assert fast.cat.tolist() == [[3, 0]]  # non-ASCII hit; unseen ASCII -> out of vocabulary
    assert fast.keys["src_ip"] == ["10.1.2.3"] and fast.keys["dest_port"] == [443]
    assert fast.keys["alert.signature"] == [None] and fast.keys["proto"] == ["ünï"]
    assert_same([line])


# --- edge cases: each one decoded alone and inside a batch of good events ---------------------

EDGE = [
    b'{"flow":{"pkts":1},"service":"ssh"}',  # minimal
    b'{"service":"ssh"}',  # a required numeric is missing
    b'{"flow":{"pkts":1}}',  # a required categorical is missing
    b'{"flow":{"pkts":1},"service":null}',
    b'{"flow":null,"service":"ssh"}',
    b'{"flow":5,"service":"ssh"}',  # an object expected
    b'{"flow":{"pkts":"12"},"service":"ssh"}',  # numeric string: tier 2 coerces
    b'{"flow":{"pkts":" 12 "},"service":"ssh"}',
    b'{"flow":{"pkts":true},"service":"ssh"}',
    b'{"flow":{"pkts":[1]},"service":"ssh"}',
    b'{"flow":{"pkts":{}},"service":"ssh"}',
    b'{"flow":{"pkts":1e39},"service":"ssh"}',  # beyond float32
    b'{"flow":{"pkts":3.4028235e38},"service":"ssh"}',
    b'{"flow":{"pkts":1e400},"service":"ssh"}',
    b'{"flow":{"pkts":1e-400},"service":"ssh"}',
    b'{"flow":{"pkts":123456789012345678901234567890},"service":"ssh"}',
    b'{"flow":{"pkts":9007199254740993},"service":"ssh"}',
    b'{"flow":{"pkts":0.1e1},"service":"ssh","rate":1234567890.123456789}',
    b'{"flow":{"pkts":1},"service":"ssh","rate":0.000001234567890123456789}',
    b'{"flow":{"pkts":1},"service":"ssh","rate":5e-324}',
    b'{"flow":{"pkts":1},"service":"ssh","rate":1E+2}',
    b'{"flow":{"pkts":01},"service":"ssh"}',
    b'{"flow":{"pkts":1.},"service":"ssh"}',
    b'{"flow":{"pkts":-},"service":"ssh"}',
    b'{"flow":{"pkts":NaN},"service":"ssh"}',
    b'{"flow":{"pkts":Infinity},"service":"ssh"}',
    b'{"flow":{"pkts":1},"service":"ssh","syn":2}',
    b'{"flow":{"pkts":1},"service":"ssh","syn":1.0}',
    b'{"flow":{"pkts":1},"service":"ssh","syn":"true"}',
    b'{"flow":{"pkts":1},"service":22}',  # a number for a categorical
    b'{"flow":{"pkts":1},"service":22.0}',
    b'{"flow":{"pkts":1},"service":" ssh "}',  # stripped by tier 2's category_key
    b'{"flow":{"pkts":1},"service":"\\u0073sh"}',  # an escape spelling a category
    b'{"flow":{"pkts":1},"service":"s\\"h"}',
    b'{"flow":{"pkts":1},"service":""}',
    b'{"flow":{"pkts":1},"service":"\xc3\xa9t\xc3\xa9"}',  # unseen non-ASCII
    b'{"flow":{"pkts":1},"service":"\xff\xfe"}',  # invalid UTF-8 in a read string
    b'{"flow":{"pkts":1},"service":"ssh","src_ip":"\xff"}',  # ... in a key field
    *[
        b'{"flow":{"pkts":1},"service":"ssh","src_ip":"a%sb"}' % u
        for u in (
            b"\xc3\xa9",
            b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80",  # valid 2, 3, 4 bytes
            b"\xc0\x80",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",  # overlong, surrogate, > U+10FFFF
            b"\xe2\x82",
            b"\x80",
            b"\xf8\x88\x80\x80\x80",
        )
    ],  # truncated, stray, 5 bytes
    b'{"flow":{"pkts":1},"service":"ssh","payload":"\xff"}',  # ... in a field nobody reads
    b'{"flow":{"pkts":1},"service":"ssh","payload":"\\ud800"}',  # a lone surrogate
    b'{"flow":{"pkts":1},"service":"ssh","payload":"\\uD83D\\uDE00"}',
    b'{"flow":{"pkts":1},"service":"ssh","payload":"\\x"}',  # an invalid escape
    b'{"flow":{"pkts":1},"service":"ssh","payload":"a\tb"}',  # a raw control character
    b'{"flow":{"pkts":1},"service":"ssh","src_ip":{"v":4}}',  # a key field must be a scalar
    b'{"flow":{"pkts":1},"service":"ssh","src_ip":"1.2.3.4; rm -rf /"}',
    b'{"flow":{"pkts":1},"service":"ssh","src_ip":"a\\"b\\\\c\\/d\\n"}',
    b'{"flow":{"pkts":1},"service":"ssh","service":"http"}',  # duplicate keys: tier 2's rules
    b'{"flow":{"pkts":1,"pkts":2},"service":"ssh"}',
    b'{"flow":{"pkts":1},"flow":{"pkts":2},"service":"ssh"}',
    b'{"fl\\u006fw":{"pkts":1},"service":"ssh"}',  # an escaped key
    b'{"flow":{"pkts":1},"service":"ssh"} ',
    b' \t{"flow":{"pkts":1},"service":"ssh"}\r',
    b'{"flow":{"pkts":1},"service":"ssh"}x',
    b'{"flow":{"pkts":1},"service":"ssh"}{}',
    b'{"flow":{"pkts":1},"service":"ssh"}\x0b',
    b'\xef\xbb\xbf{"flow":{"pkts":1},"service":"ssh"}',
    b'{"flow":{"pkts":1},"service":"ssh",}',
    b'{"flow":{"pkts":1},"service":"ssh" "x":1}',
    b'{"flow":{"pkts":1}, "service" : "ssh" , "extra" : [ 1 , 2 ] }',
    b'{"flow":{"pkts":1},"service":"ssh","deep":' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"flow":{"pkts":1},"service":"ssh","deep":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"flow":{"pkts":1},"service":"ssh","deep":' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
    b'{"flow":{"pkts":1},"service":"ssh","x":tru}',
    b'{"flow":{"pkts":1},"service":"ssh","x":nul}',
    b'{"flow":{"pkts":1},"service":"ssh","x":[1,]}',
    b'{"flow":{"pkts":1},"service":"ssh","x":{"a"}}',
    b'{"flow":{"pkts":1},"service":"ssh","x":"\x00"}',
    b"[]",
    b"{}",
    b"",
    b" ",
    b"null",
    b"3",
    b'"s"',
    b"{",
    b"}",
    b"\x00",
    *[
        b'{"flow":{"pkts":1},"service":"ssh","src_ip":%s}' % v
        for v in (
            b"1e400",
            b"-1e400",
            b"3.4e39",
            b"1.5",
            b"-0",
            b"-0.0",
            b"12345678901234567890",
            b"123456789012345678",
            b"true",
            b"null",
            b'""',
            b'"\\u0041"',
            b"0.1e1",
            b"1E+2",
            b"[]",
            b"{}",
        )
    ],
    b'{"flow":{"pkts":1},"service":"ssh","dest_port":"443"}',  # a key shared with a feature
    b'{"flow":{"pkts":1},"service":"ssh","dest_port":null}',
]


@pytest.mark.parametrize("line", EDGE, ids=[repr(e[:50]) for e in EDGE])
def test_edge_case_alone_and_in_a_batch(line):
    rng = random.Random(len(line))
    good = [json.dumps(base_event(rng)).encode() for _ in range(5)]
    assert_same([line])
    assert_same([*good[:2], line, *good[2:], line])


def test_oversize_flags_win_over_tier1():
    rng = random.Random(3)
    lines = [json.dumps(base_event(rng)).encode() for _ in range(6)]
    assert_same(lines, [False, True, False, False, True, False])
    fast, _ = both(lines, [False, True, False, False, True, False])
    assert [r.reason for r in fast.rejects] == ["oversize", "oversize"]


# --- fuzz: truncations, deletions and substitutions of real events -------------------------------


def mutations(line: bytes, rng: random.Random, count: int) -> list[bytes]:
    alphabet = b'{}[]",:\\ 0123456789.eE+-tfnulrsa\x00\x1f\x7f\x80\xc3\xff'
    out = []
    for _ in range(count):
        i = rng.randrange(len(line))
        op = rng.randrange(4)
        if op == 0:
            out.append(line[:i])
        elif op == 1:
            out.append(line[:i] + line[i + 1 :])
        elif op == 2:
            out.append(line[:i] + bytes([rng.choice(alphabet)]) + line[i + 1 :])
        else:
            out.append(line[:i] + bytes([rng.choice(alphabet)]) + line[i:])
    return out


def test_fuzzed_events_agree_with_tier2():
    rng = random.Random(20261125)
    lines = []
    for _ in range(40):
        line = json.dumps(base_event(rng), ensure_ascii=rng.random() < 0.5).encode()
        lines += mutations(line, rng, 60)
    for start in range(0, len(lines), 256):
        assert_same(lines[start : start + 256])


def test_every_prefix_of_an_event_agrees_with_tier2():
    line = json.dumps(base_event(random.Random(5)), ensure_ascii=False).encode()
    assert_same([line[:i] for i in range(len(line) + 1)])


def test_numbers_agree_with_tier2_bit_for_bit():
    rng = random.Random(9)
    texts = []
    for _ in range(3000):
        mant = str(rng.randrange(10 ** rng.randrange(1, 20)))
        frac = (
            ""
            if rng.random() < 0.3
            else "." + str(rng.randrange(10 ** rng.randrange(1, 18))).zfill(rng.randrange(1, 18))
        )
        exp = "" if rng.random() < 0.5 else rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randrange(0, 40))
        texts.append(rng.choice(["", "-"]) + mant + frac + exp)
    lines = [b'{"flow":{"pkts":1},"service":"ssh","rate":%s}' % t.encode() for t in texts]
    assert_same(lines)
    fast, _ = both(lines)
    assert len(fast) > 2500


NUMBER_EDGES = [
    "0", "-0", "0.0", "-0.0", "0e0", "-0e-0", "0e400", "-0e99999999", "0.000e5", "7", "-7", "1e22", "1e23",
    "1e-22", "1e-23", "123456789012345", "1234567890123456", "-999999999999999", "123456789012345.0",
    "1234567890123456.0", "12345678901234.5", "0.000000000000001", "0.0000000000000000000000001",
    "0.1000000000000000", "1.000000000000001", "10.00000000000000e-5", "3.4028234663852886e38", "3.5e38",
    "-3.4e38", "1e38", "9.999999999999999e37", "4.9e-324", "1e-400", "1.5E+3", "2.5e+0", "25e-1", "100e-2",
    "0.00", "0.0e1", "0.05", "00", "0.", "0.0.0", "0 ", "0.0 ", "-0 ", "01",
]  # fmt: skip


@pytest.mark.parametrize("number", NUMBER_EDGES)
def test_number_edge_cases_read_as_tier2_reads_them(number):
    # Tier 1 reads a number's value while it scans the token (Clinger's fast path, or an
    # integer of at most 15 digits) and leaves the rest to the correctly rounded parser:
    # the same bits as tier 2 either way, or tier 2's reject.
    line = b'{"flow":{"pkts":%s,"bytes_toserver":%s},"service":"ssh","rate":%s,"syn":%s}' % ((number.encode(),) * 4)
    assert_same([line])
    assert_same([b'{"flow":{"pkts":1},"service":"ssh","rate":%s}' % number.encode()])
    assert_same([b'{"rate":%s' % number.encode()])  # the line ends with the number: bad JSON


def test_lines_read_in_place_from_a_buffer_decode_like_a_list():
    from jenga_edge.event_queue import Lines, _spans

    rng = random.Random(12)
    good = [json.dumps(base_event(rng)).encode() for _ in range(40)]
    mixed = [ln for ln in EDGE if ln.strip(b" \t\r") and b"\n" not in ln] + good
    rng.shuffle(mixed)
    head, middle, tail = mixed[:7], mixed[7:-9], mixed[-9:]
    buf = b"".join(ln + b"\n" for ln in middle)
    spans = np.empty((len(middle), 2), dtype=np.int64)
    _spans(buf, 0, len(middle), spans)
    as_lines = Lines([head, (buf, spans), tail])
    dec = decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, b = dec.decode(as_lines), dec.decode(mixed)
    assert a.index == b.index and len(a) > 40
    assert [(r.index, r.reason, r.field, r.message) for r in a.rejects] == [
        (r.index, r.reason, r.field, r.message) for r in b.rejects
    ]
    np.testing.assert_array_equal(a.num.view(np.uint32), b.num.view(np.uint32))
    np.testing.assert_array_equal(a.cat, b.cat)
    assert a.keys == b.keys


def test_long_and_near_miss_keys():
    # Keys over 16 bytes are compared in three parts (first 8, last 8, middle):
    # near misses differ in exactly one of them.
    name = "dst_host_srv_diff_host_rate"
    schema = FeatureSchema((Feature(name, "numeric", allow_missing=False), Feature("x" * 40, "numeric")))
    dec = EventDecoder(schema, {"x" * 40: "a.b" + "y" * 30})
    base = {name: 1.5, "a": {"b" + "y" * 30: 2.5}}
    near = [name[:-1] + "E", "D" + name[1:], name[:12] + "X" + name[13:], name + "_", name[:-1]]
    lines = (
        [json.dumps(base).encode()]
        + [json.dumps({**base, k: 9.0}).encode() for k in near]
        + [json.dumps({k: 9.0, "a": {"b" + "y" * 29: 1}}).encode() for k in near]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast, slow = dec.decode(lines), dec._decode_slow(lines)
    assert fast.index == slow.index == list(range(6))
    np.testing.assert_array_equal(fast.num, slow.num)
    assert fast.num[:, 0].tolist() == [1.5] * 6 and fast.num[:, 1].tolist() == [2.5] * 6
    assert [(r.index, r.reason, r.field) for r in fast.rejects] == [(i, "missing_field", name) for i in range(6, 11)]


def test_keys_remembered_by_position_never_stand_for_another_key():
    # Tier 1 remembers the key it met at each position of an object and takes a line's
    # key as that one when its raw bytes (and closing quote) match. Lines that keep the
    # shape, then break it at one position in every way a remembered key can be near
    # another one, must each decode as tier 2 decodes them, within a batch and across
    # batches (the memory outlives a batch).
    name = "dst_host_srv_diff_host_rate"
    schema = FeatureSchema(
        (
            Feature(name, "numeric"),
            Feature("pkts", "numeric", allow_missing=False),
            Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp")),
            Feature("x" * 62, "numeric"),
        )
    )
    dec = EventDecoder(schema, {"pkts": "flow.pkts"}, key_fields=["src_ip"])
    shape = b'{"%s":%s,"flow":{"pkts":%s},"proto":"tcp","src_ip":"10.0.0.%d","%s":3}'

    def line(first: bytes = name.encode(), i: int = 1, pkts: bytes = b"7", long: bytes = b"x" * 62) -> bytes:
        return shape % (first, b"1.5", pkts, i, long)

    breaks = [
        line(name[:-1].encode() + b"E"),  # the last byte differs
        line(b"D" + name[1:].encode()),  # the first
        line(name[:12].encode() + b"X" + name[13:].encode()),  # a middle word
        line(name.encode() + b"_"),  # one byte longer: the remembered quote is not there
        line(name[:-1].encode()),  # one shorter
        line(name[:-1].encode() + b'\\"e'),  # an escaped quote where the last byte was
        line(name[:-1].encode() + b"\\u0065"),  # the same key spelled with an escape: tier 2's
        line(b"unknown_key"),  # a key the plan does not read, remembered next
        line(b"unknown_key"),
        line(),  # back to the shape
        line(long=b"x" * 61 + b"y"),  # a remembered key of 62 bytes (63 with its quote), one byte off
        line(long=b"x" * 63),  # 64 with its quote: too long to remember
        line(long=b"x" * 63),
        line(pkts=b"null"),
        b'{"%s":1.5,"%s":2.5,"flow":{"pkts":1},"proto":"tcp"}' % (name.encode(), name.encode()),  # duplicate
        b'{"flow":{"pkts":1},"%s":1.5}' % name.encode(),  # positions swapped
        b'{"%s":1.5,"flow":{"pkts":1}}' % name.encode(),  # the shape, cut short
        b'{"%s":1.5,"fl' % name.encode(),  # cut inside a remembered key
        b'{"%s"' % name.encode(),  # a remembered key at the very end of the line
        b'{"\xc3\xa9":1,"flow":{"pkts":1}}',  # non-ASCII keys are never remembered
        b'{"\xc3\xa9":1,"flow":{"pkts":1}}',
    ]
    same = [line(i=i) for i in range(20)]
    assert not tier1_status(same, dec).any()
    for b in breaks:
        assert_same([*same[:3], b, *same[3:6], b, *same[6:9]], dec=dec)
        assert_same([b], dec=dec)
    assert_same(same + breaks + same, dec=dec)
    rng = random.Random(7)
    lines = same + breaks
    for _ in range(30):  # shapes in random order, one batch after another
        rng.shuffle(lines)
        assert_same(lines[:17], dec=dec)


def test_key_field_numbers_are_the_floats_and_ints_msgspec_gives():
    rng = random.Random(4)
    texts = [
        "0",
        "-0",
        "-0.0",
        "1e-320",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "123456789012345678",
        "0.1",
        "-5e-324",
        "9007199254740993.0",
        "4.35",
        "1e23",
        "8.98846567431158e307",
    ]
    for _ in range(2000):
        mant = str(rng.randrange(10 ** rng.randrange(1, 19)))
        frac = "." + str(rng.randrange(10**17)).zfill(rng.randrange(1, 20)) if rng.random() < 0.7 else ""
        exp = rng.choice(["", f"e{rng.randrange(-330, 310)}", f"E+{rng.randrange(0, 30)}"])
        texts.append(rng.choice(["", "-"]) + mant + frac + exp)
    lines = [b'{"flow":{"pkts":1},"service":"ssh","src_ip":%s}' % t.encode() for t in texts]
    fast, slow = both(lines)
    assert fast.index == slow.index
    got, want = list(fast.keys["src_ip"]), list(slow.keys["src_ip"])
    assert [repr(v) for v in got] == [repr(v) for v in want]  # repr: -0.0, int vs float, every digit
    assert len(fast) > 1500


def test_plan_refuses_bad_specs_and_buffers():
    from jenga_edge.native import _fastjson

    with pytest.raises(ValueError, match="out of range"):
        _fastjson.Plan({b"a": ((0, 1),)}, 1, 0, 0, ())  # numeric column 1 of 1
    with pytest.raises(ValueError, match="out of range"):
        _fastjson.Plan({b"a": ((3, 0),)}, 1, 0, 0, ())  # key 0 of 0
    with pytest.raises(ValueError, match="out of range"):
        _fastjson.Plan({b"a": {b"b": ((2, 2),)}}, 0, 2, 0, ({}, {}))
    bare = _fastjson.Plan.__new__(_fastjson.Plan)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.decode([b"{}"], np.empty((1, 0)), np.empty((1, 0), np.int64), [], np.empty(1, np.uint8))
    plan = _fastjson.Plan({b"a": ((0, 0),)}, 1, 0, 0, ())
    with pytest.raises(ValueError, match="num"):
        plan.decode([b'{"a":1}'], np.empty((1, 1), np.float32), np.empty((1, 0), np.int64), [], np.empty(1, np.uint8))
    with pytest.raises(ValueError, match="spans"):
        plan.decode(
            (b'{"a":1}\n', np.array([[0.0, 7.0]])),
            np.empty((1, 1)),
            np.empty((1, 0), np.int64),
            [],
            np.empty(1, np.uint8),
        )
    with pytest.raises(ValueError, match="spans"):
        plan.decode(
            (b'{"a":1}\n', np.array([[0, 70]])), np.empty((1, 1)), np.empty((1, 0), np.int64), [], np.empty(1, np.uint8)
        )


# --- numbers and true/false given for a categorical feature -------------------------------------
# Tier 2 looks them up by category_key (8081 and 8081.0 -> "8081", -0.0 -> "0", 0.5 -> "0.5",
# True -> "true"); tier 1 must take them, with the same index, or the C tier sits idle on
# events that write ports as numbers (the network demo's: issue 11). Each test also checks
# which lines tier 1 took: tier 2 alone would give the same values.

CATEGORIES = (OOV_TOKEN, "0", "22", "-22", "1000", "8081", "22.5", "-1.5", "1e-07", "5e-324", "true", "false")
CODES = FeatureSchema(
    (
        Feature("n", "numeric"),
        Feature("code", "categorical", categories=(*CATEGORIES, "123456789012345678", "9200000000000000000")),
        Feature("port", "categorical", categories=(OOV_TOKEN, "443", "http-alt", "yes"), allow_missing=False),
    )
)


def code_decoders() -> list[EventDecoder]:
    """Plain; and with key fields on the same paths, min_present and a normalizer whose map
    takes numbers and booleans (by their category key) and maps to a padded target."""
    norm = Normalizer(lower=True, map={"8081": "http-alt", "true": "yes", "1": " 443 "})
    return [
        EventDecoder(CODES),
        EventDecoder(CODES, key_fields=["code", "port"], min_present=2, normalize={"port": norm, "code": norm}),
    ]


# value -> does tier 1 take it (False: tier 2 decides, as for any unsure line)
CODE_VALUES = {
    **dict.fromkeys(
        ["22", "-22", "0", "-0", "0.0", "-0.0", "22.0", "2.2e1", "220E-1", "1000", "1e3", "1E+3", "10e2", "8081"],
        True,
    ),
    **dict.fromkeys(["8081.0", "22.5", "2.25e1", "-1.5", "-15e-1", "1e-7", "1E-07", "0.1", "3.14159", "5e-324"], True),
    **dict.fromkeys(["1e-400", "-1e-400", "9007199254740993.0", "123456789012345678", "-123456789012345678"], True),
    **dict.fromkeys(
        ["9.2e18", "1e18", "true", "false", "null", '"22"', '"0022"', '"8081"', '"TRUE"', '"1"', "7", "-7", "1"], True
    ),
    # integers beyond 18 digits, integral floats beyond int64, out of range (a reject), odd strings
    **dict.fromkeys(["1234567890123456789", "-12345678901234567890123", "1e19", "1e23", "-1e300"], False),
    **dict.fromkeys(["1e400", "-1e400", '" 22 "', '"\\u0032\\u0032"', "[22]", "{}"], False),
}


def code_line(code: str, port: str = "443") -> bytes:
    return b'{"n":1,"code":%s,"port":%s}' % (code.encode(), port.encode())


@pytest.mark.parametrize("value", list(CODE_VALUES))
def test_a_number_for_a_categorical_takes_tier1_with_tier2s_index(value):
    rng = random.Random(len(value))
    good = [code_line(rng.choice(["22", '"22"', "0"])) for _ in range(4)]
    for dec in code_decoders():
        for lines in ([code_line(value)], [code_line("8081", value)], [*good[:2], code_line(value), *good[2:]]):
            assert_same(lines, dec=dec)
        want = CODE_VALUES[value]
        assert tier1_status([code_line(value), code_line("1", value)], dec).tolist() == [not want] * 2, value


def test_numbers_for_a_categorical_find_the_category_tier2_finds():
    dec = code_decoders()[1]
    texts = ["22", "-0.0", "22.0", "2.2e1", "22.5", "-15e-1", "1e-7", "5e-324", "9.2e18", "true", "8081", "1"]
    lines = [code_line(t, t) for t in texts]
    assert not tier1_status(lines, dec).any()
    fast, slow = both(lines, dec=dec)
    index = {c: i for i, c in enumerate(CODES.categorical[0].categories)}
    want = ["22", "0", "22", "22", "22.5", "-1.5", "1e-07", "5e-324", "9200000000000000000"]
    assert fast.cat[:-3, 0].tolist() == [index[w] for w in want]
    # true, 8081 and 1 are mapped (to yes, http-alt, " 443 "): none is in code's vocabulary
    assert fast.cat[-3:, 0].tolist() == [0, 0, 0]
    # port: 8081 -> http-alt and true -> yes by the map, 1 -> " 443 " stripped as tier 2 strips it
    assert fast.cat[:, 1].tolist()[-3:] == [3, 2, 1]
    np.testing.assert_array_equal(fast.cat, slow.cat)


def random_number_text(rng: random.Random) -> tuple[str, bool]:
    """A JSON number (or literal, or string) for a categorical, and whether tier 1 may take it."""
    kind = rng.randrange(6)
    sign = rng.choice(["", "-"])
    if kind == 0:  # integers, now and then beyond 18 digits
        digits = rng.choice([1, 2, 3, 4, 5, 9, 15, 17, 18, 19, 20, 25])
        text = sign + str(rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits))
        return text, digits <= 18
    if kind == 1:  # integral values written as floats: 22.0, 2.2e1, 22000e-3
        mant = rng.randrange(1, 10 ** rng.randrange(1, 20))  # (0000e-3 is not JSON)
        text = sign + rng.choice(
            [f"{mant}.0", f"{mant}.000", f"{mant}e0", f"{mant}000e-3", f"{mant}E+{rng.randrange(25)}"]
        )
    elif kind == 2:  # fractions, with and without exponents, tiny and huge
        mant = str(rng.randrange(1, 10 ** rng.randrange(1, 18)))
        frac = str(rng.randrange(10 ** rng.randrange(1, 18))).zfill(rng.randrange(1, 18))
        exp = rng.choice(["", "", f"e{rng.randrange(-340, 320)}", f"E-{rng.randrange(30)}", f"e+{rng.randrange(30)}"])
        text = f"{sign}{mant}.{frac}{exp}"
    elif kind == 3:  # the vocabulary's own, as numbers
        text = rng.choice(["22", "-22", "0", "-0", "1000", "1e3", "8081", "22.5", "-1.5", "1e-7", "5e-324", "8081.0"])
    elif kind == 4:
        text = rng.choice(["true", "false", "null"])
        return text, True
    else:  # strings of digits: tier 1 took them before
        return json.dumps(rng.choice(["22", "0022", "8081", "1e3", "-0", "22.0", "1"])), True
    v = float(text)
    return text, math.isfinite(v) and (not v.is_integer() or abs(v) < 2.0**63)


def test_random_numbers_for_categoricals_agree_with_tier2():
    rng = random.Random(20261201)
    for dec in code_decoders():
        texts = [(random_number_text(rng), random_number_text(rng)) for _ in range(3000)]
        lines = [code_line(a, b) for (a, _), (b, _) in texts]
        want = np.array([ta and tb for (_, ta), (_, tb) in texts])
        np.testing.assert_array_equal(tier1_status(lines, dec) == 0, want)
        for start in range(0, len(lines), 256):
            assert_same(lines[start : start + 256], dec=dec)
        assert want.mean() > 0.8
        dec.tier_lines = {"c": 0, "msgspec": 0}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dec.decode(lines)
        assert dec.tier_lines == {"c": int(want.sum()), "msgspec": int((~want).sum())}


def test_network_demo_events_take_tier1():
    # The demo's schema (examples/configs/network_multitask.yaml): port is categorical with a
    # vocabulary of strings, and the generator writes it as a number.
    schema = FeatureSchema(
        (
            Feature("packet_size", "numeric", "standard"),
            Feature("port", "categorical", categories=(OOV_TOKEN, "0", "123", "22", "443", "53", "80", "8080")),
            Feature("protocol", "categorical", categories=(OOV_TOKEN, "icmp", "tcp", "udp")),
            Feature("duration", "numeric", "log1p"),
            Feature("request_count", "numeric"),
            Feature("bytes_sent", "numeric", "log1p"),
            Feature("bytes_received", "numeric", "log1p"),
        )
    )
    dec = EventDecoder(
        schema, {"dest_ip": "dst_ip", "dest_port": "port"}, ["src_ip", "dest_ip", "dest_port", "protocol"]
    )
    rng = random.Random(9)
    events = [
        {
            "packet_size": rng.randrange(40, 1501),
            "port": rng.choice([0, 22, 53, 80, 443, 8080, 8081, 3389]),
            "protocol": rng.choice(["tcp", "udp", "icmp"]),
            "duration": round(rng.expovariate(0.5), 4),
            "request_count": rng.randrange(1, 50),
            "bytes_sent": rng.randrange(10**6),
            "bytes_received": rng.randrange(10**6),
            "src_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "dst_ip": f"192.0.2.{rng.randrange(1, 255)}",
            "label": "normal",
        }
        for _ in range(500)
    ]
    lines = [json.dumps(e).encode() for e in events]
    assert_same(lines, dec=dec)  # decode() counts its tiers; _decode_slow, the reference, does not
    assert dec.tier_lines == {"c": 500, "msgspec": 0}


# --- text features: a string's bytes, encode_text's rules, in C ----------------------------------

TEXT_SCHEMA = FeatureSchema(
    (
        Feature("qlen", "numeric"),
        Feature("rrtype", "categorical", categories=(OOV_TOKEN, "A", "AAAA")),
        Feature("domain", "text", max_bytes=12, normalize="dns", truncate="tail", allow_missing=False),
        Feature("agent", "text", max_bytes=5),  # head, no normalization, may be missing
    ),
    version=3,
)
TEXT_MAPPING = {"domain": "dns.rrname", "rrtype": "dns.rrtype"}


def text_decoder(min_present: int = 0) -> EventDecoder:
    return EventDecoder(TEXT_SCHEMA, TEXT_MAPPING, key_fields=["src_ip", "domain"], min_present=min_present)


def text_line(domain: bytes, agent: bytes | None = None) -> bytes:
    tail = b',"agent":' + agent if agent is not None else b""
    return b'{"src_ip":"10.0.0.1","dns":{"rrname":%s,"rrtype":"A"},"qlen":3%s}' % (domain, tail)


TEXT_EDGE = [
    b'""',
    b'"abcdefghijkl"',  # exactly max_bytes
    b'"abcdefghijklm"',  # one more: tail keeps the last 12
    b'"WWW.Example.COM."',  # upper case, trailing dot
    b'"example.com..."',
    b'"...."',  # only dots: empty
    b'"."',
    b'"a.b.c.d.e.f.g.h.i.j"',
    b'"xn--bcher-kva.example"',
    b'"\xc3\xa9t\xc3\xa9.fr"',
    b'"caf\xc3\xa9-bar-b\xc3\xbcro.de"',
    b'"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xc3\xa9"',  # the tail cut splits a euro sign
    b'"\xf0\x9f\x98\x80abcdefghijk"',
    b'"\xff\xfe.com"',  # invalid UTF-8: bad_json
    b'"\xed\xa0\x80.com"',  # an encoded surrogate
    b'"\xc0\x80"',  # overlong
    b'"a\\nb"',  # escapes: tier 2 unescapes
    b'"\\u0000abc"',
    b'"\\u0041BC.COM."',
    b'"\\ud800x"',  # a lone surrogate: msgspec refuses it
    b'"tab\there"',  # a raw control character: bad JSON
    b"null",
    b"5",
    b"1.5",
    b"true",
    b"false",
    b"[]",
    b'["a.com"]',
    b'{"name":"a.com"}',
    b'"' + b"A" * 5000 + b'.COM."',  # huge
    b'"' + b"\xc3\xa9" * 3000 + b'"',
]


@pytest.mark.parametrize("domain", TEXT_EDGE, ids=[repr(e[:30]) for e in TEXT_EDGE])
def test_text_edge_cases_agree_with_tier2(domain):
    good = [text_line(b'"Good-%d.Example.ORG."' % i, b'"curl/8.0"') for i in range(4)]
    # agent: absent, a head cut, a head cut splitting a euro sign, null, a number, an escape
    for agent in (None, b'"Mozilla/5.0"', b'"abc\xe2\x82\xac"', b"null", b"7", b'"\\u00e9t\xc3\xa9"'):
        line = text_line(domain, agent)
        assert_same([line], dec=text_decoder())
        assert_same([*good[:2], line, *good[2:], line], dec=text_decoder())
        assert_same([*good[:2], line, *good[2:], line], dec=text_decoder(min_present=4))


def test_plain_text_takes_tier1_with_encode_texts_bytes():
    from jenga_edge.contract.text_input import encode_text

    lines = [
        text_line(d, b'"Mozilla/5.0 (X11)"') for d in (b'"WWW.Example.COM."', b'""', b'"xjw8f2kq1093.example.com"')
    ]
    dec = text_decoder()
    assert not tier1_status(lines, dec).any(), "plain strings must not fall back"
    fast, _ = both(lines, dec=dec)
    domain, agent = TEXT_SCHEMA.text
    for row, name in enumerate(["WWW.Example.COM.", "", "xjw8f2kq1093.example.com"]):
        for j, (f, value) in enumerate(((domain, name), (agent, "Mozilla/5.0 (X11)"))):
            want = encode_text(value, f)
            assert fast.text_len[row, j] == len(want)
            assert bytes(fast.text[row, j, : len(want)]) == want and not fast.text[row, j, len(want) :].any()
    assert fast.keys["domain"] == ["WWW.Example.COM.", "", "xjw8f2kq1093.example.com"]  # alerts show the raw name
    assert fast.text.shape == (3, 2, 12) and fast.text_len.tolist() == [[12, 5], [0, 5], [12, 5]]
    assert_same(lines, dec=dec)


def test_non_strings_for_a_text_feature_are_tier2_rejects_naming_the_field():
    lines = [text_line(v) for v in (b"5", b"true", b'{"a":1}', b"[1]")] + [b'{"src_ip":"10.0.0.1","qlen":1}']
    dec = text_decoder()
    assert tier1_status(lines[:4], dec).all()
    fast, _ = both(lines, dec=dec)
    assert [(r.reason, r.field) for r in fast.rejects] == [("wrong_type", "domain")] * 4 + [("missing_field", "domain")]
    assert "expected a string (text feature)" in fast.rejects[0].message
    assert_same(lines, dec=dec)


def test_random_strings_agree_with_tier2():
    rng = random.Random(13)
    pieces = ["a", "Z", ".", "-", "0", "9", "é", "€", "😀", "\\n", "\\u0041", "\\\\", '\\"', " ", "\x7f", "xn--"]
    lines = []
    for _ in range(1500):
        name = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 20)))
        raw = ('"' + name + '"').encode()
        if rng.random() < 0.05:  # a stray invalid byte
            i = rng.randrange(1, len(raw))
            raw = raw[:i] + bytes([rng.choice([0x80, 0xC3, 0xFF])]) + raw[i:]
        lines.append(text_line(raw, rng.choice([None, b'"ua"', b'"' + name.encode() + b'"'])))
    for start in range(0, len(lines), 256):
        assert_same(lines[start : start + 256], dec=text_decoder())
        assert_same(lines[start : start + 256], dec=text_decoder(min_present=4))
    fast, _ = both(lines, dec=text_decoder())
    assert len(fast) > 1000


def test_text_fuzzed_lines_and_buffer_reads_agree_with_tier2():
    from jenga_edge.event_queue import Lines, _spans

    rng = random.Random(7)
    base = [text_line(b'"Host-%d.Example.COM."' % i, b'"agent/1.0"') for i in range(20)]
    lines = [m for line in base for m in mutations(line, rng, 30)]
    for start in range(0, len(lines), 200):
        assert_same(lines[start : start + 200], dec=text_decoder())
    good = [ln for ln in lines if b"\n" not in ln and ln.strip(b" \t\r")][:300]
    head, middle, tail = good[:7], good[7:-9], good[-9:]  # the segments of a batch, as the queue gives them
    buf = b"".join(ln + b"\n" for ln in middle)
    spans = np.empty((len(middle), 2), dtype=np.int64)
    _spans(buf, 0, len(middle), spans)
    dec = text_decoder()
    a, b = dec.decode(Lines([head, (buf, spans), tail])), dec.decode(good)
    np.testing.assert_array_equal(a.text, b.text)
    np.testing.assert_array_equal(a.text_len, b.text_len)
    assert a.index == b.index


def test_a_normalizer_on_a_text_feature_leaves_decoding_to_tier2():
    dec = EventDecoder(TEXT_SCHEMA, TEXT_MAPPING, normalize={"domain": Normalizer(lower=True)})
    assert dec._plan is None
    batch = dec.decode([text_line(b'"  WWW.A.COM "')])
    assert bytes(batch.text[0, 0, : batch.text_len[0, 0]]) == b"www.a.com"


def test_plan_checks_text_columns():
    from jenga_edge.native._fastjson import Plan

    with pytest.raises(ValueError, match="text_width"):
        Plan({b"d": ((5, 0),)}, 0, 0, 0, (), (), ((4, False, False),), 0)
    with pytest.raises(ValueError, match="max_bytes"):
        Plan({b"d": ((5, 0),)}, 0, 0, 0, (), (), ((9, False, False),), 8)
    with pytest.raises(ValueError, match="out of range"):
        Plan({b"d": ((5, 1),)}, 0, 0, 0, (), (), ((4, False, False),), 8)
    plan = Plan({b"d": ((5, 0),)}, 0, 0, 0, (), (), ((4, True, True),), 8)
    status = np.empty(1, np.uint8)
    with pytest.raises(ValueError, match="text and text_len"):
        plan.decode([b'{"d":"x"}'], np.empty((1, 0)), np.empty((1, 0), np.int64), [], status)
    with pytest.raises(ValueError, match="text"):
        plan.decode(
            [b'{"d":"x"}'], np.empty((1, 0)), np.empty((1, 0), np.int64), [], status, np.empty((1, 1, 4), np.uint8),
            np.empty((1, 1), np.int64),
        )  # fmt: skip
    text, lengths = np.full((1, 1, 8), 7, np.uint8), np.empty((1, 1), np.int64)
    plan.decode([b'{"d":"Ab.CDEF.."}'], np.empty((1, 0)), np.empty((1, 0), np.int64), [], status, text, lengths)
    assert status.tolist() == [0] and lengths.tolist() == [[4]] and bytes(text[0, 0]) == b"cdef\0\0\0\0"


# --- list elements and first-present paths (Suricata 7 | 8 DNS records) in C ----------------------

DNS_MAPPING = {
    "domain": ["dns.rrname", "dns.queries[].rrname"],
    "rrtype": ["dns.rrtype", "dns.queries[].rrtype"],
    "qlen": ["dns.qlen", "dns.answers[1].ttl"],
}


def dns_decoder(where: bool = True) -> EventDecoder:
    schema = FeatureSchema(
        (
            Feature("qlen", "numeric"),
            Feature("rrtype", "categorical", categories=(OOV_TOKEN, "A", "AAAA")),
            Feature("domain", "text", max_bytes=16, normalize="dns", truncate="tail", allow_missing=False),
        ),
        version=3,
    )
    return EventDecoder(
        schema,
        DNS_MAPPING,
        key_fields=["src_ip", "domain"],
        where={"dns.type": ["query", "request"]} if where else None,
    )


def dns_record(rng: random.Random) -> dict:
    def name():
        return rng.choice(["a.example", "WWW.B.COM.", "", "x" * 30, "é.fr", None, 7, {"o": 1}, ["l"], "c\nd"])

    dns: dict = {"type": rng.choice(["query", "request", "answer", "response", None, 3])}
    if rng.random() < 0.6:
        dns["rrname"] = name()
    if rng.random() < 0.3:
        dns["rrtype"] = rng.choice(["A", "AAAA", "TXT", None, 28])
    if rng.random() < 0.6:
        dns["queries"] = rng.choice(
            [
                [{"rrname": name(), "rrtype": rng.choice(["A", "AAAA", None])}],
                [{"rrname": name()}, {"rrname": name()}],
                [],
                [None, {"rrname": "second.example"}],
                ["x", {"rrname": "b.example"}],
                [[{"rrname": "nested"}]],
                "not a list",
                None,
                {"rrname": "an object"},
            ]
        )
    if rng.random() < 0.3:
        dns["answers"] = rng.choice(
            [[{"ttl": 1}, {"ttl": rng.choice([60, 1.5, None, "7", True])}], [{"ttl": 1}], [5, 6]]
        )
    if rng.random() < 0.2:
        dns["qlen"] = rng.choice([3, None, "4"])
    rec = {"src_ip": f"10.0.0.{rng.randrange(256)}", "event_type": "dns", "dns": dns}
    if rng.random() < 0.05:
        rec["dns"] = rng.choice([None, "x", 5, []])
    return rec


def test_suricata_7_and_8_dns_records_take_tier1():
    v7 = b'{"src_ip":"10.0.0.1","dns":{"version":2,"type":"query","id":1,"rrname":"WWW.Example.COM.","rrtype":"A"}}'
    v8 = (
        b'{"src_ip":"10.0.0.2","dns":{"version":3,"type":"request","id":2,"rd":true,'
        b'"queries":[{"rrname":"xjw8f2kq1093.com","rrtype":"AAAA"},{"rrname":"b.example","rrtype":"A"}]}}'
    )
    both_paths = b'{"src_ip":"10.0.0.3","dns":{"type":"query","queries":[{"rrname":"second"}],"rrname":"first"}}'
    answer = (
        b'{"src_ip":"10.0.0.4","dns":{"type":"response","queries":[{"rrname":"a.b"}],"answers":[{"ttl":1},{"ttl":60}]}}'
    )
    lines = [v7, v8, both_paths, answer]
    dec = dns_decoder()
    assert not tier1_status(lines, dec).any(), "plain Suricata records must not fall back"
    fast, _ = both(lines, dec=dec)
    assert fast.keys["domain"] == ["WWW.Example.COM.", "xjw8f2kq1093.com", "first"] and fast.filtered == [3]
    assert fast.cat[:, 0].tolist() == [1, 2, 0] and fast.text_len[:, 0].tolist() == [15, 16, 5]
    assert_same(lines, dec=dec)


def test_random_dns_records_agree_with_tier2():
    rng = random.Random(31)
    lines = [json.dumps(dns_record(rng), ensure_ascii=rng.random() < 0.5).encode() for _ in range(2500)]
    for where in (True, False):
        dec = dns_decoder(where)
        for start in range(0, len(lines), 250):
            assert_same(lines[start : start + 250], dec=dec)
    fast, _ = both(lines, dec=dns_decoder(False))
    took = len(lines) - int(tier1_status(lines, dns_decoder(False)).sum())
    assert took > 1000 and len(fast) > 500  # tier 1 reads most of them; many are rejected (no name)


def test_fuzzed_dns_records_agree_with_tier2():
    rng = random.Random(32)
    base = [json.dumps(dns_record(rng)).encode() for _ in range(40)]
    lines = [m for line in base for m in mutations(line, rng, 25)]
    dec = dns_decoder()
    for start in range(0, len(lines), 250):
        assert_same(lines[start : start + 250], dec=dec)


def test_plan_checks_groups_and_lists():
    from jenga_edge.native._fastjson import Plan

    with pytest.raises(ValueError, match="out of range"):
        Plan({b"a": ((0, 0, 1, 0),)}, 1, 0, 0, (), (), (), 0, 1)  # group 1 of 1
    with pytest.raises(ValueError, match="out of range"):
        Plan({b"a": ((0, 0, 0, 255),)}, 1, 0, 0, (), (), (), 0, 1)
    with pytest.raises(TypeError, match="list of one dict"):
        Plan({b"a": [{b"0": ((0, 0),)}, {}]}, 1, 0, 0, ())
    plan = Plan({b"a": ((0, 0, 0, 1),), b"b": [{b"1": ((0, 0, 0, 0),)}]}, 1, 0, 0, (), (), (), 0, 1)
    num, status = np.empty((3, 1)), np.empty(3, np.uint8)
    lines = [b'{"a":1,"b":[5,2]}', b'{"b":[5,null],"a":1}', b'{"b":[5,"x"],"a":1}']
    plan.decode(lines, num, np.empty((3, 0), np.int64), [], status)
    assert status.tolist() == [0, 0, 1] and num[:2, 0].tolist() == [2.0, 1.0]  # b[1] first; a null never counts


DNS_EDGE = [
    b'{"dns":{"type":"query","rrname":"a.b","extra":"\xff"}}',  # tier 2 decodes all of dns: bad_json
    b'{"dns":{"type":"query","rrname":"a.b","\xff":1}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":"\xc3\xa9"}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":1e400}}',  # out of range in a decoded value
    b'{"dns":{"type":"query","rrname":"a.b","extra":[1,{"x":-1e999}]}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":123456789012345678901234567890}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":1e-400}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":"\\ud800"}}',
    b'{"dns":{"type":"query","rrname":"a.b","extra":"\\u00e9"}}',
    b'{"dns":{"type":"query","rrname":"a.b"},"other":1e400,"more":"\xff"}',  # outside dns: never decoded
    b'{"dns":{"type":"query","rrname":"a.b","queries":[{"rrname":"\xff"}]}}',  # the later path, invalid
    b'{"dns":{"type":"query","rrname":"a.b","queries":[{"rrname":1e400}]}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"rrname":null}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"rrname":5}}',  # the first path: a number
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"rrname":{"x":1}}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"},{"rrname":"c.d"}],"answers":[{"ttl":1},{"ttl":7}]}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"answers":[{"ttl":1},{"ttl":"7"}]}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"answers":[{"ttl":1},{"ttl":{}}]}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b"}],"answers":[{"ttl":1},7]}}',
    b'{"dns":{"type":"query","queries":[{"rrname":"a.b","rrname":"x.y"}]}}',  # duplicate inside an element
    b'{"dns":{"type":"query","queries":{"rrname":"a.b"}}}',
    b'{"dns":{"type":"query","queries":[]}}',
    b'{"dns":{"type":"query","queries":[[{"rrname":"a.b"}]]}}',
    b'{"dns":{"type":"query","queries":[' + b"[" * 40 + b"]" * 40 + b',{"rrname":"a.b"}]}}',
    b'{"dns":{"type":"answer","rrname":"a.b"}}',  # filtered
    b'{"dns":{"type":"query","rrname":"a.b"},"dns":{"type":"query","rrname":"c.d"}}',  # duplicate top key
    b'{"dns":null}',
    b'{"dns":[]}',
]


@pytest.mark.parametrize("line", DNS_EDGE, ids=[repr(e[:60]) for e in DNS_EDGE])
def test_dns_edge_cases_agree_with_tier2(line):
    good = [b'{"src_ip":"1.2.3.4","dns":{"type":"query","rrname":"ok%d.example"}}' % i for i in range(4)]
    for where in (True, False):
        assert_same([line], dec=dns_decoder(where))
        assert_same([*good[:2], line, *good[2:], line], dec=dns_decoder(where))
