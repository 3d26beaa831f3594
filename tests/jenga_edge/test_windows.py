"""Window features (jenga_edge/contract/window_state.py): semantics against brute
force, bounded memory, event-time rules, batch-cut invariance, snapshots, and
the agent's decoder against the trainer's reader on real Suricata output."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import random
from pathlib import Path

import msgspec
import numpy as np
import pytest

from jenga_edge.contract.errors import BundleError, SchemaError
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.records import RecordReader
from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.contract.typed import convert
from jenga_edge.contract.window_state import WindowEngine
from jenga_edge.decode import EventDecoder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "suricata"


def engine(windows: dict, **model) -> WindowEngine:
    return WindowEngine(convert(EventModel, {"time": "t", "windows": windows, **model}, error=SchemaError))


def run(eng: WindowEngine, events: list[dict], cuts: list[int] | None = None) -> dict[str, np.ndarray]:
    """Feed events ({t, k, v, x}) in order, cut into batches at `cuts`."""
    bounds = [0, *(cuts or []), len(events)]
    outs: dict[str, list[float]] = {}
    for a, b in itertools.pairwise(bounds):
        part = events[a:b]
        if not part:
            continue
        out = eng.update(
            np.array([e["t"] for e in part], dtype=np.float64),
            {"k": [e["k"] for e in part], "v": [e.get("v") for e in part], "k2": [e.get("k2", 0) for e in part]},
            {"x": np.array([e.get("x", math.nan) for e in part], dtype=np.float64)},
        )
        for name, col in out.items():
            outs.setdefault(name, []).extend(col.tolist())
    return {n: np.array(v) for n, v in outs.items()}


def stream(n: int = 3000, keys: int = 12, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    t, out = 1_700_000_000.0, []
    for _ in range(n):
        t += rng.expovariate(20.0)
        out.append(
            {
                "t": t,
                "k": f"10.0.0.{rng.randrange(keys)}",
                "k2": rng.choice([22, 80, 443]),
                "v": rng.randrange(60),
                "x": rng.choice([math.nan, rng.uniform(0, 1500)]),
            }
        )
    return out


ALL = {
    "count": {"kind": "count", "key": ["k"], "window_s": 8},
    "last": {"kind": "count", "key": ["k", "k2"], "among_last": 50},
    "distinct": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 8},
    "sum": {"kind": "sum", "key": ["k"], "field": "x", "window_s": 8},
    "mean": {"kind": "mean", "key": ["k"], "field": "x", "window_s": 8},
    "std": {"kind": "std", "key": ["k"], "field": "x", "window_s": 8},
    "rate": {"kind": "rate", "key": ["k"], "window_s": 8, "condition": {"v": {"lt": 10}}},
    "gap": {"kind": "since_previous", "key": ["k"]},
    "w": {"kind": "damped", "key": ["k"], "lambda": 0.5},
    "dmean": {"kind": "damped", "key": ["k"], "field": "x", "lambda": 0.1, "stat": "mean"},
    "dstd": {"kind": "damped", "key": ["k"], "field": "x", "lambda": 1, "stat": "std"},
}


# --- semantics against brute force ----------------------------------------------------------


def in_window(events: list[dict], i: int, window_s: float) -> list[dict]:
    """The events of i's key that a bucketed window of 8 sub-windows still holds at i."""
    width = window_s / 8
    newest = max(math.floor(e["t"] / width) for e in events[: i + 1] if e["k"] == events[i]["k"])
    return [e for e in events[: i + 1] if e["k"] == events[i]["k"] and math.floor(e["t"] / width) > newest - 8]


def test_time_windows_are_what_brute_force_gives():
    events = stream(1500)
    out = run(engine(ALL), events)
    for i in range(0, len(events), 7):
        held = in_window(events, i, 8.0)
        xs = [e["x"] for e in held if not math.isnan(e["x"])]
        assert out["count"][i] == len(held)  # the current event included
        assert out["distinct"][i] == len({e["v"] for e in held})  # at most 60 values: exact... or sketch
        assert out["sum"][i] == pytest.approx(sum(xs), rel=1e-9, abs=1e-9)
        if xs:
            assert out["mean"][i] == pytest.approx(np.mean(xs), rel=1e-9)
            assert out["std"][i] == pytest.approx(np.std(xs), rel=1e-6, abs=1e-6)
        else:
            assert math.isnan(out["mean"][i]) and math.isnan(out["std"][i])
        assert out["rate"][i] == pytest.approx(sum(e["v"] < 10 for e in held) / len(held))


def test_count_among_last_and_since_previous_and_damped_are_exact():
    events = stream(1200)
    out = run(engine(ALL), events)
    for i in range(0, len(events), 5):
        e = events[i]
        window = events[max(0, i - 49) : i + 1]
        assert out["last"][i] == sum(w["k"] == e["k"] and w["k2"] == e["k2"] for w in window)
        before = [w for w in events[:i] if w["k"] == e["k"]]
        assert (math.isnan(out["gap"][i]) and not before) or out["gap"][i] == pytest.approx(e["t"] - before[-1]["t"])
        mine = [*before, e]
        assert out["w"][i] == pytest.approx(sum(2 ** (-0.5 * (e["t"] - w["t"])) for w in mine), rel=1e-9)
        wx = [(2 ** (-0.1 * (e["t"] - w["t"])), w["x"]) for w in mine if not math.isnan(w["x"])]
        if wx:
            total = sum(a for a, _ in wx)
            assert out["dmean"][i] == pytest.approx(sum(a * x for a, x in wx) / total, rel=1e-9)


