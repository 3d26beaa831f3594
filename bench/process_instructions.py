"""Instructions per event of the agent's scoring path, counted by valgrind's callgrind.

On a shared, noisy machine wall-clock A/B comparisons of the agent move more
with the neighbours than with the code; instruction counts do not. This counts
them the way docs/performance.md's 0.2 section did: the same events through
Agent.process in two runs under callgrind, a short one and a long one (batches
40 and 120 of 256 by default), and the difference divided by the events the long
run has in addition (start-up, imports and the warm-up batch cancel out); the
framing's share (the stdin source's LineSplitter and the queue) is taken off.

    python bench/process_instructions.py                  # Agent.process, agent_bench's events, batch 256
    python bench/process_instructions.py --stages         # and per stage (decode, score, rules, alerts, ...)
    python bench/process_instructions.py --windows        # with window_bench's 10 window features
    python bench/process_instructions.py --windows --known 5120   # every counted key already known (steady state)
    python bench/process_instructions.py --profile        # cProfile of Agent.process over the long run (no valgrind)

--stages adds one run in which each stage runs under a C function nothing else
calls (TRAMPOLINES): its inclusive count is the stage, over every batch of the
run (the first batches, which alert more, included). Events are agent_bench's
(~1 KB NSL-KDD-shaped, 5,000 source addresses; with --windows, 100k as
window_bench spreads them), the config agent_bench's e2e run: one rule on the
binary task with cooldown 60 s per src_ip, a fsync'ed JSON Lines sink, batches
of 256; the rules' clock advances 1.28 ms per batch (200k events/s), so the
alerts do not depend on how long valgrind takes. Needs valgrind and agent_bench's
bundle (build/bench/agent/bundle, or --bundle). Counts user-space instructions
of every thread (the fsync thread too); the kernel's share of write/fsync is
not in them, and memcpy's `rep movsb` counts one per byte. Prints the numbers
and writes build/bench/process_instructions.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BATCH = 256


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------ one run (under valgrind)


def _prefix(path: Path, n_lines: int) -> bytes:
    """The first n_lines of `path` (read up to a byte offset prepare() wrote: no work per line)."""
    ends = json.loads(path.with_suffix(".ends.json").read_text())  # byte after each batch of 256
    with path.open("rb") as fh:
        return fh.read(ends[n_lines // BATCH - 1])


def batches_from(path: Path, n_lines: int) -> list[Any]:
    """The first n_lines of `path` as the agent's queue hands them over: framed by the
    stdin source (64 KiB reads), taken in batches of 256."""
    from jenga_edge.event_queue import EventQueue
    from jenga_edge.framing import LineSplitter
    from jenga_edge.sources.base import READ_CHUNK
    from jenga_edge.sources.stdin import Config, StdinSource

    data = _prefix(path, n_lines)
    queue = EventQueue(n_lines + 1)
    src = StdinSource(Config(), queue, 1 << 20, io.BytesIO(data))
    splitter = LineSplitter(1 << 20)
    for at in range(0, len(data), READ_CHUNK):
        src._feed(splitter, data[at : at + READ_CHUNK])
    src._finish(splitter)
    out = []
    while True:
        b = queue.take(BATCH, 0.0)
        if not b:
            return out
        out.append(b)


def _steady_clock(agent: Any) -> None:
    """The rules' clock (cooldowns) advances 1.28 ms per batch, as at 200k events/s, whatever
    the speed of the run: under valgrind a run lasts minutes, and cooldowns of 60 s would
    expire during it, so the alerts (and the count) would depend on how busy the machine was."""
    step = iter(range(1 << 62))
    start = time.monotonic()
    agent.pipe.rules.clock = lambda: start + next(step) * (BATCH / 200_000)


def run_stage(config: Path, events: Path, batches: int, stage: str) -> None:
    """Warm up on one batch, then `batches` batches through Agent.process (stage "process")
    or through its stages up to `stage` (the same calls process() makes)."""
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    agent = Agent(load_agent_config(config), str(config), log=lambda s: None)
    _steady_clock(agent)
    warm = batches_from(events, BATCH)
    agent.process(warm[0])
    if stage == "none":
        return
    if stage == "source":
        batches_from(events, BATCH * (batches + 1))
        return
    groups = batches_from(events, BATCH * (batches + 1))[1:]
    if stage == "process":
        for g in groups:
            agent.process(g)
        return
    if stage == "traced":
        run_traced(agent, groups)
        return
    raise SystemExit(f"unknown stage {stage!r}")


# Each stage runs under a C function of its own that nothing in the agent calls (an itertools
# iterator, functools.reduce, operator.call): callgrind's inclusive count of that function
# is the stage, all of it, in one run.
TRAMPOLINES = {
    "decode": "starmap_next",
    "score": "takewhile_next",
    "rules": "dropwhile_next",
    "alerts": "filterfalse_next",
    "deliver": "functools_reduce",
    "dead_letter": "accumulate_next",
    "account": "_operator_call",
}
# C functions inside the stages, counted inclusively too: where the stages' time goes.
PARTS = {
    "decode: the C tier (Plan.decode)": "Plan_decode",
    "alerts and dead letters as JSON (msgspec)": "json_encode_dict",
}


def _via(kind: str, f: Any) -> Any:
    """f() called from the C function TRAMPOLINES names for `kind`."""
    import functools
    import itertools
    import operator

    out: list[Any] = []
    if kind == "decode":
        return next(itertools.starmap(f, ((),)))
    if kind == "score":
        next(itertools.takewhile(lambda _: out.append(f()) or True, (0,)))
    elif kind == "rules":
        next(itertools.dropwhile(lambda _: out.append(f()) and False, (0,)))
    elif kind == "alerts":
        next(itertools.filterfalse(lambda _: out.append(f()), (0,)))
    elif kind == "deliver":
        functools.reduce(lambda a, b: out.append(f()), (0, 0))
    elif kind == "dead_letter":
        it = itertools.accumulate((0, 0), lambda a, b: out.append(f()))
        next(it), next(it)
    else:
        return operator.call(f)
    return out[0]


def run_traced(agent: Any, groups: list[Any]) -> None:
    """Agent.process's steps, each under its trampoline."""
    for lines in groups:
        _traced_batch(agent, lines)


