"""What one onnxruntime run of an exported graph costs, and which nodes cost it.

    python bench/graph_profile.py build/bench/agent/bundle/merged-kdd.onnx
    python bench/graph_profile.py OLD.onnx NEW.onnx --batch 256      # A/B, runs interleaved

For each graph: a session as the agent makes it (one thread each way, sequential,
the memory pattern off, every graph optimization), fed a batch of random rows of
the graph's own input shapes (numbers in [0, 10), a few missing; categorical and
text indices 0-2), then
1. us per event: `--reps` rounds of `--runs` runs, rounds of the graphs
   interleaved so a neighbour's load falls on all of them alike; min and median;
2. per node: onnxruntime's profiler over `--profile-runs` runs, the median kernel
   time of each node and the total per op type (profiling adds its own overhead:
   the shares matter, not the sum).
Prints tables and writes JSON (--out). Measures, never asserts.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from jenga_edge import ort_loader  # noqa: E402 - sets onnxruntime's telemetry off first


def session(path: str, profile: bool = False) -> Any:
    rt = ort_loader.load()
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_mem_pattern = False
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"graph_profile_{os.getpid()}")
    return rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def feed_for(sess: Any, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for i in sess.get_inputs():
        shape = [batch if not isinstance(d, int) or d is None else d for d in i.shape]
        if i.name == "text_lengths" or i.type == "tensor(int64)":
            feed[i.name] = rng.integers(0, 3, shape).astype(np.int64)
        elif i.type == "tensor(uint8)":
            feed[i.name] = rng.integers(97, 123, shape).astype(np.uint8)
        else:
            x = (rng.random(shape) * 10).astype(np.float32)
            x[rng.random(shape) < 0.02] = np.nan
            feed[i.name] = x
    return feed


def per_event_us(paths: list[str], batch: int, runs: int, reps: int) -> dict[str, list[float]]:
    made = [(p, session(p)) for p in paths]
    feeds = {p: feed_for(s, batch) for p, s in made}
    out: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(reps):
        for p, s in made:
            names = [o.name for o in s.get_outputs()]
            for _ in range(max(10, runs // 10)):
                s.run(names, feeds[p])
            t0 = time.perf_counter()
            for _ in range(runs):
                s.run(names, feeds[p])
            out[p].append((time.perf_counter() - t0) / runs / batch * 1e6)
    return out


def node_profile(path: str, batch: int, runs: int) -> dict[str, Any]:
    s = session(path, profile=True)
    feed = feed_for(s, batch)
    names = [o.name for o in s.get_outputs()]
    for _ in range(runs):
        s.run(names, feed)
    trace = s.end_profiling()
    try:
        events = json.loads(Path(trace).read_text())
    finally:
        os.remove(trace)
    per_node: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            shape = json.dumps(e["args"].get("output_type_shape", ""))[:70]
            per_node[(e["name"][: -len("_kernel_time")], e["args"]["op_name"], shape)].append(e["dur"])
    nodes = sorted(
        ({"node": k[0], "op": k[1], "output": k[2], "us": statistics.median(v)} for k, v in per_node.items()),
        key=lambda r: -r["us"],
    )
    by_op: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"us": 0.0, "nodes": 0})
    for r in nodes:
        by_op[r["op"]]["us"] += r["us"]
        by_op[r["op"]]["nodes"] += 1
    return {"nodes": nodes, "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1]["us"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("graphs", nargs="+")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--runs", type=int, default=500, help="runs per timed round")
    ap.add_argument("--reps", type=int, default=7, help="timed rounds per graph (interleaved)")
    ap.add_argument("--profile-runs", type=int, default=500)
    ap.add_argument("--top", type=int, default=15, help="nodes listed per graph")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "graph_profile.json")
    args = ap.parse_args()

    timing = per_event_us(args.graphs, args.batch, args.runs, args.reps)
    result: dict[str, Any] = {"batch": args.batch, "load": os.getloadavg()[0], "graphs": {}}
    print(f"batch {args.batch}, load average {result['load']:.2f}")
    print(f"{'us/event min':>12} {'median':>8}  graph")
    for p, v in timing.items():
        print(f"{min(v):12.3f} {statistics.median(v):8.3f}  {p}")
    for p in args.graphs:
        prof = node_profile(p, args.batch, args.profile_runs)
        result["graphs"][p] = {"us_per_event": timing[p], **prof}
        print(f"\n{p}: per op type, median kernel us per run (profiled)")
        for op, v in list(prof["by_op"].items())[: args.top]:
            print(f"  {op:24s} {v['us']:8.1f}  x{v['nodes']}")
        print("  top nodes:")
        for r in prof["nodes"][: args.top]:
            print(f"  {r['us']:8.1f}  {r['op']:20s} {r['node'][:36]:36s} {r['output']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
