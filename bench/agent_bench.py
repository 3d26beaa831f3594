"""The edge agent, measured: throughput, start-up, latency, memory, reloads.

Builds (or takes) a 41-feature NSL-KDD-like bundle, writes ~1 KB JSON events
and measures the real `jenga-edge run` agent against the targets of the agent
issue: >= 200k events/s end to end on one core, RSS <= 70 MB with a bundle
loaded, start-up to the first scored event <= 0.3 s.

    python bench/agent_bench.py --quick                      # ~1 minute
    python bench/agent_bench.py                              # < ~4 minutes
    python bench/agent_bench.py --bundle DIR --model DIR     # an existing bundle + best_model

What is measured (every agent run is `python -m jenga_edge.cli run` unless said):

1. bundle    trained for 2 epochs on the NSL-KDD 20 % file if ../shared has it
             (synthetic 41-feature rows otherwise), exported with export_bundle
2. events    N JSON lines (~1,050 bytes): the 41 schema features, src_ip,
             dest_ip, dest_port, a timestamp and a padding string
3. e2e       stdin source, max_batch 256 and 1024, one alert rule into a
             fsync'ed JSON Lines sink, in two alert regimes: every threat
             alerts (cooldown 0: ~45 % of NSL-KDD events become alerts, an
             alert storm) and per-src_ip dedup (cooldown 60 s, as the firmware
             profiles do: ~10 % alert); subprocess pinned to ONE core,
             OMP_NUM_THREADS=1; events/s = scored / span_s (and / busy_s);
             peak RSS from wait4
4. start-up  spawn -> first_scored_wall with one event on stdin (median of 5),
             plus the time of bare interpreter / imports for comparison
5. latency   in-process (this process never imports torch): a feeder thread
             offers events at a steady rate, the bench runs the agent's
             take -> process loop; latency = completion - enqueue
6. breakdown per-stage time of Agent.process on 256-event batches, cProfile top
             entries, the stdin source's framing + queue cost per line, and the
             share of events each decoder tier took (the C tier, msgspec)
7. torch     the same events through json.loads + schema.vectorize + the torch
             model (1 thread, pinned), in a subprocess (its RSS too)
8. reload    20 SIGHUP reloads of a running agent (file source): VmRSS after
             each (onnxruntime issue #17451: memory not returned on reload)

Timings are printed and written, never asserted. Writes JSON (--out).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import queue as queue_mod
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
PY = sys.executable
NSL_FILE = REPO / ".." / "shared" / "datasets" / "nsl-kdd" / "KDDTrain+_20Percent.txt"
NSL_CONFIG = REPO / "examples" / "configs" / "nsl_kdd.yaml"
TARGETS = {"e2e_events_per_s": 200_000, "rss_mb": 70.0, "startup_s": 0.3}
SERVICE_PORTS = {
    "http": 80,
    "ftp_data": 20,
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "domain_u": 53,
    "domain": 53,
    "finger": 79,
    "pop_3": 110,
    "auth": 113,
    "ntp_u": 123,
    "imap4": 143,
    "IRC": 194,
    "ldap": 389,
    "https": 443,
    "http_443": 443,
    "eco_i": 7,
    "ecr_i": 7,
}


def _say(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ================================================================= data rows (no torch)


def kdd_columns() -> list[str]:
    import yaml

    return yaml.safe_load(NSL_CONFIG.read_text())["sources"]["kdd"]["columns"]


def _token(t: str) -> Any:
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            return t


def kdd_rows(path: Path, limit: int | None = None) -> list[dict]:
    cols = kdd_columns()
    rows = []
    with open(path) as fh:
        for line in fh:
            toks = line.strip().split(",")
            if len(toks) != len(cols):
                continue
            rows.append({c: _token(t) for c, t in zip(cols, toks)})
            if limit and len(rows) >= limit:
                break
    return rows


def synthetic_rows(rows: int, seed: int = 0) -> list[dict]:
    """NSL-KDD-shaped rows as bench/train_throughput.py's make_data writes them
    (38 lognormal numerics n0..n37, categoricals proto/service/flag, a binary
    `label` and a 5-class `cls`), without importing torch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.45
    cls = np.where(y, rng.integers(1, 5, rows), 0)
    out = []
    for i in range(rows):
        row = {f"n{j}": float(np.round(rng.lognormal(0, 1) * (1 + y[i] * (j % 3)), 3)) for j in range(38)}
        row.update(
            proto=["tcp", "udp", "icmp"][rng.integers(3)],
            service=f"s{rng.integers(60)}",
            flag=f"f{rng.integers(11)}",
            label=int(y[i]),
            cls=f"c{cls[i]}",
        )
        out.append(row)
    return out


# ================================================================= worker: build bundle (torch)


def worker_build(p: dict) -> dict:
    from export.bundle_writer import ExportOptions, export_bundle
    from trainer.config import config_from_dict, load_config
    from trainer.run import run_experiment

    work = Path(p["work"])
    t0 = time.perf_counter()
    if p["dataset"] == "nsl-kdd":
        cfg = load_config(
            NSL_CONFIG,
            [
                f"sources.kdd.path={Path(p['data']).resolve()}",
                f"training.epochs={p['epochs']}",
                "training.progress=false",
                "training.device=cpu",
            ]
            + ([f"model.hidden_sizes={p['hidden']}"] if p.get("hidden") else []),
        )
    else:
        data = work / "synthetic_train.jsonl"
        with open(data, "w") as fh:
            for r in synthetic_rows(p["rows"], seed=1):
                fh.write(json.dumps(r) + "\n")
        cfg = config_from_dict(
            {
                "project_name": "agent_bench_synthetic",
                "sources": {"net": {"path": str(data)}},
                "model": {"hidden_sizes": p.get("hidden") or [128, 64], "dropout": 0.1},
                "training": {"epochs": p["epochs"], "batch_size": 512, "device": "cpu", "progress": False},
                "tasks": [
                    {"name": "attack", "type": "anomaly_detection", "source": "net", "label": {"column": "label"}},
                    {
                        "name": "novelty",
                        "type": "anomaly_detection",
                        "mode": "novelty",
                        "source": "net",
                        "label": {"column": "label"},
                        "threshold_rule": {"target_fpr": 0.05},
                    },
                    {"name": "category", "type": "classification", "source": "net", "label": {"column": "cls"}},
                ],
            }
        )
    run = run_experiment(cfg, work / "run", out=None)
    t1 = time.perf_counter()
    export_bundle(run.model_dir, p["bundle"], ExportOptions(force=True), log=lambda s: None)
    t2 = time.perf_counter()
    return {
        "model_dir": str(run.model_dir),
        "bundle_dir": p["bundle"],
        "dataset": p["dataset"],
        "train_s": round(t1 - t0, 2),
        "export_s": round(t2 - t1, 2),
    }


# ================================================================= worker: torch eager (torch)


def worker_torch(p: dict) -> dict:
    t_imp = time.perf_counter()
    import torch

    from jenga_edge.bundle import verify_bundle
    from trainer import checkpoint

    import_s = time.perf_counter() - t_imp
    torch.set_num_threads(1)
    bundle = verify_bundle(p["bundle"])
    entries = [bundle.tasks[t] for t in p["tasks"]]
    schema = entries[0].schema
    source = entries[0].source
    model = checkpoint.load(p["model"]).model.cpu().eval()
    bs, limit = p["batch"], p["limit"]
    t_parse = t_vec = t_fwd = 0.0
    n = alerts = 0

    def run_batch(lines: list[bytes]) -> None:
        nonlocal t_parse, t_vec, t_fwd, n, alerts
        a = time.perf_counter()
        rows = [json.loads(x) for x in lines]
        b = time.perf_counter()
        num, cat = schema.vectorize(rows, strict=False)
        c = time.perf_counter()
        with torch.inference_mode():
            tn, tc = torch.from_numpy(num), torch.from_numpy(cat)
            h = model.shared(source, tn, tc)
            for e in entries:
                s = model.head_outputs(e.name, h, tn, tc)["scores"]
                if not e.kind.binary:  # probabilities [batch, classes]: the task's score is the max
                    s = s.max(dim=1).values
                thr = e.threshold if e.threshold is not None else 0.5
                hit = (s >= thr).numpy()
                if e.name == p["rule_task"]:
                    alerts += int(hit.sum())
        d = time.perf_counter()
        t_parse, t_vec, t_fwd, n = t_parse + b - a, t_vec + c - b, t_fwd + d - c, n + len(lines)

    with open(p["events"], "rb") as fh:  # warm-up on the first batch (not timed)
        warm = [fh.readline().rstrip(b"\n") for _ in range(bs)]
    run_batch(warm)
    t_parse = t_vec = t_fwd = 0.0
    n = alerts = 0
    t0 = time.perf_counter()
    with open(p["events"], "rb") as fh:
        batch: list[bytes] = []
        for line in fh:
            batch.append(line.rstrip(b"\n"))
            if len(batch) == bs:
                run_batch(batch)
                batch = []
                if n >= limit:
                    break
        if batch and n < limit:
            run_batch(batch)
    wall = time.perf_counter() - t0
    compute = t_parse + t_vec + t_fwd
    return {
        "events": n,
        "batch": bs,
        "tasks": p["tasks"],
        "alerts": alerts,
        "wall_s": round(wall, 4),
        "events_per_s": round(n / wall, 1),
        "compute_events_per_s": round(n / compute, 1),
        "json_loads_s": round(t_parse, 4),
        "vectorize_s": round(t_vec, 4),
        "forward_s": round(t_fwd, 4),
        "us_per_event": {
            "json_loads": round(t_parse / n * 1e6, 3),
            "vectorize": round(t_vec / n * 1e6, 3),
            "forward": round(t_fwd / n * 1e6, 3),
        },
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "import_s": round(import_s, 3),
    }