def test_distinct_is_exact_up_to_32_then_a_sketch_within_its_error():
    eng = engine({"d": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 60}})
    small = [{"t": 1000.0 + i * 0.01, "k": "a", "v": i % 20} for i in range(200)]
    assert run(eng, small)["d"][-1] == 20
    errors = []
    for n in (100, 500, 2000, 10000):
        eng = engine({"d": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 60}})
        scan = [{"t": 1000.0 + i * 0.001, "k": "scanner", "v": i} for i in range(n)]
        errors.append(run(eng, scan)["d"][-1] / n - 1)
    assert all(abs(e) < 0.35 for e in errors), errors  # 64 registers: about 13 % standard error
    # once the window has passed, the key is back to exact counting
    later = run(eng, [{"t": 2000.0, "k": "scanner", "v": 1}, {"t": 2000.5, "k": "scanner", "v": 2}])
    assert later["d"].tolist() == [1, 2]


@pytest.mark.parametrize("pure", [False, True])
def test_distinct_stays_exact_over_a_long_life_of_small_steps_and_late_events(monkeypatch, pure):
    """Entries keep their sub-window mod 248: a key active for thousands of sub-windows, moving
    one to seven at a time, with late events and values that come back after long gaps, must
    count what brute force counts (an entry left stale would come back to life after 248)."""
    from jenga_edge.contract import window_state

    if pure:
        monkeypatch.setattr(window_state, "_native", None)
    rng = random.Random(4)
    width, t, events = 1.0, 1000.0, []  # window_s 8: sub-windows of 1 s
    for i in range(2500):
        steps, weights = [0.0, 0.05, 0.3, 1.0, 2.0, 7.0, 9.0], [10, 60, 10, 8, 7, 3, 2]
        t += rng.choices(steps, weights)[0] if i % 50 else 0.0
        late = rng.random() < 0.1
        # at most 32 values (1 + 6 + 25): the count stays exact, as brute force gives it
        v = 999 if i % 400 == 0 else rng.randrange(6) if rng.random() < 0.5 else 100 + rng.randrange(25)
        events.append({"t": t - (rng.uniform(0, 6) if late else 0.0), "k": "a", "v": v})
    out = run(engine({"d": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 8}}, lag_s=60.0), events)
    newest, placed = -math.inf, []
    for i, e in enumerate(events):
        newest = max(newest, math.floor(e["t"] / width))
        placed.append(max(math.floor(e["t"] / width), newest - 7))  # late: at the oldest sub-window kept
        held = {x["v"] for x, at in zip(events[: i + 1], placed) if at > newest - 8}
        assert out["d"][i] == len(held), i
    assert max(out["d"]) > 20  # the values that come and go fill the entries


# --- event time -------------------------------------------------------------------------------


def test_a_wild_future_timestamp_does_not_expire_the_windows():
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 60}}, max_ahead_s=3600)
    events = [{"t": 1000.0 + i, "k": "a"} for i in range(10)]
    events.insert(5, {"t": 9e9, "k": "a"})  # a sensor's clock gone wild
    out = run(eng, events)
    assert out["c"].tolist() == list(range(1, 12))
    assert eng.ahead == 1 and eng.clock == 1009.0


def test_a_real_gap_moves_the_clock_after_eight_events_ahead():
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 60}})
    events = [{"t": 1000.0, "k": "a"}, *({"t": 1e6 + i, "k": "a"} for i in range(10))]
    out = run(eng, events)
    assert eng.clock == 1e6 + 9 and eng.ahead == 8
    assert out["c"][7] == 8  # seven events ahead counted at the clock's time, with the first
    assert out["c"][-1] == 3  # the eighth moved the clock: the events before it expired


def test_late_events_count_at_their_time_within_lag_and_at_the_lag_beyond():
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 8}}, lag_s=5)
    out = run(eng, [{"t": 100.0, "k": "a"}, {"t": 97.0, "k": "a"}, {"t": 50.0, "k": "a"}])
    assert out["c"].tolist() == [1, 2, 3] and eng.late == 1


# --- bounded memory -------------------------------------------------------------------------


def test_keys_are_bounded_and_the_least_recently_seen_are_evicted():
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 600}}, max_keys=64)
    events = [{"t": 1000.0 + i * 0.01, "k": f"h{i}"} for i in range(1000)]
    events += [{"t": 1011.0, "k": "h999"}, {"t": 1011.1, "k": "h0"}]
    out = run(eng, events)
    assert eng.live_keys <= 64 and eng.evicted >= 1000 - 64
    assert out["c"][-2] == 2  # a recent key kept its count
    assert out["c"][-1] == 1  # an evicted key starts again
    assert len(eng.spaces[("k",)].touch) == 64  # the arrays never grew past max_keys


# --- one stream, any batches; snapshots ------------------------------------------------------


