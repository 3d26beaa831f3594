"""Scoring time, torch eager vs onnxruntime, for every task of a bundle.

For each task graph (and each merged graph): median time to score one event
(batch 1) and a batch of 1,000 events, on the same rows, in the same process.
onnxruntime runs with 1 intra-op thread (the gateway default) and torch with 1
thread, so the comparison is per core. A tree-model task (learner: lightgbm) has no
torch module: its reference column is the booster's own predict. Prints a table and
writes JSON.

    python bench/scoring_bench.py --model runs/nsl_kdd/best_model --bundle build/bundle
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.graphs import MergedGraph, TaskGraph
from export.tree_onnx import BoosterReference
from jenga_edge.bundle import verify_bundle
from trainer import checkpoint


def timeit(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def rows(schema, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.lognormal(0, 1, (n, len(schema.numeric))).astype(np.float32)
    vocab = [len(f.categories) for f in schema.categorical]
    cat = np.stack([rng.integers(0, v, n) for v in vocab], axis=1) if vocab else np.zeros((n, 0), np.int64)
    return num, cat.astype(np.int64)


def measure(module, sess: ort.InferenceSession, num: np.ndarray, cat: np.ndarray, repeat: int) -> dict:
    out = {}
    for label, n in (("single", 1), ("batch_1000", 1000)):
        nb, cb = num[:n], cat[:n]
        tn, tc = torch.from_numpy(nb), torch.from_numpy(cb)
        with torch.inference_mode():
            t_torch = timeit(lambda tn=tn, tc=tc: module(tn, tc), repeat)
        t_ort = timeit(lambda nb=nb, cb=cb: sess.run(None, {"numeric": nb, "categorical": cb}), repeat)
        out[label] = {"torch_us": t_torch * 1e6, "ort_us": t_ort * 1e6, "speedup": t_torch / t_ort}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("build/bench/scoring.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = checkpoint.load(args.model)
    bundle = verify_bundle(args.bundle)
    results = []
    graphs = [
        (
            f"{t.name} ({t.learner})",
            BoosterReference(loaded.trees[t.name])
            if t.name in loaded.trees
            else TaskGraph(loaded.model, t.name).eval(),
            t.file,
            t.source,
        )
        for t in bundle.tasks.values()
    ]
    graphs += [
        (f"merged:{','.join(m.tasks)}", MergedGraph(loaded.model, list(m.tasks)).eval(), m.file, m.source)
        for m in bundle.merged
    ]
    for name, module, file, source in graphs:
        num, cat = rows(loaded.schemas[source], 1000)
        r = measure(module, session(args.bundle / file), num, cat, args.repeat)
        results.append({"graph": name, "file": file, "size_kib": (args.bundle / file).stat().st_size / 1024, **r})
    print(f"{'graph':<34}{'KiB':>7}{'ref 1 ev µs':>15}{'ORT 1 ev µs':>13}{'ref 1000 µs':>15}{'ORT 1000 µs':>13}")
    for r in results:
        print(
            f"{r['graph']:<34}{r['size_kib']:>7.0f}{r['single']['torch_us']:>15.1f}{r['single']['ort_us']:>13.1f}"
            f"{r['batch_1000']['torch_us']:>15.0f}{r['batch_1000']['ort_us']:>13.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"torch": torch.__version__, "onnxruntime": ort.__version__, "threads": 1, "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