# ================================================================= helpers: subprocesses


def _pin(cpu: int):
    def fn() -> None:
        os.sched_setaffinity(0, {cpu})

    return fn


def _env() -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def core_times(cpu: int | None) -> tuple[float, float]:
    """(busy, steal) seconds of one core (all cores if None) from /proc/stat."""
    tag = "cpu " if cpu is None else f"cpu{cpu} "
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith(tag):
                    v = [int(x) for x in line.split()[1:]]
                    hz = os.sysconf("SC_CLK_TCK")
                    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz, v[7] / hz
    except (OSError, ValueError, IndexError):
        pass
    return float("nan"), float("nan")


# ru_maxrss of a child that was forked from a big process starts at the parent's
# RSS (Linux records the pre-exec image's high-water mark), so agents are not
# spawned from this process (numpy, onnxruntime, 20k events in memory): a small
# launcher, started before any of that, forks them and wait4s them.
_LAUNCHER = r"""
import json, os, subprocess, sys, threading, time
for req in sys.stdin:
    r = json.loads(req)
    cpu = r["cpu"]
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    stdin = open(r["stdin"], "rb") if r["stdin"] else subprocess.DEVNULL
    with open(r["stderr"], "wb") as err:
        wall0 = time.time()
        p0 = time.perf_counter()
        proc = subprocess.Popen(r["cmd"], stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, cwd=r["cwd"],
                                env=r["env"], preexec_fn=pre)
        timer = threading.Timer(r["timeout"], proc.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - p0
    if stdin is not subprocess.DEVNULL:
        stdin.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    sys.stdout.write(json.dumps({"rc": proc.returncode, "spawn_wall": wall0, "wall_s": wall,
                                 "maxrss_kb": ru.ru_maxrss, "cpu_user_s": ru.ru_utime,
                                 "cpu_sys_s": ru.ru_stime}) + "\n")
    sys.stdout.flush()
"""
_launcher: subprocess.Popen | None = None
_launcher_lock = threading.Lock()


def compile_bytecode() -> None:
    """An installed agent has its modules' bytecode (pip writes it at install); a checkout
    run with PYTHONDONTWRITEBYTECODE=1 compiled the agent's ~100 modules at every start
    (0.39-0.45 s to the first scored event instead of ~0.28 s). The benches measure the
    installed case: the bytecode is written first (git ignores __pycache__)."""
    import compileall

    compileall.compile_dir(str(REPO / "jenga_edge"), quiet=1)


def start_launcher() -> None:
    global _launcher
    compile_bytecode()
    _launcher = subprocess.Popen(
        [PY, "-S", "-c", _LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )


def stop_launcher() -> None:
    if _launcher is not None and _launcher.poll() is None:
        _launcher.stdin.close()
        try:
            _launcher.wait(10)
        except subprocess.TimeoutExpired:
            _launcher.kill()


def run_waited(
    cmd: list[str], *, stdin: Path | None = None, stderr_path: Path, cpu: int | None, timeout: float
) -> dict:
    """Run cmd (through the launcher); wait4 it for exit status, peak RSS and
    CPU time. `foreign_load`: the share of the pinned core that other processes
    (or the hypervisor: steal) took while it ran -- a noisy-neighbour indicator."""
    assert _launcher is not None, "start_launcher() first"
    busy0, steal0 = core_times(cpu)
    all0, _ = core_times(None)
    with _launcher_lock:
        _launcher.stdin.write(
            json.dumps(
                {
                    "cmd": cmd,
                    "stdin": str(stdin) if stdin else None,
                    "stderr": str(stderr_path),
                    "cpu": cpu,
                    "timeout": timeout,
                    "cwd": str(REPO),
                    "env": _env(),
                }
            )
            + "\n"
        )
        _launcher.stdin.flush()
        reply = _launcher.stdout.readline()
    if not reply:
        raise SystemExit("the launcher process died")
    res = json.loads(reply)
    busy1, steal1 = core_times(cpu)
    all1, _ = core_times(None)
    wall = res["wall_s"]
    own = res["cpu_user_s"] + res["cpu_sys_s"]
    foreign = max(0.0, (busy1 - busy0) - own) / wall if cpu is not None and wall > 0 else None
    res["stderr"] = stderr_path.read_text(errors="replace")
    res["foreign_load"] = round(foreign, 3) if foreign is not None and foreign == foreign else None
    res["steal"] = round((steal1 - steal0) / wall, 3) if cpu is not None and wall > 0 else None
    res["other_cores_load"] = (
        round(((all1 - all0) - (busy1 - busy0)) / wall, 3) if cpu is not None and wall > 0 else None
    )
    return res


class CoreLoad:
    """Other processes' share of this process's (pinned) core, and the load on
    the other cores, over a `with` block: noisy-neighbour indicators for the
    in-process measurements."""

    def __init__(self, cpu: int):
        self.cpu = cpu

    def __enter__(self) -> CoreLoad:
        self.b0, _ = core_times(self.cpu)
        self.a0, _ = core_times(None)
        self.c0, self.t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        b1, _ = core_times(self.cpu)
        a1, _ = core_times(None)
        wall = time.perf_counter() - self.t0
        own = time.process_time() - self.c0
        self.foreign = round(max(0.0, (b1 - self.b0) - own) / wall, 3) if wall > 0 else None
        self.other = round(((a1 - self.a0) - (b1 - self.b0)) / wall, 3) if wall > 0 else None

    def as_dict(self) -> dict:
        return {"foreign_load": self.foreign, "other_cores_load": self.other}


def speed_probe(pool: list[bytes], seconds: float = 0.25) -> dict:
    """A fixed reference workload, untyped msgspec decode, in us/event, run
    pinned to the bench core: `cached` cycles over 64 events (L1/L2), `pool`
    over all 20k (~20 MB, like the agent's working set: sensitive to other
    tenants of a shared L3 / memory bus, which the guest cannot see).
    Shared/virtualised cores vary; compare runs only when these agree."""
    import msgspec

    dec = msgspec.json.decode
    out = {}
    for label, items in (("cached", pool[:64]), ("pool", pool)):
        blocks = [items[i : i + 1024] for i in range(0, len(items), 1024)]
        n, i, t0 = 0, 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            block = blocks[i % len(blocks)]
            for x in block:
                dec(x)
            n += len(block)
            i += 1
        out[label] = round((time.perf_counter() - t0) / n * 1e6, 3)
    return out


def run_worker(kind: str, params: dict, work: Path, cpu: int | None, timeout: float) -> dict:
    out = work / f"worker_{kind}.json"
    params = {**params, "result": str(out)}
    r = run_waited(
        [PY, str(Path(__file__).resolve()), "--_worker", kind, json.dumps(params)],
        stderr_path=work / f"worker_{kind}.stderr",
        cpu=cpu,
        timeout=timeout,
    )
    if r["rc"] != 0 or not out.exists():
        raise SystemExit(f"worker {kind} failed (rc {r['rc']}):\n{r['stderr'][-3000:]}")
    res = json.loads(out.read_text())
    res["maxrss_kb"] = r["maxrss_kb"]
    res["process_wall_s"] = round(r["wall_s"], 3)
    return res


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


# ================================================================= bundle + events


def build_bundle(args, work: Path) -> dict:
    hidden = [int(x) for x in args.hidden.split(",")] if args.hidden else None
    bundle_dir = Path(args.build_dir) / ("agent" + ("-h" + "-".join(map(str, hidden)) if hidden else ""))
    if args.bundle:
        return {
            "bundle_dir": str(Path(args.bundle).resolve()),
            "model_dir": str(Path(args.model).resolve()),
            "dataset": "given",
        }
    nsl = NSL_FILE.resolve()
    dataset = args.dataset if args.dataset != "auto" else ("nsl-kdd" if nsl.exists() else "synthetic")
    if dataset == "nsl-kdd" and not nsl.exists():
        raise SystemExit(f"--dataset nsl-kdd: {nsl} does not exist")
    if args.reuse and (bundle_dir / "bundle" / "manifest.json").exists() and (bundle_dir / "built.json").exists():
        info = json.loads((bundle_dir / "built.json").read_text())
        if info.get("dataset") == dataset and _readable_bundle(bundle_dir / "bundle"):
            info["reused"] = True
            return info
        _say(f"[bundle] {bundle_dir / 'bundle'} is of another dataset or format: rebuilding it")
    (bundle_dir / "model").mkdir(parents=True, exist_ok=True)
    _say(f"[bundle] training on {dataset} (2 epochs) and exporting ...")
    info = run_worker(
        "build",
        {
            "dataset": dataset,
            "data": str(nsl),
            "epochs": 2,
            "rows": 20000,
            "hidden": hidden,
            "work": str(bundle_dir / "model"),
            "bundle": str(bundle_dir / "bundle"),
        },
        work,
        cpu=None,
        timeout=900,
    )
    info.pop("maxrss_kb", None)
    (bundle_dir / "built.json").write_text(json.dumps(info, indent=2))
    info["reused"] = False
    return info


def _readable_bundle(path: Path) -> bool:
    """Whether this jenga_edge reads the bundle's manifest (an older format is refused)."""
    from jenga_edge.bundle import read_manifest
    from jenga_edge.contract.errors import JengaError

    try:
        read_manifest(path)
    except JengaError:
        return False
    return True


def make_events(path: Path, n: int, schema, dataset: str, seed: int = 7, target: int = 1050) -> dict:
    names = schema.names
    if dataset in ("nsl-kdd", "given") and NSL_FILE.resolve().exists() and set(names) <= set(kdd_columns()):
        rows, origin = kdd_rows(NSL_FILE.resolve()), "nsl-kdd rows"
    else:
        rows, origin = synthetic_rows(20000, seed=3), "synthetic rows"
        if not set(names) <= set(rows[0]):  # a given bundle with other features: plausible numbers
            import numpy as np

            gen = np.random.default_rng(seed)
            rows = [
                {
                    f.name: (
                        round(float(gen.lognormal(0, 1)), 3)
                        if f.kind != "categorical"
                        else (
                            f.categories[1 + (i + j) % max(1, len(f.categories) - 1)] if len(f.categories) > 1 else "x"
                        )
                    )
                    for j, f in enumerate(schema.features)
                }
                for i in range(5000)
            ]
            origin = "generated from the schema"
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+=-_.:;"
    pad_pool = "".join(rng.choice(alphabet) for _ in range(8192))
    src_pool = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(4000)] + [
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(1000)
    ]
    ts0 = time.time() - 3600
    total = 0
    sizes_min, sizes_max = 10**9, 0
    with open(path, "wb", buffering=1 << 20) as fh:
        for i in range(n):
            r = rows[i % len(rows)]
            t = ts0 + i * 1e-4
            ev = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}+0000",
                "event_type": "flow",
                "flow_id": 1_000_000_000 + i,
                "src_ip": src_pool[rng.randrange(len(src_pool))],
                "src_port": rng.randrange(1024, 65536),
                "dest_ip": f"192.168.{rng.randrange(4)}.{rng.randrange(1, 255)}",
                "dest_port": SERVICE_PORTS.get(r.get("service"), rng.choice((80, 443, 22, 53, 8080, 3389, 445))),
            }
            for k in names:
                if k in r:
                    ev[k] = r[k]
            ev["payload"] = ""
            s = json.dumps(ev, separators=(",", ":"))
            want = target + rng.randint(-60, 60) - len(s)
            if want > 0:
                off = rng.randrange(len(pad_pool) - want) if want < len(pad_pool) else 0
                s = s[:-2] + pad_pool[off : off + want] + s[-2:]
            b = s.encode() + b"\n"
            fh.write(b)
            total += len(b) - 1
            sizes_min, sizes_max = min(sizes_min, len(b) - 1), max(sizes_max, len(b) - 1)
    return {
        "events": n,
        "mean_bytes": round(total / n, 1),
        "min_bytes": sizes_min,
        "max_bytes": sizes_max,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "feature_values_from": origin,
        "fields": 8 + len(names),
    }