def test_values_do_not_depend_on_how_the_stream_is_cut_into_batches():
    events = stream(2000)
    whole = run(engine(ALL, max_keys=16), stream(2000, keys=40))
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, 2000), 60))
    cut = run(engine(ALL, max_keys=16), stream(2000, keys=40), cuts)
    for name in ALL:
        np.testing.assert_array_equal(whole[name], cut[name], err_msg=name)
    assert events  # (a second stream object, same seed)


def test_a_snapshot_restores_the_state_exactly():
    events = stream(2000)
    whole = run(engine(ALL), events)
    first = engine(ALL)
    run(first, events[:1200])
    data = first.snapshot()
    second = engine(ALL)
    second.restore(data)
    rest = run(second, events[1200:])
    for name in ALL:
        np.testing.assert_array_equal(whole[name][1200:], rest[name], err_msg=name)
    tampered = bytearray(data)
    tampered[-10] ^= 1
    with pytest.raises(BundleError, match="fails its checksum"):
        engine(ALL).restore(bytes(tampered))
    with pytest.raises(BundleError, match="other window definitions"):
        engine({**ALL, "count": {"kind": "count", "key": ["k"], "window_s": 9}}).restore(data)
    with pytest.raises(BundleError, match="not a window snapshot"):
        engine(ALL).restore(b"garbage")


# --- the decoder: same values as the trainer's reader, on real eve.json -----------------------

MODEL = {
    "where": {"event_type": "flow"},
    "time": "flow.start",
    "mapping": {"bytes_toserver": "flow.bytes_toserver", "pkts_toclient": "flow.pkts_toclient"},
    "normalize": {"proto": {"lower": True}},
    "windows": {
        "flows_60s": {"kind": "count", "key": ["src_ip"], "window_s": 60},
        "hosts_60s": {"kind": "distinct", "key": ["src_ip"], "field": "dest_ip", "window_s": 60},
        "ports_60s": {"kind": "distinct", "key": ["src_ip"], "field": "dest_port", "window_s": 60},
        "same_srv_100": {"kind": "count", "key": ["src_ip", "dest_port"], "among_last": 100},
        "bytes_mean_60s": {"kind": "mean", "key": ["src_ip"], "field": "bytes_toserver", "window_s": 60},
        "no_reply_60s": {"kind": "rate", "key": ["src_ip"], "window_s": 60, "condition": {"pkts_toclient": 0}},
        "gap": {"kind": "since_previous", "key": ["src_ip"]},
        "bytes_damped": {"kind": "damped", "key": ["src_ip"], "field": "bytes_toserver", "lambda": 0.1, "stat": "mean"},
        "to_dest_10s": {"kind": "count", "key": ["dest_ip"], "window_s": 10},
    },
}


def eve_schema() -> FeatureSchema:
    feats = [
        Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp")),
        Feature("bytes_toserver", "numeric"),
    ]
    feats += [Feature(n, "numeric") for n in MODEL["windows"]]
    return FeatureSchema(tuple(feats), events=convert(EventModel, MODEL, error=SchemaError))


def eve_records() -> list[dict]:
    out = []
    for path in sorted(FIXTURES.glob("*.eve.json.gz")):
        with gzip.open(path, "rt") as fh:
            out += [json.loads(line) for line in fh]
    return sorted(out, key=lambda r: r.get("flow", {}).get("start", r["timestamp"]))


def test_decoder_windows_equal_the_trainers_on_real_suricata_output():
    recs = eve_records()
    schema = eve_schema()
    rows = RecordReader(schema.events).read(recs)
    num, cat = schema.vectorize(rows.rows, strict=False)
    data = [msgspec.json.encode(r) for r in recs]
    for tier in ("fast", "slow"):
        dec = EventDecoder(schema)
        batches = [
            dec.decode(data[i : i + 256]) if tier == "fast" else dec._decode_slow(data[i : i + 256])
            for i in range(0, len(data), 256)
        ]
        got = np.concatenate([b.num for b in batches])
        assert sum(len(b) for b in batches) == len(rows.rows) > 10_000
        np.testing.assert_array_equal(got, num, err_msg=tier)
        np.testing.assert_array_equal(np.concatenate([b.cat for b in batches]), cat)
    names = [f.name for f in schema.numeric]
    scanner = [i for i, r in enumerate(rows.rows) if r["src_ip"] == "192.168.1.71"]
    assert max(num[scanner, names.index("hosts_60s")]) == 7  # the nmap scan reached 7 hosts within 2.4 s


def ssh_flow(start: object) -> dict:
    """One eve.json flow record to port 22 starting at `start`."""
    return {
        "event_type": "flow",
        "src_ip": "10.0.0.1",
        "dest_ip": "10.0.0.2",
        "dest_port": 22,
        "proto": "TCP",
        "flow": {"start": start, "bytes_toserver": 10, "pkts_toclient": 0},
    }


def test_an_event_without_its_time_or_key_is_rejected_and_changes_nothing():
    schema = eve_schema()
    dec = EventDecoder(schema, key_fields=["flows_60s"])
    flow = ssh_flow("2020-01-01T00:00:00Z")
    no_key = {**flow, "src_ip": None}
    no_time = {**flow, "flow": {"bytes_toserver": 10}}
    batch = dec.decode([json.dumps(x).encode() for x in (flow, no_key, no_time, flow)])
    assert [(r.index, r.reason, r.field) for r in batch.rejects] == [
        (1, "missing_field", "src_ip"),
        (2, "missing_field", "flow.start"),
    ]
    assert batch.keys["flows_60s"] == [1.0, 2.0]  # rules can read window values too


