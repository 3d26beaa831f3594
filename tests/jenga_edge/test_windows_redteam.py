"""Red-team tests of the window engine (contract/window_state.py, native/_windows.c,
window_snapshots.py). test_bug_* tests demonstrate defects found in review (they fail
until fixed); the others pin edge cases that hold today."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jenga_edge.contract import window_state
from jenga_edge.contract.errors import SchemaError
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.typed import convert
from jenga_edge.contract.window_state import WindowEngine
from jenga_edge.native import windows as native

ROOT = Path(__file__).resolve().parents[2]
needs_c = pytest.mark.skipif(native is None, reason="jenga_edge.native._windows is not built")

COUNT = {"c": {"kind": "count", "key": ["k"], "window_s": 60}}
DISTINCT = {"d": {"kind": "distinct", "key": ["k"], "field": "v", "window_s": 60}}


def engine(windows: dict, **model) -> WindowEngine:
    return WindowEngine(convert(EventModel, {"time": "t", "windows": windows, **model}, error=SchemaError))


def feed(eng: WindowEngine, ts: list[float], ks: list, vs: list | None = None) -> dict[str, np.ndarray]:
    n = len(ts)
    return eng.update(
        np.array(ts, dtype=np.float64),
        {"k": list(ks), "v": list(vs) if vs is not None else [None] * n},
        {},
    )


@pytest.fixture(params=["c", "python"])
def mode(request, monkeypatch):
    if request.param == "c":
        if native is None:
            pytest.skip("jenga_edge.native._windows is not built")
    else:
        monkeypatch.setattr(window_state, "_native", None)
    return request.param


def run_script(body: str, timeout: float) -> subprocess.CompletedProcess:
    """A script in a child process (a crash or a hang must not take pytest down)."""
    prelude = textwrap.dedent(
        """
        import math, numpy as np
        from jenga_edge.contract.errors import SchemaError
        from jenga_edge.contract.events import EventModel
        from jenga_edge.contract.typed import convert
        from jenga_edge.contract.window_state import WindowEngine
        def engine(windows, **model):
            return WindowEngine(convert(EventModel, {"time": "t", "windows": windows, **model}, error=SchemaError))
        def feed(eng, ts, ks, vs=None):
            return eng.update(np.array(ts, dtype=np.float64), {"k": list(ks), "v": list(vs or [None] * len(ts))}, {})
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- event times ------------------------------------------------------------------------------


def test_bug_a_huge_finite_event_time_breaks_the_windows(mode):
    """The decoder accepts any finite epoch time (1e300 passes parse_time). floor(t / width)
    then exceeds int64: Python raises OverflowError in the kernel (after the clock and the
    key space were already updated, so every later batch fails too); C casts it with
    undefined behaviour (INT64_MIN on x86 = EMPTY), so each event resets its key: [1, 1]."""
    eng = engine(COUNT)
    out = feed(eng, [1e300, 1e300], ["a", "a"])
    assert out["c"].tolist() == [1.0, 2.0]


