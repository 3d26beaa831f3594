"""Scale-out training: one experiment as a single process and as N DDP processes (torchrun).

Each run is `python -m trainer train` in a subprocess (torchrun's for DDP), on the CPU,
with the same config, seed and global batch (training.batch_size; a DDP rank steps
batch_size / N rows). Prints a table and writes JSON:

  parity      max |weight difference| of best_model/weights.pt against the single
              process (1 thread), best epoch, and the largest validation-metric difference
  throughput  training samples/s (metrics.jsonl's mean over the epochs after the first,
              all ranks' rows), and the command's wall time (start-up, data, training, save)

The single process runs with 1 thread and with N threads (torch's intra-op threads) so the
N-process run is compared with the same number of cores. Dropout is set to 0 by default:
each rank draws its own dropout masks, so with dropout the runs are different random draws.

    python bench/ddp_bench.py                                        # generated network rows
    python bench/ddp_bench.py --config examples/configs/nsl_kdd.yaml --epochs 3
    python bench/ddp_bench.py --nproc 2 --rows 20000 --batch 512 --set model.hidden_sizes=[64,32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
METRICS = ("roc_auc", "pr_auc", "accuracy", "macro_f1", "threshold")


def generated_config(tmp: Path, rows: int) -> Path:
    from trainer.synthetic import generate, write

    data = tmp / "network.jsonl"
    write(generate("network", rows, 0), data)
    label = {"column": "label", "positive_labels": ["malicious"]}
    cfg = {
        "project_name": "ddp_bench",
        "sources": {"net": {"path": str(data), "ignore": ["src_ip", "dst_ip"], "kinds": {"port": "categorical"}}},
        "model": {"hidden_sizes": [64, 32]},
        "training": {"early_stopping": {"patience": 100}},
        "tasks": [
            {"name": "threat", "type": "anomaly_detection", "source": "net", "label": label},
            {"name": "novelty", "type": "anomaly_detection", "mode": "novelty", "source": "net", "label": label},
            {"name": "attack_type", "type": "classification", "source": "net", "label": {"column": "attack_type"}},
        ],
    }
    path = tmp / "ddp_bench.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(name: str, config: Path, out: Path, sets: list[str], nproc: int, threads: int, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    launcher = [sys.executable, "-m", "trainer"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
        launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_loopback_port()), "-m", "trainer"]
    cmd = [*launcher, "train", "--config", str(config), "--output-dir", str(out)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session we started: the launcher and its ranks
        proc.communicate()
        raise SystemExit(f"{name}: over {timeout:.0f} s") from None
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{stderr[-3000:]}")
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = epochs[1:] or epochs  # the first epoch pays for warm-up
    seen = sum(e["samples_per_second"] * e["train_seconds"] for e in timed)
    summary = json.loads((out / "summary.json").read_text())
    return {
        "run": name,
        "processes": nproc,
        "threads_per_process": threads,
        "epochs": len(epochs),
        "best_epoch": summary["best_epoch"],
        "train_samples_per_s": round(seen / sum(e["train_seconds"] for e in timed), 1),
        "wall_s": round(wall, 2),
        "metrics": summary["metrics"],
        "weights": str(out / "best_model" / "weights.pt"),
    }


def parity(ref: dict, other: dict) -> dict:
    a = torch.load(ref["weights"], weights_only=True)
    b = torch.load(other["weights"], weights_only=True)
    keys = [k for k in a if a[k].numel()]
    weight = max(float((a[k].float() - b[k].float()).abs().max()) for k in keys)
    # Relative to each tensor's scale (at least 1): a distance head's whitening matrix holds
    # entries in the hundreds, where float rounding alone is 1e-4 absolute.
    rel = max(float((a[k].float() - b[k].float()).abs().max()) / max(1.0, float(a[k].abs().max())) for k in keys)
    diffs = {
        f"{task}.{key}": abs(m[key] - other["metrics"][task][key])
        for task, m in ref["metrics"].items()
        for key in METRICS
        if isinstance(m.get(key), float)
    }
    worst = max(diffs, key=lambda k: diffs[k]) if diffs else None
    return {
        "max_weight_diff": weight,
        "max_weight_rel_diff": rel,
        "same_best_epoch": ref["best_epoch"] == other["best_epoch"],
        "max_metric_diff": diffs[worst] if worst else 0.0,
        "max_metric_diff_at": worst,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="an experiment YAML (default: generated network rows)")
    ap.add_argument("--rows", type=int, default=20_000, help="generated rows (without --config)")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=512, help="the global batch (training.batch_size)")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="more --set overrides, passed on")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--out", type=Path, default=Path("build/bench/ddp_bench.json"))
    args = ap.parse_args()
    sets = [
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch}",
        f"model.dropout={args.dropout}",
        "training.device=cpu",
        "training.progress=false",
        *args.sets,
    ]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = args.config.resolve() if args.config else generated_config(tmp, args.rows)
        runs = [
            run("single, 1 thread", config, tmp / "single1", sets, 1, 1, args.timeout),
            run(f"single, {args.nproc} threads", config, tmp / "singleN", sets, 1, args.nproc, args.timeout),
            run(f"DDP, {args.nproc} processes", config, tmp / "ddp", sets, args.nproc, 1, args.timeout),
        ]
        for r in runs:
            r["parity"] = parity(runs[0], r)
    base = runs[0]["train_samples_per_s"]
    print(
        f"{'run':<22}{'samples/s':>11}{'x':>6}{'wall s':>8}{'best ep':>8}"
        f"{'max |dw|':>10}{'rel |dw|':>10}{'max |dmetric|':>15}"
    )
    for r in runs:
        p = r["parity"]
        print(
            f"{r['run']:<22}{r['train_samples_per_s']:>11,.0f}{r['train_samples_per_s'] / base:>6.2f}"
            f"{r['wall_s']:>8.1f}{r['best_epoch']:>8}{p['max_weight_diff']:>10.1e}{p['max_weight_rel_diff']:>10.1e}{p['max_metric_diff']:>15.1e}"
        )
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "config": str(args.config or f"generated network rows: {args.rows}"),
        "overrides": sets,
    }
    for r in runs:
        del r["weights"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"env": env, "results": runs}, indent=2, default=float))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