# --- the C kernels are the Python loops -------------------------------------------------------


def test_the_c_kernels_give_the_python_loops_values_bit_for_bit(monkeypatch):
    from jenga_edge.contract import window_state
    from jenga_edge.native import windows as native

    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    rng = random.Random(11)
    events = stream(4000, keys=80, seed=5)
    for e in events[50::97]:
        e["t"] += rng.choice([-30.0, 1e7])  # late and wild events
    for i in range(0, 4000, 500):  # scanners: past the exact bound, into sketches
        events[i : i + 60] = [{**e, "k": "scanner", "v": 1000 + j} for j, e in enumerate(events[i : i + 60])]
    cuts = sorted(rng.sample(range(1, 4000), 40))
    c_engine = engine(ALL, max_keys=32)
    in_c = run(c_engine, events, cuts)
    monkeypatch.setattr(window_state, "_native", None)
    py_engine = engine(ALL, max_keys=32)
    in_python = run(py_engine, events, cuts)
    for name in ALL:
        np.testing.assert_array_equal(in_c[name], in_python[name], err_msg=name)
    assert c_engine.snapshot() == py_engine.snapshot()  # the very same state
    assert c_engine.evicted > 0 and c_engine.late > 0 and c_engine.ahead > 0


def test_a_restored_key_index_is_sized_for_its_live_keys_not_the_arrays_capacity():
    """A restore rebuilds the C probe table for the live keys, as growing it sizes it (at most
    half full): sized for four times the arrays' capacity, a restored agent's probes missed
    the cache more (and it kept every found key all the same)."""
    from jenga_edge.native import windows as native

    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    events = stream(6000, keys=2000, seed=4)
    whole = run(engine({"count": ALL["count"]}, max_keys=4096), events)
    first = engine({"count": ALL["count"]}, max_keys=4096)
    run(first, events[:5000])
    restored = engine({"count": ALL["count"]}, max_keys=4096)
    restored.restore(first.snapshot())
    (space,) = restored.spaces.values()
    live = space.live
    assert live > 1500
    assert space.table.size() == max(1024, 1 << (2 * (live + 1) - 1).bit_length())
    rest = run(restored, events[5000:])  # the keys are found through the rebuilt index
    np.testing.assert_array_equal(rest["count"], whole["count"][5000:])


@pytest.mark.parametrize("pure", [False, True])
def test_sum_mean_and_std_of_one_key_field_and_window_share_one_state(monkeypatch, pure):
    """One accumulator state (and one kernel pass) serves them; each value is, to the bit, what
    the feature gives alone. Another window length or key gets a state of its own."""
    from jenga_edge.contract import window_state

    if pure:
        monkeypatch.setattr(window_state, "_native", None)
    shared = {
        "std": {"kind": "std", "key": ["k"], "field": "x", "window_s": 8},
        "sum": {"kind": "sum", "key": ["k"], "field": "x", "window_s": 8},
        "mean": {"kind": "mean", "key": ["k"], "field": "x", "window_s": 8},
        "mean_16": {"kind": "mean", "key": ["k"], "field": "x", "window_s": 16},
        "mean_k2": {"kind": "mean", "key": ["k", "k2"], "field": "x", "window_s": 8},
    }
    events = stream(3000, keys=30, seed=9)
    eng = engine(shared, max_keys=16)  # evictions too
    together = run(eng, events, [700, 701, 2000])
    assert len({id(st) for st in eng.states.values()}) == 3
    assert eng.states["std"] is eng.states["sum"] is eng.states["mean"]
    for name, w in shared.items():
        alone = run(engine({name: w}, max_keys=16), events, [700, 701, 2000])
        np.testing.assert_array_equal(together[name], alone[name], err_msg=name)
    restored = engine(shared, max_keys=16)
    restored.restore(eng.snapshot())
    assert restored.snapshot() == eng.snapshot()
    more = events[-200:]
    for e in more:
        e["t"] += 5.0
    a, b = run(eng, more), run(restored, more)
    for name in shared:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_value_hashes_in_c_are_value_hash_and_follow_categories():
    from jenga_edge.contract.window_state import _native_hashes, value_hash
    from jenga_edge.native import windows as native

    values = [22, "22", " 22\t", 22.0, -7, 2**63 - 1, 2**70, "tcp", "\x1ctcp\x1f", "héllo", True, "true", None, 1.5, ""]
    expected = [None if v is None else value_hash(v) for v in values]
    assert expected[0] == expected[1] == expected[2] == expected[3]  # one category
    assert expected[10] == expected[11] and expected[7] == expected[8]  # True is "true"; strip as str.strip()
    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    hashes, has = _native_hashes(values)
    assert [int(h) if k else None for h, k in zip(hashes.tolist(), has.tolist())] == expected