@needs_c
def test_bug_int64_overflow_of_sub_window_indexes_hangs_the_c_kernel():
    """First event at t = -6e19 (newest = -8e18), then a real gap (8 events ahead) to
    t = +6e19: `b - nw >= B` overflows int64 in advance() (_windows.c), wraps negative, and
    the clearing loop runs from nw + 1 to b: 1.6e19 iterations. Python gives [1]."""
    try:
        proc = run_script(
            """
            e = engine({"c": {"kind": "count", "key": ["k"], "window_s": 60}})
            feed(e, [-6e19], ["a"])
            print(feed(e, [6e19] * 8, ["a"] * 8)["c"].tolist())
            """,
            timeout=4,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the C bucket kernel loops (int64 overflow of b - newest)")
    assert proc.returncode == 0, proc.stderr


def test_time_windows_place_negative_times_as_python_floor_does(mode):
    eng = engine({"c": {"kind": "count", "key": ["k"], "window_s": 8}})  # sub-windows of 1 s
    out = feed(eng, [-8.5, -1.5, -0.5, 0.0, 0.5], ["a"] * 5)
    # sub-windows -9, -2, -1, 0, 0: at -1 the ring keeps -8..-1, so -9 has expired
    assert out["c"].tolist() == [1.0, 2.0, 2.0, 3.0, 4.0]


def test_bug_signed_zero_times_give_c_and_python_different_state(monkeypatch):
    """since_previous and damped keep max(prev, t): Python's max(0.0, -0.0) is 0.0, C's
    `prev > ti ? prev : ti` is -0.0; the snapshots (the state) are no longer bit-identical."""
    if native is None:
        pytest.skip("jenga_edge.native._windows is not built")
    windows = {"gap": {"kind": "since_previous", "key": ["k"]}, "w": {"kind": "damped", "key": ["k"], "lambda": 1}}
    in_c = engine(windows)
    feed(in_c, [0.0, -0.0], ["a", "a"])
    monkeypatch.setattr(window_state, "_native", None)
    in_python = engine(windows)
    feed(in_python, [0.0, -0.0], ["a", "a"])
    assert in_c.snapshot() == in_python.snapshot()


# --- keys ---------------------------------------------------------------------------------------


@needs_c
def test_bug_big_integer_keys_that_hash_alike_share_one_slot_in_the_c_table():
    """An integer beyond int64 is fingerprinted by hash(int) alone, which is its value
    mod 2**61 - 1 (not keyed): two different keys, one slot. The decoder hands such
    integers through as key values (e.g. "src_ip": 18446744073709551621)."""
    a = 2**64 + 5
    b = a + (2**61 - 1)
    assert hash(a) == hash(b)
    eng = engine(COUNT)
    assert feed(eng, [1.0, 2.0, 3.0], [a, b, a])["c"].tolist() == [1.0, 1.0, 2.0]  # Python's values
    assert eng.live_keys == 2


def test_many_keys_stay_bounded_and_c_equals_python(monkeypatch):
    """Heavy churn (every key new, max_keys 16): the table's tombstones never fill it,
    live keys stay at the bound, and C gives Python's values and state."""
    rows = 6000
    ts = [1000.0 + i * 0.01 for i in range(rows)]
    ks = [f"k{i // 2}" if i % 3 else i for i in range(rows)]
    windows = {**COUNT, "last": {"kind": "count", "key": ["k"], "among_last": 7}}
    outs, snaps = [], []
    for use_c in [True, False] if native is not None else [False]:
        if not use_c:
            monkeypatch.setattr(window_state, "_native", None)
        eng = engine(windows, max_keys=16)
        got = [feed(eng, ts[a : a + 500], ks[a : a + 500]) for a in range(0, rows, 500)]
        assert eng.live_keys <= 16 and eng.evicted > 0
        outs.append(np.concatenate([g["last"] for g in got]))
        snaps.append(eng.snapshot())
    assert all(np.array_equal(o, outs[0]) for o in outs) and len(set(snaps)) == 1


def test_bug_python_hash_memo_takes_1_for_true_after_a_batch_with_true(monkeypatch):
    """_hashes memoizes by value across batches; True == 1, so once a batch held True the
    memo's entry for 1 holds value_hash(True) ("true"): a later batch with 1 counts it as
    the same value as True (C: 2 distinct values)."""
    monkeypatch.setattr(window_state, "_native", None)
    eng = engine(DISTINCT)
    feed(eng, [1.0], ["a"], [True])
    assert feed(eng, [2.0], ["a"], [1])["d"].tolist() == [2.0]


# --- snapshots ------------------------------------------------------------------------------------


def test_bug_a_big_integer_key_makes_the_snapshot_save_raise(tmp_path):
    """msgpack cannot hold an int beyond 64 bits: save() raises OverflowError (it only
    catches OSError), so the agent's _shutdown skips closing its sinks, and the temporary
    file stays behind. key_of(1e300) is such an int too."""
    from jenga_edge import window_snapshots

    eng = engine(COUNT)
    feed(eng, [1.0, 2.0], [2**64 + 1, int(1e300)])
    path = tmp_path / "w.snap"
    result, line = window_snapshots.save(eng, str(path))  # must return its log line, never raise
    assert isinstance(line, str) and result in ("saved", "failed")
    assert not list(tmp_path.glob(".w.snap.tmp-*"))


def _crafted(windows: dict, mutate, **model) -> bytes:
    """A snapshot of a real engine whose state `mutate` altered: its checksum is valid."""
    eng = engine(windows, **model)
    n = 20
    feed(eng, [1.0] * n, [f"k{i}" for i in range(n)], list(range(n)))
    if windows is DISTINCT:
        feed(eng, [1.0] * 40, ["wide"] * 40, list(range(40)))  # one key past the exact bound: a sketch
    for sp in eng.spaces.values():
        sp.sync()
    mutate(eng)
    buf = io.BytesIO()
    eng.write_snapshot(buf)
    return buf.getvalue()


def _space(eng: WindowEngine):
    return next(iter(eng.spaces.values()))


def _sketch_out_of_range(eng):
    st = eng.states["d"]
    st.sketch[st.sketch >= 0] = 10**9


def _free_n_huge(eng):
    _space(eng).free_n[0] = 10**6


def _free_holds_live_slots(eng):
    sp = _space(eng)
    sp.free = np.array([0, 1, 2] + [0] * (len(sp.free) - 3), dtype=np.int64)
    sp.free_n[0] = 3


def _keys_shorter_than_arrays(eng):
    sp = _space(eng)
    sp.keys = sp.keys[:8]


def _clock_not_a_number(eng):
    eng.clock = "soon"


@needs_c
def test_bug_a_crafted_snapshot_with_a_sketch_index_out_of_range_crashes_the_process(tmp_path):
    """The checksum is inside the file, so it proves nothing against a crafted one. A
    sketch index >= the pool's size is taken as is; the distinct kernel then writes at
    pool + k * 512 (_windows.c hll_add): a segmentation fault, not a refusal."""
    path = tmp_path / "w.snap"
    path.write_bytes(_crafted(DISTINCT, _sketch_out_of_range, max_keys=64))
    proc = run_script(
        f"""
        from jenga_edge import window_snapshots
        e = engine({DISTINCT!r}, max_keys=64)
        print(window_snapshots.restore(e, {str(path)!r})[1])
        feed(e, [2.0], ["wide"], [1])
        print("survived")
        """,
        timeout=30,
    )
    assert proc.returncode == 0, f"the process died ({proc.returncode}): {proc.stderr[-500:]}"
    assert "refused" in proc.stdout or "survived" in proc.stdout


@pytest.mark.parametrize(
    "mutate", [_free_n_huge, _free_holds_live_slots, _keys_shorter_than_arrays, _clock_not_a_number]
)
def test_bug_a_crafted_inconsistent_snapshot_is_restored_instead_of_refused(mode, mutate, tmp_path):
    """restore() promises 'never with state it cannot trust', but checks nothing past the
    checksum: a free stack past its array (IndexError at the first eviction, every batch),
    a free stack holding live slots (two keys share a slot; live keys exceed max_keys),
    keys shorter than the arrays (ValueError in every batch) and a clock that is a string
    (ValueError in every batch) are all 'restored'."""
    from jenga_edge import window_snapshots

    path = tmp_path / "w.snap"
    path.write_bytes(_crafted(COUNT, mutate, max_keys=16))
    eng = engine(COUNT, max_keys=16)
    _, line = window_snapshots.restore(eng, str(path))
    if "refused" in line:
        return
    feed(eng, [2.0] * 20, [f"n{i}" for i in range(20)])  # must not raise
    assert eng.live_keys <= 16


def test_a_snapshot_of_other_arrays_or_a_cut_one_is_refused(tmp_path):
    from jenga_edge import window_snapshots

    good = _crafted(COUNT, lambda e: None, max_keys=16)
    for name, data in [("cut", good[:-8]), ("extra", good + b"x"), ("empty", b""), ("head", good[:512])]:
        p = tmp_path / name
        p.write_bytes(data)
        eng = engine(COUNT, max_keys=16)
        assert "refused" in window_snapshots.restore(eng, str(p))[1], name
        assert eng.live_keys == 0


@needs_c
def test_the_c_kernels_refuse_slots_and_buffers_out_of_range():
    z8 = np.zeros(4, dtype=np.uint8)
    t = np.zeros(4)
    out = np.empty(4)
    with pytest.raises(ValueError):
        native.buckets(0, 1.0, np.array([0, 1, 2, 9]), z8, t, None, None, np.zeros(4, np.int64), np.zeros(32), out)
    with pytest.raises(ValueError):
        native.buckets(0, 1.0, np.array([0, 1, 2, -1]), z8, t, None, None, np.zeros(4, np.int64), np.zeros(32), out)
    with pytest.raises(ValueError):  # acc too small for 4 slots
        native.buckets(0, 1.0, np.array([0, 1, 2, 3]), z8, t, None, None, np.zeros(4, np.int64), np.zeros(31), out)
    with pytest.raises(ValueError):
        native.since_previous(np.array([0, 4, 0, 0]), z8, t, np.zeros(4), out)
