"""`jenga-edge run --workers N`, measured: 1 and 2 workers on the same ~1 KB events.

The agent bench's bundle and event generator (bench/agent_bench.py: 41 NSL-KDD-like
features, ~1,050-byte JSON lines), sent over TCP by a cheap sender (pre-built
buffers, one `sendall` per connection, CONNS connections at once), to the agent
with 1 and 2 workers, in two modes:

  (a) no windows: each worker scores what the kernel gave its listener (SO_REUSEPORT);
  (b) a window feature keyed by src_ip: every line is routed to its key's owner
      (one small typed decode and a CRC per line, the others' lines over the mesh).

Per run: events/s = scored / (last batch end - first scored event), over all
workers; CPU seconds of the agent's processes; peak RSS (VmHWM) per worker and of
the supervisor; start-up (spawn -> READY=1 on a fake notify socket, all workers
ready); the sender's CPU. Then, in this process, the routing step's cost per event
(ShardReader.owners, and the forwarded lines' message building).

    python bench/workers_bench.py --quick        # 60k events, 1 run each
    python bench/workers_bench.py                # 200k events, median of 3
    python bench/workers_bench.py --bundle DIR   # an existing bundle (agent_bench's 41 features)

Timings are printed and written (--out JSON), never asserted. On a shared machine
check the load first (`uptime`): the numbers are only as quiet as the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import agent_bench as ab  # noqa: E402

CONNS = 8
WINDOW = {"flows_60s": {"kind": "count", "key": ["src_ip"], "window_s": 60}}


def say(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(work: Path, bundle: str, task: str, port: int, windows: bool, tag: str) -> Path:
    import yaml

    path = ab.agent_config(
        work / f"agent_{tag}.yaml", bundle, work, task, max_batch=256, max_wait_ms=5, tag=f"_{tag}", fsync=True,
        source={"type": "tcp", "port": port, "max_connections_per_peer": 64},
    )  # fmt: skip
    cfg = yaml.safe_load(path.read_text())
    if windows:
        cfg["event"].update(time="timestamp", windows=WINDOW)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds, VmHWM MB) of a live process; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        hwm = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM"))
        return cpu, int(hwm.split()[1]) / 1024
    except (OSError, StopIteration, IndexError):
        return 0.0, 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size (shared pages split among the processes sharing them): the
    memory a process set really takes, where summing RSS counts shared libraries N times."""
    try:
        line = next(ln for ln in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if ln.startswith("Pss:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return 0.0


def send(port: int, buffers: list[bytes]) -> float:
    """Every buffer on its own connection at once; the sender's CPU seconds."""

    def one(buf: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(buf)

    c0 = time.process_time()
    threads = [threading.Thread(target=one, args=(b,)) for b in buffers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.process_time() - c0


def run_agent(cfg: Path, port: int, workers: int, buffers: list[bytes], n: int, work: Path) -> dict:
    notify_path = work / f"notify-{os.getpid()}-{time.monotonic_ns()}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(60)
    err = open(work / f"stderr_{cfg.stem}_{workers}.txt", "w+")  # noqa: SIM115
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg), "--workers", str(workers)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, env=env,
    )  # fmt: skip
    try:
        while b"READY=1" not in notify.recv(65536):
            pass
        ready_s = time.time() - t0
        pids = [proc.pid]
        if workers > 1:
            err.seek(0)
            line = next(ln for ln in err.read().splitlines() if "workers (pid" in ln)
            pids += [int(p) for p in line.split("(pid ")[1].split(")")[0].split(", ")]
        sender_cpu = send(port, buffers)
        # done when the agent's CPU stops moving (everything read was scored)
        last, still = -1.0, 0
        while still < 3:
            time.sleep(0.1)
            now = sum(proc_stat(p)[0] for p in pids)
            still = still + 1 if now == last else 0
            last = now
        stats = {p: proc_stat(p) for p in pids}
        pss = sum(pss_mb(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
        notify_path.unlink(missing_ok=True)
    err.seek(0)
    text = err.read()
    err.close()
    s = ab.last_json_line(text) or {}
    per = s.get("per_worker") or [{**s, "worker": 0}]
    starts = [w["first_scored_wall"] for w in per if w.get("first_scored_wall")]
    ends = [w["first_scored_wall"] + w["span_s"] for w in per if w.get("first_scored_wall")]
    wall = max(ends) - min(starts) if starts else float("nan")
    worker_pids = pids[1:] if workers > 1 else pids
    out = {
        "workers": workers,
        "rc": rc,
        "received": s.get("received"),
        "scored": s.get("scored"),
        "dropped": s.get("dropped"),
        "all_scored": s.get("scored") == n and s.get("received") == n,
        "events_per_s": round(s.get("scored", 0) / wall) if wall == wall and wall > 0 else None,
        "wall_s": round(wall, 3),
        "scored_per_worker": [w.get("scored") for w in per],
        "forwarded": s.get("forwarded", 0),
        "agent_cpu_s": round(sum(c for c, _ in stats.values()), 3),
        "peak_rss_mb_per_worker": [round(stats[p][1], 1) for p in worker_pids],
        "peak_rss_mb_total": round(sum(m for _, m in stats.values()), 1),
        "pss_mb_total_at_end": round(pss, 1),
        "supervisor": {"cpu_s": round(stats[pids[0]][0], 3), "peak_rss_mb": round(stats[pids[0]][1], 1)}
        if workers > 1
        else None,
        "startup_to_ready_s": round(ready_s, 3),
        "sender_cpu_s": round(sender_cpu, 3),
    }
    if rc != 0 or not s:
        out["stderr_tail"] = text[-2000:]
    return out


def routing_cost(events: list[bytes], bundle: str) -> dict:
    """In-process: the routing step's cost per event on the bench events, in 256-line
    batches as the queue hands them over (a buffer and spans), next to a full decode."""
    from jenga_edge.bundle import verify_bundle
    from jenga_edge.contract.events import EventModel
    from jenga_edge.decode import EventDecoder
    from jenga_edge.event_queue import Chunk, EventQueue
    from jenga_edge.exchange import message
    from jenga_edge.sharding import ShardReader

    schema = verify_bundle(bundle).tasks["attack"].schema
    reader = ShardReader(schema.events or EventModel(), "src_ip", 2)
    decoder = EventDecoder(schema, key_fields=["src_ip", "dest_ip", "dest_port"])
    queue, batches = EventQueue(1 << 20), []
    for i in range(0, len(events), 256):
        part = [e.rstrip(b"\n") for e in events[i : i + 256]]
        queue.put_chunk(Chunk(b"\n".join(part) + b"\n", len(part)), "bench")
        batches.append(queue.take(256, 0).data)
    best = {"shard_value_and_hash_us": float("inf"), "full_decode_us": float("inf")}
    for _ in range(7):  # best of 7, interleaved: the least disturbed
        for key, fn in (("shard_value_and_hash_us", reader.owners), ("full_decode_us", decoder.decode)):
            t = time.perf_counter()
            for lines in batches:
                fn(lines)
            best[key] = min(best[key], (time.perf_counter() - t) / len(events))
    half = [bytes(x) for x in batches[0]][:128]
    t = time.perf_counter()
    for _ in range(200):
        message(half, "tcp:127.0.0.1:5514")  # half a batch goes to the other worker
    out = {k: round(v * 1e6, 3) for k, v in best.items()}
    out["message_build_us_per_forwarded"] = round((time.perf_counter() - t) / (200 * 128) * 1e6, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60k events, one run each")
    ap.add_argument("--events", type=int, help="events per run (default 200k, quick 60k)")
    ap.add_argument("--repeat", type=int, help="runs per setting, the median is reported (default 3, quick 1)")
    ap.add_argument(
        "--bundle", help="an existing bundle of agent_bench's kind (default: build or reuse build/bench/agent)"
    )
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "workers_bench.json")
    args = ap.parse_args()
    n = args.events or (60_000 if args.quick else 200_000)
    repeat = args.repeat or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="workers-bench-"))
    if args.bundle:
        built = {"bundle_dir": str(Path(args.bundle).resolve()), "dataset": "given"}
    else:
        ab.start_launcher()
        try:
            built = ab.build_bundle(
                SimpleNamespace(hidden=None, build_dir=str(REPO / "build" / "bench"), bundle=None, model=None,
                                dataset="auto", reuse=True),
                work,
            )  # fmt: skip
        finally:
            ab.stop_launcher()
    from jenga_edge.bundle import verify_bundle

    bundle = built["bundle_dir"]
    tasks = verify_bundle(bundle).tasks
    task = "attack" if "attack" in tasks else next(iter(tasks))
    schema = tasks[task].schema
    events_path = work / "events.jsonl"
    info = ab.make_events(events_path, n, schema, built["dataset"])
    lines = events_path.read_bytes().splitlines(keepends=True)
    buffers = [b"".join(lines[i::CONNS]) for i in range(CONNS)]
    load = os.getloadavg()
    say(f"[workers] {n} events of {info['mean_bytes']} bytes over {CONNS} TCP connections; load {load[0]:.2f}")
    results: dict[str, Any] = {"events": info, "conns": CONNS, "cpus": os.cpu_count(), "load_before": load}
    table = []
    for mode, windows in (("no windows", False), ("windows by src_ip", True)):
        for workers in (1, 2):
            runs = []
            for _ in range(repeat):
                port = free_port()
                cfg = config(work, bundle, task, port, windows, f"{'w' if windows else 'p'}{workers}")
                r = run_agent(cfg, port, workers, buffers, n, work)
                rss, ready = r["peak_rss_mb_per_worker"], r["startup_to_ready_s"]
                say(f"[{mode}] {workers} worker(s): {r['events_per_s']} ev/s, scored {r['scored']}/{n}, "
                    f"RSS {rss} MB, ready {ready} s, rc {r['rc']}")  # fmt: skip
                runs.append(r)
            ok = [r for r in runs if r["events_per_s"]]
            med = (
                {k: statistics.median(r[k] for r in ok) for k in ("events_per_s", "startup_to_ready_s", "agent_cpu_s")}
                if ok
                else {}
            )
            results[f"{mode}/{workers}"] = {"median": med, "runs": runs}
            table.append((mode, workers, med, runs[-1]))
    results["routing"] = routing_cost(lines[: min(n, 50_000)], bundle)
    results["load_after"] = os.getloadavg()
    print(f"\n{'mode':<20}{'workers':>8}{'events/s':>11}{'speed-up':>10}{'RSS/worker MB':>15}{'RSS total':>10}"
          f"{'PSS total':>10}{'ready s':>9}{'agent CPU s':>12}")  # fmt: skip
    base: dict[str, float] = {}
    for mode, workers, med, last in table:
        eps = med.get("events_per_s")
        if workers == 1 and eps:
            base[mode] = eps
        up = f"{eps / base[mode]:.2f}x" if eps and mode in base else "-"
        rss = "/".join(map(str, last["peak_rss_mb_per_worker"]))
        ready, cpu = med.get("startup_to_ready_s", 0), med.get("agent_cpu_s", 0)
        print(
            f"{mode:<20}{workers:>8}{eps or 0:>11,.0f}{up:>10}{rss:>15}"
            f"{last['peak_rss_mb_total']:>10}{last['pss_mb_total_at_end']:>10}{ready:>9}{cpu:>12}"
        )
    for mode, workers, _, last in table:
        print(f"{mode}, {workers} worker(s): per worker scored {last['scored_per_worker']}, forwarded "
              f"{last['forwarded']}, supervisor {last['supervisor']}, sender CPU {last['sender_cpu_s']} s")  # fmt: skip
    print(f"routing per event: {results['routing']}; load before {load[0]:.2f}, after {results['load_after'][0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    say(f"[workers] wrote {args.out}")


if __name__ == "__main__":
    main()