def test_snapshot_files_are_written_whole_and_a_bad_one_leaves_the_windows_empty(tmp_path):
    from jenga_edge import window_snapshots

    eng = engine(ALL)
    run(eng, stream(500))
    path = tmp_path / "w.snap"
    assert window_snapshots.save(eng, str(path))[0] == "saved"
    assert not list(tmp_path.glob(".w.snap.tmp-*"))  # written to a temporary file, then renamed
    fresh = engine(ALL)
    result, line = window_snapshots.restore(fresh, str(path))
    assert result == "restored" and "restored" in line and fresh.live_keys == eng.live_keys
    (tmp_path / "cut.snap").write_bytes(path.read_bytes()[:-100])
    cut = engine(ALL)
    result, line = window_snapshots.restore(cut, str(tmp_path / "cut.snap"))
    assert result == "refused" and "refused" in line and "checksum" in line and cut.live_keys == 0
    assert window_snapshots.restore(engine(ALL), str(tmp_path / "missing.snap")) == (
        "none",
        f"window snapshot {tmp_path / 'missing.snap'}: none yet, windows start empty",
    )
    other = engine({"c": {"kind": "count", "key": ["k"], "window_s": 5}})
    assert "other window definitions" in window_snapshots.restore(other, str(path))[1]


def test_a_snapshot_too_large_for_memory_is_refused_and_the_windows_start_empty(tmp_path, monkeypatch):
    """Out of memory while loading (the state's arrays, or the C key index's rebuild) is a
    refused snapshot, counted and logged as the others are, not a crash at start."""
    from jenga_edge import window_snapshots
    from jenga_edge.contract import window_state

    eng = engine(ALL)
    run(eng, stream(500))
    path = tmp_path / "w.snap"
    window_snapshots.save(eng, str(path))

    def no_memory(self, fh, where="snapshot"):
        raise MemoryError

    monkeypatch.setattr(window_state.WindowEngine, "read_snapshot", no_memory)
    target = engine(ALL)
    result, line = window_snapshots.restore(target, str(path))
    assert result == "refused" and "not enough memory" in line and target.live_keys == 0


@pytest.mark.parametrize("mode", ["c", "python"])
def test_a_burst_of_far_future_times_cannot_blind_the_windows_for_good(monkeypatch, mode):
    from jenga_edge.contract import window_state

    if mode == "python":
        monkeypatch.setattr(window_state, "_native", None)
    elif window_state._native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 60}})
    t0 = 1_700_000_000.0
    burst = [{"t": t0 + 3e9, "k": "a"}] * 8  # a burst far ahead: the clock jumps there
    normal = [{"t": t0 + 60.0 * i, "k": "a"} for i in range(1, 13)]
    out = run(eng, [{"t": t0, "k": "a"}, *burst, *normal], cuts=[3, 10])
    assert eng.resets == 1 and eng.clock == t0 + 60.0 * 12  # eight events far behind: the clock came back
    assert out["c"][-4:].tolist() == [1.0, 1.0, 1.0, 1.0]  # windows expire again, one event a minute


def test_the_decoder_rejects_times_beyond_the_year_5000():
    schema = eve_schema()
    dec = EventDecoder(schema)
    flow = ssh_flow(1e300)
    batch = dec.decode([json.dumps(flow).encode()])
    assert [(r.reason, r.field) for r in batch.rejects] == [("bad_timestamp", "flow.start")]
    assert dec.windows is not None and dec.windows.live_keys == 0


# --- the fast paths of the window stage (issue 9's end-to-end target) ---------------------------


def test_the_c_decoders_event_times_are_parse_times_to_the_bit():
    """Tier 1 reads a time's fraction of up to 15 digits as digits / 10^d (one correctly
    rounded division), not through strtod: the value must still be float("0." + frac)."""
    from jenga_edge.contract.values import parse_time

    rng = random.Random(7)
    stamps = []
    for digits in range(1, 21):
        for _ in range(40):
            frac = "".join(rng.choice("0123456789") for _ in range(digits))
            zone = rng.choice(["Z", "+0000", "-05:30", "+01:00", ""])
            stamps.append(
                f"20{rng.randrange(10, 40)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T0{rng.randrange(10)}:"
                f"{rng.randrange(10, 60)}:{rng.randrange(10, 60)}.{frac}{zone}"
            )
            stamps.append(f"1970-01-01T00:00:00.{frac}Z")  # the epoch: the time is the fraction alone, every bit
    stamps += [
        "2026-12-02T10:24:01.999999999999999+0000",
        "2026-12-02T10:24:01.000000000000001Z",
        "2026-12-02T10:24:01.5",
    ]
    dec = EventDecoder(eve_schema())
    lines = [json.dumps(ssh_flow(s)).encode() for s in stamps]
    col = dec._input_col[dec.model.time]
    want = np.array([parse_time(s) for s in stamps], dtype=np.float64)
    np.testing.assert_array_equal(dec._slow_columns(lines).num[:, col], want)
    if dec._plan is None:
        pytest.skip("jenga_edge.native._fastjson is not built")
    fast = dec._decode_fast(dec._plan, lines, ())
    assert dec.tier_lines["c"] == len(lines)  # every line read by tier 1
    np.testing.assert_array_equal(fast.num[:, col], want)


