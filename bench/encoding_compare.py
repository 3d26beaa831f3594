"""Which numeric encoding should be the default? Measure, don't guess.

Trains the same single-task binary model with each numeric encoding on each
dataset and seed, and reports validation PR-AUC / ROC-AUC (mean over seeds).
Datasets: generated network and fraud data (always), NSL-KDD when its file is
found (--kdd PATH). Prints a table and writes JSON.

    python bench/encoding_compare.py --out build/bench/encodings.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from trainer.config import config_from_dict
from trainer.run import run_experiment
from trainer.synthetic import generate, write

ENCODINGS = ["standard", "log1p", "piecewise_linear", "auto"]
REPO = Path(__file__).resolve().parents[1]


def datasets(tmp: Path, kdd: Path | None) -> dict[str, tuple[dict, dict]]:
    write(generate("network", 8000, seed=11), tmp / "net.jsonl")
    write(generate("fraud", 12000, seed=12), tmp / "fraud.jsonl")
    out = {
        "network (generated)": (
            {
                "path": str(tmp / "net.jsonl"),
                "ignore": ["src_ip", "dst_ip", "attack_type"],
                "kinds": {"port": "categorical"},
            },
            {"column": "label", "positive_labels": ["malicious"]},
        ),
        "fraud (generated)": ({"path": str(tmp / "fraud.jsonl")}, {"column": "label"}),
    }
    if kdd and kdd.is_file():
        kcfg = yaml.safe_load((REPO / "examples/configs/nsl_kdd.yaml").read_text())["sources"]["kdd"]
        kcfg["path"] = str(kdd)
        out["NSL-KDD 20%"] = (kcfg, {"column": "attack", "negative_labels": ["normal"]})
    return out


def run_one(source: dict, label: dict, encoding: str, seed: int, out_dir: Path) -> dict:
    src = dict(source, encoding=encoding)
    raw = {
        "project_name": "enc",
        "sources": {"s": src},
        "model": {"hidden_sizes": [64, 32]},
        "training": {
            "epochs": 15,
            "batch_size": 256,
            "seed": seed,
            "progress": False,
            "early_stopping": {"patience": 4},
        },
        "tasks": [{"name": "t", "type": "anomaly_detection", "source": "s", "label": label}],
    }
    cfg = config_from_dict(raw)
    t0 = time.perf_counter()
    run = run_experiment(cfg, out_dir, save=False, out=None)
    m = run.result.metrics["t"]
    return {"pr_auc": m["pr_auc"], "roc_auc": m["roc_auc"], "f1": m["f1"], "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kdd", type=Path, default=REPO.parent / "shared/datasets/nsl-kdd/KDDTrain+_20Percent.txt")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/encodings.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (source, label) in datasets(Path(tmp), args.kdd).items():
            for enc in ENCODINGS:
                runs = [run_one(source, label, enc, s, Path(tmp) / "run") for s in range(args.seeds)]
                row = {
                    "dataset": name,
                    "encoding": enc,
                    **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]},
                    "pr_auc_std": float(np.std([r["pr_auc"] for r in runs])),
                }
                results.append(row)
                print(
                    f"{name:<22} {enc:<17} PR-AUC {row['pr_auc']:.4f} ± {row['pr_auc_std']:.4f}  "
                    f"ROC-AUC {row['roc_auc']:.4f}  F1 {row['f1']:.4f}  {row['seconds']:.1f} s",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "results": results}, indent=2))
    print(f"written: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