def _traced_batch(agent: Any, lines: Any) -> None:
    from jenga_edge.timestamps import iso_utc

    pipe, t0 = agent.pipe, time.perf_counter()
    batch = _via("decode", lambda: pipe.decoder.decode(lines.data, lines.oversize_flags()))
    scores = _via("score", lambda: pipe.scorer.score(batch.num, batch.cat, batch.text, batch.text_len))
    hits = _via("rules", lambda: pipe.rules.evaluate(batch, scores))
    now = iso_utc(time.time())
    pending: list[Any] = []
    if hasattr(agent, "_alerts"):  # alerts built per batch
        alerts = _via("alerts", lambda: agent._alerts(hits, batch, lines, now, pending))
    else:
        alerts = _via("alerts", lambda: [agent._alert(h, batch, lines, now, i, pending) for i, h in enumerate(hits)])
    recorded = _via("deliver", lambda: agent._deliver(alerts))

    def dead() -> int:
        agent._write_dead([agent._dead(r, lines, now) for r in batch.rejects])
        agent._run_actions(pending, alerts[:recorded])
        return 0

    _via("dead_letter", dead)
    _via("account", lambda: agent._account(lines, batch, alerts, time.perf_counter() - t0))


def inclusive(out: Path, names: list[str]) -> dict[str, int]:
    """Inclusive instructions of C functions, from a callgrind file."""
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--inclusive=yes", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(.*?\)\s+\S*?:(\w+)(?:'\d+)?\s", line)
        if m and m.group(2) in names and m.group(2) not in got:
            got[m.group(2)] = int(m.group(1).replace(",", ""))
    return got


# ------------------------------------------------------------------ driver


def prepare(work: Path, bundle: str, n: int, windows: bool, known: int = 0) -> tuple[Path, Path]:
    """Events and config in `work`; those already there are used as they are (an A/B
    comparison of two commits wants the very same bytes)."""
    import yaml

    events, cfg_path = work / "events.jsonl", work / "agent.yaml"
    ends_path = events.with_suffix(".ends.json")
    if (
        events.exists()
        and cfg_path.exists()
        and ends_path.exists()
        and len(json.loads(ends_path.read_text())) * BATCH >= n
    ):
        return events, cfg_path

    ab = _load("agent_bench")
    from jenga_edge.bundle import verify_bundle

    b = verify_bundle(bundle)
    task = next(t for t in b.tasks.values() if t.kind.binary)
    ab.make_events(events, n, task.schema, "nsl-kdd" if ab.NSL_FILE.resolve().exists() else "synthetic")
    cfg_path = ab.agent_config(
        work / "agent.yaml", bundle, work, task.name, max_batch=BATCH, max_wait_ms=5, cooldown_s=60
    )
    if windows:
        wb = _load("window_bench")
        if known:
            _cycle_keys(events, known)
        else:
            wb._spread_sources(events, wb.KEYS)
        cfg = yaml.safe_load(cfg_path.read_text())
        wb.with_windows(cfg, wb.WINDOWS)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ends, at = [], 0
    with events.open("rb") as fh:
        for i, line in enumerate(fh, 1):
            at += len(line)
            if i % BATCH == 0:
                ends.append(at)
    events.with_suffix(".ends.json").write_text(json.dumps(ends))
    return events, cfg_path


