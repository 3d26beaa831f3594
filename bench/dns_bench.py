"""The edge agent on DNS names, measured end to end on one core: names/s, latency,
peak RSS, start-up, for any bundle whose schema has a text feature (issue 13).

    python bench/dns_bench.py --bundle DIR                 # a trained DNS bundle
    python bench/dns_bench.py --demo --quick               # the tests' hand-built bundle (byte statistics)

Inputs, from --names (default ../shared/datasets/dga/test_seen.jsonl, its `domain`
field; generated names if it is not here), in three shapes the agent reads:

* flat       {"domain": ...} lines
* suricata7  Suricata 7 eve.json dns query records (`dns.rrname`)
* suricata8  Suricata 8 (eve DNS v3) request records (`dns.queries[].rrname`)

Suricata records go through firmware_configs/soc_sensor_dns.yaml's event section
(the list-of-paths mapping and the request filter; tier 2 reads them); flat lines
map nothing (the C tier reads them). The rule is the profile's (one alert per
host per 5 minutes) into a JSON Lines sink.

1. e2e       `python -m jenga_edge.cli run` on stdin, pinned to one core (--cpu),
             OMP_NUM_THREADS=1, max_batch --max-batch (default 128, the DNS profile's):
             names/s = scored / span_s (and /
             busy_s), peak RSS from wait4 (a small launcher forks the agents, see
             agent_bench.py), start-up = spawn -> first scored event
2. latency   in-process, flat lines offered at a steady rate (--rate) by a feeder
             thread, the agent's take -> process loop: p50/p99 from enqueue to done

Timings are printed and written (--out), never asserted. The text feature and task
are taken from the bundle (the first task; --task to choose).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_bench as ab

REPO = ab.REPO
NAMES = REPO / ".." / "shared" / "datasets" / "dga" / "test_seen.jsonl"
PROFILE = REPO / "firmware_configs" / "soc_sensor_dns.yaml"
SHAPES = ("flat", "suricata7", "suricata8")
# The agent's max_batch (--max-batch). The CNN's intermediates are [batch, bytes, channels]
# floats: 1,024-name batches took the agent's peak RSS from ~70 to ~133 MB; 128 cost ~5 MB.
MAX_BATCH = [128]


def load_names(path: Path, n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    if path.exists():
        with open(path) as fh:
            names = [json.loads(line)["domain"] for line in fh if line.strip()]
        rng.shuffle(names)
    else:  # no dataset: letters, digits and a TLD, 6-30 characters
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
        names = [
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(6, 30))) + rng.choice([".com", ".net", ".org"])
            for _ in range(50_000)
        ]
    return [names[i % len(names)] for i in range(n)]


def record(shape: str, name: str, i: int) -> dict[str, Any]:
    """One line of `shape` asking for `name`; src_ip cycles over 4096 hosts."""
    if shape == "flat":
        return {"domain": name}
    head = {
        "timestamp": "2026-12-01T10:00:00.000000+0000",
        "flow_id": 1_000_000 + i,
        "event_type": "dns",
        "src_ip": f"10.{i >> 12 & 15}.{i >> 4 & 255}.{1 + (i & 15)}",
        "src_port": 40000 + i % 20000,
        "dest_ip": "10.0.0.53",
        "dest_port": 53,
        "proto": "UDP",
    }
    if shape == "suricata7":
        dns = {"version": 2, "type": "query", "id": i & 0xFFFF, "rrname": name, "rrtype": "A", "tx_id": 0, "opcode": 0}
    else:
        dns = {"version": 3, "type": "request", "tx_id": 0, "id": i & 0xFFFF, "flags": "100", "rd": True,
               "opcode": 0, "rcode": "NOERROR", "queries": [{"rrname": name, "rrtype": "A"}]}  # fmt: skip
    return {**head, "dns": dns}


def write_events(work: Path, names: list[str]) -> dict[str, Path]:
    out = {}
    for shape in SHAPES:
        path = work / f"{shape}.jsonl"
        with open(path, "w") as fh:
            for i, name in enumerate(names):
                fh.write(json.dumps(record(shape, name, i), separators=(",", ":")) + "\n")
        out[shape] = path
    return out


def bundle_facts(bundle: str, task: str | None) -> tuple[str, str, int]:
    """(task, text feature, model bytes), read from the manifest (no graph loaded here)."""
    manifest = json.loads((Path(bundle) / "manifest.json").read_text())
    tasks = {t["name"]: t for t in manifest["tasks"]}
    entry = tasks[task] if task else manifest["tasks"][0]
    text = [f["name"] for f in entry["schema"]["features"] if f["kind"] == "text"]
    if not text:
        raise SystemExit(f"{bundle}: task {entry['name']!r} has no text feature")
    size = sum(t["size_bytes"] for t in manifest["tasks"]) + sum(m["size_bytes"] for m in manifest.get("merged", []))
    return entry["name"], text[0], size


def agent_config(path: Path, bundle: str, work: Path, task: str, feature: str, shape: str, **batching: Any) -> Path:
    import yaml

    profile = yaml.safe_load(PROFILE.read_text())
    rule = {**profile["rules"][0], "task": task, "output": f"%src_ip asked for %{feature}, scored %score"}
    event: dict[str, Any] = {"keys": ["src_ip"]}
    if shape != "flat":  # the profile's mapping and filter, onto the bundle's feature name
        event = {**profile["event"], "mapping": {feature: profile["event"]["mapping"]["domain"]}, "fields": [feature]}
    cfg = {
        "description": f"dns_bench {shape}",
        "agent": {"id": "bench", "bundle": bundle, "tasks": [task]},
        "runtime": {"intra_op_threads": 1, "inter_op_threads": 1},
        "batching": {"max_batch": MAX_BATCH[0], "max_wait_ms": 5, **batching},
        "sources": [{"type": "stdin"}],
        "event": event,
        "rules": [rule],
        "sinks": {"jsonl": {"path": str(work / f"alerts_{shape}.jsonl")}},
        "dead_letter": {"path": str(work / f"dead_{shape}.jsonl")},
        "metrics": {"enabled": False, "stats_interval_s": 0},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bench_e2e(args, work: Path, cfg: Path, events: Path, n: int, shape: str) -> dict:
    runs = []
    for k in range(args.repeat):
        r = ab.run_waited(
            [ab.PY, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
            stdin=events,
            stderr_path=work / f"stderr_{shape}_{k}.txt",
            cpu=args.cpu,
            timeout=600,
        )
        s = ab.last_json_line(r["stderr"]) or {}
        scored, span, busy = s.get("scored", 0), s.get("span_s") or 0.0, s.get("busy_s") or 0.0
        run = {
            "rc": r["rc"],
            "received": s.get("received"),
            "scored": scored,
            "filtered": s.get("filtered"),
            "rejected": s.get("rejected"),
            "alerts": s.get("alerts"),
            "names_per_s": round(scored / span, 1) if span > 0 else None,
            "busy_names_per_s": round(scored / busy, 1) if busy > 0 else None,
            "startup_to_first_scored_s": round(s["first_scored_wall"] - r["spawn_wall"], 4)
            if s.get("first_scored_wall")
            else None,
            "peak_rss_mb": round(r["maxrss_kb"] / 1024, 1),
            "foreign_load": r["foreign_load"],
            "all_read": s.get("received") == n,
        }
        if r["rc"] != 0 or not s:
            run["stderr_tail"] = r["stderr"][-2000:]
        runs.append(run)
        ab._say(
            f"[e2e {shape}] {run['names_per_s']} names/s end to end, {run['busy_names_per_s']} busy, "
            f"peak RSS {run['peak_rss_mb']} MB, start-up {run['startup_to_first_scored_s']} s, "
            f"alerts {run['alerts']}, rc {run['rc']}, other load on the core {run['foreign_load']}"
        )
    keys = ("names_per_s", "busy_names_per_s", "peak_rss_mb", "startup_to_first_scored_s")
    median = {
        k: statistics.median([r[k] for r in runs if r.get(k) is not None]) for k in keys if any(r.get(k) for r in runs)
    }
    return {"shape": shape, "events": n, "median": median, "runs": runs}


def bench_latency(args, work: Path, cfg: Path, pool: list[bytes]) -> dict:
    """Flat names offered at --rate for --seconds; latency from enqueue to the end of its batch."""
    import numpy as np

    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from jenga_edge.event_queue import Batch

    agent = Agent(load_agent_config(cfg), str(cfg), log=lambda s: None)
    warm = MAX_BATCH[0]
    agent.process(Batch(pool[:warm], None, [("bench", warm)]))  # warm-up: onnxruntime allocates its arenas
    q, rate = agent.queue, args.rate
    n = int(rate * args.seconds)
    enq, comp = np.zeros(n), np.zeros(n)
    stop = threading.Event()
    start = time.perf_counter() + 0.05

    def feeder() -> None:
        k = 0
        while k < n and not stop.is_set():
            due = min(n, int((time.perf_counter() - start) * rate) + 1) if time.perf_counter() >= start else 0
            while k < due:
                enq[k] = time.perf_counter()
                if q.put_lines([pool[k % len(pool)]], "bench", stop=stop) != 1:
                    return
                k += 1
            time.sleep(0.0002)

    th = threading.Thread(target=feeder, daemon=True)
    th.start()
    done, hard = 0, start + 2 * args.seconds + 2
    while done < n and time.perf_counter() < hard:
        if q.depth() == 0:
            q.wait_nonempty(0.1)
        got = q.take(MAX_BATCH[0], 0.005)
        if got:
            agent.process(got)
            comp[done : done + len(got)] = time.perf_counter()
            done += len(got)
    stop.set()
    th.join(2.0)
    agent.dead_letter.close()
    for s in agent.sinks.values():
        s.close()
    lat = (comp[:done] - enq[:done]) * 1e3
    res = {
        "offered_per_s": rate,
        "processed": done,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if done else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if done else None,
        "max_ms": round(float(lat.max()), 3) if done else None,
        "saturated": done < n,
    }
    ab._say(f"[latency] {rate:g} names/s offered: p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, {done} done")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="a bundle whose schema has a text feature")
    ap.add_argument("--demo", action="store_true", help="build and use the tests' hand-written text bundle")
    ap.add_argument("--task", help="the task to score (default: the bundle's first)")
    ap.add_argument("--names", type=Path, default=NAMES, help="JSON Lines with a `domain` field")
    ap.add_argument("--events", type=int, help="lines per shape (default 200k, quick 50k)")
    ap.add_argument("--quick", action="store_true", help="50k lines per shape, one run each, 3 s of latency")
    ap.add_argument("--repeat", type=int, default=None, help="runs per shape (default 3, quick 1)")
    ap.add_argument("--rate", type=float, default=20_000.0, help="names/s offered in the latency run")
    ap.add_argument("--seconds", type=float, default=None, help="latency run length (default 10, quick 3)")
    ap.add_argument("--cpu", type=int, default=0, help="the core agents are pinned to")
    ap.add_argument("--max-batch", type=int, default=128, help="the agent's batching.max_batch")
    ap.add_argument("--out", type=Path, default=Path("build/bench/dns_bench.json"))
    args = ap.parse_args()
    MAX_BATCH[0] = args.max_batch
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    n = args.events or (50_000 if args.quick else 200_000)
    if not args.bundle and not args.demo:
        ap.error("give --bundle DIR (a text bundle) or --demo")
    ab.start_launcher()  # before numpy/onnxruntime are imported: the agents' peak RSS is their own
    try:
        with tempfile.TemporaryDirectory(prefix="dns_bench_") as tmp:
            work = Path(tmp)
            bundle = args.bundle
            if args.demo:  # the tests' bundle: byte statistics in a hand-written graph (see its module)
                sys.path.insert(0, str(REPO))
                from tests.jenga_edge.text_bundle import write_text_bundle

                bundle = str(write_text_bundle(work / "bundle"))
            task, feature, model_bytes = bundle_facts(bundle, args.task)
            ab._say(f"[bundle] {bundle}: task {task}, text feature {feature}, graphs {model_bytes} bytes")
            names = load_names(args.names, n)
            files = write_events(work, names)
            result: dict[str, Any] = {"bundle": bundle, "task": task, "feature": feature, "model_bytes": model_bytes,
                                      "names_from": str(args.names) if args.names.exists() else "generated",
                                      "events_per_shape": n, "cpu": args.cpu, "e2e": {}}  # fmt: skip
            for shape in SHAPES:
                cfg = agent_config(work / f"{shape}.yaml", bundle, work, task, feature, shape)
                result["e2e"][shape] = bench_e2e(args, work, cfg, files[shape], n, shape)
            pool = files["flat"].read_bytes().splitlines()[:20_000]
            cfg = agent_config(work / "latency.yaml", bundle, work, task, feature, "flat")
            result["latency"] = bench_latency(args, work, cfg, pool)
    finally:
        ab.stop_launcher()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'shape':<10} {'names/s':>10} {'busy/s':>10} {'RSS MB':>7} {'start s':>8}")
    for shape, r in result["e2e"].items():
        m = r["median"]
        print(f"{shape:<10} {m.get('names_per_s', 0):>10.0f} {m.get('busy_names_per_s', 0):>10.0f} "
              f"{m.get('peak_rss_mb', 0):>7.1f} {m.get('startup_to_first_scored_s', 0):>8.3f}")  # fmt: skip
    lat = result["latency"]
    print(f"latency at {lat['offered_per_s']:g} names/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
    print(f"model: {model_bytes} bytes; written to {args.out}")


if __name__ == "__main__":
    main()