def test_tuple_keys_made_in_c_are_not_tracked_by_the_garbage_collector(monkeypatch):
    """A key of two or more fields is a tuple of str and int: it can be in no cycle. Made
    in C, it is untracked at once (tracked, one a new key per event made each young
    collection walk them); the keys and every value stay those of the pure path."""
    import gc

    from jenga_edge.contract import window_state
    from jenga_edge.native import windows as native

    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    events = stream(3000, keys=200, seed=9)  # mostly new (k, k2) keys, evicted past 64
    c_engine = engine(ALL, max_keys=64)
    gc.disable()  # no collection meanwhile (it would untrack such tuples itself)
    try:
        in_c = run(c_engine, events, [700, 701, 1500])
        keys = [k for k in c_engine.spaces[("k", "k2")].keys if k is not None]
    finally:
        gc.enable()
    assert keys and all(type(k) is tuple for k in keys)
    assert not any(gc.is_tracked(k) for k in keys)
    monkeypatch.setattr(window_state, "_native", None)
    py_engine = engine(ALL, max_keys=64)
    in_python = run(py_engine, events, [700, 701, 1500])
    for name in ALL:
        np.testing.assert_array_equal(in_c[name], in_python[name], err_msg=name)
    assert c_engine.snapshot() == py_engine.snapshot()
    assert c_engine.evicted > 0


@pytest.mark.parametrize("pure", [False, True])
def test_has_none_finds_a_missing_key_value_in_either_tier(monkeypatch, pure):
    from jenga_edge.contract import window_state

    if pure:
        monkeypatch.setattr(window_state, "_native", None)
    elif window_state._native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    assert not window_state.has_none(["a", 1, 0, "", False, 2.5])
    assert window_state.has_none(["a", None, "b"]) and window_state.has_none([None])
    assert not window_state.has_none([])


def test_time_windows_place_times_on_sub_window_boundaries_as_python_floor_does(monkeypatch):
    """The C kernels floor t / width without libm (a truncation, one down when it rounded up):
    negative, integral, signed-zero and sub-window-edge times give Python's sub-windows."""
    from jenga_edge.contract import window_state
    from jenga_edge.native import windows as native

    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    windows = {
        "c": {"kind": "count", "key": ["k"], "window_s": 8},
        "m": {"kind": "mean", "key": ["k"], "field": "x", "window_s": 0.8},
        "d": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 8},
    }
    ts = [-9.0, -8.5, -8.0, -1.0, -0.5, -1e-300, -0.0, 0.0, 1e-300, 0.1, 0.7, 0.8, 7.999999999999999, 8.0, 8.1]
    ts += [1e11 - 0.1, 1e11]
    events = [{"t": t, "k": "a" if i % 3 else "b", "v": i % 5, "x": float(i)} for i, t in enumerate(ts)]
    c_engine = engine(windows, lag_s=1e12, max_ahead_s=1e12)
    in_c = run(c_engine, events, [5, 9])
    monkeypatch.setattr(window_state, "_native", None)
    py_engine = engine(windows, lag_s=1e12, max_ahead_s=1e12)
    in_python = run(py_engine, events, [5, 9])
    for name in windows:
        np.testing.assert_array_equal(in_c[name], in_python[name], err_msg=name)
    assert c_engine.snapshot() == py_engine.snapshot()


def test_rate_conditions_from_the_memo_of_verdicts_are_condition_masks(monkeypatch):
    """In C a rate window looks each row's verdict up in a memo of the values seen (None,
    str, int); other values (floats, booleans) take condition_mask's own path. Either way
    the rates are the pure path's, True never takes 1's verdict, and a full memo restarts."""
    from jenga_edge.contract import window_state
    from jenga_edge.native import windows as native

    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    monkeypatch.setattr(window_state, "_HASH_MEMO", 40)  # the memo is cleared when it outgrows this
    windows = {
        "eq": {"kind": "rate", "key": ["k"], "window_s": 8, "condition": {"v": 1}},
        "in": {"kind": "rate", "key": ["k"], "window_s": 8, "condition": {"v": [22, "ssh", "true"]}},
        "ne": {"kind": "rate", "key": ["k"], "window_s": 8, "condition": {"v": {"not_in": [22, 0]}}},
        "gte": {"kind": "rate", "key": ["k"], "window_s": 8, "condition": {"v": {"gte": 20}}},
    }
    rng = random.Random(21)
    pool = [None, 1, 22, "22", " 22 ", "ssh", "SSH", 0, "0", "true", *range(30, 130)]
    events = stream(3000, keys=30, seed=8)
    for i, e in enumerate(events):
        e["v"] = rng.choice(pool)
        if 1000 <= i < 1100:  # floats and booleans in a stretch of batches: condition_mask itself
            e["v"] = rng.choice([True, False, 1, 22.0, 1.0, 0])
    cuts = sorted(rng.sample(range(1, 3000), 50))
    in_c = run(engine(windows), events, cuts)
    monkeypatch.setattr(window_state, "_native", None)
    in_python = run(engine(windows), events, cuts)
    for name in windows:
        np.testing.assert_array_equal(in_c[name], in_python[name], err_msg=name)
    monkeypatch.undo()
    eng = engine(windows)
    run(eng, [{"t": 1.0, "k": "a", "v": 1}, {"t": 2.0, "k": "a", "v": 1}])
    run(eng, [{"t": 3.0, "k": "a", "v": True}])  # true is the category "true", not 1
    assert eng._cond_memo[("eq", "v")] == {1: True}
    out = run(eng, [{"t": 3.5, "k": "b", "v": True}, {"t": 4.0, "k": "b", "v": 1}])
    assert out["eq"].tolist() == [0.0, 0.5] and out["in"].tolist() == [1.0, 0.5]