def _cycle_keys(path: Path, period: int) -> None:
    """src_ip and dest_port a function of the event's index modulo `period`: past the first
    `period` events every key of both key spaces is known (the steady state), timestamps unchanged."""
    src = re.compile(rb'"src_ip":"[^"]*"')
    port = re.compile(rb'"dest_port":[0-9]+')
    ports = (22, 80, 443, 53, 8080, 3389, 445, 21, 25, 110)
    out = path.with_suffix(".tmp")
    with open(path, "rb") as fh, open(out, "wb", buffering=1 << 20) as dst:
        for i, line in enumerate(fh):
            k = i % period
            line = src.sub(b'"src_ip":"10.%d.%d.%d"' % (k // 65536, (k // 256) % 256, k % 256), line, count=1)
            dst.write(port.sub(b'"dest_port":%d' % ports[(k * 7) % len(ports)], line, count=1))
    out.replace(path)


def callgrind(config: Path, events: Path, batches: int, stage: str, work: Path, reuse: bool) -> int:
    out = work / f"cg.{stage}.{batches}.out"
    if reuse and out.exists():
        return _total(out)
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--_run",
        stage,
        "--_config",
        str(config),
        "--_events",
        str(events),
        "--_batches",
        str(batches),
    ]
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        out.unlink(missing_ok=True)
        raise SystemExit(f"callgrind run failed ({stage}, {batches}): {r.stderr[-3000:]}")
    return _total(out)


def _total(out: Path) -> int:
    m = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(errors="replace"), re.M)
    if m is None:
        raise SystemExit(f"no totals in {out}")
    return int(m.group(1))


def profile(config: Path, events: Path, batches: int) -> str:
    import cProfile
    import pstats

    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    agent = Agent(load_agent_config(config), str(config), log=lambda s: None)
    _steady_clock(agent)
    groups = batches_from(events, BATCH * (batches + 1))
    agent.process(groups[0])
    prof = cProfile.Profile()
    prof.enable()
    for g in groups[1:]:
        agent.process(g)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(40)
    return text.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=str(REPO / "build" / "bench" / "agent" / "bundle"))
    ap.add_argument("--short", type=int, default=40, help="batches of the short run")
    ap.add_argument("--long", type=int, default=120, help="batches of the long run")
    ap.add_argument("--stages", action="store_true", help="also each stage (one more long run per stage)")
    ap.add_argument("--windows", action="store_true", help="window_bench's 10 window features in the config")
    ap.add_argument(
        "--known",
        type=int,
        default=0,
        metavar="P",
        help="with --windows: keys repeat every P events (P <= short x 256), so the counted ones are all known",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the long run instead (no valgrind)")
    ap.add_argument("--work", type=Path, help="keep the events, configs and callgrind files here (reused)")
    ap.add_argument("--reuse", action="store_true", help="take the counts of callgrind files already in --work")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "process_instructions.json")
    for hidden in ("--_run", "--_config", "--_events", "--_batches"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._run:
        run_stage(Path(args._config), Path(args._events), int(args._batches), args._run)
        return
    with tempfile.TemporaryDirectory(prefix="process_instructions_") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        if args.known and not (args.windows and args.known <= args.short * BATCH):
            ap.error(f"--known needs --windows and at most --short x {BATCH} events")
        events, config = prepare(work, args.bundle, BATCH * (args.long + 2), args.windows, args.known)
        if args.profile:
            print(profile(config, events, args.long))
            return
        n_long, extra = args.long * BATCH, (args.long - args.short) * BATCH
        res: dict[str, Any] = {"windows": args.windows, "known": args.known, "batches": [args.short, args.long]}
        runs = [("none", 0), ("source", args.long), ("process", args.short), ("process", args.long)]
        runs += [("traced", args.long)] if args.stages else []
        counts: dict[str, int] = {}
        for stage, n in runs:
            counts[f"{stage}.{n}"] = callgrind(config, events, n, stage, work, args.reuse)
            print(f"[{stage} x{n}] {counts[f'{stage}.{n}']:,} instructions", file=sys.stderr, flush=True)
        # process runs frame their batches too: the source's share is taken off
        source = (counts[f"source.{args.long}"] - counts["none.0"]) / n_long
        whole = (counts[f"process.{args.long}"] - counts[f"process.{args.short}"]) / extra
        res["source_per_event"] = round(source)
        res["process_per_event"] = round(whole - source)
        if args.stages:
            # the warm-up batch ran through Agent.process: only the traced batches are counted
            got = inclusive(work / f"cg.traced.{args.long}.out", [*TRAMPOLINES.values(), *PARTS.values()])
            res["stages_per_event"] = {k: round(got.get(fn, 0) / n_long) for k, fn in TRAMPOLINES.items()}
            res["stages_sum"] = sum(res["stages_per_event"].values())
            res["parts_per_event"] = {k: round(got.get(fn, 0) / n_long) for k, fn in PARTS.items()}
        res["counts"] = counts
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "counts"}, indent=2))


if __name__ == "__main__":
    main()
