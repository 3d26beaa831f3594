"""Training throughput (samples/s) of the real Trainer on NSL-KDD-shaped data.

Builds a synthetic 41-feature source (38 numeric, 3 categorical, like NSL-KDD)
with three tasks (binary, novelty, 5-class) and times Trainer._run_epoch for
each requested mode on the chosen device. The first epoch (warm-up, compile)
is reported separately. Prints a table and writes JSON.

    python bench/train_throughput.py --device cpu --rows 200000 --batch 4096
    python bench/train_throughput.py --device cuda --modes none,reduce_overhead
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainer.config import config_from_dict
from trainer.dataset import prepare
from trainer.train import Trainer


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.45
    cls = np.where(y, rng.integers(1, 5, rows), 0)
    with open(path, "w") as fh:
        for i in range(rows):
            row = {f"n{j}": float(np.round(rng.lognormal(0, 1) * (1 + y[i] * (j % 3)), 3)) for j in range(38)}
            row.update(
                proto=["tcp", "udp", "icmp"][rng.integers(3)],
                service=f"s{rng.integers(60)}",
                flag=f"f{rng.integers(11)}",
                label=int(y[i]),
                cls=f"c{cls[i]}",
            )
            fh.write(json.dumps(row) + "\n")


def config(path: Path, device: str, batch: int, mode: str) -> dict:
    return {
        "project_name": "bench",
        "sources": {"s": {"path": str(path)}},
        "model": {"hidden_sizes": [128, 64], "dropout": 0.1},
        "training": {
            "epochs": 1,
            "batch_size": batch,
            "device": device,
            "compile": mode,
            "progress": False,
            "validation_fraction": 0.05,
        },
        "tasks": [
            {"name": "attack", "type": "anomaly_detection", "source": "s", "label": {"column": "label"}},
            {
                "name": "novelty",
                "type": "anomaly_detection",
                "mode": "novelty",
                "source": "s",
                "label": {"column": "label"},
            },
            {"name": "category", "type": "classification", "source": "s", "label": {"column": "cls"}},
        ],
    }


def measure(path: Path, device: str, batch: int, mode: str, epochs: int) -> dict:
    cfg = config_from_dict(config(path, device, batch, mode))
    sources, tasks = prepare(cfg)
    tr = Trainer(cfg, sources, tasks)
    total = (epochs + 1) * tr.steps_per_epoch()
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    _, _seen = tr._run_epoch(total)
    sync()
    warm = time.perf_counter() - t0
    t0, n = time.perf_counter(), 0
    for _ in range(epochs):
        n += tr._run_epoch(total)[1]
    sync()
    dt = time.perf_counter() - t0
    return {
        "mode": mode,
        "device": str(tr.device),
        "batch": batch,
        "first_epoch_s": round(warm, 3),
        "samples": n,
        "seconds": round(dt, 3),
        "samples_per_s": round(n / dt, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--modes", default="none")
    ap.add_argument("--out", type=Path, default=Path("build/bench/train_throughput.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        make_data(path, args.rows)
        rows = [measure(path, args.device, args.batch, m, args.epochs) for m in args.modes.split(",")]
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(f"{'mode':<16}{'device':<8}{'batch':>7}{'first epoch s':>15}{'samples/s':>14}")
    for r in rows:
        print(f"{r['mode']:<16}{r['device']:<8}{r['batch']:>7}{r['first_epoch_s']:>15.2f}{r['samples_per_s']:>14,.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"env": env, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