# --- a window on its own time field (time: flow.start) -----------------------------------------

OWN = {
    "tries_10s": {"kind": "count", "key": ["k"], "window_s": 10, "time": "s", "time_lag_s": 60},
    "tries_rec_10s": {"kind": "count", "key": ["k"], "window_s": 10},
    "sum_10s": {"kind": "sum", "key": ["k"], "field": "x", "window_s": 10, "time": "s", "time_lag_s": 60},
    "mean_10s": {"kind": "mean", "key": ["k"], "field": "x", "window_s": 10},  # on the event time: not shared
}


def run_own(eng: WindowEngine, events: list[dict], cuts: list[int] | None = None) -> dict[str, np.ndarray]:
    """As run(), with each event's own time `s` (NaN: missing) among the numbers."""
    bounds = [0, *(cuts or []), len(events)]
    outs: dict[str, list[float]] = {}
    for a, b in itertools.pairwise(bounds):
        part = events[a:b]
        out = eng.update(
            np.array([e["t"] for e in part], dtype=np.float64),
            {"k": [e["k"] for e in part]},
            {
                "x": np.array([e.get("x", 1.0) for e in part], dtype=np.float64),
                "s": np.array([e.get("s", math.nan) for e in part], dtype=np.float64),
            },
        )
        for name, col in out.items():
            outs.setdefault(name, []).extend(col.tolist())
    return {n: np.array(v) for n, v in outs.items()}


def burst_written_late() -> list[dict]:
    """Five connections begun within 0.3 s whose records are written over 14 s (Suricata
    writes a flow's record when it times out), among another host's steady records."""
    out = [{"t": 1000.0 + i, "s": 1000.0 + i - 0.5, "k": "other"} for i in range(30)]
    starts = [1002.0, 1002.1, 1002.1, 1002.2, 1002.3]
    written = [1010.0, 1013.0, 1016.0, 1020.0, 1024.0]
    out += [{"t": w, "s": s, "k": "burst"} for s, w in zip(starts, written)]
    return sorted(out, key=lambda e: e["t"])


@pytest.mark.parametrize("pure", [False, True])
def test_a_window_on_its_own_time_counts_a_burst_whose_records_are_written_late(monkeypatch, pure):
    from jenga_edge.contract import window_state

    if pure:
        monkeypatch.setattr(window_state, "_native", None)
    events = burst_written_late()
    out = run_own(engine(OWN), events, cuts=[7, 20])
    rows = [i for i, e in enumerate(events) if e["k"] == "burst"]
    assert out["tries_10s"][rows].tolist() == [1, 2, 3, 4, 5]  # placed where they began: one burst
    assert max(out["tries_rec_10s"][rows]) < 5  # placed where they were written: spread out
    assert out["sum_10s"][rows].tolist() == [1, 2, 3, 4, 5]
    assert out["mean_10s"][rows].tolist() == [1.0] * 5  # a stat on the event time keeps its own state


def test_a_windows_own_time_is_bounded_by_the_clock_and_its_lag():
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 8, "time": "s", "time_lag_s": 20}})
    events = [
        {"t": 100.0, "s": 99.0, "k": "a"},
        {"t": 101.0, "s": 40.0, "k": "a"},  # 61 s behind the clock: counts at clock - 20 (81), out of the window
        {"t": 102.0, "s": 500.0, "k": "b"},  # ahead of the clock: counts at the clock
        {"t": 103.0, "k": "b"},  # none: at the clock
        {"t": 104.0, "s": 103.5, "k": "c"},
    ]
    run_own(eng, events)
    own = window_state_own_times(events, before=-math.inf, lag=20)
    assert own == [99.0, 81.0, 102.0, 103.0, 103.5]
    assert eng.own_clipped == {"late": 1, "ahead": 1, "missing": 1}  # each counted, never silent


def test_own_time_clips_are_counted_once_per_event_and_time_field():
    eng = engine(OWN)  # two windows on `s`, one lag: one placement per event
    run_own(eng, [{"t": 100.0, "s": 10.0, "k": "a"}, {"t": 101.0, "k": "a"}, {"t": 102.0, "s": 101.5, "k": "a"}])
    assert eng.own_clipped == {"late": 1, "ahead": 0, "missing": 1}


def window_state_own_times(events: list[dict], before: float, lag: float) -> list[float]:
    from jenga_edge.contract.window_state import _own_times

    placed = np.array([e["t"] for e in events], dtype=np.float64)
    raw = np.array([e.get("s", math.nan) for e in events], dtype=np.float64)
    return _own_times(raw, placed, before, lag).tolist()