def agent_config(
    path: Path,
    bundle: str,
    work: Path,
    rule_task: str,
    *,
    max_batch: int,
    max_wait_ms: float,
    source: dict | None = None,
    queue_size: int | None = None,
    tag: str = "",
    fsync: bool = True,
    cooldown_s: float = 0,
) -> Path:
    import yaml

    batching = {"max_batch": max_batch, "max_wait_ms": max_wait_ms}
    if queue_size:
        batching["queue_size"] = queue_size
    cfg = {
        "description": f"agent_bench {tag}",
        "agent": {"id": "bench", "bundle": bundle},
        "runtime": {"intra_op_threads": 1, "inter_op_threads": 1},
        "batching": batching,
        "sources": [source or {"type": "stdin"}],
        "event": {"keys": ["src_ip", "dest_ip", "dest_port"]},
        "rules": [
            {
                "rule": "bench_threat",
                "task": rule_task,
                "threshold": "bundle",
                "actions": ["alert"],
                "key": "src_ip",
                "cooldown_s": cooldown_s,
            }
        ],
        "sinks": {"jsonl": {"path": str(work / f"alerts{tag}.jsonl"), **({} if fsync else {"fsync": False})}},
        "dead_letter": {"path": str(work / f"dead{tag}.jsonl")},
        "metrics": {"enabled": False, "stats_interval_s": 0},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ================================================================= 3. end to end


def bench_e2e(
    args,
    work: Path,
    bundle: str,
    rule_task: str,
    events: Path,
    n: int,
    max_batch: int,
    queue_size: int | None = None,
    repeat: int = 1,
    fsync: bool = True,
    cooldown_s: float = 0,
) -> dict:
    tag = (
        f"_e2e{max_batch}"
        + (f"_q{queue_size}" if queue_size else "")
        + ("" if fsync else "_nofsync")
        + (f"_cd{cooldown_s:g}" if cooldown_s else "")
    )
    cfg = agent_config(
        work / f"agent{tag}.yaml",
        bundle,
        work,
        rule_task,
        max_batch=max_batch,
        max_wait_ms=5,
        queue_size=queue_size,
        tag=tag,
        fsync=fsync,
        cooldown_s=cooldown_s,
    )
    runs = []
    for _ in range(repeat):
        for f in work.glob(f"alerts{tag}.jsonl*"):
            f.unlink()
        r = run_waited(
            [PY, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
            stdin=events,
            stderr_path=work / f"stderr{tag}.txt",
            cpu=args.cpu,
            timeout=600,
        )
        s = last_json_line(r["stderr"]) or {}
        scored, span, busy = s.get("scored", 0), s.get("span_s") or float("nan"), s.get("busy_s") or float("nan")
        run = {
            "rc": r["rc"],
            "received": s.get("received"),
            "scored": scored,
            "rejected": s.get("rejected"),
            "alerts": s.get("alerts"),
            "dropped": s.get("dropped"),
            "span_s": span,
            "busy_s": busy,
            "events_per_s": round(scored / span, 1) if span == span and span > 0 else None,
            "busy_events_per_s": round(scored / busy, 1) if busy == busy and busy > 0 else None,
            "busy_fraction_of_span": round(busy / span, 3) if span == span and span > 0 else None,
            "process_wall_s": round(r["wall_s"], 3),
            "startup_to_first_scored_s": round(s["first_scored_wall"] - r["spawn_wall"], 4)
            if s.get("first_scored_wall")
            else None,
            "peak_rss_mb": round(r["maxrss_kb"] / 1024, 1),
            "cpu_user_s": round(r["cpu_user_s"], 3),
            "cpu_sys_s": round(r["cpu_sys_s"], 3),
            "foreign_load": r["foreign_load"],
            "steal": r["steal"],
            "other_cores_load": r["other_cores_load"],
            "accounted": s.get("received") == scored + (s.get("rejected") or 0),
            "all_read": s.get("received") == n,
        }
        if r["rc"] != 0 or not s:
            run["stderr_tail"] = r["stderr"][-2000:]
        runs.append(run)
        _say(
            f"[e2e] max_batch {max_batch}{' queue ' + str(queue_size) if queue_size else ''}"
            f"{'' if fsync else ' fsync off'}, cooldown {cooldown_s:g} s: {run['events_per_s']} ev/s end to end, "
            f"{run['busy_events_per_s']} ev/s busy, peak RSS {run['peak_rss_mb']} MB, alerts {run['alerts']}, "
            f"rc {run['rc']}, other load on the core {run['foreign_load']}"
        )
    best = {
        k: statistics.median([r[k] for r in runs if r.get(k) is not None])
        for k in ("events_per_s", "busy_events_per_s", "peak_rss_mb")
        if any(r.get(k) for r in runs)
    }
    if runs and runs[0].get("alerts") is not None and runs[0].get("scored"):
        best["alert_share"] = f"{runs[0]['alerts'] / runs[0]['scored']:.0%}"
    return {
        "max_batch": max_batch,
        "max_wait_ms": 5,
        "queue_size": queue_size or default_queue_size(),
        "queue_default": queue_size is None,
        "fsync": fsync,
        "cooldown_s": cooldown_s,
        "events": n,
        "median": best,
        "runs": runs,
    }


def default_queue_size() -> int:
    from jenga_edge.config import BatchingConfig

    return BatchingConfig().queue_size


def add_cpu_rates(e2e: list[dict], startup_cpu_s: float | None) -> None:
    """events per CPU-second of the agent process, its start-up CPU taken off:
    less sensitive than span_s to other processes on the core (fsync waits and
    GIL hand-offs that leave the core idle are not in it)."""
    if not startup_cpu_s:
        return
    for e in e2e:
        for r in e["runs"]:
            cpu = r["cpu_user_s"] + r["cpu_sys_s"] - startup_cpu_s
            r["cpu_events_per_s"] = round(r["scored"] / cpu, 1) if cpu > 0 and r["scored"] else None
        vals = [r["cpu_events_per_s"] for r in e["runs"] if r.get("cpu_events_per_s")]
        if vals:
            e["median"]["cpu_events_per_s"] = statistics.median(vals)
        fl = [r["foreign_load"] for r in e["runs"] if r.get("foreign_load") is not None]
        if fl:
            e["median"]["foreign_load"] = statistics.median(fl)


# ================================================================= 4. start-up


def bench_startup(args, work: Path, bundle: str, rule_task: str, events: Path, repeat: int) -> dict:
    one = work / "one_event.jsonl"
    with open(events, "rb") as fh:
        one.write_bytes(fh.readline())
    cfg = agent_config(
        work / "agent_startup.yaml", bundle, work, rule_task, max_batch=256, max_wait_ms=5, tag="_startup"
    )
    to_first, wall, rss, cpu = [], [], [], []
    for _ in range(repeat):
        r = run_waited(
            [PY, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
            stdin=one,
            stderr_path=work / "stderr_startup.txt",
            cpu=args.cpu,
            timeout=60,
        )
        s = last_json_line(r["stderr"]) or {}
        if s.get("first_scored_wall"):
            to_first.append(s["first_scored_wall"] - r["spawn_wall"])
        wall.append(r["wall_s"])
        rss.append(r["maxrss_kb"] / 1024)
        cpu.append(r["cpu_user_s"] + r["cpu_sys_s"])
    parts, parts_rss = {}, {}
    for label, code in (
        ("python -c pass", "pass"),
        ("import numpy", "import numpy"),
        ("import onnxruntime", "import onnxruntime"),
        ("import jenga_edge.cli + agent", "import jenga_edge.cli, jenga_edge.agent"),
        (
            "+ build_pipeline (verify bundle, ORT sessions)",
            "import jenga_edge.agent as a, jenga_edge.config as c; "
            f"a.build_pipeline(c.load_agent_config({str(cfg)!r}))",
        ),
    ):
        times, mem = [], []
        for _ in range(3):
            r = run_waited([PY, "-c", code], stderr_path=work / "stderr_imports.txt", cpu=args.cpu, timeout=60)
            times.append(r["wall_s"])
            mem.append(r["maxrss_kb"] / 1024)
        parts[label] = round(statistics.median(times), 4)
        parts_rss[label] = round(statistics.median(mem), 1)
    res = {
        "runs": repeat,
        "to_first_scored_s": [round(x, 4) for x in to_first],
        "median_to_first_scored_s": round(statistics.median(to_first), 4) if to_first else None,
        "process_wall_s": [round(x, 4) for x in wall],
        "median_process_wall_s": round(statistics.median(wall), 4),
        "peak_rss_mb_one_event": round(statistics.median(rss), 1),
        "cpu_s_one_event": round(statistics.median(cpu), 4),
        "process_wall_median_of_3_s": parts,
        "peak_rss_mb_median_of_3": parts_rss,
    }
    _say(f"[startup] to first scored {res['median_to_first_scored_s']} s, process {res['median_process_wall_s']} s")
    return res


# ================================================================= 5. latency (in-process, torch-free)


def read_lines(events: Path, count: int) -> list[bytes]:
    out = []
    with open(events, "rb") as fh:
        for line in fh:
            out.append(line.rstrip(b"\n"))
            if len(out) >= count:
                break
    return out


LOW_LATENCY_PROFILE = REPO / "firmware_configs" / "inline_low_latency.yaml"
LOW_LATENCY_P99_MS = 2.0  # the profile's target at 5k events/s


def low_latency_batching() -> tuple[int, float]:
    """(max_batch, max_wait_ms) of the shipped low-latency profile: the bench measures its batching."""
    import yaml

    b = yaml.safe_load(LOW_LATENCY_PROFILE.read_text())["batching"]
    return int(b["max_batch"]), float(b["max_wait_ms"])


def bench_latency(
    args,
    work: Path,
    bundle: str,
    rule_task: str,
    pool: list[bytes],
    max_batch: int,
    max_wait_ms: float,
    rate: float,
    duration: float,
    fsync: bool = True,
) -> dict:
    import numpy as np

    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from jenga_edge.event_queue import Batch

    tag = f"_lat{max_batch}_{max_wait_ms:g}_{int(rate)}" + ("" if fsync else "_nofsync")
    cfg_path = agent_config(
        work / f"agent{tag}.yaml",
        bundle,
        work,
        rule_task,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        tag=tag,
        fsync=fsync,
    )
    agent = Agent(load_agent_config(cfg_path), str(cfg_path), log=lambda s: None)
    lines = pool
    warm = lines[:max_batch]
    agent.process(Batch(warm, None, [("bench", len(warm))]))  # warm-up: first ORT run allocates its arenas
    q = agent.queue
    n = int(rate * duration)
    enq = np.zeros(n)
    sched = np.zeros(n)
    comp = np.zeros(n)
    stop = threading.Event()
    start = time.perf_counter() + 0.05
    fed = [0]

    def feeder() -> None:
        k, P = 0, len(lines)
        while k < n and not stop.is_set():
            now = time.perf_counter()
            due = min(n, int((now - start) * rate) + 1) if now >= start else 0
            while k < due:
                sched[k] = start + k / rate
                enq[k] = time.perf_counter()
                if q.put_lines([lines[k % P]], "bench", stop=stop) != 1:
                    break
                k += 1
            fed[0] = k
            time.sleep(0.0002)
        fed[0] = k

    th = threading.Thread(target=feeder, daemon=True)
    gcs = [0]  # full collections during the run: a p99 suspect that measured 0 here

    def count_gc(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            gcs[0] += 1

    import gc

    gc.callbacks.append(count_gc)
    cpu0 = time.process_time()
    load = CoreLoad(args.cpu).__enter__()
    th.start()
    done = 0
    hard = start + duration + max(2.0, duration)
    mw = max_wait_ms / 1000.0
    batches = 0
    while done < n:
        if q.depth() == 0:  # as the agent's loop: sleep until an event arrives, no busy polling
            q.wait_nonempty(0.1)
        got = q.take(max_batch, mw)
        if got:
            agent.process(got)
            t = time.perf_counter()
            comp[done : done + len(got)] = t
            done += len(got)
            batches += 1
        if time.perf_counter() > hard:
            break
    end = time.perf_counter()
    gc.callbacks.remove(count_gc)
    stop.set()
    th.join(2.0)
    cpu = time.process_time() - cpu0
    load.__exit__(None, None, None)
    agent.dead_letter.close()
    for s in agent.sinks.values():
        s.close()
    lat = (comp[:done] - enq[:done]) * 1e3
    arr = (comp[:done] - sched[:done]) * 1e3
    first = enq[0] if done else start
    res = {
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "fsync": fsync,
        "offered_per_s": rate,
        "duration_s": duration,
        "offered": n,
        "fed": fed[0],
        "processed": done,
        "batches": batches,
        "mean_batch": round(done / batches, 1) if batches else 0,
        "achieved_per_s": round(done / (comp[done - 1] - first), 1) if done > 1 else 0,
        "saturated": bool(done < n or (done > 1 and done / (comp[done - 1] - first) < 0.95 * rate)),
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if done else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if done else None,
        "p999_ms": round(float(np.percentile(lat, 99.9)), 3) if done else None,
        "max_ms": round(float(lat.max()), 3) if done else None,
        "mean_ms": round(float(lat.mean()), 3) if done else None,
        "from_schedule_p50_ms": round(float(np.percentile(arr, 50)), 3) if done else None,
        "from_schedule_p99_ms": round(float(np.percentile(arr, 99)), 3) if done else None,
        "cpu_util": round(cpu / (end - start), 3),
        "alerts": agent.counts["alerts"],
        "gen2_collections": gcs[0],
        **load.as_dict(),
    }
    _say(
        f"[latency] batch {max_batch}/{max_wait_ms:g} ms{'' if fsync else ' fsync off'} at {rate:.0f}/s: "
        f"p50 {res['p50_ms']} ms "
        f"p99 {res['p99_ms']} ms max {res['max_ms']} ms, achieved {res['achieved_per_s']}/s"
        f"{' (SATURATED)' if res['saturated'] else ''}, cpu {res['cpu_util']}"
    )
    return res


# ================================================================= 6. breakdown + profile (in-process)


def _stage_times(agent, groups: list) -> tuple[dict, int]:
    """Agent.process cut into its stages (the same calls, timed one by one).
    Uses agent internals; if they have changed, the caller reports the error."""
    from jenga_edge.timestamps import iso_utc as iso

    pipe = agent.pipe
    sink = next(iter(agent.sinks.values()))
    names = (
        "decode (C tier 1, msgspec tier 2 for the rest)",
        "score (onnxruntime)",
        "rules.evaluate",
        "build alerts (Agent._alert)",
        "alert sink: encode + write + fsync request",
        "dead letter",
        "account (metrics)",
    )
    stages: dict[str, list[float]] = {k: [] for k in names}
    n_alerts = 0
    pc = time.perf_counter
    for g in groups:  # Batches, as the agent's queue hands them over
        t0 = pc()
        batch = pipe.decoder.decode(g.data, g.oversize_flags())
        t1 = pc()
        scores = pipe.scorer.score(batch.num, batch.cat, batch.text, batch.text_len)
        t2 = pc()
        hits = pipe.rules.evaluate(batch, scores)
        t3 = pc()
        now = iso(time.time())
        alerts = agent._alerts(hits, batch, g, now, [])
        t4 = pc()
        sink.write_batch(alerts)
        t5 = pc()
        agent.dead_letter.write_batch([agent._dead(r, g, now) for r in batch.rejects])
        t6 = pc()
        agent._account(g, batch, alerts, t6 - t0)
        t7 = pc()
        for k, v in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6)):
            stages[k].append(v)
        n_alerts += len(alerts)
    return stages, n_alerts


def bench_breakdown(args, work: Path, bundle: str, rule_task: str, pool: list[bytes], batches: int) -> dict:
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from jenga_edge.event_queue import Batch

    def batch_of(data: list[bytes]) -> Batch:  # what EventQueue.take hands the agent
        return Batch(data, None, [("stdin", len(data))])

    cfg_path = agent_config(
        work / "agent_breakdown.yaml", bundle, work, rule_task, max_batch=256, max_wait_ms=5, tag="_breakdown"
    )
    agent = Agent(load_agent_config(cfg_path), str(cfg_path), log=lambda s: None)
    lines = pool
    span = max(1, len(lines) - 256)
    groups = [batch_of(lines[(i * 256) % span :][:256]) for i in range(batches)]
    agent.process(groups[0])
    pc = time.perf_counter
    res: dict[str, Any] = {"batch": 256, "batches": batches}
    try:
        stages, n_alerts = _stage_times(agent, groups)
        per_batch = {k: statistics.median(v) * 1e6 for k, v in stages.items()}
        total = sum(per_batch.values())
        res["stages"] = {
            k: {"us_per_batch": round(v, 1), "us_per_event": round(v / 256, 3), "share": round(v / total, 3)}
            for k, v in per_batch.items()
        }
        res["stages_total_us_per_event"] = round(total / 256, 3)
        res["alerts_per_batch"] = round(n_alerts / batches, 1)
        # the same at batch 1 (max_batch 1): what each call costs regardless of its size
        ones = [batch_of([ln]) for ln in lines[:1000]]
        stages1, alerts1 = _stage_times(agent, ones)
        mean1 = {k: sum(v) / len(v) * 1e6 for k, v in stages1.items()}
        res["stages_batch1_mean_us"] = {k: round(v, 1) for k, v in mean1.items()}
        res["stages_batch1_median_us"] = {k: round(statistics.median(v) * 1e6, 1) for k, v in stages1.items()}
        res["batch1_total_us"] = round(sum(mean1.values()), 1)
        res["batch1_alert_fraction"] = round(alerts1 / len(ones), 3)
    except Exception as exc:  # noqa: BLE001 - the agent's internals moved: keep the rest of the bench
        res["stages_error"] = f"{type(exc).__name__}: {exc}"
    # onnxruntime alone, per graph of the bundle, at batch 256 and 1 (same settings as the agent)
    try:
        import onnxruntime as ort

        b0 = agent.pipe.decoder.decode(list(groups[0].data))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        graphs = {}
        from jenga_edge.bundle import verify_bundle
        from jenga_edge.score import trim_text

        bundle_obj = verify_bundle(agent.pipe.bundle.path)  # the agent's copy released its graphs' bytes
        files = [e.file for e in bundle_obj.tasks.values()] + [m.file for m in bundle_obj.merged]
        for f in files:
            sess = ort.InferenceSession(bundle_obj.graph(f), opts, providers=["CPUExecutionProvider"])
            out = {}
            for bs in (256, 1):
                feed = {"numeric": b0.num[:bs], "categorical": b0.cat[:bs]}
                if bundle_obj.tasks[next(iter(bundle_obj.tasks))].schema.text:
                    feed["text_bytes"], feed["text_lengths"] = trim_text(b0.text[:bs], b0.text_len[:bs])
                sess.run(None, feed)
                ts = []
                for _ in range(60 if bs == 256 else 300):
                    t0 = pc()
                    sess.run(None, feed)
                    ts.append(pc() - t0)
                out[f"batch{bs}_us_per_event"] = round(statistics.median(ts) / bs * 1e6, 3)
            graphs[f] = out
        res["ort_graphs"] = graphs
    except Exception as exc:  # noqa: BLE001 - a graph the probe cannot run: report it, keep the bench
        res["ort_graphs_error"] = f"{type(exc).__name__}: {exc}"
    # the whole of Agent.process, as the agent calls it, on distinct lines, no source thread
    whole = []
    tiers = agent.pipe.decoder.tier_lines
    tiers.update(dict.fromkeys(tiers, 0))
    cpu0 = time.process_time()
    with CoreLoad(args.cpu) as load:
        for g in groups:
            t0 = pc()
            agent.process(g)
            whole.append(pc() - t0)
    cpu = time.process_time() - cpu0
    res.update(load.as_dict())
    # which decoder tier took the events: the C tier, or msgspec for the lines it left
    res["decoder_tier_share"] = {k: round(v / max(1, sum(tiers.values())), 4) for k, v in tiers.items()}
    res.update(
        {
            "process_median_us_per_event": round(statistics.median(whole) / 256 * 1e6, 3),
            "process_events_per_s": round(256 / statistics.median(whole), 1),
            "process_total_events_per_s": round(256 * len(whole) / sum(whole), 1),
            "process_cpu_events_per_s": round(256 * len(whole) / cpu, 1) if cpu > 0 else None,
        }
    )
    # cProfile of Agent.process over the same batches
    prof = cProfile.Profile()
    prof.enable()
    for g in groups:
        agent.process(g)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(20)
    top = []
    for (fname, line, func), (_cc, nc, tt, ct, _) in sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:20]:
        top.append(
            {
                "function": f"{Path(fname).name}:{line}({func})",
                "calls_per_batch": round(nc / len(groups), 1),
                "tottime_us_per_event": round(tt / len(groups) / 256 * 1e6, 3),
                "cumtime_us_per_event": round(ct / len(groups) / 256 * 1e6, 3),
            }
        )
    res["profile_top_by_tottime"] = top
    res["profile_text"] = buf.getvalue()[:8000]
    # the stdin source's share: framing + queue, per line (its reader thread shares the core and the GIL)
    res["source_us_per_line"] = source_costs(pool)
    agent.dead_letter.close()
    for s in agent.sinks.values():
        s.close()
    _say(
        f"[breakdown] Agent.process {res['process_median_us_per_event']} us/event "
        f"({res['process_events_per_s']:.0f} ev/s median batch, {res['process_total_events_per_s']:.0f} total); "
        f"source {res['source_us_per_line']}"
    )
    return res


def source_costs(pool: list[bytes]) -> dict:
    """Per line, streaming as the agent does: frame each 64 KiB read, queue
    it, take batches of 256 (buffer path and bytes-per-line path)."""
    from jenga_edge import framing
    from jenga_edge.event_queue import Chunk, EventQueue
    from jenga_edge.framing import LineSplitter

    pc = time.perf_counter
    stream = b"\n".join(pool) + b"\n"
    reads = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    # `feed` hands over a Chunk when the C framing is built (else it falls back to
    # bytes per line); `_feed_lines` is the bytes-per-line path, always
    out: dict[str, Any] = {"chunk_path_native": framing._frame is not None}
    for label, feed in (("buffer (Chunk)", "feed"), ("bytes per line", "_feed_lines")):
        best = float("inf")
        for _ in range(3):
            sp, q, taken = LineSplitter(65536), EventQueue(1 << 22, 0), 0
            t0 = pc()
            for r in reads:
                f = getattr(sp, feed)(r)
                if isinstance(f, Chunk):
                    q.put_chunk(f, "stdin")
                else:
                    q.put_lines(f[0], "stdin", f[1])
                while q.depth() >= 256:
                    taken += len(q.take(256, 0.0))
            while True:
                got = len(q.take(256, 0.0))
                if not got:
                    break
                taken += got
            best = min(best, (pc() - t0) / max(1, taken))
        out[label] = round(best * 1e6, 3)
    return out


def bench_idle_cpu(args, work: Path, bundle: str, rule_task: str, seconds: float) -> dict:
    """CPU an agent with no input burns, at max_wait_ms 0 and 5 (file source, idle)."""
    out = {}
    feed = work / "idle_events.jsonl"
    feed.write_bytes(b"")
    for mw in (0.0, 5.0):
        cfg = agent_config(
            work / f"agent_idle{mw:g}.yaml",
            bundle,
            work,
            rule_task,
            max_batch=1,
            max_wait_ms=mw,
            tag=f"_idle{mw:g}",
            source={"type": "file", "path": str(feed), "start_at": "end"},
        )
        proc = subprocess.Popen(
            [PY, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            env=_env(),
            preexec_fn=_pin(args.cpu),
        )
        try:
            time.sleep(1.0)  # start-up
            hz = os.sysconf("SC_CLK_TCK")

            def cpu_s(proc: subprocess.Popen = proc, hz: float = hz) -> float:
                with open(f"/proc/{proc.pid}/stat") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / hz

            c0, t0 = cpu_s(), time.perf_counter()
            time.sleep(seconds)
            c1, t1 = cpu_s(), time.perf_counter()
            out[f"max_wait_ms={mw:g}"] = round((c1 - c0) / (t1 - t0), 3)
        except (OSError, ValueError, IndexError) as exc:
            out[f"max_wait_ms={mw:g}"] = f"error: {exc}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    _say(f"[idle] CPU share of an idle agent: {out}")
    return out


def fsync_cost(work: Path, repeat: int = 40) -> dict:
    p = work / "fsync_probe.bin"
    times = []
    with open(p, "ab") as fh:
        for _ in range(repeat):
            fh.write(b"x" * 600 + b"\n")
            t0 = time.perf_counter()
            fh.flush()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - t0)
    p.unlink()
    return {"median_ms": round(statistics.median(times) * 1e3, 3), "p90_ms": round(_pct(times, 0.9) * 1e3, 3)}


# ================================================================= 8. reloads


def _vm(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_reload(args, work: Path, bundle: str, rule_task: str, pool: list[bytes], reloads: int) -> dict:
    feed = work / "reload_events.jsonl"
    feed.write_bytes(b"")
    cfg = agent_config(
        work / "agent_reload.yaml",
        bundle,
        work,
        rule_task,
        max_batch=256,
        max_wait_ms=5,
        tag="_reload",
        source={"type": "file", "path": str(feed), "start_at": "end", "poll_interval_s": 0.05},
    )
    err_lines: queue_mod.Queue[str] = queue_mod.Queue()
    all_err: list[str] = []
    proc = subprocess.Popen(
        [PY, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=_env(),
        preexec_fn=_pin(args.cpu),
    )

    def reader() -> None:
        for raw in proc.stderr:
            s = raw.decode(errors="replace").rstrip("\n")
            all_err.append(s)
            err_lines.put(s)

    threading.Thread(target=reader, daemon=True).start()

    def wait_for(pattern: str, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                s = err_lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue_mod.Empty:
                break
            if re.search(pattern, s):
                return s
        return None

    appended = 0

    def append(k: int) -> None:
        nonlocal appended
        with open(feed, "ab") as fh:
            fh.write(b"".join(pool[(appended + i) % len(pool)] + b"\n" for i in range(k)))
        appended += k

    res: dict[str, Any] = {"reloads": reloads}
    try:
        if wait_for(r"^jenga-edge .*: bundle", 60) is None:
            raise RuntimeError("agent did not start: " + " | ".join(all_err[-5:]))
        time.sleep(0.3)
        rss_idle = _vm(proc.pid, "VmRSS")
        append(2000)  # exercise the sessions before the baseline
        time.sleep(1.0)
        rss0 = _vm(proc.pid, "VmRSS")
        after, seconds = [], []
        for i in range(reloads):
            t0 = time.perf_counter()
            os.kill(proc.pid, signal.SIGHUP)
            line = wait_for(r"reload(ed:| failed)", 30)
            seconds.append(time.perf_counter() - t0)
            if line is None or "failed" in line:
                res["error"] = f"reload {i + 1}: {line or 'no reloaded: line within 30 s'}"
                break
            append(256)
            time.sleep(0.15)
            after.append(_vm(proc.pid, "VmRSS"))
        time.sleep(0.5)
        res.update(
            {
                "rss_started_idle_mb": round(rss_idle, 1),
                "rss_before_mb": round(rss0, 1),
                "rss_after_each_mb": [round(x, 1) for x in after],
                "growth_total_mb": round(after[-1] - rss0, 1) if after else None,
                "growth_per_reload_mb": round((after[-1] - rss0) / len(after), 2) if after else None,
                "growth_last10_per_reload_mb": round((after[-1] - after[-11]) / 10, 2) if len(after) > 10 else None,
                "vm_hwm_mb": round(_vm(proc.pid, "VmHWM"), 1),
                "reload_s_median": round(statistics.median(seconds), 4) if seconds else None,
                "reload_s_max": round(max(seconds), 4) if seconds else None,
                "events_appended": appended,
            }
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    time.sleep(0.1)
    s = last_json_line("\n".join(all_err)) or {}
    res.update(
        {
            "exit_code": rc,
            "exit_ok": rc == 0,
            "scored": s.get("scored"),
            "received": s.get("received"),
            "all_scored": s.get("received") == appended and s.get("scored", 0) + (s.get("rejected") or 0) == appended,
        }
    )
    if rc != 0:
        res["stderr_tail"] = all_err[-10:]
    _say(
        f"[reload] RSS idle {res.get('rss_started_idle_mb')} MB, before {res.get('rss_before_mb')} MB, after "
        f"{len(res.get('rss_after_each_mb', []))} reloads {res.get('rss_after_each_mb', [None])[-1:]} MB, "
        f"growth/reload {res.get('growth_per_reload_mb')} MB, exit {rc}"
    )
    return res


# ================================================================= env + table


def environment() -> dict:
    import msgspec
    import numpy
    import onnxruntime

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "jenga_edge"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "?", None
    return {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime": onnxruntime.__version__,
        "msgspec": msgspec.__version__,
        "numpy": numpy.__version__,
        "git_commit": commit,
        "jenga_edge_dirty": dirty,
        "gil_switch_interval_s": sys.getswitchinterval(),
    }


def build_table(r: dict) -> list[dict]:
    rows = []

    def add(metric: str, value: Any, target: str = "", ok: bool | None = None) -> None:
        rows.append({"metric": metric, "value": value, "target": target, "meets": None if ok is None else bool(ok)})

    ev = r.get("events", {})
    add("event size, mean bytes", ev.get("mean_bytes"))
    pr = r.get("speed_probe_us_per_event") or {}
    for kind in ("cached", "pool"):
        vals = [v[kind] for v in pr.values() if isinstance(v, dict) and kind in v]
        if vals:
            add(f"speed probe ({kind}), us/event, min..max over the run", f"{min(vals)} .. {max(vals)}")
    for e in r.get("e2e", []):
        m = e["median"]
        default_q = e.get("queue_default", True)
        tag = (
            f"batch {e['max_batch']}"
            + ("" if default_q else f", queue {e['queue_size']}")
            + ("" if e.get("fsync", True) else ", fsync OFF")
            + (f", cooldown {e['cooldown_s']:g} s" if e.get("cooldown_s") else ", every threat alerts")
            + (f", {m['alert_share']} alert" if m.get("alert_share") else "")
        )
        main = default_q and e.get("fsync", True)
        v = m.get("events_per_s")
        add(
            f"e2e events/s, 1 core ({tag}; median of {len(e['runs'])})",
            v,
            ">= 200,000" if main else "",
            (v is not None and v >= TARGETS["e2e_events_per_s"]) if main else None,
        )
        add(f"  busy-only events/s ({tag})", m.get("busy_events_per_s"))
        if m.get("cpu_events_per_s"):
            add(f"  events per agent CPU-second ({tag})", m["cpu_events_per_s"])
        if m.get("foreign_load") is not None:
            add(f"  other processes' share of the core ({tag})", m["foreign_load"])
        rss = m.get("peak_rss_mb")
        add(f"  peak RSS MB ({tag})", rss, "<= 70", rss is not None and rss <= TARGETS["rss_mb"])
        ok = all(x["accounted"] and x["all_read"] and x["rc"] == 0 for x in e["runs"])
        add(f"  received == scored + rejected == N, rc 0 ({tag})", ok)
    su = r.get("startup", {})
    if su:
        v = su.get("median_to_first_scored_s")
        add("start-up to first scored event, s (median of 5)", v, "<= 0.3", v is not None and v <= TARGETS["startup_s"])
        add("  whole process wall, 1 event, s (median)", su.get("median_process_wall_s"))
        parts = su.get("process_wall_median_of_3_s", {})
        if parts:
            add("  of which: python + imports (jenga_edge.cli, agent), s", parts.get("import jenga_edge.cli + agent"))
            add("  of which: import onnxruntime alone, s", parts.get("import onnxruntime"))
        add(
            "  peak RSS MB, 1 event",
            su.get("peak_rss_mb_one_event"),
            "<= 70",
            su.get("peak_rss_mb_one_event", 1e9) <= TARGETS["rss_mb"],
        )
    idle = r.get("idle_cpu_share")
    if idle:
        add("idle agent CPU share (max_wait_ms 0 / 5)", f"{idle.get('max_wait_ms=0')} / {idle.get('max_wait_ms=5')}")
    low = low_latency_batching()
    for lat in r.get("latency", []):
        profile = (lat["max_batch"], lat["max_wait_ms"]) == low and lat.get("fsync", True)
        judged = profile and lat["offered_per_s"] == 5000.0 and lat["p99_ms"] is not None
        add(
            f"latency p50/p99/max ms (batch {lat['max_batch']}, wait {lat['max_wait_ms']:g} ms, "
            f"{lat['offered_per_s'] / 1000:g}k/s{'' if lat.get('fsync', True) else ', fsync OFF'}"
            f"{', low-latency profile' if profile else ''})",
            f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}"
            + (f"  SATURATED at {lat['achieved_per_s']:.0f}/s" if lat["saturated"] else ""),
            f"p99 <= {LOW_LATENCY_P99_MS:g}" if judged else "",
            (lat["p99_ms"] <= LOW_LATENCY_P99_MS and not lat["saturated"]) if judged else None,
        )
    bd = r.get("breakdown")
    if bd:
        add("Agent.process in-process (batch 256, no source thread), events/s", bd["process_total_events_per_s"])
        tiers = bd.get("decoder_tier_share")
        if tiers:
            add("  share of events decoded by the C tier / msgspec", f"{tiers['c']:.1%} / {tiers['msgspec']:.1%}")
        if bd.get("stages"):
            st = bd["stages"]
            top = sorted(st.items(), key=lambda kv: -kv[1]["us_per_event"])[:4]
            add(
                "  us/event: all stages (top 4)",
                f"{bd['stages_total_us_per_event']:.1f} ("
                + ", ".join(f"{k.split(' (')[0]} {v['us_per_event']:.1f}" for k, v in top)
                + ")",
            )
        og = bd.get("ort_graphs") or {}
        merged = [v for k, v in og.items() if k.startswith("merged-")]
        rule_graph = og.get(f"{r.get('bundle', {}).get('rule_task')}.onnx")
        if merged and rule_graph:
            add(
                "  onnxruntime us/event, batch 256: merged graph / rule task only",
                f"{merged[0]['batch256_us_per_event']} / {rule_graph['batch256_us_per_event']}",
            )
        src = bd.get("source_us_per_line") or {}
        if src.get("buffer (Chunk)") is not None:
            add(
                "  stdin source us/line: frame + queue + take (buffer / bytes per line)",
                f"{src['buffer (Chunk)']:.2f} / {src['bytes per line']:.2f}",
            )
        if bd.get("batch1_total_us"):
            add("  Agent.process at batch 1, us/event (mean)", bd["batch1_total_us"])
    t = r.get("torch")
    if t:
        add("torch eager (json.loads + vectorize + forward), events/s", t["events_per_s"])
        add("  torch subprocess peak RSS MB", round(t["maxrss_kb"] / 1024, 1))
        if r.get("e2e"):
            ag = next(
                (
                    e["median"].get("events_per_s")
                    for e in r["e2e"]
                    if e["max_batch"] == 256 and not e.get("cooldown_s")
                ),
                None,
            )
            if ag:
                add("agent e2e (batch 256) / torch eager", round(ag / t["events_per_s"], 2))
        if bd:
            add(
                "Agent.process in-process / torch eager", round(bd["process_total_events_per_s"] / t["events_per_s"], 2)
            )
    rl = r.get("reload")
    if rl:
        add(
            "RSS idle, bundle loaded, MB",
            rl.get("rss_started_idle_mb"),
            "<= 70",
            rl.get("rss_started_idle_mb") is not None and rl["rss_started_idle_mb"] <= TARGETS["rss_mb"],
        )
        add(
            f"RSS before -> after {len(rl.get('rss_after_each_mb', []))} reloads, MB",
            f"{rl.get('rss_before_mb')} -> {(rl.get('rss_after_each_mb') or [None])[-1]}",
        )
        add(
            "  growth per reload MB (all / last 10)",
            f"{rl.get('growth_per_reload_mb')} / {rl.get('growth_last10_per_reload_mb')}",
            "~0",
        )
        add("  reload time s (median)", rl.get("reload_s_median"))
        add("  SIGTERM exit 0, all appended events scored", bool(rl.get("exit_ok") and rl.get("all_scored")))
    return rows


def print_table(rows: list[dict]) -> None:
    w = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{w}}  {'value':>24}  {'target':<12} meets")
    print("-" * (w + 46))
    for r in rows:
        v = r["value"]
        if isinstance(v, float):
            v = f"{v:,.1f}" if abs(v) >= 100 else f"{v:.4g}"
        elif isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:,}"
        meets = "" if r["meets"] is None else ("yes" if r["meets"] else "NO")
        print(f"{r['metric']:<{w}}  {v!s:>24}  {r['target']:<12} {meets}")


# ================================================================= main

PARTS = ("e2e", "startup", "latency", "breakdown", "torch", "reload")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2 (no usage block, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def check_args(ap: _Parser, args: argparse.Namespace) -> set[str]:
    """Refuse option combinations that would fail later (or be silently ignored)."""
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(PARTS):
        ap.error(f"--skip: unknown part(s) {', '.join(sorted(skip - set(PARTS)))}; choose from {','.join(PARTS)}")
    if bool(args.bundle) != bool(args.model):
        ap.error("--bundle and --model go together")
    if args.bundle:
        given = [
            o
            for o, bad in (("--reuse", args.reuse), ("--hidden", args.hidden), ("--dataset", args.dataset != "auto"))
            if bad
        ]
        if given:
            ap.error(f"{', '.join(given)}: only for the bundle the bench builds, not with --bundle")
        if not Path(args.bundle).is_dir():
            ap.error(f"--bundle {args.bundle}: not a directory")
        if not (Path(args.model) / "model.json").is_file():
            ap.error(f"--model {args.model}: not a best_model directory (no model.json)")
        from jenga_edge.bundle import verify_bundle
        from jenga_edge.contract.errors import JengaError

        try:
            verify_bundle(args.bundle)
        except JengaError as exc:
            ap.error(f"--bundle: {exc}")
    if args.hidden:
        try:
            hidden = [int(x) for x in args.hidden.split(",")]
        except ValueError:
            hidden = []
        if not hidden or min(hidden) < 1:
            ap.error(f"--hidden {args.hidden!r}: expected comma-separated positive integers, e.g. 32,16")
    if args.events is not None and args.events < 1:
        ap.error(f"--events {args.events}: expected at least 1")
    if args.reloads < 1 and "reload" not in skip:
        ap.error(f"--reloads {args.reloads}: expected at least 1 (or --skip reload)")
    if args.cpu not in os.sched_getaffinity(0):
        ap.error(f"--cpu {args.cpu}: this process may run on cores {sorted(os.sched_getaffinity(0))} only")
    if args.dataset == "nsl-kdd" and not args.bundle and not NSL_FILE.resolve().exists():
        ap.error(f"--dataset nsl-kdd: {NSL_FILE.resolve()} does not exist")
    return skip


def main() -> None:
    ap = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~1 minute: 50k events, shorter latency runs")
    ap.add_argument("--events", type=int, help="events for the throughput runs (default 200k, quick 50k)")
    ap.add_argument("--bundle", help="an existing bundle directory (needs --model)")
    ap.add_argument("--model", help="the best_model directory the bundle came from (for the torch comparison)")
    ap.add_argument("--reuse", action="store_true", help="reuse build/bench/agent/bundle if a previous run built it")
    ap.add_argument(
        "--dataset",
        choices=("auto", "nsl-kdd", "synthetic"),
        default="auto",
        help="what to train the bundle on (auto: NSL-KDD if ../shared has it)",
    )
    ap.add_argument(
        "--hidden",
        help="the model's hidden sizes, e.g. 32,16 (default: the config's 128,64); "
        "the bundle is built in build/bench/agent-h32-16",
    )
    ap.add_argument("--reloads", type=int, default=20, help="SIGHUP reloads in the RSS test (default 20)")
    ap.add_argument("--cpu", type=int, default=0, help="the core agent subprocesses are pinned to (default 0)")
    ap.add_argument("--skip", default="", help=f"comma list of parts to skip: {','.join(PARTS)}")
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"), help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (events, configs, sinks)")
    ap.add_argument("--out", type=Path, default=Path("build/bench/agent_bench.json"))
    ap.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._worker:
        kind, params = args._worker[0], json.loads(args._worker[1])
        res = {"build": worker_build, "torch": worker_torch}[kind](params)
        Path(params["result"]).write_text(json.dumps(res))
        return
    skip = check_args(ap, args)
    start_launcher()
    quick = args.quick
    n_events = args.events or (50_000 if quick else 200_000)
    t_start = time.perf_counter()
    result: dict[str, Any] = {"quick": quick, "targets": TARGETS, "environment": environment()}
    work = Path(tempfile.mkdtemp(prefix="agent_bench_"))
    try:
        # 1. bundle (built in a torch subprocess)
        info = build_bundle(args, work)
        from jenga_edge.bundle import verify_bundle

        bundle = verify_bundle(info["bundle_dir"])
        tasks = list(bundle.tasks)
        schema = bundle.tasks[tasks[0]].schema
        rule_task = next(
            (
                t
                for t, e in bundle.tasks.items()
                if e.kind.binary and e.mode == "supervised" and e.schema.sha256 == schema.sha256
            ),
            None,
        )
        if rule_task is None:
            raise SystemExit("the bundle has no supervised binary task for the rule")
        size = sum(f.stat().st_size for f in Path(info["bundle_dir"]).iterdir() if f.is_file())
        result["bundle"] = {
            **info,
            "bundle_id": bundle.bundle_id,
            "tasks": tasks,
            "merged": [m.file for m in bundle.merged],
            "rule_task": rule_task,
            "rule_threshold": bundle.tasks[rule_task].threshold,
            "bytes": size,
            "features": len(schema.features),
            "numeric": len(schema.numeric),
            "categorical": len(schema.categorical),
        }
        _say(
            f"[bundle] {bundle.bundle_id}: tasks {tasks}, merged {result['bundle']['merged']}, "
            f"{len(schema.features)} features ({info['dataset']})"
        )
        bdir = info["bundle_dir"]

        # 2. events
        events = work / "events.jsonl"
        t0 = time.perf_counter()
        result["events"] = make_events(events, n_events, schema, info["dataset"])
        result["events"]["write_s"] = round(time.perf_counter() - t0, 2)
        _say(f"[events] {n_events} events, mean {result['events']['mean_bytes']} bytes")
        result["fsync"] = fsync_cost(work)
        pool = read_lines(events, 20000)
        probes = result["speed_probe_us_per_event"] = {}

        def probe(label: str) -> None:
            aff = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {args.cpu})
            try:
                probes[label] = speed_probe(pool)
            finally:
                os.sched_setaffinity(0, aff)

        probe("start")

        # 3. end to end
        if "e2e" not in skip:
            result["e2e"] = [
                bench_e2e(args, work, bdir, rule_task, events, n_events, mb, repeat=1 if quick else 3, cooldown_s=cd)
                for cd in (60, 0)
                for mb in (256, 1024)
            ]
            if not quick:
                # diagnostics: a smaller queue (how much of the peak RSS is queued lines), and the
                # alert sink without fsync (what the per-batch fsync costs on this disk)
                result["e2e"].append(bench_e2e(args, work, bdir, rule_task, events, n_events, 256, queue_size=1024))
                result["e2e"].append(bench_e2e(args, work, bdir, rule_task, events, n_events, 256, fsync=False))
            probe("after e2e")
        # 4. start-up
        if "startup" not in skip:
            result["startup"] = bench_startup(args, work, bdir, rule_task, events, repeat=5)
            add_cpu_rates(result.get("e2e", []), result["startup"].get("cpu_s_one_event"))
            result["idle_cpu_share"] = bench_idle_cpu(args, work, bdir, rule_task, 1.0 if quick else 2.0)
        # 5. latency, in this process: pin it to the agent's core; torch must not be loaded here
        if "latency" not in skip or "breakdown" not in skip:
            assert "torch" not in sys.modules, "the bench process must stay torch-free"
            affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {args.cpu})
            try:
                if "latency" not in skip:
                    dur = 1.5 if quick else 3.0
                    low = low_latency_batching()
                    settings = [(1, 0.0), (256, 5.0), low] + ([] if quick else [(64, 2.0)])
                    result["latency"] = [
                        bench_latency(args, work, bdir, rule_task, pool, mb, mw, rate, dur)
                        for mb, mw in settings
                        for rate in (5000.0, 20000.0)
                    ]
                    if not quick:  # diagnostic: batch 1 without the per-batch fsync
                        result["latency"].append(
                            bench_latency(args, work, bdir, rule_task, pool, 1, 0.0, 5000.0, dur, fsync=False)
                        )
                if "breakdown" not in skip:
                    result["breakdown"] = bench_breakdown(args, work, bdir, rule_task, pool, 40 if quick else 80)
            finally:
                os.sched_setaffinity(0, affinity)
            result["bench_process_torch_free"] = "torch" not in sys.modules
            probe("after in-process")
        # 7. torch eager, in its own pinned subprocess
        if "torch" not in skip:
            _say("[torch] eager scoring in a subprocess ...")
            result["torch"] = run_worker(
                "torch",
                {
                    "bundle": bdir,
                    "model": info["model_dir"],
                    "events": str(events),
                    "tasks": tasks,
                    "rule_task": rule_task,
                    "batch": 256,
                    "limit": min(n_events, 50_000 if quick else 100_000),
                },
                work,
                cpu=args.cpu,
                timeout=600,
            )
            _say(f"[torch] {result['torch']['events_per_s']} ev/s, RSS {result['torch']['maxrss_kb'] / 1024:.0f} MB")
        # 8. reloads
        if "reload" not in skip:
            result["reload"] = bench_reload(args, work, bdir, rule_task, pool, args.reloads)
        probe("end")
    finally:
        stop_launcher()
        if args.keep:
            _say(f"[kept] {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    try:  # others may edit the agent while this runs: say so
        result["environment"]["jenga_edge_dirty_at_end"] = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "jenga_edge"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip()
        )
    except OSError:
        pass
    result["table"] = build_table(result)
    print_table(result["table"])
    env = result["environment"]
    dirty = env["jenga_edge_dirty"] or env.get("jenga_edge_dirty_at_end")
    print(
        f"\n({result['bench_seconds']} s; CPU {env['cpu_model']}, load {env['loadavg'][0]:.2f}; "
        f"git {env['git_commit'][:7]}{' + local changes in jenga_edge/' if dirty else ''})"
    )
    out = args.out if args.out.is_absolute() else REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