def test_own_time_values_do_not_depend_on_batch_cuts_and_c_is_python(monkeypatch):
    from jenga_edge.contract import window_state
    from jenga_edge.native import windows as native

    rng = random.Random(3)
    events = []
    for e in stream(2000, keys=20, seed=9):
        e["s"] = e["t"] - rng.expovariate(1 / 20)  # written up to a minute or so after it began
        events.append(e)
    events[100]["s"] = math.nan
    whole = run_own(engine(OWN), events)
    cuts = sorted(rng.sample(range(1, 2000), 30))
    for name, col in run_own(engine(OWN), events, cuts).items():
        np.testing.assert_array_equal(col, whole[name], err_msg=name)
    if native is not None:
        monkeypatch.setattr(window_state, "_native", None)
        for name, col in run_own(engine(OWN), events, cuts).items():
            np.testing.assert_array_equal(col, whole[name], err_msg=name)


def test_a_window_on_its_own_time_is_validated_at_load():
    with pytest.raises(SchemaError, match=r"windows\.c\.time: among_last"):
        engine({"c": {"kind": "count", "key": ["k"], "among_last": 5, "time": "s"}})
    with pytest.raises(SchemaError, match=r"windows\.c\.time.*computed"):
        engine(
            {
                "c": {"kind": "count", "key": ["k"], "window_s": 5, "time": "g"},
                "g": {"kind": "since_previous", "key": ["k"]},
            }
        )
    with pytest.raises(SchemaError, match="time_lag_s"):
        engine({"c": {"kind": "count", "key": ["k"], "window_s": 5, "time": "s", "time_lag_s": -1}})


def test_windows_on_the_event_time_keep_their_definition_and_bundle_json():
    """time and time_lag_s are written only where a window uses them: a bundle or snapshot
    made before they existed reads the same (old agents read new bundles without them)."""
    model = convert(EventModel, MODEL, error=SchemaError)
    assert all("time" not in w and "time_lag_s" not in w for w in model.to_json()["windows"].values())
    assert b"time_lag_s" not in model.window_definition()
    own = convert(
        EventModel,
        {**MODEL, "windows": {"t10": {"kind": "count", "key": ["src_ip"], "window_s": 10, "time": "flow.start"}}},
        error=SchemaError,
    )
    assert own.to_json()["windows"]["t10"]["time"] == "flow.start"
    assert own.to_json()["windows"]["t10"]["time_lag_s"] == 120.0


def test_decoder_own_time_windows_equal_the_trainers_on_the_lab_corpus():
    """Real Suricata 7 records in the order it wrote them (the lab corpus's training run):
    the event time is the record's timestamp, one window runs on flow.start."""
    path = Path(__file__).parents[2] / "lab" / "corpus" / "corpus-s7" / "labelled.jsonl.gz"
    recs = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("event_type") == "flow":
                recs.append(r)
            if len(recs) >= 4000:
                break
    recs.sort(key=lambda r: r["timestamp"])  # the trainer's order (a few records are written out of it)
    model = {
        **MODEL,
        "time": "timestamp",
        "windows": {
            **MODEL["windows"],
            "tries_10s": {
                "kind": "count",
                "key": ["src_ip", "dest_ip", "dest_port"],
                "window_s": 10,
                "time": "flow.start",
            },
            "bytes_sum_60s": {
                "kind": "sum",
                "key": ["src_ip"],
                "field": "bytes_toserver",
                "window_s": 60,
                "time": "flow.start",
                "time_lag_s": 30,
            },
        },
    }
    feats = [
        Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp")),
        Feature("bytes_toserver", "numeric"),
    ]
    feats += [Feature(n, "numeric") for n in model["windows"]]
    schema = FeatureSchema(tuple(feats), events=convert(EventModel, model, error=SchemaError))
    rows = RecordReader(schema.events).read(recs)
    num, _ = schema.vectorize(rows.rows, strict=False)
    data = [msgspec.json.encode(r) for r in recs]
    for tier in ("fast", "slow"):
        dec = EventDecoder(schema)
        batches = [
            dec.decode(data[i : i + 256]) if tier == "fast" else dec._decode_slow(data[i : i + 256])
            for i in range(0, len(data), 256)
        ]
        np.testing.assert_array_equal(np.concatenate([b.num for b in batches]), num, err_msg=tier)
    names = [f.name for f in schema.numeric]
    assert num[:, names.index("tries_10s")].max() > 5  # bursts of tries counted where their connections began


def test_the_agent_counts_own_time_clips_in_its_metrics(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import agent_config_from_dict

    from .test_warmup import config, run, stream

    cfg = config(network_bundle[0], tmp_path, own={"kind": "count", "key": ["src_ip"], "window_s": 10,
                                                   "time": "s", "time_lag_s": 30})  # fmt: skip
    lines = []
    for i, line in enumerate(stream(12)):
        d = json.loads(line)
        if i % 4 == 1:
            d["s"] = d["t"] - 100  # 100 s behind: at clock - 30
        elif i % 4 != 3:
            d["s"] = d["t"] - 1  # i % 4 == 3: none
        lines.append(json.dumps(d).encode())
    agent = Agent(agent_config_from_dict(cfg), log=lambda s: None)
    run(agent, lines, 5)
    assert agent.metrics.window_own_time_clipped.labelled() == {"late": 3, "missing": 3}
    assert "own_time_clipped=6 (late=3 missing=3)" in agent.metrics.stats_line()  # the logged line says it
